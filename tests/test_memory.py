"""
What holds picture memory, one holder at a time: an ended track is freed
at once (not at the next full garbage collection), the screenshot cache and
the last-events table do not keep frames alive, and the trimmer hands freed
memory back to the system when the process grew (numberok.memory;
tests/test_memory_big_pictures.py proves the whole on a real process).
"""

from __future__ import annotations

import gc
import weakref

import pytest_twisted

from helpers import makeEvent
from numberok.events import EventState, PlateRead
from numberok.memory import MemoryTrimmer, glibcTrim, residentBytes
from numberok.metrics import Metrics
from numberok.screenshots import ScreenshotService
from numberok.web.recent import RecentEvents

from tests.test_analytics import makeAnalytics
from tests.test_screenshots import FRAME, makeFrame


def test_ended_track_and_its_frames_are_freed_without_a_collection():
    analytics, clock, events = makeAnalytics()
    frame = bytes(FRAME)   # a frame of our own, referenced only by reads
    for _ in range(2):
        analytics.addRead(PlateRead("A123BC77", 0, jpeg=frame,
                                    bbox=(1, 1, 9, 3)))
    [track] = analytics.activeTracks()
    trackRef = weakref.ref(track)
    del track
    gc.disable()
    try:
        clock.advance(10)
        assert events[-1].state is EventState.LOST
        events.clear()
        assert trackRef() is None
    finally:
        gc.enable()


@pytest_twisted.inlineCallbacks
def test_screenshot_cache_does_not_keep_the_frame_alive():
    from twisted.internet import reactor
    service = ScreenshotService(reactor, threads=1)
    service.startService()
    try:
        frame = makeFrame(seed=3)
        data = yield service.encode(frame, 50, 1 << 20)
        assert data
        assert all(frame is not kept for entry in service._cache.values()
                   for kept in entry)
        # The same frame is still answered from the cache.
        again = yield service.encode(frame, 50, 1 << 20)
        assert again == data
        assert service.metrics.value(
            "numberok_screenshot_cache_hits_total") == 1
    finally:
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_last_events_rows_do_not_keep_the_frame():
    from twisted.internet import reactor
    recent = RecentEvents(reactor=reactor)
    recent.startService()
    try:
        frame = makeFrame(seed=4)
        event = makeEvent(EventState.DETECTED, frame=frame, bbox=(10, 10, 60, 15))
        recent.publish(event)
        [row] = recent.recent()
        assert row.event.frame is None and row.event.runtimeId == 1
        yield recent.threads.stop()
        recent.threads.start()
        assert row.thumbnail and row.picture
        # Another event of the track with the same frame reuses the pictures.
        recent.publish(makeEvent(EventState.LOST, frame=frame,
                                 bbox=(10, 10, 60, 15)))
        assert recent.recent()[0].picture == row.picture
    finally:
        yield recent.stopService()


class FakeMemory:
    """The process's RSS as a test sets it, and the trims asked for."""

    def __init__(self, rss: int) -> None:
        self.rss = rss
        self.trims = 0
        self.givesBack = 0

    def measure(self) -> int:
        return self.rss

    def trim(self) -> None:
        self.trims += 1
        self.rss -= self.givesBack


def test_trimmer_trims_only_after_the_process_grew_past_the_slack():
    memory = FakeMemory(100 << 20)
    metrics = Metrics()
    trimmer = MemoryTrimmer(metrics=metrics, trim=memory.trim,
                            measure=memory.measure)
    step = lambda: trimmer._checked(
        trimmer._checkInThread(trimmer.baseline))
    step()                               # the first check sets the baseline
    assert memory.trims == 1 and trimmer.baseline == 100 << 20
    memory.rss += trimmer.slack          # grew, but not past the slack
    step()
    assert memory.trims == 1
    memory.rss += 1 << 20
    memory.givesBack = 30 << 20
    step()
    assert memory.trims == 2
    assert trimmer.baseline == memory.rss
    assert metrics.value("numberok_memory_trims_total") == 2
    assert metrics.value("numberok_memory_trimmed_bytes_total") == 30 << 20


def test_trimmer_baseline_follows_memory_given_back_by_itself():
    memory = FakeMemory(200 << 20)
    trimmer = MemoryTrimmer(trim=memory.trim, measure=memory.measure)
    trimmer._checked(trimmer._checkInThread(None))
    memory.rss = 120 << 20
    trimmer._checked(trimmer._checkInThread(trimmer.baseline))
    assert trimmer.baseline == 120 << 20
    memory.rss = 130 << 20
    trimmer._checked(trimmer._checkInThread(trimmer.baseline))
    assert memory.trims == 1             # 10 MB over: within the slack


@pytest_twisted.inlineCallbacks
def test_trimmer_service_checks_from_its_thread_and_stops():
    from twisted.internet import reactor
    memory = FakeMemory(50 << 20)
    trimmer = MemoryTrimmer(reactor, trim=memory.trim,
                            measure=memory.measure)
    trimmer.startService()
    d = trimmer.check()                  # the start's own check is running
    assert d is None
    yield trimmer.stopService()
    assert memory.trims == 1 and trimmer.baseline == 50 << 20


def test_trimmer_does_nothing_without_malloc_trim():
    trimmer = MemoryTrimmer(trim=None, measure=lambda: None)
    trimmer.startService()
    assert trimmer.check() is None
    trimmer.stopService()


def test_glibc_trim_and_resident_size_are_found_here():
    """The test machine runs glibc on Linux: the real thing is used."""
    assert glibcTrim() is not None
    assert residentBytes() > 1 << 20
