"""
Loss timers (numberok.losstimers): one reactor timer per loss interval
rather than per track, with every track still Lost exactly its zone's
interval after its latest read.
"""

from __future__ import annotations

from numberok.events import EventState, PlateRead

from tests.test_analytics import makeAnalytics


def read(analytics, clock, plate, zone=0, channel=0):
    analytics.addRead(PlateRead(plate, int(clock.seconds() * 1000),
                                channel=channel, zone=zone,
                                perVehicle=True))


def lostAt(events):
    return [(e.plate, e.eventTimeMs) for e in events
            if e.state is EventState.LOST]


def test_many_active_tracks_share_one_timer_per_loss_interval():
    analytics, clock, events = makeAnalytics(
        **{"Zone:0:1.LossIntervalSec": "2"})
    for channel in range(20):
        read(analytics, clock, "A%03dBC77" % channel, channel=channel)
    read(analytics, clock, "X999XX11", zone=1)
    assert len(analytics.activeTracks()) == 21
    assert len(clock.getDelayedCalls()) == 2


def test_each_track_is_lost_its_interval_after_its_latest_read():
    analytics, clock, events = makeAnalytics(
        **{"Zone:0:1.LossIntervalSec": "2"})
    start = clock.seconds()
    read(analytics, clock, "A111AA11")               # zone 0: 5 s
    clock.advance(1)
    read(analytics, clock, "B222BB22", zone=1)       # zone 1: 2 s
    clock.advance(1)
    read(analytics, clock, "A111AA11")               # read again at +2
    clock.advance(0.5)
    read(analytics, clock, "C333CC33", channel=1)    # zone 0, at +2.5
    clock.pump([0.5] * 20)
    ms = int(start * 1000)
    assert lostAt(events) == [("B222BB22", ms + 3000),
                              ("A111AA11", ms + 7000),
                              ("C333CC33", ms + 7500)]
    assert clock.getDelayedCalls() == []


def test_a_zone_whose_interval_changes_moves_its_track_to_the_new_timer():
    analytics, clock, events = makeAnalytics()
    read(analytics, clock, "A111AA11")
    analytics.store.replace(analytics.store.current.withChanges(
        {"Zone:0:0.LossIntervalSec": "1"}))
    clock.advance(0.5)
    read(analytics, clock, "A111AA11")
    clock.advance(1)
    assert lostAt(events) == [("A111AA11", int(clock.seconds() * 1000))]
    assert clock.getDelayedCalls() == []
