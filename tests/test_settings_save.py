"""
Saving never loses what the running server holds: a save merges the
running settings into the file as it is on disk, also after the file was
emptied or deleted; a file made invalid by hand is reported as the file's
fault, not the request's; files this package creates are mode 0600.
"""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given, strategies as st

from numberok import settings as S
from numberok.settings import (Settings, SettingsError, SettingsFileError,
                               SettingsFileInvalid, SettingsStore,
                               createDefaultFile, defaultText, parseText,
                               updateText)
from numberok.settings.keys import (ADMIN_PASSWORD_HASH, NETSERVER_PORT,
                                    SCHEMA, ZONE_LOSS_INTERVAL_SEC)

HASH = ("pbkdf2_sha256$1000$c2FsdHNhbHRzYWx0$"
        "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA==")

RUNNING_FILE = """\
; the operator's file
[NetServer]
Port = 7710        ; our VMS
SendLostOnly = 1

[Analytics]
SkipFirstResults = 3

[Zone:2:1]
LossIntervalSec = 7
InDirection = left

[Admin]
PasswordHash = %s
""" % (HASH,)


def modeOf(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def runningStore(tmp_path):
    path = tmp_path / "numberok.ini"
    path.write_text(RUNNING_FILE)
    return path, SettingsStore(S.load(str(path)), str(path))


@pytest.mark.parametrize("damage", ["empty", "delete", "blank lines"])
def test_save_after_the_file_was_emptied_or_deleted_keeps_every_value(
        tmp_path, damage):
    path, store = runningStore(tmp_path)
    if damage == "delete":
        path.unlink()
    else:
        path.write_text("" if damage == "empty" else "\n\n  \n")
    store.apply({"Analytics.UseRawResults": "1"})
    reloaded = S.load(str(path))
    assert reloaded[ADMIN_PASSWORD_HASH] == HASH
    assert reloaded == store.current
    assert reloaded.zone(2, 1)[ZONE_LOSS_INTERVAL_SEC] == 7
    # Rewritten from the commented defaults, not a bare list of keys.
    assert path.read_text().startswith("; numberok settings.")


def test_save_after_some_keys_were_deleted_writes_them_back(tmp_path):
    path, store = runningStore(tmp_path)
    path.write_text("; the operator's file\n[NetServer]\n"
                    "Port = 7710        ; our VMS\n")
    store.apply({"System.TestMode": "1"})
    text = path.read_text()
    assert text.startswith("; the operator's file\n[NetServer]\n"
                           "Port = 7710        ; our VMS\n")
    assert S.load(str(path)) == store.current
    assert S.load(str(path))[ADMIN_PASSWORD_HASH] == HASH


def test_hand_edit_made_since_the_load_still_wins(tmp_path):
    path, store = runningStore(tmp_path)
    path.write_text(RUNNING_FILE.replace("Port = 7710", "Port = 7720"))
    store.apply({"Analytics.SkipFirstResults": "4"})
    reloaded = S.load(str(path))
    assert reloaded[NETSERVER_PORT] == 7720
    assert reloaded["Analytics.SkipFirstResults"] == 4


def test_file_made_invalid_by_hand_is_the_files_error_not_the_requests(
        tmp_path):
    path, store = runningStore(tmp_path)
    path.write_text(RUNNING_FILE.replace("SendLostOnly = 1",
                                         "SendLostOnly = maybe"))
    before = path.read_bytes()
    with pytest.raises(SettingsFileInvalid) as e:
        store.apply({"Analytics.SkipFirstResults": "4"})
    assert set(e.value.errors) == {"file"}
    assert set(e.value.fileErrors) == {"NetServer.SendLostOnly"}
    assert e.value.path == str(path)
    assert "[NetServer] SendLostOnly" in e.value.errors["file"]
    assert str(path) in str(e.value)
    assert path.read_bytes() == before
    assert store.current["Analytics.SkipFirstResults"] == 3


def test_invalid_request_names_only_its_own_keys(tmp_path):
    path, store = runningStore(tmp_path)
    path.write_text(RUNNING_FILE.replace("SendLostOnly = 1",
                                         "SendLostOnly = maybe"))
    with pytest.raises(SettingsError) as e:
        store.apply({"NetServer.Port": "0"})
    assert not isinstance(e.value, SettingsFileError)
    assert set(e.value.errors) == {"NetServer.Port"}


def test_default_file_is_created_0600_whatever_the_umask(tmp_path):
    path = tmp_path / "numberok.ini"
    old = os.umask(0o000)
    try:
        createDefaultFile(str(path))
    finally:
        os.umask(old)
    assert modeOf(path) == 0o600
    assert path.read_text() == defaultText()
    assert sorted(os.listdir(tmp_path)) == ["numberok.ini"]


def test_default_file_never_replaces_an_existing_one(tmp_path):
    path = tmp_path / "numberok.ini"
    path.write_text(RUNNING_FILE)
    with pytest.raises(FileExistsError):
        createDefaultFile(str(path))
    assert path.read_text() == RUNNING_FILE
    assert sorted(os.listdir(tmp_path)) == ["numberok.ini"]


def test_added_lines_use_the_files_own_line_ending(tmp_path):
    path, store = runningStore(tmp_path)
    path.write_bytes(RUNNING_FILE.replace("\n", "\r\n").encode())
    store.apply({"System.SystemId": "9", "Zone:5:0.InDirection": "up"})
    data = path.read_bytes()
    assert b"SystemId = 9\r\n" in data and b"[Zone:5:0]\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")


# -- property: whatever the file on disk became, nothing is lost -------------

lines = RUNNING_FILE.splitlines(keepends=True)
changes = st.dictionaries(
    st.sampled_from(["NetServer.Port", "System.SystemId", "Mqtt.QoS",
                     "Zone:2:1.InDirection", "Zone:0:3.LossIntervalSec"]),
    st.sampled_from(["1", "2", "7", "up", "0.5"]), max_size=3)


@given(st.lists(st.booleans(), min_size=len(lines), max_size=len(lines)),
       changes)
def test_save_into_any_remains_of_the_file_keeps_the_running_values(
        keep, change):
    base = parseText(RUNNING_FILE)
    try:
        new = base.withChanges(change)
    except SettingsError:
        return
    disk = "".join(line for line, kept in zip(lines, keep) if kept)
    try:
        result = updateText(disk, base, new)
    except SettingsFileInvalid:
        return
    readBack = parseText(result)
    if not disk.strip():
        assert readBack == new
        return
    onDisk = parseText(disk)
    for f in SCHEMA:
        handEdited = (f.key + " =") in disk and base[f] == new[f]
        assert readBack[f] == (onDisk[f] if handEdited else new[f]), f.name
    assert set(new.zones) <= set(readBack.zones)
    assert readBack[ADMIN_PASSWORD_HASH] in (HASH, "")
    assert readBack[ADMIN_PASSWORD_HASH] == HASH or "PasswordHash =" in disk


@given(st.text(max_size=200))
def test_save_into_arbitrary_file_text_raises_only_settings_errors(text):
    base = Settings()
    try:
        result = updateText(text, base, base.withChanges(
            {"System.SystemId": 7}))
    except SettingsError:
        return
    assert parseText(result)["System.SystemId"] == 7
