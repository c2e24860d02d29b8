"""
The settings model: validation of every field at once, and saving that
edits the user's file in place -- comments, unknown sections and the order
kept, atomically, nothing written when anything is invalid.
"""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given, strategies as st

from numberok import settings as S
from numberok.settings import (FIELDS, SCHEMA, Settings, SettingsError,
                               SettingsStore, defaultText, parseText,
                               saveFile, updateText)
from numberok.settings.files import _changes

USER_FILE = """\
; my site's settings -- keep this comment
[NetServer]
Port = 7700        ; the port our VMS expects
# a hash comment
AttachedScreenshotsQuality = 50
AllowedClients =   ; nobody is blocked

[MyPlugin]
colour = blue      ; not ours, keep it
answer = 42

[Zone:1:0]
LossIntervalSec = 3  ; gate camera
InDirection = up

; trailing comment
"""


def test_default_file_parses_to_the_defaults_of_the_schema():
    settings = parseText(defaultText())
    for f in SCHEMA:
        assert settings[f.name] == f.default, f.name


def test_every_default_renders_to_text_that_parses_back_to_it():
    for f in SCHEMA:
        assert f.parse(f.render(f.default)) == f.default


def test_invalid_values_are_reported_all_at_once_with_their_range():
    with pytest.raises(SettingsError) as e:
        Settings().withChanges({
            "NetServer.Port": "70000",
            "NetServer.AttachedScreenshotsQuality": "5",
            "NetServer.AllowedClients": "10.0.0.0/8, not-an-ip",
            "Zone:0:4.LossIntervalSec": "1",
            "Nope.Key": "1"})
    errors = e.value.errors
    assert "1..65535" in errors["NetServer.Port"]
    assert "10..100" in errors["NetServer.AttachedScreenshotsQuality"]
    assert "not-an-ip" in errors["NetServer.AllowedClients"]
    assert set(errors) == {"NetServer.Port",
                           "NetServer.AttachedScreenshotsQuality",
                           "NetServer.AllowedClients", "Nope.Key",
                           "Zone:0:4.LossIntervalSec"}


def test_password_hash_must_look_like_one():
    with pytest.raises(SettingsError) as e:
        Settings().withChanges({"Admin.PasswordHash": "hunter22"})
    assert "numberok-passwd" in e.value.errors["Admin.PasswordHash"]


def test_changed_key_is_rewritten_in_place_keeping_its_comment():
    base = parseText(USER_FILE)
    new = base.withChanges({"NetServer.Port": "7800"})
    text = updateText(USER_FILE, base, new)
    assert text == USER_FILE.replace(
        "Port = 7700        ; the port",
        "Port = 7800        ; the port")


def test_unknown_sections_and_comments_survive_a_save():
    base = parseText(USER_FILE)
    new = base.withChanges({"NetServer.AttachedScreenshotsQuality": 80,
                            "Analytics.SkipFirstResults": "3"})
    text = updateText(USER_FILE, base, new)
    for kept in ("; my site's settings -- keep this comment",
                 "# a hash comment", "[MyPlugin]",
                 "colour = blue      ; not ours, keep it", "answer = 42",
                 "; trailing comment"):
        assert kept in text
    assert "AttachedScreenshotsQuality = 80\n" in text
    assert "[Analytics]\nSkipFirstResults = 3\n" in text
    assert parseText(text) == new


def test_empty_value_with_comment_gets_its_value_before_the_comment():
    base = parseText(USER_FILE)
    new = base.withChanges({"NetServer.AllowedClients": "10.0.0.0/8, ::1"})
    text = updateText(USER_FILE, base, new)
    assert "AllowedClients = 10.0.0.0/8, ::1 ; nobody is blocked" in text
    assert parseText(text)["NetServer.AllowedClients"] == \
        new["NetServer.AllowedClients"]


def test_key_missing_from_its_section_is_added_after_the_last_key():
    base = parseText(USER_FILE)
    new = base.withChanges({"NetServer.SendLostOnly": True})
    text = updateText(USER_FILE, base, new)
    assert "AllowedClients =   ; nobody is blocked\nSendLostOnly = 1\n" in text


def test_removed_zone_loses_only_its_section():
    base = parseText(USER_FILE)
    new = base.withChanges({"Zone:1:0": None})
    text = updateText(USER_FILE, base, new)
    assert "[Zone:1:0]" not in text and "gate camera" not in text
    assert "[MyPlugin]" in text and "; trailing comment" in text
    assert parseText(text).zones == {}


def test_added_zone_is_appended_as_a_section():
    base = parseText(USER_FILE)
    new = base.withChanges({"Zone:7:2.LossIntervalSec": "2.5"})
    text = updateText(USER_FILE, base, new)
    assert text.startswith(USER_FILE)
    assert "[Zone:7:2]\nLossIntervalSec = 2.5\nInDirection = down\n" in text
    assert parseText(text) == new


def test_windows_line_endings_are_kept():
    text = USER_FILE.replace("\n", "\r\n")
    base = parseText(text)
    new = base.withChanges({"NetServer.Port": "7801"})
    out = updateText(text, base, new)
    assert "Port = 7801        ; the port our VMS expects\r\n" in out
    assert "\n" not in out.replace("\r\n", "")


def test_only_changed_keys_are_written_so_hand_edits_since_load_stay():
    base = parseText(USER_FILE)
    edited = USER_FILE.replace("colour = blue", "colour = red").replace(
        "Port = 7700", "Port = 7000")
    new = base.withChanges({"NetServer.AttachedScreenshotsQuality": "60"})
    out = updateText(edited, base, new)
    assert "colour = red" in out and "Port = 7000" in out
    assert "AttachedScreenshotsQuality = 60" in out


def test_file_made_invalid_by_hand_is_not_overwritten(tmp_path):
    path = tmp_path / "numberok.ini"
    path.write_text(USER_FILE.replace("Port = 7700", "Port = many"))
    before = path.read_bytes()
    base = parseText(USER_FILE)
    with pytest.raises(SettingsError):
        saveFile(str(path), base, base.withChanges({"NetServer.Port": 1}))
    assert path.read_bytes() == before


def test_store_save_writes_atomically_and_tells_observers(tmp_path):
    path = tmp_path / "numberok.ini"
    path.write_text(USER_FILE)
    os.chmod(path, 0o640)
    store = SettingsStore(parseText(USER_FILE), str(path))
    seen = []
    store.addObserver(lambda old, new: seen.append(
        (old["NetServer.Port"], new["NetServer.Port"])))
    store.apply({"NetServer.Port": 9000})
    assert seen == [(7700, 9000)]
    assert S.load(str(path))["NetServer.Port"] == 9000
    assert sorted(os.listdir(tmp_path)) == ["numberok.ini"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_save_through_a_symlink_keeps_the_link(tmp_path):
    real = tmp_path / "real.ini"
    real.write_text(USER_FILE)
    link = tmp_path / "numberok.ini"
    link.symlink_to(real)
    base = parseText(USER_FILE)
    saveFile(str(link), base, base.withChanges({"NetServer.Port": 7900}))
    assert link.is_symlink()
    assert "Port = 7900" in real.read_text()


def test_invalid_change_writes_nothing(tmp_path):
    path = tmp_path / "numberok.ini"
    path.write_text(USER_FILE)
    store = SettingsStore(parseText(USER_FILE), str(path))
    with pytest.raises(SettingsError):
        store.apply({"NetServer.Port": 0})
    assert path.read_text() == USER_FILE
    assert store.current["NetServer.Port"] == 7700


def test_unwritable_directory_is_a_settings_error_and_keeps_the_file(
        tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    path = tmp_path / "numberok.ini"
    path.write_text(USER_FILE)
    os.chmod(tmp_path, 0o500)
    try:
        base = parseText(USER_FILE)
        with pytest.raises(SettingsError) as e:
            saveFile(str(path), base, base.withChanges({"NetServer.Port": 1}))
        assert "cannot be written" in e.value.errors["file"]
    finally:
        os.chmod(tmp_path, 0o700)


def test_missing_file_is_created_from_the_commented_defaults(tmp_path):
    path = tmp_path / "new.ini"
    base = Settings()
    new = base.withChanges({"System.SystemId": 5})
    saveFile(str(path), base, new)
    text = path.read_text()
    assert text.startswith("; numberok settings.")
    assert "SystemId = 5                    ; sent as SystemId" in text
    assert parseText(text) == new
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


# -- property tests ----------------------------------------------------------

formValues = st.one_of(
    st.text(max_size=12), st.integers(-10 ** 6, 10 ** 6),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.none(), st.sampled_from(["1", "0", "yes", "7700", "10.0.0.0/8",
                                "down", "up", " 50 ", "2.5"]))
names = st.one_of(
    st.sampled_from(sorted(FIELDS)),
    st.builds(lambda c, z, k: "Zone:%d:%d%s" % (c, z, k),
              st.integers(0, 1100), st.integers(0, 4),
              st.sampled_from(["", ".LossIntervalSec", ".InDirection",
                               ".Other"])),
    st.text(max_size=10))


@given(st.dictionaries(names, formValues, max_size=8))
def test_arbitrary_form_values_raise_only_settings_error(changes):
    try:
        new = Settings().withChanges(changes)
    except SettingsError as e:
        assert e.errors and all(isinstance(m, str) for m in e.errors.values())
        return
    # Whatever was accepted saves into the default file and reads back.
    text = defaultText()
    base = parseText(text)
    assert parseText(updateText(text, Settings(), new)) == \
        base.withChanges(_changes(Settings(), new, base, frozenset(FIELDS)))


@given(st.text(max_size=300))
def test_arbitrary_file_text_raises_only_settings_error(text):
    try:
        parseText(text)
    except SettingsError:
        pass
