"""
C{numberok-passwd}: stores only a hash, keeps the operator's file, makes
the file mode 0600 (it holds the hash), and before the first start writes
the same commented defaults the first start would, plus the hash.
"""

from __future__ import annotations

import io
import os
import stat

from numberok import settings as S
from numberok.passwd import passwdMain
from numberok.web import auth

SETTINGS_TEXT = """\
# the site's own file; numberok-passwd must keep this line
[System]
SystemId = 12     ; gate 12

[Zone:4:1]
InDirection = up  ; exit lane

[SiteNotes]
owner = facilities
"""


def runPasswd(args, stdin: str = ""):
    out, err = io.StringIO(), io.StringIO()
    status = passwdMain(args, stdin=io.StringIO(stdin), stdout=out,
                        stderr=err)
    return status, out.getvalue(), err.getvalue()


def modeOf(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_passwd_stores_only_a_hash_and_keeps_the_file(tmp_path):
    path = tmp_path / "numberok.ini"
    path.write_text(SETTINGS_TEXT)
    status, out, err = runPasswd([str(path), "--iterations", "1000"],
                                 "my new password\n")
    assert status == 0, err
    text = path.read_text()
    assert "my new password" not in text
    assert text.startswith(SETTINGS_TEXT)
    encoded = S.load(str(path))["Admin.PasswordHash"]
    assert auth.checkPassword("my new password", encoded)
    assert out == ("Password set in %s; a server already running with it "
                   "uses the password after a restart.\n" % (path,))


def test_passwd_refuses_a_short_password_and_writes_nothing(tmp_path):
    path = tmp_path / "numberok.ini"
    path.write_text(SETTINGS_TEXT)
    status, _, err = runPasswd([str(path)], "short\n")
    assert status == 1 and "at least 8" in err
    assert path.read_text() == SETTINGS_TEXT


def test_passwd_clear_removes_the_password(tmp_path):
    path = tmp_path / "numberok.ini"
    path.write_text(SETTINGS_TEXT)
    runPasswd([str(path), "--iterations", "1000"], "long enough pw\n")
    status, _, _ = runPasswd([str(path), "--clear"])
    assert status == 0
    assert S.load(str(path))["Admin.PasswordHash"] == ""


def test_passwd_reports_an_invalid_settings_file(tmp_path):
    path = tmp_path / "numberok.ini"
    path.write_text("[NetServer]\nPort = nope\n")
    status, _, err = runPasswd([str(path)], "long enough pw\n")
    assert status == 1 and "Port" in err


def test_passwd_tightens_an_existing_file_to_0600(tmp_path):
    path = tmp_path / "numberok.ini"
    path.write_text(SETTINGS_TEXT)
    os.chmod(path, 0o644)
    status, _, err = runPasswd([str(path), "--iterations", "1000"],
                               "long enough pw\n")
    assert status == 0, err
    assert modeOf(path) == 0o600


def test_passwd_before_the_first_start_writes_the_commented_defaults(
        tmp_path):
    path = tmp_path / "numberok.ini"
    old = os.umask(0o022)
    try:
        status, out, err = runPasswd([str(path), "--iterations", "1000"],
                                     "long enough pw\n")
    finally:
        os.umask(old)
    assert status == 0, err
    # No server has used this file yet: nothing to restart.
    assert out == ("Password set in %s (a new settings file with the "
                   "defaults); start the server with this file to use it."
                   "\n" % (path,))
    assert modeOf(path) == 0o600
    text = path.read_text()
    # Every line of the defaults is there, the hash added after them.
    assert text.startswith(S.defaultText().rstrip("\n"))
    settings = S.load(str(path))
    assert auth.checkPassword("long enough pw", settings["Admin.PasswordHash"])
    assert settings == S.parseText(S.defaultText()).withChanges(
        {"Admin.PasswordHash": settings["Admin.PasswordHash"]})
