"""
The journal when the disk misbehaves or the past is gone: a full disk and a
read-only database (injected in the store's own thread, and for real on a
small tmpfs where this test may mount one), a database deleted while
running (a new epoch whose ids continue above the old ones), a database
of the first release (migrated in place), plate pictures, and the id a
Lost event got, told to observers.
"""

from __future__ import annotations

import errno
import io
import os
import sqlite3
import subprocess

import pytest
import pytest_twisted
from PIL import Image
from twisted.internet.task import Clock

from helpers import makeEvent
from numberok.events import EventState
from numberok.journal import Journal, pictures
from numberok.metrics import Metrics


def timeout(d, seconds=10):
    from twisted.internet import reactor
    return d.addTimeout(seconds, reactor)


def jpeg(size=(640, 480), colour=(40, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def lost(runtimeId, **kwargs):
    return makeEvent(EventState.LOST, runtimeId=runtimeId, **kwargs)


_running: list[Journal] = []


@pytest.fixture(autouse=True)
def stopJournals():
    yield
    while _running:
        _running.pop()._threads.stop()


def started(path, **kwargs) -> Journal:
    journal = Journal(str(path), clock=Clock(), metrics=Metrics(), **kwargs)
    journal.pruneInterval = 1e9
    journal.startService()
    _running.append(journal)
    return journal


def pictureFiles(path) -> list[str]:
    return sorted(os.listdir(os.path.join(str(path), "screenshots")))


def inStore(journal, f):
    """Run C{f(store)} in the journal's thread, as its own work does."""
    return journal._threads.run(lambda: f(journal._threadStore))


def failures(journal, reason):
    return journal.metrics.value("numberok_journal_failures_total",
                                 reason=reason)


@pytest_twisted.inlineCallbacks
def test_disk_full_on_commit_leaves_no_row_and_no_file(tmp_path):
    journal = started(tmp_path / "j")
    yield timeout(journal.whenIdle())

    # SQLite's own "database or disk is full": no more pages may be added.
    def capPages(store):
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute("PRAGMA max_page_count = %d" % (pages,))
    yield timeout(inStore(journal, capPages))
    journal.publish(lost(1, plate="A" * 20000, frame=jpeg()))
    yield timeout(journal.whenIdle())
    assert failures(journal, "disk_full") == 1
    assert "disk full" in journal.lastError
    assert (yield timeout(journal.count())) == 0
    assert pictureFiles(tmp_path / "j") == []

    yield timeout(inStore(journal, lambda s: s.db.execute(
        "PRAGMA max_page_count = 1073741823")))
    later = jpeg(colour=(200, 10, 10))
    journal.publish(lost(2, frame=later))
    yield timeout(journal.whenIdle())
    [entry] = (yield timeout(journal.since(0))).entries
    tag, data = yield timeout(journal.picture(entry.id))
    assert (entry.runtimeId, data) == (2, later)
    yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_read_only_database_is_said_in_words_and_counted(tmp_path):
    journal = started(tmp_path / "j")
    yield timeout(journal.whenIdle())
    yield timeout(inStore(journal, lambda s: s.db.execute(
        "PRAGMA query_only = 1")))
    journal.publish(lost(1, frame=jpeg()))
    yield timeout(journal.whenIdle())
    assert failures(journal, "read_only") == 1
    assert journal.lastError.startswith("read-only")
    assert pictureFiles(tmp_path / "j") == []
    yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_disk_full_on_picture_write_keeps_the_row_without_a_file(
        tmp_path, monkeypatch):
    journal = started(tmp_path / "j")
    yield timeout(journal.whenIdle())
    realOpen = open

    def fullDisk(path, mode="r", *args, **kwargs):
        if "x" in mode:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return realOpen(path, mode, *args, **kwargs)
    monkeypatch.setattr(pictures, "open", fullDisk, raising=False)
    journal.publish(lost(1, frame=jpeg(), bbox=(100, 100, 120, 30)))
    yield timeout(journal.whenIdle())
    monkeypatch.undo()
    assert journal.metrics.value("numberok_journal_pictures_skipped_total",
                                 reason="disk_full") == 1
    assert pictureFiles(tmp_path / "j") == []

    later = jpeg(colour=(0, 200, 0))
    journal.publish(lost(2, frame=later))
    yield timeout(journal.whenIdle())
    first, second = (yield timeout(journal.since(0))).entries
    assert (first.hasScreenshot, first.hasPlatePicture) == (False, False)
    assert (yield timeout(journal.picture(first.id))) is None
    assert (yield timeout(journal.picture(second.id)))[1] == later
    yield timeout(journal.stopService())


@pytest.fixture
def smallDisk(tmp_path):
    """A real 1 MiB tmpfs, where this process may mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m",
                             "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s"
                    % (result.stderr.decode(errors="replace").strip(),))
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest_twisted.inlineCallbacks
def test_full_tmpfs_never_serves_a_picture_of_another_row(smallDisk):
    journal = started(smallDisk / "j")
    yield timeout(journal.whenIdle())
    frame = os.urandom(150_000)
    frames = [b"\xff\xd8" + bytes([i]) + frame for i in range(12)]
    for i, data in enumerate(frames):  # 1.8 MB into a 1 MiB disk
        journal.publish(lost(i, frame=data))
    yield timeout(journal.whenIdle(), 30)
    page = yield timeout(journal.since(0, 100))
    disk = journal.metrics
    assert (disk.value("numberok_journal_failures_total", reason="disk_full")
            + disk.value("numberok_journal_pictures_skipped_total",
                         reason="disk_full")) > 0, "the disk never filled"
    for entry in page.entries:
        found = yield timeout(journal.picture(entry.id))
        if entry.hasScreenshot:
            assert found[1] == frames[entry.runtimeId]
        else:
            assert found is None
    named = {e.screenshotFile for e in page.entries if e.hasScreenshot}
    assert set(pictureFiles(smallDisk / "j")) == named
    yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_database_deleted_while_running_starts_a_new_epoch_above_old_ids(
        tmp_path):
    path = tmp_path / "j"
    journal = started(path)
    for i in range(3):
        journal.publish(lost(i, frame=jpeg()))
    yield timeout(journal.whenIdle())
    before = yield timeout(journal.since(0))
    oldFiles = pictureFiles(path)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(str(path / "events.sqlite") + suffix):
            os.remove(str(path / "events.sqlite") + suffix)

    journal.publish(lost(10, frame=jpeg(colour=(9, 9, 9))))
    yield timeout(journal.whenIdle())
    after = yield timeout(journal.since(before.lastId))
    assert after.epoch != before.epoch
    assert [(e.id, e.runtimeId) for e in after.entries] == [(4, 10)]
    assert after.firstId == 4
    assert journal.metrics.value("numberok_journal_epochs_total") == 1
    # The old pictures are gone; the old ids serve nothing.
    assert not set(oldFiles) & set(pictureFiles(path))
    assert (yield timeout(journal.picture(1))) is None
    yield timeout(journal.stopService())

    # Deleted while stopped: the id mark beside the database carries on.
    os.remove(str(path / "events.sqlite"))
    again = started(path)
    again.publish(lost(11))
    yield timeout(again.whenIdle())
    page = yield timeout(again.since(0))
    assert [e.id for e in page.entries] == [5]
    assert page.epoch not in (before.epoch, after.epoch)
    yield timeout(again.stopService())


FIRST_RELEASE_SCHEMA = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, recorded_ms INTEGER NOT NULL,
    state TEXT NOT NULL, runtime_id INTEGER NOT NULL,
    channel INTEGER NOT NULL, zone INTEGER NOT NULL, plate TEXT NOT NULL,
    raw_plate TEXT NOT NULL, frame_time_ms INTEGER NOT NULL,
    process_time_ms INTEGER NOT NULL, movement TEXT NOT NULL,
    checkpoint INTEGER NOT NULL, confidence REAL NOT NULL,
    reads INTEGER NOT NULL, screenshot_bytes INTEGER NOT NULL DEFAULT 0);
CREATE INDEX events_recorded ON events (recorded_ms);
"""


@pytest_twisted.inlineCallbacks
def test_journal_of_the_first_release_opens_and_keeps_its_rows(tmp_path):
    path = tmp_path / "j"
    (path / "screenshots").mkdir(parents=True)
    db = sqlite3.connect(str(path / "events.sqlite"))
    db.executescript(FIRST_RELEASE_SCHEMA)
    row = (1, "Lost", 7, 0, 1, "A1", "A1", 5, 6, "In", 0, 0.5, 3)
    for entryId, size in ((1, 4), (2, 4), (3, 0)):
        db.execute("INSERT INTO events VALUES (%s)" % (",".join("?" * 15),),
                   (entryId,) + row + (size,))
    db.commit()
    db.close()
    (path / "screenshots" / "1.jpg").write_bytes(b"\xff\xd8ok")
    (path / "screenshots" / "2.jpg").write_bytes(b"\xff\xd8 not its size")
    (path / "screenshots" / "9.jpg").write_bytes(b"\xff\xd8orphan")

    journal = started(path)
    journal.publish(lost(8, bbox=(1, 2, 3, 4), eventTimeMs=99,
                         systemId=4242))
    yield timeout(journal.whenIdle())
    entries = (yield timeout(journal.since(0))).entries
    assert [(e.id, e.runtimeId, e.hasScreenshot) for e in entries] == [
        (1, 7, True), (2, 7, False), (3, 7, False), (4, 8, False)]
    assert (yield timeout(journal.picture(1)))[1] == b"\xff\xd8ok"
    assert pictureFiles(path) == ["1.jpg"]
    new = entries[3].toJSON()
    assert (new["plate_box"], new["event_time_ms"], new["system_id"]) == (
        [1, 2, 3, 4], 99, 4242)
    assert entries[0].toJSON()["event_time_ms"] is None
    assert entries[3].toEvent().bbox == (1, 2, 3, 4)
    yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_lost_event_with_a_box_keeps_a_readable_plate_crop(tmp_path):
    journal = started(tmp_path / "j")
    frame = jpeg((1280, 720))
    journal.publish(lost(1, frame=frame, bbox=(600, 400, 100, 25)))
    journal.publish(lost(2, frame=frame, bbox=(5000, 5000, 10, 10)))
    yield timeout(journal.whenIdle())
    withCrop, outside = (yield timeout(journal.since(0))).entries
    tag, crop = yield timeout(journal.picture(withCrop.id, "plate"))
    image = Image.open(io.BytesIO(crop))
    assert image.size[0] >= 160
    assert image.size[0] / image.size[1] == pytest.approx(150 / 37.5, 0.05)
    assert withCrop.toJSON("/s", "/p")["plate_picture"] == "/p"
    assert outside.toJSON("/s", "/p")["plate_picture"] is None
    assert (yield timeout(journal.picture(outside.id, "plate"))) is None
    tag, thumb = yield timeout(journal.picture(withCrop.id, "thumbnail"))
    assert max(Image.open(io.BytesIO(thumb)).size) <= 192
    yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_observers_learn_the_id_each_lost_event_got_in_order(tmp_path):
    journal = started(tmp_path / "j")
    told = []

    def broken(entry, event):
        raise RuntimeError("an observer's bug")
    journal.addRecordedObserver(broken)
    journal.addRecordedObserver(lambda entry, event: told.append(
        (entry.id, event.runtimeId, entry.runtimeId)))
    events = [lost(i) for i in (5, 6, 7)]
    for event in events:
        journal.publish(event)
    journal.publish(makeEvent(EventState.DETECTED, runtimeId=8))
    yield timeout(journal.whenIdle())
    assert told == [(1, 5, 5), (2, 6, 6), (3, 7, 7)]
    yield timeout(journal.stopService())
