"""
The aggregator's rules, driven by a Clock: grouping reads into tracks,
skip-first-X, Updated policy, loss timers, soft comparison, voting,
movement, shutdown, and the invariant clients rely on (every Detected ends
in exactly one Lost, and nothing follows it).
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings as hsettings, strategies as st
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from numberok.analytics import Analytics, movementOf
from numberok.events import EventState, MovementType, PlateRead
from numberok.interfaces import IPlateReadSink, IZoneOwner
from numberok.settings import Settings, SettingsStore


class EventList(list):
    """The sink side: collects what the analytics emit."""

    def publish(self, event):
        self.append(event)

    def phases(self):
        return [(e.state.value, e.plate) for e in self]


def makeAnalytics(**changes):
    clock = Clock()
    clock.advance(1000)
    store = SettingsStore(Settings().withChanges(changes))
    events = EventList()
    return Analytics(store, events, reactor=clock), clock, events


def read(plate, clock, channel=0, zone=0, confidence=0.9, bbox=None,
         jpeg=None):
    return PlateRead(plate=plate, timeMs=int(clock.seconds() * 1000),
                     channel=channel, zone=zone, confidence=confidence,
                     bbox=bbox, jpeg=jpeg)


def feed(analytics, clock, plates, every=0.1, **kwargs):
    for plate in plates:
        analytics.addRead(read(plate, clock, **kwargs))
        clock.advance(every)


def test_analytics_provides_plate_read_sink():
    analytics, _, _ = makeAnalytics()
    assert verifyObject(IPlateReadSink, analytics)


def test_analytics_provide_what_their_zones_need_and_zones_import_nothing_of_them():
    import ast
    import inspect

    import numberok.zones
    analytics, _, _ = makeAnalytics()
    assert verifyObject(IZoneOwner, analytics)
    tree = ast.parse(inspect.getsource(numberok.zones))
    imported = {node.module for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom)}
    assert "numberok.analytics" not in imported


def test_detected_comes_with_the_read_after_the_skipped_ones():
    analytics, clock, events = makeAnalytics(
        **{"Analytics.SkipFirstResults": "3"})
    feed(analytics, clock, ["A123BC77"] * 3)
    assert events == []
    feed(analytics, clock, ["A123BC77"])
    assert events.phases() == [("Detected", "A123BC77")]
    assert events[0].reads == 4


def test_skip_zero_announces_the_first_read():
    analytics, clock, events = makeAnalytics(
        **{"Analytics.SkipFirstResults": "0"})
    feed(analytics, clock, ["A123BC77"])
    assert events.phases() == [("Detected", "A123BC77")]


def test_track_that_never_passes_skip_is_noise_without_events():
    analytics, clock, events = makeAnalytics(
        **{"Analytics.SkipFirstResults": "3"})
    feed(analytics, clock, ["A123BC77"] * 3)
    clock.advance(10)
    assert events == []
    assert analytics.metrics.value("numberok_noise_tracks_total") == 1
    assert analytics.activeTracks() == []


def test_lost_follows_the_zone_loss_interval_after_the_last_read():
    analytics, clock, events = makeAnalytics(
        **{"Zone:0:1.LossIntervalSec": "2"})
    feed(analytics, clock, ["A123BC77"] * 3, zone=1, every=1.5)
    # Reads at 0, 1.5, 3.0: each restarts the timer.
    clock.advance(2 - 1.5 - 0.01)
    assert [e.state for e in events] == [EventState.DETECTED]
    clock.advance(0.02)
    assert [e.state for e in events] == [EventState.DETECTED, EventState.LOST]


def test_zone_not_listed_uses_five_seconds():
    analytics, clock, events = makeAnalytics()
    feed(analytics, clock, ["A123BC77"] * 2, zone=3, every=0)
    clock.advance(4.99)
    assert len(events) == 1
    clock.advance(0.02)
    assert events[-1].state is EventState.LOST


def test_without_raw_results_updated_only_when_the_plate_changes():
    analytics, clock, events = makeAnalytics(
        **{"Analytics.SkipFirstResults": "0"})
    feed(analytics, clock, ["A123BC777"], confidence=0.5)
    feed(analytics, clock, ["A123BC77"] * 2, confidence=0.9)
    feed(analytics, clock, ["A123BC77"] * 5)
    assert events.phases() == [("Detected", "A123BC777"),
                               ("Updated", "A123BC77")]


def test_with_raw_results_every_read_after_detected_gives_updated():
    analytics, clock, events = makeAnalytics(
        **{"Analytics.UseRawResults": "1"})
    feed(analytics, clock, ["A123BC77"] * 5)
    assert [e.state.value for e in events] == ["Detected"] + ["Updated"] * 3


def test_latin_longer_and_cyrillic_reads_are_one_vehicle():
    analytics, clock, events = makeAnalytics()
    feed(analytics, clock, ["A123BC77", "A123BC777", "А123ВС77"])
    clock.advance(10)
    lost = [e for e in events if e.state is EventState.LOST]
    assert len(lost) == 1
    assert lost[0].plate == "A123BC77"
    assert lost[0].reads == 3


def test_two_different_cars_close_together_stay_two_tracks():
    analytics, clock, events = makeAnalytics()
    feed(analytics, clock, ["A123BC77", "K456MH99"] * 4)
    clock.advance(10)
    lost = sorted(e.plate for e in events if e.state is EventState.LOST)
    assert lost == ["A123BC77", "K456MH99"]


def test_soft_comparison_off_opens_a_track_per_distinct_text():
    analytics, clock, events = makeAnalytics(
        **{"Analytics.SoftComparison": "0",
           "Analytics.SkipFirstResults": "0"})
    feed(analytics, clock, ["A123BC77", "A123BC78"])
    clock.advance(10)
    assert len([e for e in events if e.state is EventState.LOST]) == 2


def test_distance_setting_bounds_soft_comparison():
    analytics, clock, events = makeAnalytics(
        **{"Analytics.LevenshteinDistance": "1",
           "Analytics.SkipFirstResults": "0"})
    feed(analytics, clock, ["A123BC77", "A123BC99"])   # distance 2
    clock.advance(10)
    assert len([e for e in events if e.state is EventState.LOST]) == 2


def test_read_close_to_two_tracks_joins_the_closest():
    analytics, clock, events = makeAnalytics(
        **{"Analytics.SoftComparison": "0", "Analytics.SkipFirstResults": "0"})
    feed(analytics, clock, ["A123BC77", "A123BC99"])    # two tracks
    analytics.store.update({"Analytics.SoftComparison": "1",
                            "Analytics.LevenshteinDistance": "2"})
    feed(analytics, clock, ["A123BC97"])   # 1 from the second, 2 from first
    tracks = sorted(analytics.activeTracks(), key=lambda t: t.runtimeId)
    assert [t.reads for t in tracks] == [1, 2]


def test_tie_between_two_tracks_goes_to_the_one_read_most_recently():
    analytics, clock, events = makeAnalytics(
        **{"Analytics.SoftComparison": "0", "Analytics.SkipFirstResults": "0"})
    feed(analytics, clock, ["A123BC77", "A123BC99"])
    analytics.store.update({"Analytics.SoftComparison": "1"})
    feed(analytics, clock, ["A123BC88"])   # 2 from both
    tracks = sorted(analytics.activeTracks(), key=lambda t: t.runtimeId)
    assert [t.reads for t in tracks] == [1, 2]


def test_misreads_spread_over_a_pass_give_one_lost_with_the_voted_plate():
    analytics, clock, events = makeAnalytics()
    reads = ["A123BC77", "A1Z3BC77", "A123BC77", "A123B677", "4123BC77",
             "A123BC77", "A123BC7", "A123BC77", "A12JBC77", "A123BC77"]
    feed(analytics, clock, reads)
    clock.advance(10)
    lost = [e for e in events if e.state is EventState.LOST]
    assert [(e.plate, e.reads) for e in lost] == [("A123BC77", 10)]


def test_same_plate_in_two_zones_gives_two_tracks():
    analytics, clock, events = makeAnalytics()
    feed(analytics, clock, ["A123BC77"] * 2, zone=0)
    feed(analytics, clock, ["A123BC77"] * 2, zone=1)
    assert len({e.runtimeId for e in events}) == 2


def test_lost_carries_the_frame_of_the_best_read():
    analytics, clock, events = makeAnalytics()
    analytics.addRead(read("A123BC77", clock, confidence=0.5, jpeg=b"low"))
    analytics.addRead(read("A123BC77", clock, confidence=0.95, jpeg=b"best"))
    analytics.addRead(read("A123BC77", clock, confidence=0.7, jpeg=b"mid"))
    clock.advance(10)
    assert events[-1].state is EventState.LOST
    assert events[-1].frame == b"best"


def test_loss_deferred_fires_with_the_lost_event():
    analytics, clock, events = makeAnalytics()
    feed(analytics, clock, ["A123BC77"] * 2)
    [track] = analytics.activeTracks()
    fired = []
    track.lost.addCallback(fired.append)
    clock.advance(10)
    assert fired == [events[-1]]


def test_movement_follows_the_boxes_and_the_zone_direction():
    box = (100, 100, 100, 25)     # plate 100 px wide
    assert movementOf(box, (100, 300, 100, 25), "down") is MovementType.IN
    assert movementOf(box, (100, 150, 100, 25), "down") is MovementType.TRY_IN
    assert movementOf(box, (100, -100, 100, 25), "down") is MovementType.OUT
    assert movementOf(box, (100, 60, 100, 25), "down") is MovementType.TRY_OUT
    assert movementOf(box, (110, 105, 100, 25), "down") is \
        MovementType.UNDETERMINED
    assert movementOf(box, (300, 100, 100, 25), "left") is MovementType.OUT
    assert movementOf(box, (300, 100, 100, 25), "right") is MovementType.IN


def test_movement_change_gives_updated_and_lost_carries_it():
    analytics, clock, events = makeAnalytics(
        **{"Zone:0:0.InDirection": "up"})
    for y in (400, 350, 300, 250, 200):
        analytics.addRead(read("A123BC77", clock, bbox=(100, y, 100, 25)))
        clock.advance(0.1)
    clock.advance(10)
    assert events[-1].state is EventState.LOST
    assert events[-1].movement is MovementType.IN
    assert any(e.state is EventState.UPDATED for e in events)


def test_reads_without_boxes_stay_undetermined():
    analytics, clock, events = makeAnalytics()
    feed(analytics, clock, ["A123BC77"] * 3)
    clock.advance(10)
    assert {e.movement for e in events} == {MovementType.UNDETERMINED}


def test_stopping_sends_lost_for_every_announced_track_only():
    analytics, clock, events = makeAnalytics()
    analytics.startService()
    feed(analytics, clock, ["A123BC77"] * 2)          # announced
    feed(analytics, clock, ["X999XX11"])              # still skipped
    analytics.stopService()
    assert [e.state for e in events] == [EventState.DETECTED, EventState.LOST]
    assert analytics.metrics.value("numberok_noise_tracks_total") == 1
    assert clock.getDelayedCalls() == []


def test_empty_plate_after_the_rules_is_counted_and_ignored():
    analytics, clock, events = makeAnalytics()
    analytics.addRead(read(" -- ", clock))
    assert analytics.metrics.value("numberok_empty_reads_total") == 1
    assert analytics.activeTracks() == []


PLATES = st.sampled_from(["A123BC77", "A123BC7", "K456MH99", "X999XX11",
                          "A128BC77", "B777OP50", "4123BC77"])


@hsettings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(PLATES, st.integers(0, 3),
                                st.floats(0, 8)), max_size=60),
       skip=st.integers(0, 3), raw=st.booleans(), soft=st.booleans())
def test_every_detected_track_ends_with_exactly_one_lost(steps, skip, raw,
                                                         soft):
    analytics, clock, events = makeAnalytics(**{
        "Analytics.SkipFirstResults": str(skip),
        "Analytics.UseRawResults": str(int(raw)),
        "Analytics.SoftComparison": str(int(soft))})
    for plate, zone, wait in steps:
        analytics.addRead(read(plate, clock, zone=zone))
        clock.advance(wait)
    clock.advance(100)
    seen: dict[int, list[str]] = {}
    for e in events:
        seen.setdefault(e.runtimeId, []).append(e.state.value)
    for runtimeId, states in seen.items():
        assert states[0] == "Detected", states
        assert states[-1] == "Lost", states
        assert states.count("Lost") == 1 and states.count("Detected") == 1
    assert analytics.activeTracks() == []


def test_partial_reads_before_and_during_a_pass_do_not_open_a_second_vehicle():
    analytics, clock, events = makeAnalytics()
    # A truncated read comes first, then the pass, then another truncated
    # read that would announce the small track: it is folded in instead.
    feed(analytics, clock, ["T612PK"])
    feed(analytics, clock, ["T612PK184"] * 6)
    feed(analytics, clock, ["T612P"])
    clock.advance(10)
    lost = [e for e in events if e.state is EventState.LOST]
    assert [(e.plate, e.reads) for e in lost] == [("T612PK184", 7)]
    assert analytics.metrics.value("numberok_merged_tracks_total") == 1


def test_look_alike_confusions_cost_no_distance():
    analytics, clock, events = makeAnalytics(
        **{"Analytics.LevenshteinDistance": "1"})
    # 8 <-> B, 0 <-> O and one dropped character: one vehicle.
    feed(analytics, clock, ["K363BE89", "K363BE89", "K3638E8", "K36OBE89"])
    clock.advance(10)
    assert len([e for e in events if e.state is EventState.LOST]) == 1


def test_a_different_car_is_not_folded_into_an_announced_one():
    analytics, clock, events = makeAnalytics()
    feed(analytics, clock, ["A123BC77"] * 5)
    feed(analytics, clock, ["K456MH99"] * 2)
    clock.advance(10)
    lost = sorted(e.plate for e in events if e.state is EventState.LOST)
    assert lost == ["A123BC77", "K456MH99"]
    assert analytics.metrics.value("numberok_merged_tracks_total") == 0


def test_event_fanout_gives_every_sink_the_event_even_when_one_fails():
    from numberok.analytics import EventFanout
    from numberok.interfaces import IEventSink

    class BrokenSink:
        def publish(self, event):
            raise OSError("disk on fire")

    first, last = EventList(), EventList()
    fanout = EventFanout(first, BrokenSink(), last)
    assert verifyObject(IEventSink, fanout)
    analytics, clock, _ = makeAnalytics(**{"Analytics.SkipFirstResults": "0"})
    analytics.sink = fanout
    feed(analytics, clock, ["A123BC77"])
    assert first.phases() == last.phases() == [("Detected", "A123BC77")]


def test_partial_reads_seen_before_the_whole_plate_do_not_become_a_vehicle():
    analytics, clock, events = makeAnalytics()
    # Two partial reads first: they fit no plate template, so they wait
    # for more reads instead of being announced, and the pass takes them.
    feed(analytics, clock, ["E829KM", "E839KM"])
    feed(analytics, clock, ["E829KM17"] * 6)
    feed(analytics, clock, ["E829KM"])
    clock.advance(10)
    lost = [e for e in events if e.state is EventState.LOST]
    assert [e.plate for e in lost] == ["E829KM17"]


def test_a_plate_that_fits_no_template_is_detected_after_two_more_reads():
    analytics, clock, events = makeAnalytics(
        **{"Analytics.SkipFirstResults": "1"})
    feed(analytics, clock, ["AB1234CD"] * 3)       # not a template plate
    assert events == []
    feed(analytics, clock, ["AB1234CD"])
    assert events.phases() == [("Detected", "AB1234CD")]
    assert events[0].reads == 4


def test_a_different_car_near_a_neighbours_misread_is_not_folded_in():
    analytics, clock, events = makeAnalytics()
    # K555EB70's track holds the misread B555EB70; B955PH70 is 3 from
    # that misread but 4 from the voted plate: a different car.
    feed(analytics, clock, ["K555EB70", "K555EB70", "B555EB70", "K555EB70"])
    feed(analytics, clock, ["B955PH70"] * 4)
    clock.advance(10)
    lost = sorted(e.plate for e in events if e.state is EventState.LOST)
    assert lost == ["B955PH70", "K555EB70"]


def test_changed_plate_alphabet_applies_to_the_next_read():
    analytics, clock, events = makeAnalytics(
        **{"Analytics.SkipFirstResults": "0"})
    feed(analytics, clock, ["A123BC77"])
    analytics.store.update({"Plates.Alphabet": "native"})
    feed(analytics, clock, ["K456MH99"])
    assert [e.plate for e in events] == ["A123BC77", "К456МН99"]


# === per-vehicle reads, what events carry, caps, shutdown, metrics ===


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


def test_a_cameras_own_direction_gives_the_movement_the_box_cannot():
    for inDirection, travel, movement in [
            ("down", "approaching", MovementType.IN),
            ("down", "leaving", MovementType.OUT),
            ("up", "approaching", MovementType.OUT),
            ("left", "approaching", MovementType.UNDETERMINED)]:
        analytics, clock, events = makeAnalytics(
            **{"Zone:0:0.InDirection": inDirection})
        analytics.addRead(replace(
            perVehicle("A123BC77", clock, bbox=(100, 100, 80, 20)),
            travel=travel))
        assert events[-1].movement is movement, (inDirection, travel)


def test_boxes_that_show_a_clear_pass_win_over_the_cameras_word():
    analytics, clock, events = makeAnalytics(
        **{"Analytics.SkipFirstResults": "0"})
    for y in (100, 200, 300):
        analytics.addRead(replace(
            read("A123BC77", clock, bbox=(100, y, 80, 20)), travel="leaving"))
        clock.advance(0.1)
    assert events[-1].movement is MovementType.IN


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
