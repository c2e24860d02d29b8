"""
Tests for the demo traffic simulator, its service and its recorder.
"""

import io
import itertools
import os
from collections import Counter
from dataclasses import replace

import pytest
import pytest_twisted
from PIL import Image
from twisted.application.service import IService
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from numberok.interfaces import IPlateReadSink
from numberok.metrics import Metrics
from numberok.sources import demo
from numberok.sources.demo import (
    CYRILLIC, OCR_OUTCOMES, DemoSource, reads, recordMain, renderFrame,
    vehicles)
from numberok.sources.formats import parseReadLine, parseReadObject, readToObject

from helpers import ListSink, synchronous


def take(iterator, count):
    return list(itertools.islice(iterator, count))


def key(demoRead):
    read = demoRead.read
    return (read.plate, read.channel, read.zone, read.timeMs, read.bbox,
            read.confidence, demoRead.error)


def test_same_seed_gives_the_same_reads_and_frames():
    first = take(reads(seed=7, startMs=1000), 400)
    second = take(reads(seed=7, startMs=1000), 400)
    assert [key(r) for r in first] == [key(r) for r in second]
    for a, b in zip(first[:4], second[:4]):
        assert renderFrame(a.scene) == renderFrame(b.scene)


def test_different_seeds_give_different_traffic():
    first = [key(r) for r in take(reads(seed=1), 50)]
    second = [key(r) for r in take(reads(seed=2), 50)]
    assert first != second


def test_reads_come_in_time_order_on_valid_lanes():
    sample = take(reads(seed=3, channels=3), 2000)
    times = [r.read.timeMs for r in sample]
    assert times == sorted(times)
    assert {r.read.channel for r in sample} == {0, 1, 2}
    assert {r.read.zone for r in sample} == {0, 1, 2, 3}


def test_every_read_is_a_valid_ingest_read():
    for demoRead in take(reads(seed=4), 1000):
        read = demoRead.read
        assert parseReadObject(readToObject(read), 0) == [
            replace(read, source="")]
        x, y, w, h = read.bbox
        assert 0 <= x and x + w <= 640 and 0 <= y and y + h <= 360
        assert 0.0 <= read.confidence <= 1.0 and read.source == "demo"


def test_errors_appear_at_the_documented_rates():
    sample = take(reads(seed=11), 6000)
    counts = Counter(r.error for r in sample)
    for outcome, rate in OCR_OUTCOMES:
        share = counts[outcome] / len(sample)
        assert rate * 0.7 <= share <= rate * 1.3, (outcome, share)


def test_misreads_differ_from_the_truth_and_exact_reads_match_it():
    for demoRead in take(reads(seed=5), 3000):
        if demoRead.error == "exact":
            assert demoRead.read.plate == demoRead.truth
        else:
            assert demoRead.read.plate != demoRead.truth
        if demoRead.error == "partial":
            assert len(demoRead.read.plate) < len(demoRead.truth)


def test_russian_plates_are_spelled_cyrillic_on_even_channels_latin_on_odd():
    cyrillic = set(CYRILLIC.values())
    seen = Counter()
    for vehicle in take(vehicles(seed=6, channels=2), 300):
        hasCyrillic = bool(set(vehicle.plate) & cyrillic)
        seen[(vehicle.channel % 2, hasCyrillic)] += 1
    assert seen[(0, True)] > 50
    assert seen[(1, True)] == 0
    assert seen[(1, False)] > 50


def test_plate_formats_include_russian_and_others():
    plates = [v.plate for v in take(vehicles(seed=8, channels=1), 400)]
    russian = [p for p in plates if p[0] in CYRILLIC.values()
               and p[1:4].isdigit()]
    belarusian = [p for p in plates if p[:4].isdigit() and len(p) == 7]
    assert len(russian) > 150 and len(belarusian) > 10


def test_bounding_boxes_move_down_for_in_and_up_for_out():
    directions = Counter()
    for vehicle in take(vehicles(seed=9), 200):
        if len(vehicle.reads) < 5:
            continue
        first, last = vehicle.reads[0].read.bbox, vehicle.reads[-1].read.bbox
        if vehicle.direction == "In":
            assert last[1] > first[1] + 50 and last[2] > first[2]
        else:
            assert last[1] < first[1] - 50 and last[2] < first[2]
        directions[vehicle.direction] += 1
    assert directions["In"] > 40 and directions["Out"] > 40


def test_a_lane_carries_one_vehicle_at_a_time():
    busy = {}
    for vehicle in take(vehicles(seed=10, rate=20.0, channels=1), 300):
        lane = (vehicle.channel, vehicle.zone)
        start = vehicle.reads[0].read.timeMs
        assert start >= busy.get(lane, 0)
        busy[lane] = vehicle.reads[-1].read.timeMs
        assert 3 <= len(vehicle.reads) <= 36


def test_frames_are_valid_jpegs_that_differ_per_vehicle():
    sample = take(vehicles(seed=12), 2)
    frames = [renderFrame(v.reads[0].scene) for v in sample]
    for frame in frames:
        image = Image.open(io.BytesIO(frame))
        assert image.format == "JPEG" and image.size == (640, 360)
    assert frames[0] != frames[1]


@pytest.mark.parametrize("kwargs", [
    {"rate": 0}, {"rate": -1}, {"rate": float("nan")}, {"rate": 1000},
    {"channels": 0}, {"channels": 1025}])
def test_bad_rate_or_channels_are_refused(kwargs):
    with pytest.raises(ValueError):
        DemoSource(ListSink(), **kwargs)


def test_service_emits_the_simulated_reads_as_the_clock_advances():
    clock = Clock()
    clock.advance(1764000000)
    sink = ListSink()
    metrics = Metrics()
    source = DemoSource(sink, seed=3, reactor=clock, runInThread=synchronous,
                        metrics=metrics)
    verifyObject(IService, source)
    source.startService()
    expected = take(reads(seed=3, startMs=1764000000000), 400)
    assert sink.reads == []
    for _ in range(100):
        clock.advance(0.05)
    got = sink.reads
    assert 50 < len(got) < 400
    assert [r.timeMs for r in got] == [
        e.read.timeMs for e in expected[:len(got)]]
    assert all(r.timeMs <= clock.seconds() * 1000 for r in got)
    for read, demoRead in zip(got, expected):
        assert read.plate == demoRead.read.plate
        assert read.bbox == demoRead.read.bbox
        assert read.jpeg == renderFrame(demoRead.scene)
    assert metrics.value("numberok_demo_vehicles_total") == len(
        {e.vehicle for e in expected[:len(got)]})
    source.stopService()
    count = len(sink.reads)
    clock.advance(60)
    assert len(sink.reads) == count
    assert clock.getDelayedCalls() == []


def test_service_without_frames_emits_reads_without_images():
    clock = Clock()
    sink = ListSink()
    source = DemoSource(sink, reactor=clock, frames=False)
    source.startService()
    clock.pump([0.1] * 50)
    source.stopService()
    assert sink.reads and all(r.jpeg is None for r in sink.reads)


def test_frames_rendered_out_of_order_are_delivered_in_order():
    clock = Clock()
    sink = ListSink()
    started = []

    def later(f, *args):
        d = Deferred()
        started.append((d, f, args))
        return d

    metrics = Metrics()
    source = DemoSource(sink, rate=5.0, reactor=clock, runInThread=later,
                        metrics=metrics)
    source.startService()
    clock.pump([0.05] * 200)          # 10 s: far more reads than the cap
    assert sink.reads == []
    assert len(started) == source.maxPendingFrames
    skipped = metrics.value("numberok_demo_frames_skipped_total")
    assert skipped > 0
    for d, f, args in reversed(started[1:]):
        d.callback(f(*args))
    assert sink.reads == []           # the first frame still holds the line
    started[0][0].callback(b"\xff\xd8first")
    assert len(sink.reads) > source.maxPendingFrames
    times = [r.timeMs for r in sink.reads]
    assert times == sorted(times)
    assert sink.reads[0].jpeg == b"\xff\xd8first"
    assert sum(r.jpeg is None for r in sink.reads) == skipped
    source.stopService()


@pytest_twisted.inlineCallbacks
def test_service_renders_frames_in_a_real_thread():
    from twisted.internet import reactor
    done = Deferred()

    @implementer(IPlateReadSink)
    class Sink(ListSink):
        def addRead(self, read):
            ListSink.addRead(self, read)
            if len(self.reads) == 3 and not done.called:
                done.callback(None)

    sink = Sink()
    source = DemoSource(sink, rate=40.0, seed=2)
    source.startService()
    try:
        yield done.addTimeout(5, reactor)
    finally:
        source.stopService()
    for read in sink.reads:
        assert Image.open(io.BytesIO(read.jpeg)).format == "JPEG"


def test_recorder_writes_a_file_the_line_parser_accepts(tmp_path):
    path = tmp_path / "demo.jsonl"
    assert recordMain([str(path), "--vehicles", "3", "--seed", "5"]) == 0
    lines = path.read_bytes().splitlines()
    expected = [r for v in take(vehicles(5, startMs=1764000000000), 3)
                for r in v.reads]
    assert len(lines) == len(expected)
    parsed = [parseReadLine(line, 0)[0] for line in lines]
    assert [r.timeMs for r in parsed] == sorted(
        r.read.timeMs for r in expected)
    assert all(Image.open(io.BytesIO(r.jpeg)).size == (640, 360)
               for r in parsed[:3])
    assert {r.plate for r in parsed} >= {v.plate for v in take(
        vehicles(5, startMs=1764000000000), 3)} - {None}


def test_recorder_is_reproducible_and_can_leave_images_out(tmp_path):
    paths = [tmp_path / name for name in ("a.jsonl", "b.jsonl", "c.jsonl")]
    recordMain([str(paths[0]), "--vehicles", "2"])
    recordMain([str(paths[1]), "--vehicles", "2"])
    recordMain([str(paths[2]), "--vehicles", "2", "--no-images"])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    small = [parseReadLine(line, 0)[0]
             for line in paths[2].read_bytes().splitlines()]
    assert small and all(r.jpeg is None for r in small)


def test_recorder_reports_an_unwritable_path(tmp_path, capsys):
    assert recordMain([os.path.join(str(tmp_path), "no", "such.jsonl"),
                       "--vehicles", "1"]) == 1
    assert "such.jsonl" in capsys.readouterr().err


def test_recorder_refuses_bad_arguments(tmp_path):
    with pytest.raises(SystemExit) as info:
        recordMain([str(tmp_path / "x"), "--rate", "0"])
    assert info.value.code == 2
    assert demo.MAX_RATE == 50.0


def test_plate_text_stays_inside_its_box_with_a_margin():
    # The smallest box of each of many vehicles (far from the camera),
    # and the widest texts the simulation makes at the smallest size.
    scenes = [min((r.scene for r in v.reads), key=lambda s: s.bbox[2])
              for v in take(vehicles(seed=3), 40)]
    scenes += [replace(scenes[0], plate_text=text, bbox=(100, 100, 50, 11))
               for text in ("A000MM199", "HHWW9999", "8888WWW7")]
    for scene in scenes:
        image = Image.open(io.BytesIO(renderFrame(scene))).convert("L")
        x, y, w, h = scene.bbox
        # Just inside the plate's black border: white, no character there.
        inner = [image.getpixel((c, r)) for c in (x + 1, x + 2, x + w - 3,
                                                  x + w - 2)
                 for r in range(y + 2, y + h - 2)]
        assert min(inner) > 160, (scene.plate_text, scene.bbox)
