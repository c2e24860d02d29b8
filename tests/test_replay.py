"""
Tests for ReplaySource: pacing on a Clock, fast mode, bad lines, images by
path, looping, and the real thread hand-off.
"""

import json
import os

import pytest
import pytest_twisted
from twisted.application.service import IService
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from zope.interface.verify import verifyObject

from numberok.metrics import Metrics
from numberok.sources.demo import recordMain
from numberok.sources.formats import parseReadLine
from numberok.sources.replay import ReplaySource

from helpers import ListSink, jpegBytes, synchronous

T0 = 1764000000000


def writeLines(path, lines):
    with open(path, "wb") as f:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line)
            if isinstance(line, str):
                line = line.encode("utf-8")
            f.write(line + b"\n")
    return str(path)


def threeReads(tmp_path):
    return writeLines(tmp_path / "reads.jsonl", [
        {"plate": "A111AA77", "time_ms": T0, "zone": 1},
        "this is not json",
        {"plate": "B222BB77", "time_ms": T0 + 1000},
        "",
        {"plate": "C333CC77", "time_ms": T0 + 1500, "channel": 2},
    ])


def oneTurn(clock):
    """Run what is due now once, like one reactor iteration."""
    due = [c for c in clock.getDelayedCalls() if c.getTime() <= clock.seconds()]
    for call in due:
        clock.calls.remove(call)
        call.func(*call.args, **call.kw)


def start(tmp_path, path, **kwargs):
    clock = Clock()
    clock.advance(100)
    sink = ListSink()
    source = ReplaySource(sink, path, reactor=clock,
                          runInThread=synchronous, metrics=Metrics(), **kwargs)
    verifyObject(IService, source)
    source.startService()
    return clock, sink, source


def badLines(source):
    """Lines the replay skipped, as counted in its metrics."""
    return source.metrics.value("numberok_read_errors_total", source="replay")


def passes(source):
    return source.metrics.value("numberok_replay_passes_total")


def test_plays_at_recorded_speed_with_times_shifted_to_now(tmp_path):
    clock, sink, source = start(tmp_path, threeReads(tmp_path))
    clock.advance(0)
    assert [r.plate for r in sink.reads] == ["A111AA77"]
    clock.advance(0.999)
    assert len(sink.reads) == 1
    clock.advance(0.001)
    assert len(sink.reads) == 2
    clock.advance(0.5)
    assert [(r.plate, r.timeMs, r.zone, r.channel, r.source)
            for r in sink.reads] == [
        ("A111AA77", 100000, 1, 0, "replay"),
        ("B222BB77", 101000, 0, 0, "replay"),
        ("C333CC77", 101500, 0, 2, "replay")]
    assert (badLines(source), passes(source)) == (1, 1)
    assert source.whenDone().called
    source.stopService()


def test_plays_ten_times_faster(tmp_path):
    clock, sink, source = start(tmp_path, threeReads(tmp_path), speed=10)
    clock.advance(0)
    clock.advance(0.099)
    assert len(sink.reads) == 1
    clock.advance(0.001)
    assert len(sink.reads) == 2
    clock.advance(0.05)
    assert [r.timeMs for r in sink.reads] == [100000, 100100, 100150]
    source.stopService()


def test_keep_times_sends_the_recorded_times(tmp_path):
    clock, sink, source = start(tmp_path, threeReads(tmp_path),
                                keepTimes=True)
    clock.pump([0, 1, 1])
    assert [r.timeMs for r in sink.reads] == [T0, T0 + 1000, T0 + 1500]
    source.stopService()


def test_fast_mode_delivers_everything_a_batch_per_turn(tmp_path):
    path = writeLines(tmp_path / "many.jsonl", [
        {"plate": "P%04d" % i, "time_ms": T0 + 100 * i} for i in range(1000)])
    clock, sink, source = start(tmp_path, path, speed=None)
    oneTurn(clock)
    assert len(sink.reads) == source.fastBatch
    oneTurn(clock)
    assert len(sink.reads) == 2 * source.fastBatch
    clock.advance(0)
    assert [r.plate for r in sink.reads] == ["P%04d" % i for i in range(1000)]
    # No clock time passed, yet the recorded spacing is kept in time_ms.
    assert [r.timeMs for r in sink.reads] == [
        100000 + 100 * i for i in range(1000)]
    assert source.whenDone().called
    source.stopService()


def test_bad_lines_are_logged_with_their_number_and_skipped(tmp_path):
    path = writeLines(tmp_path / "bad.jsonl", [
        {"plate": "A1", "time_ms": T0},
        {"plate": "A2", "zone": 9},
        b"\xff\xfe",
        {"plate": "A3"},
    ])
    with capturedLogs() as events:
        clock, sink, source = start(tmp_path, path, speed=None)
        clock.pump([0, 0, 0])
    assert [r.plate for r in sink.reads] == ["A1", "A3"]
    # A read without time_ms follows the one before it.
    assert sink.reads[1].timeMs == sink.reads[0].timeMs
    assert badLines(source) == 2
    warnings = [e for e in events if e.get("line") is not None]
    assert [(e["line"], e["error"]) for e in warnings] == [
        (2, "zone: must be 0..3, got 9"),
        (3, "line: not UTF-8: invalid start byte at byte 0")]
    source.stopService()


def test_an_overlong_line_is_skipped(tmp_path):
    path = writeLines(tmp_path / "long.jsonl", [
        {"plate": "A1", "time_ms": T0},
        {"plate": "A2", "junk": "x" * 5000},
        {"plate": "A3", "time_ms": T0},
    ])
    clock = Clock()
    sink = ListSink()
    source = ReplaySource(sink, path, speed=None, reactor=clock,
                          runInThread=synchronous)
    source.maxLineBytes = 1000
    source.startService()
    clock.pump([0, 0])
    assert [r.plate for r in sink.reads] == ["A1", "A3"]
    assert badLines(source) == 1
    source.stopService()


def test_jpeg_path_is_resolved_relative_to_the_file(tmp_path, monkeypatch):
    (tmp_path / "frames").mkdir()
    frame = jpegBytes()
    (tmp_path / "frames" / "one.jpg").write_bytes(frame)
    (tmp_path / "frames" / "text.jpg").write_bytes(b"not a jpeg")
    path = writeLines(tmp_path / "paths.jsonl", [
        {"plate": "A1", "time_ms": T0, "jpeg_path": "frames/one.jpg"},
        {"plate": "A2", "time_ms": T0, "jpeg_path": "frames/missing.jpg"},
        {"plate": "A3", "time_ms": T0, "jpeg_path": "frames/text.jpg"},
        {"plate": "A4", "time_ms": T0, "jpeg_path": "frames/one.jpg",
         "jpeg_b64": "QUJD"},
        {"plate": "A5", "time_ms": T0, "jpeg_path": 7},
    ])
    monkeypatch.chdir(os.path.dirname(os.path.dirname(str(tmp_path))))
    with capturedLogs() as events:
        clock, sink, source = start(tmp_path, path, speed=None)
        clock.pump([0, 0])
    assert [(r.plate, r.jpeg) for r in sink.reads] == [("A1", frame)]
    errors = [e["error"] for e in events if e.get("line") is not None]
    assert errors == [
        "jpeg_path: cannot read frames/missing.jpg: No such file or directory",
        "jpeg_path: frames/text.jpg is not a JPEG (no FF D8 start-of-image "
        "marker)",
        "jpeg_path: give jpeg_path or jpeg_b64, not both",
        "jpeg_path: must be a non-empty string"]
    source.stopService()


def test_openalpr_lines_replay_too(tmp_path):
    path = writeLines(tmp_path / "alpr.jsonl", [
        {"epoch_time": T0, "results": [{"plate": "X1"}, {"plate": "X2"}]},
        {"epoch_time": T0 + 500, "results": []},
        {"epoch_time": T0 + 800, "results": [{"plate": "X3"}]},
    ])
    clock, sink, source = start(tmp_path, path)
    clock.pump([0, 0.8])
    assert [(r.plate, r.timeMs) for r in sink.reads] == [
        ("X1", 100000), ("X2", 100000), ("X3", 100800)]
    source.stopService()


def test_loop_starts_over_after_a_gap(tmp_path):
    path = writeLines(tmp_path / "loop.jsonl", [
        {"plate": "A1", "time_ms": T0}, {"plate": "A2", "time_ms": T0 + 200}])
    clock, sink, source = start(tmp_path, path, loop=True)
    clock.pump([0, 0.2])
    assert len(sink.reads) == 2
    clock.advance(source.loopGap - 0.01)
    assert len(sink.reads) == 2
    clock.pump([0.01, 0.2])
    clock.pump([source.loopGap, 0.2])
    assert [r.plate for r in sink.reads] == ["A1", "A2"] * 3
    times = [r.timeMs for r in sink.reads]
    assert times == [100000, 100200, 106200, 106400, 112400, 112600]
    assert passes(source) == 4 and not source.whenDone().called
    source.stopService()
    clock.advance(60)
    assert len(sink.reads) == 6
    assert clock.getDelayedCalls() == []


def test_loop_over_a_file_without_reads_stops(tmp_path):
    path = writeLines(tmp_path / "empty.jsonl", ["", "not json"])
    clock, sink, source = start(tmp_path, path, loop=True)
    clock.pump([0, 10, 10])
    assert passes(source) == 1 and badLines(source) == 1
    assert source.whenDone().called
    source.stopService()


def test_missing_file_is_logged_and_finishes(tmp_path):
    with capturedLogs() as events:
        clock, sink, source = start(tmp_path, str(tmp_path / "nope.jsonl"))
        clock.advance(1)
    assert source.whenDone().called and sink.reads == []
    assert any("cannot read replay file" in e.get("log_format", "")
               for e in events)
    source.stopService()


def test_stop_stops_playing(tmp_path):
    clock, sink, source = start(tmp_path, threeReads(tmp_path))
    clock.advance(0)
    source.stopService()
    clock.advance(10)
    assert len(sink.reads) == 1
    assert clock.getDelayedCalls() == []


@pytest.mark.parametrize("speed", [0, -1, float("inf"), "fast"])
def test_bad_speed_is_refused(tmp_path, speed):
    with pytest.raises(ValueError):
        ReplaySource(ListSink(), str(tmp_path / "x"), speed=speed)


def test_replays_a_demo_recording_read_for_read(tmp_path):
    path = str(tmp_path / "demo.jsonl")
    assert recordMain([path, "--vehicles", "3", "--no-images"]) == 0
    with open(path, "rb") as f:
        recorded = [parseReadLine(line, 0)[0] for line in f]
    clock, sink, source = start(tmp_path, path, keepTimes=True)
    clock.pump([0] + [0.05] * 400)
    assert [(r.plate, r.timeMs, r.channel, r.zone, r.bbox, r.confidence)
            for r in sink.reads] == [
        (r.plate, r.timeMs, r.channel, r.zone, r.bbox, r.confidence)
        for r in recorded]
    source.stopService()


@pytest_twisted.inlineCallbacks
def test_reads_the_file_in_a_real_thread(tmp_path):
    from twisted.internet import reactor
    path = threeReads(tmp_path)
    sink = ListSink()
    source = ReplaySource(sink, path, speed=None)
    source.startService()
    try:
        yield source.whenDone().addTimeout(5, reactor)
    finally:
        source.stopService()
    assert [r.plate for r in sink.reads] == ["A111AA77", "B222BB77",
                                             "C333CC77"]
