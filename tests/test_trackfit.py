"""
Tracks by place and time as well as text (numberok.trackfit): side-by-side
fleet vehicles with near-identical plates stay apart, one moving vehicle
stays one track, reads without a box match by text as before, and reads
are grouped by the camera's own clock rather than by arrival.
"""

from __future__ import annotations

import random

from numberok.events import EventState, MovementType, PlateRead
from numberok.trackfit import boxFits, nextVelocity

from tests.test_analytics import makeAnalytics

WIDTH = 180


def frameRead(plate, atMs, box, channel=0, zone=0, confidence=0.8,
              perVehicle=False):
    return PlateRead(plate=plate, timeMs=atMs, channel=channel, zone=zone,
                     confidence=confidence, bbox=box, perVehicle=perVehicle)


def lost(events):
    return sorted(e.plate for e in events if e.state is EventState.LOST)


def sideBySide(analytics, clock, seed=3, frames=20, garble=0.7):
    """
    Two fleet vehicles, A123BC77 at x=200 and A124BC77 at x=600, both
    driving down the frame 40 px per 100 ms frame; most reads are wrong in
    one place, and a read of either is often the other's text.
    """
    rng = random.Random(seed)
    plates = {200: "A123BC77", 600: "A124BC77"}
    other = {200: "A124BC77", 600: "A123BC77"}
    for frame in range(frames):
        atMs = int(clock.seconds() * 1000)
        for x, plate in plates.items():
            box = (x, 100 + 40 * frame, WIDTH, 40)
            if rng.random() < garble:
                text = other[x] if rng.random() < 0.5 else (
                    plate[:5] + rng.choice("XKMH") + plate[6:])
            else:
                text = plate
            analytics.addRead(frameRead(text, atMs, box))
        clock.advance(0.1)
    clock.advance(10)


def test_side_by_side_fleet_pair_in_two_lanes_stays_two_vehicles():
    analytics, clock, events = makeAnalytics()
    sideBySide(analytics, clock)
    assert lost(events) == ["A123BC77", "A124BC77"]


def test_side_by_side_pair_with_every_read_exact_stays_two_vehicles():
    analytics, clock, events = makeAnalytics()
    sideBySide(analytics, clock, garble=0.0)
    assert lost(events) == ["A123BC77", "A124BC77"]


def test_one_vehicle_whose_box_moves_along_stays_one_track():
    analytics, clock, events = makeAnalytics()
    for frame in range(15):
        # Fast: 1.7 plate widths a frame, with a little sideways drift.
        box = (300 + 8 * frame, 50 + 300 * frame, WIDTH, 40)
        text = "A123BC77" if frame % 3 else "A123BG77"
        analytics.addRead(frameRead(text, int(clock.seconds() * 1000), box))
        clock.advance(0.1)
    clock.advance(10)
    assert lost(events) == ["A123BC77"]
    assert events[-1].movement is MovementType.IN
    assert len({e.runtimeId for e in events}) == 1


def test_one_vehicle_with_a_gap_in_its_reads_stays_one_track():
    analytics, clock, events = makeAnalytics()
    frames = list(range(6)) + list(range(12, 18))
    for frame in frames:
        clock.advance(0.1 if frame != 12 else 0.7)
        box = (500, 60 * frame, WIDTH, 40)
        analytics.addRead(frameRead("A123BC77", int(clock.seconds() * 1000),
                                    box))
    clock.advance(10)
    assert lost(events) == ["A123BC77"]


def test_reads_without_a_box_keep_text_only_matching():
    analytics, clock, events = makeAnalytics()
    for text in ["A123BC77", "A124BC77", "A123BC77", "A123BC77"]:
        analytics.addRead(frameRead(text, int(clock.seconds() * 1000), None))
        clock.advance(0.1)
    clock.advance(10)
    assert lost(events) == ["A123BC77"]


def test_a_read_without_a_box_joins_a_boxed_track_by_text():
    analytics, clock, events = makeAnalytics()
    analytics.addRead(frameRead("A123BC77", 1000, (100, 100, WIDTH, 40)))
    analytics.addRead(frameRead("A123BC77", 1100, None))
    analytics.addRead(frameRead("A123BC77", 1200, (100, 140, WIDTH, 40)))
    clock.advance(10)
    assert [e.reads for e in events if e.state is EventState.LOST] == [3]


def test_per_vehicle_read_from_another_camera_joins_by_text_not_box():
    """A per-vehicle camera's box is in its own picture: not compared."""
    analytics, clock, events = makeAnalytics()
    now = int(clock.seconds() * 1000)
    analytics.addRead(frameRead("A123BC77", now, (100, 100, WIDTH, 40)))
    analytics.addRead(frameRead("A123BC77", now + 100, (1500, 900, 300, 60),
                                perVehicle=True))
    clock.advance(10)
    assert [e.reads for e in events if e.state is EventState.LOST] == [2]


def test_small_track_in_another_lane_is_not_folded_into_its_look_alike():
    analytics, clock, events = makeAnalytics(
        **{"Analytics.SkipFirstResults": "2"})
    for frame in range(10):
        atMs = int(clock.seconds() * 1000)
        analytics.addRead(frameRead("A123BC77", atMs,
                                    (200, 40 * frame, WIDTH, 40)))
        if frame >= 3:
            # Appears later; its text is within the folding distance.
            analytics.addRead(frameRead("A12BC77", atMs,
                                        (600, 40 * frame, WIDTH, 40)))
        clock.advance(0.1)
    clock.advance(10)
    assert lost(events) == ["A123BC77", "A12BC77"]


# -- the camera's clock ------------------------------------------------------

def test_per_vehicle_reads_five_minutes_apart_by_camera_time_are_two_passages():
    """A camera catching up after an outage: alarms a second apart."""
    analytics, clock, events = makeAnalytics()
    first = 1_764_000_100_000  # 10:01:40
    analytics.addRead(PlateRead("A123BC71", first, perVehicle=True,
                                source="hikvision"))
    clock.advance(1)
    analytics.addRead(PlateRead("A123BC77", first + 320_000,
                                perVehicle=True, source="hikvision"))
    clock.advance(10)
    assert lost(events) == ["A123BC71", "A123BC77"]
    assert len({e.runtimeId for e in events}) == 2


def test_frame_reads_with_time_ms_minutes_apart_are_two_passages():
    analytics, clock, events = makeAnalytics()
    for start in (5_000_000, 5_300_000):
        for i in range(4):
            analytics.addRead(PlateRead("A123BC77", start + 100 * i))
            clock.advance(0.05)
    clock.advance(10)
    assert lost(events) == ["A123BC77", "A123BC77"]


def test_late_read_within_the_tracks_time_joins_it():
    analytics, clock, events = makeAnalytics()
    for i in (0, 1, 2, 4):
        analytics.addRead(frameRead("A123BC77", 7_000_000 + 100 * i,
                                    (300, 100 * i, WIDTH, 40)))
        clock.advance(0.1)
    # The fourth frame's read arrives last, out of order.
    analytics.addRead(frameRead("A123BC77", 7_000_300, (300, 300, WIDTH, 40)))
    clock.advance(10)
    assert [e.reads for e in events if e.state is EventState.LOST] == [5]
    assert events[-1].movement is MovementType.IN


def test_out_of_order_first_box_does_not_turn_the_movement_round():
    analytics, clock, events = makeAnalytics()
    # Boxes of frames 1..5 arrive, then frame 0's (it was earliest).
    for i in (1, 2, 3, 4, 5, 0):
        analytics.addRead(frameRead("A123BC77", 9_000_000 + 100 * i,
                                    (300, 60 * i, WIDTH, 40)))
        clock.advance(0.05)
    clock.advance(10)
    assert events[-1].movement is MovementType.IN


# -- the rule itself -----------------------------------------------------------

def test_box_fits_follows_the_tracks_motion():
    last = (100, 400, 100, 30)
    velocity = (0.0, 1000.0)  # 10 plate widths a second, down
    # Half a second later the plate is 500 px further down.
    assert boxFits(last, 0, velocity, (100, 900, 100, 30), 500, "down")
    assert not boxFits(last, 0, None, (100, 900, 100, 30), 500, "down")
    # Across the direction of travel only 1.2 plate widths.
    assert boxFits(last, 0, None, (210, 400, 100, 30), 0, "down")
    assert not boxFits(last, 0, None, (230, 400, 100, 30), 0, "down")
    # With InDirection left/right, along and across swap.
    assert boxFits(last, 0, None, (330, 400, 100, 30), 0, "right")
    assert not boxFits(last, 0, None, (100, 530, 100, 30), 0, "right")


def test_velocity_is_smoothed_and_ignores_reads_of_one_frame():
    v = nextVelocity(None, (0, 0, 10, 10), 0, (0, 100, 10, 10), 1000)
    assert v == (0.0, 100.0)
    assert nextVelocity(v, (0, 100, 10, 10), 1000, (0, 500, 10, 10),
                        1000) == v
    assert nextVelocity(v, (0, 100, 10, 10), 1000, (0, 400, 10, 10),
                        2000) == (0.0, 200.0)
