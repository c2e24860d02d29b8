"""
The analytics' newer duties, driven by a Clock: per-vehicle reads, the
track caps, what every event carries (bbox, eventTimeMs), the frames a
track keeps, the shutdown Deferred and the metrics.
"""

from __future__ import annotations

from dataclasses import replace

from test_analytics import feed, makeAnalytics, read

from numberok.analytics import Analytics
from numberok.events import EventState


def perVehicle(plate, clock, **kwargs):
    return replace(read(plate, clock, **kwargs), perVehicle=True)


# --- per-vehicle reads -----------------------------------------------------

def test_per_vehicle_read_is_detected_at_once_despite_skip_first():
    analytics, clock, events = makeAnalytics(
        **{"Analytics.SkipFirstResults": "3"})
    analytics.addRead(perVehicle("A123BC77", clock))
    assert events.phases() == [("Detected", "A123BC77")]


def test_per_vehicle_read_that_fits_no_template_is_not_held_back():
    analytics, clock, events = makeAnalytics()
    analytics.addRead(perVehicle("XYZ", clock))
    assert events.phases() == [("Detected", "XYZ")]


def test_per_vehicle_read_is_lost_after_the_zone_loss_interval():
    analytics, clock, events = makeAnalytics(
        **{"Zone:0:0.LossIntervalSec": "3"})
    analytics.addRead(perVehicle("A123BC77", clock))
    clock.advance(2.9)
    assert [e.state for e in events] == [EventState.DETECTED]
    clock.advance(0.2)
    assert [e.state for e in events] == [EventState.DETECTED, EventState.LOST]


def test_repeat_of_a_per_vehicle_plate_within_the_interval_joins_its_track():
    analytics, clock, events = makeAnalytics()
    analytics.addRead(perVehicle("A123BC77", clock))
    clock.advance(2)
    analytics.addRead(perVehicle("A123BC77", clock))
    clock.advance(10)
    assert events.phases() == [("Detected", "A123BC77"),
                               ("Lost", "A123BC77")]
    assert events[-1].reads == 2
    assert len({e.runtimeId for e in events}) == 1


def test_per_vehicle_repeat_after_the_interval_is_a_new_vehicle():
    analytics, clock, events = makeAnalytics()
    analytics.addRead(perVehicle("A123BC77", clock))
    clock.advance(6)
    analytics.addRead(perVehicle("A123BC77", clock))
    clock.advance(6)
    assert [e.state.value for e in events] == [
        "Detected", "Lost", "Detected", "Lost"]


# --- what events carry -----------------------------------------------------

def test_events_carry_the_box_of_the_read_whose_frame_they_carry():
    analytics, clock, events = makeAnalytics()
    analytics.addRead(read("A123BC77", clock, confidence=0.5, jpeg=b"\xff\xd8a",
                           bbox=(10, 10, 100, 25)))
    analytics.addRead(read("A123BC77", clock, confidence=0.95,
                           jpeg=b"\xff\xd8b", bbox=(20, 30, 100, 25)))
    analytics.addRead(read("A123BC77", clock, confidence=0.7, jpeg=b"\xff\xd8c",
                           bbox=(40, 50, 100, 25)))
    clock.advance(10)
    assert [(e.frame, e.bbox) for e in events] == [
        (b"\xff\xd8b", (20, 30, 100, 25)), (b"\xff\xd8b", (20, 30, 100, 25)),
        (b"\xff\xd8b", (20, 30, 100, 25))]


def test_event_time_is_when_the_event_was_emitted():
    analytics, clock, events = makeAnalytics()
    start = clock.seconds()
    feed(analytics, clock, ["A123BC77"] * 2, every=1.0)
    clock.advance(4)  # the loss timer runs out exactly now
    assert [e.eventTimeMs for e in events] == [
        int((start + 1) * 1000), int((start + 1 + 5) * 1000)]
    # the Lost keeps the best read's frame time on the wire
    assert events[-1].frameTimeMs < events[-1].eventTimeMs


def test_a_track_keeps_at_most_two_frames():
    analytics, clock, events = makeAnalytics()
    texts = ["A123BC77", "A128BC77", "A123BC71", "A123BC77", "A125BC77"]
    for n, text in enumerate(texts * 4):
        analytics.addRead(read(text, clock, confidence=0.5 + n / 100,
                               jpeg=b"\xff\xd8" + bytes([n])))
    [track] = analytics.activeTracks()
    assert track.holdsFrames() <= 2


# --- caps ------------------------------------------------------------------

class SmallCaps(Analytics):
    maxTracksPerZone = 3
    maxTracks = 5


def makeCapped():
    analytics, clock, events = makeAnalytics()
    capped = SmallCaps(analytics.store, events, reactor=clock)
    return capped, clock, events


PLATES = ["A123BC77", "K456MO99", "X789TT11", "E321PP55", "M654HH33",
          "O987CC22", "T111EE44", "P222KK66"]


def test_zone_cap_drops_the_oldest_unannounced_track_first():
    analytics, clock, events = makeCapped()
    feed(analytics, clock, [PLATES[0]] * 2)            # announced
    feed(analytics, clock, [PLATES[1], PLATES[2]])     # skipped, oldest first
    feed(analytics, clock, [PLATES[3]])                # over the cap
    plates = {t.plate() for t in analytics.activeTracks()}
    assert plates == {PLATES[0], PLATES[2], PLATES[3]}
    assert events.phases() == [("Detected", PLATES[0])]
    assert analytics.metrics.value("numberok_dropped_tracks_total",
                                   reason="zone_cap") == 1


def test_zone_cap_ends_an_announced_track_with_its_lost():
    analytics, clock, events = makeCapped()
    for plate in PLATES[:3]:
        feed(analytics, clock, [plate] * 2)
    analytics.addRead(read(PLATES[3], clock))
    assert events.phases()[-1] == ("Lost", PLATES[0])
    assert len(analytics.activeTracks()) == 3
    clock.advance(10)
    detected = [e.runtimeId for e in events if e.state is EventState.DETECTED]
    lost = [e.runtimeId for e in events if e.state is EventState.LOST]
    assert sorted(detected) == sorted(lost)


def test_total_cap_counts_tracks_of_every_zone():
    analytics, clock, events = makeCapped()
    for zone, plate in enumerate(PLATES[:4]):
        feed(analytics, clock, [plate], zone=zone % 4)
    feed(analytics, clock, [PLATES[4]], channel=1)
    feed(analytics, clock, [PLATES[5]], channel=2)
    assert len(analytics.activeTracks()) == 5
    assert PLATES[0] not in {t.plate() for t in analytics.activeTracks()}
    assert analytics.metrics.value("numberok_dropped_tracks_total",
                                   reason="total_cap") == 1
    assert analytics.metrics.value("numberok_active_tracks") == 5


# --- shutdown and metrics --------------------------------------------------

def test_close_tracks_fires_after_every_track_closed_with_the_lost_count():
    analytics, clock, events = makeAnalytics()
    feed(analytics, clock, ["A123BC77"] * 2)
    feed(analytics, clock, ["X999XX11"])
    losts = [t.lost for t in analytics.activeTracks()]
    result = []
    analytics.closeTracks().addCallback(result.append)
    assert result == [1]
    fired = []
    for d in losts:
        d.addCallback(fired.append)
    assert fired == [events[-1], None]
    assert analytics.activeTracks() == []
    assert clock.getDelayedCalls() == []


def test_close_all_keeps_returning_the_count():
    analytics, clock, events = makeAnalytics()
    feed(analytics, clock, ["A123BC77"] * 2)
    assert analytics.closeAll() == 1


def test_metrics_count_reads_by_source_and_events_by_state():
    analytics, clock, events = makeAnalytics(
        **{"Analytics.UseRawResults": "1"})
    for _ in range(3):
        analytics.addRead(replace(read("A123BC77", clock), source="ingest"))
    analytics.addRead(replace(read("A123BC77", clock), source="demo"))
    clock.advance(10)
    value = analytics.metrics.value
    assert value("numberok_reads_total", source="ingest") == 3
    assert value("numberok_reads_total", source="demo") == 1
    assert value("numberok_events_total", state="Detected") == 1
    assert value("numberok_events_total", state="Updated") == 2
    assert value("numberok_events_total", state="Lost") == 1
    assert value("numberok_read_to_event_seconds_count") == 3
    assert value("numberok_active_tracks") == 0
    assert analytics.reads == 4
