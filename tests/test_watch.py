"""
Tests for FolderWatchSource on real temporary folders, with a Clock for the
poll schedule and a synchronous executor for the folder work.
"""

import datetime
import os

import pytest
import pytest_twisted
from twisted.application.service import IService
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from zope.interface import implementer
from zope.interface.verify import verifyObject

from numberok.interfaces import IEventSink, IPlateReadSink
from numberok.metrics import Metrics
from numberok.sources.watch import (
    DEFAULT_PATTERN, BadFileError, FolderWatchSource, parseTime)

from helpers import ListSink, jpegBytes, synchronous

UTC = datetime.timezone.utc
NOW = 1764000000.0          # the Clock's time: 2025-11-24 16:00:00 UTC


def upload(folder, name, data=None, age=10.0):
    """Write a file as a camera would, with its mtime C{age} s before NOW."""
    path = folder / name
    path.write_bytes(jpegBytes() if data is None else data)
    os.utime(path, (NOW - age, NOW - age))
    return path


def watcher(folder, clock=None, sink=None, **kwargs):
    if clock is None:
        clock = Clock()
        clock.advance(NOW)
    sink = ListSink() if sink is None else sink
    source = FolderWatchSource(sink, str(folder), reactor=clock, tz=UTC,
                               runInThread=synchronous, metrics=Metrics(),
                               **kwargs)
    return clock, sink, source


def badFiles(source):
    """Files the watcher moved to bad/, as counted in its metrics."""
    return source.metrics.value("numberok_read_errors_total", source="watch")


def names(folder):
    return sorted(os.listdir(folder))


def test_a_stable_file_becomes_a_read_and_moves_to_done(tmp_path):
    data = jpegBytes()
    upload(tmp_path, "20251124155959123_A123BC77_3.jpg", data)
    clock, sink, source = watcher(tmp_path)
    verifyObject(IService, source)
    source.startService()
    assert sink.reads == []                  # first sight: wait a poll
    clock.advance(1.0)
    [read] = sink.reads
    assert (read.plate, read.channel, read.zone, read.timeMs, read.jpeg,
            read.source) == ("A123BC77", 3, 0, 1763999999123, data, "watch")
    assert names(tmp_path) == ["done"]
    assert names(tmp_path / "done") == ["20251124155959123_A123BC77_3.jpg"]
    assert badFiles(source) == 0
    source.stopService()


def test_a_file_still_being_written_is_left_until_stable(tmp_path):
    path = upload(tmp_path, "1763999999000_K777MP99_1.jpg",
                  jpegBytes()[:100], age=0)
    clock, sink, source = watcher(tmp_path)
    source.startService()
    # It grows after the first poll saw it.
    with open(path, "ab") as f:
        f.write(jpegBytes()[100:])
    os.utime(path, (NOW + 1.8, NOW + 1.8))
    clock.advance(1.0)
    assert sink.reads == []
    # Same size and time as at the last poll, but modified less than one
    # poll interval ago: still too young.
    clock.advance(1.0)
    assert sink.reads == []
    clock.advance(1.0)
    assert [r.plate for r in sink.reads] == ["K777MP99"]
    assert sink.reads[0].jpeg == path.parent.joinpath(
        "done", path.name).read_bytes()
    source.stopService()


def test_a_bad_name_goes_to_bad_with_a_log_line(tmp_path):
    upload(tmp_path, "holiday-photo.jpg")
    upload(tmp_path, "20251124155959_unknown_1.jpg")
    upload(tmp_path, "20251399155959_A1_1.jpg")
    upload(tmp_path, "20251124155959_A1_2000.jpg")
    upload(tmp_path, "1763999999000_B2_1.jpg", b"GIF89a...")
    with capturedLogs() as events:
        clock, sink, source = watcher(tmp_path)
        source.startService()
        clock.advance(1.0)
    assert sink.reads == [] and badFiles(source) == 5
    assert names(tmp_path) == ["bad"]
    assert len(names(tmp_path / "bad")) == 5
    reasons = {e["name"]: e["reason"] for e in events if "reason" in e}
    assert reasons == {
        "holiday-photo.jpg": "name does not match the pattern",
        "20251124155959_unknown_1.jpg": "no plate in the name (unknown)",
        "20251399155959_A1_1.jpg":
            "time 20251399155959 is not a valid date: month must be in 1..12",
        "20251124155959_A1_2000.jpg": "channel 2000 is not 0..1023",
        "1763999999000_B2_1.jpg":
            "not a JPEG (9 bytes without the FF D8 start-of-image marker)",
    }
    source.stopService()


def test_name_collisions_in_done_do_not_overwrite(tmp_path):
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "1763999999000_A1.jpg").write_bytes(b"old")
    (tmp_path / "done" / "1763999999000_A1-1.jpg").write_bytes(b"older")
    upload(tmp_path, "1763999999000_A1.jpg")
    clock, sink, source = watcher(tmp_path)
    source.startService()
    clock.advance(1.0)
    assert names(tmp_path / "done") == [
        "1763999999000_A1-1.jpg", "1763999999000_A1-2.jpg",
        "1763999999000_A1.jpg"]
    assert (tmp_path / "done" / "1763999999000_A1.jpg").read_bytes() == b"old"
    assert len(sink.reads) == 1
    source.stopService()


def test_a_restart_with_files_pending_takes_each_exactly_once(tmp_path):
    upload(tmp_path, "1763999990000_A1_0.jpg")
    clock = Clock()
    clock.advance(NOW)
    sink = ListSink()
    _, _, first = watcher(tmp_path, clock, sink)
    first.startService()
    clock.advance(1.0)
    assert [r.plate for r in sink.reads] == ["A1"]
    upload(tmp_path, "1763999991000_B2_0.jpg")
    first.stopService()             # down before it polls again

    _, _, second = watcher(tmp_path, clock, sink)
    second.startService()
    clock.advance(1.0)
    second.stopService()
    _, _, third = watcher(tmp_path, clock, sink)
    third.startService()
    clock.advance(5.0)
    third.stopService()
    assert [r.plate for r in sink.reads] == ["A1", "B2"]
    assert names(tmp_path / "done") == [
        "1763999990000_A1_0.jpg", "1763999991000_B2_0.jpg"]


def test_hidden_and_partial_uploads_are_never_touched(tmp_path):
    upload(tmp_path, ".pureftpd-upload.5f1c.jpg")
    upload(tmp_path, "1763999999000_A1_0.jpg.part")
    upload(tmp_path, "1763999999000_A2_0.TMP")
    (tmp_path / "sub").mkdir()
    clock, sink, source = watcher(tmp_path)
    source.startService()
    clock.pump([1.0] * 3)
    assert sink.reads == [] and badFiles(source) == 0
    assert names(tmp_path) == [".pureftpd-upload.5f1c.jpg",
                               "1763999999000_A1_0.jpg.part",
                               "1763999999000_A2_0.TMP", "sub"]
    source.stopService()


@pytest.mark.parametrize("name, expected", [
    ("1764000000123_A1.jpg", (1764000000123, "A1", 0, 0)),
    ("1764000000_A1_5.JPEG", (1764000000000, "A1", 5, 0)),
    ("20251124160000_А123ВС77_1_2.jpg", (1764000000000, "А123ВС77", 1, 2)),
    ("20251124160000250_1234AB-7_12.jpg", (1764000000250, "1234AB-7", 12, 0)),
])
def test_time_plate_channel_and_zone_are_parsed(tmp_path, name, expected):
    upload(tmp_path, name)
    clock, sink, source = watcher(tmp_path)
    source.startService()
    clock.advance(1.0)
    [read] = sink.reads
    assert (read.timeMs, read.plate, read.channel, read.zone) == expected
    source.stopService()


def test_calendar_names_use_the_given_time_zone():
    moscow = datetime.timezone(datetime.timedelta(hours=3))
    assert parseTime("20251124190000", moscow) == 1764000000000
    assert parseTime("2025-11-24 16:00:00", UTC) == 1764000000000
    local = datetime.datetime(2025, 11, 24, 16, 0).timestamp()
    assert parseTime("20251124160000", None) == round(local * 1000)
    with pytest.raises(BadFileError) as info:
        parseTime("176400000012", UTC)
    assert "12 digits" in str(info.value)


def test_a_custom_pattern_can_name_the_fields_its_own_way(tmp_path):
    upload(tmp_path, "cam07-2025-11-24_16-00-00-A777AA77.jpg")
    clock, sink, source = watcher(
        tmp_path, pattern=r"cam(?P<channel>\d+)-(?P<time>[\d_-]{19})-"
                          r"(?P<plate>\w+)\.jpg")
    source.startService()
    clock.advance(1.0)
    [read] = sink.reads
    assert (read.channel, read.timeMs, read.plate) == (
        7, 1764000000000, "A777AA77")
    source.stopService()


@pytest.mark.parametrize("kwargs, words", [
    ({"pattern": r"(?P<plate>\w+)\.jpg"}, "missing: time"),
    ({"pattern": r"(unclosed"}, "not a regular expression"),
    ({"pollInterval": 0}, "poll interval"),
])
def test_bad_settings_are_refused(tmp_path, kwargs, words):
    with pytest.raises(ValueError) as info:
        FolderWatchSource(ListSink(), str(tmp_path), **kwargs)
    assert words in str(info.value)


def test_a_missing_folder_is_reported_once_and_watched_again(tmp_path):
    folder = tmp_path / "ftp"
    with capturedLogs() as events:
        clock, sink, source = watcher(folder)
        source.startService()
        clock.pump([1.0] * 3)
        folder.mkdir()
        upload(folder, "1763999999000_A1_0.jpg")
        clock.pump([1.0] * 2)
    assert [r.plate for r in sink.reads] == ["A1"]
    errors = [e for e in events if "watch folder unusable" in
              e.get("log_format", "")]
    assert len(errors) == 1
    assert "No such file or directory" in errors[0]["message"]
    source.stopService()


def test_many_files_are_taken_a_batch_per_poll(tmp_path):
    for i in range(12):
        upload(tmp_path, "17639999990%02d_P%d.jpg" % (i, i))
    clock, sink, source = watcher(tmp_path)
    source.maxFilesPerPoll = 5
    source.startService()
    clock.advance(1.0)
    assert len(sink.reads) == 5
    clock.pump([1.0, 1.0])
    assert sorted(r.plate for r in sink.reads) == sorted(
        "P%d" % i for i in range(12))
    source.stopService()


def test_stop_waits_for_a_poll_in_progress_and_delivers_its_reads(tmp_path):
    upload(tmp_path, "1763999999000_A1_0.jpg")
    held = []

    def later(f, *args):
        d = Deferred()
        held.append((d, f, args))
        return d

    clock, sink, source = watcher(tmp_path)
    source._runInThread = later
    source.startService()
    d, f, args = held.pop()
    d.callback(f(*args))            # the first poll runs through
    clock.advance(1.0)              # the second is held in its "thread"
    [(d, f, args)] = held
    stopped = source.stopService()
    assert not stopped.called
    d.callback(f(*args))
    assert stopped.called
    assert [r.plate for r in sink.reads] == ["A1"]
    assert clock.getDelayedCalls() == []


@pytest_twisted.inlineCallbacks
def test_polls_in_a_real_thread(tmp_path):
    from twisted.internet import reactor
    upload(tmp_path, "1763999999000_A1_0.jpg", age=3600 * 24 * 365)
    done = Deferred()

    @implementer(IPlateReadSink)
    class Sink:
        def addRead(self, read):
            done.callback(read)

    source = FolderWatchSource(Sink(), str(tmp_path), pollInterval=0.05)
    source.startService()
    try:
        read = yield done.addTimeout(5, reactor)
    finally:
        yield source.stopService()
    assert read.plate == "A1"
    assert names(tmp_path / "done") == ["1763999999000_A1_0.jpg"]


def test_default_pattern_is_documented_shape():
    import re
    pattern = re.compile(DEFAULT_PATTERN)
    assert pattern.fullmatch("20251124160000_A123BC77_1.jpg")
    assert pattern.fullmatch("20251124160000_A123BC77.jpeg")
    assert not pattern.fullmatch("A123BC77_20251124160000.jpg")


def test_a_watch_folder_jpeg_is_a_per_vehicle_read(tmp_path):
    upload(tmp_path, "20251124155959123_A123BC77.jpg")
    clock, sink, source = watcher(tmp_path)
    source.startService()
    clock.advance(1.0)
    [read] = sink.reads
    assert read.perVehicle
    source.stopService()


def test_a_single_jpeg_dropped_in_the_folder_gives_an_event(tmp_path):
    from numberok import settings as S
    from numberok.analytics import Analytics
    from numberok.events import EventState

    @implementer(IEventSink)
    class Events(list):
        def publish(self, event):
            self.append(event)
    upload(tmp_path, "20251124155959123_A123BC77.jpg")
    events = Events()
    clock = Clock()
    clock.advance(NOW)
    analytics = Analytics(S.SettingsStore(), events, reactor=clock)
    analytics.startService()
    _, _, source = watcher(tmp_path, clock=clock, sink=analytics)
    source.startService()
    clock.advance(1.0)
    assert [e.state for e in events] == [EventState.DETECTED]
    clock.advance(30.0)
    assert [e.state for e in events] == [EventState.DETECTED, EventState.LOST]
    source.stopService()
    analytics.stopService()


def test_a_bad_watch_pattern_is_a_usage_error_naming_the_option(tmp_path):
    from twisted.python import usage

    from numberok.tap import Options
    for pattern, said in [("(?P<plate>x", "not a regular expression"),
                          ("(?P<plate>.+)", "missing: time")]:
        options = Options()
        with pytest.raises(usage.UsageError) as raised:
            options.parseOptions(["--config", str(tmp_path / "n.ini"),
                                  "--watch", str(tmp_path),
                                  "--watch-pattern", pattern])
        assert str(raised.value).startswith("--watch-pattern: ")
        assert said in str(raised.value)
