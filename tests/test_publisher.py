"""
The publisher's contract: encode once, at most two writes per second per
subscriber without delaying sparse events, bounded queues with the
documented drop order, Lost-only filtering, screenshots once per event and
in publish order.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from helpers import makeEvent
from numberok import wire
from numberok.events import EventState
from numberok.interfaces import (IEventPublisher, IEventSubscriber,
                                 IScreenshotEncoder)
from numberok.publisher import EventPublisher
from numberok.settings import Settings, SettingsStore


@implementer(IEventSubscriber)
class RecordingSubscriber:
    """The receiving end, as a connection would be: records each write."""

    def __init__(self, clock, lostOnly=False, wantsScreenshots=False):
        self.clock = clock
        self.lostOnly = lostOnly
        self.wantsScreenshots = wantsScreenshots
        self.writable = True
        self.writes: list[tuple[float, bytes]] = []

    def writePackets(self, data):
        self.writes.append((self.clock.seconds(), data))

    def isWritable(self):
        return self.writable

    def states(self) -> list[str]:
        states = []
        for _, data in self.writes:
            decoder = wire.PacketDecoder()
            for packet in decoder.feed(data):
                pairs, _ = wire.decodeEventData(packet.data)
                states.append(dict(pairs)["State"])
        return states

    def packets(self) -> list[wire.Packet]:
        decoder = wire.PacketDecoder()
        return [p for _, data in self.writes for p in decoder.feed(data)]


@implementer(IScreenshotEncoder)
class ControlledEncoder:
    """
    An encoder whose results the test releases, to prove ordering and the
    once-per-event rule deterministically.
    """

    def __init__(self):
        self.calls: list[Deferred] = []

    def encode(self, jpeg, quality, maxBytes, channel=0):
        d = Deferred()
        self.calls.append(d)
        return d


def makePublisher(settings=None, encoder=None):
    clock = Clock()
    store = SettingsStore(settings or Settings())
    return EventPublisher(store, encoder, reactor=clock), clock


def test_publisher_provides_its_interface():
    publisher, _ = makePublisher()
    assert verifyObject(IEventPublisher, publisher)


def test_event_for_an_idle_subscriber_is_written_at_once():
    publisher, clock = makePublisher()
    subscriber = RecordingSubscriber(clock)
    publisher.subscribe(subscriber)
    clock.advance(10)
    publisher.publish(makeEvent())
    assert [t for t, _ in subscriber.writes] == [10]


def test_events_within_half_a_second_wait_and_go_in_one_write():
    publisher, clock = makePublisher()
    subscriber = RecordingSubscriber(clock)
    publisher.subscribe(subscriber)
    publisher.publish(makeEvent(EventState.DETECTED))
    clock.advance(0.1)
    publisher.publish(makeEvent(EventState.UPDATED))
    clock.advance(0.1)
    publisher.publish(makeEvent(EventState.LOST))
    assert len(subscriber.writes) == 1
    clock.advance(0.3)
    assert [t for t, _ in subscriber.writes] == [0, 0.5]
    assert subscriber.states() == ["Detected", "Updated", "Lost"]


def test_writes_to_one_subscriber_are_at_least_half_a_second_apart():
    publisher, clock = makePublisher()
    subscriber = RecordingSubscriber(clock)
    publisher.subscribe(subscriber)
    for step in range(400):
        publisher.publish(makeEvent(EventState.UPDATED, runtimeId=step))
        clock.advance(0.013 * (1 + step % 7))
    clock.advance(1)
    times = [t for t, _ in subscriber.writes]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.5 - 1e-9
    assert len(subscriber.packets()) == 400


def test_sparse_event_after_idle_period_is_not_delayed():
    publisher, clock = makePublisher()
    subscriber = RecordingSubscriber(clock)
    publisher.subscribe(subscriber)
    publisher.publish(makeEvent())
    clock.advance(0.5)   # the tick finds nothing and stops the flusher
    clock.advance(0.2)
    publisher.publish(makeEvent(EventState.LOST))
    assert [t for t, _ in subscriber.writes] == [0, 0.7]


def test_idle_publisher_leaves_no_timers_running():
    publisher, clock = makePublisher()
    publisher.subscribe(RecordingSubscriber(clock))
    publisher.publish(makeEvent())
    clock.advance(0.5)
    clock.advance(0.5)
    assert clock.getDelayedCalls() == []


def test_event_is_encoded_once_and_shared_by_every_subscriber():
    publisher, clock = makePublisher()
    subscribers = [RecordingSubscriber(clock) for _ in range(4)]
    for s in subscribers:
        publisher.subscribe(s)
    publisher.publish(makeEvent())
    first = subscribers[0].writes[0][1]
    assert all(s.writes[0][1] is first for s in subscribers)


def test_lost_only_subscriber_receives_only_lost_events():
    publisher, clock = makePublisher()
    everything = RecordingSubscriber(clock)
    lostOnly = RecordingSubscriber(clock, lostOnly=True)
    publisher.subscribe(everything)
    publisher.subscribe(lostOnly)
    for state in (EventState.DETECTED, EventState.UPDATED, EventState.LOST):
        publisher.publish(makeEvent(state))
    clock.advance(1)
    assert everything.states() == ["Detected", "Updated", "Lost"]
    assert lostOnly.states() == ["Lost"]


def test_full_queue_drops_updated_first_and_lost_last():
    publisher, clock = makePublisher()
    publisher.queueLimit = 4
    subscriber = RecordingSubscriber(clock)
    subscriber.writable = False
    subscription = publisher.subscribe(subscriber)
    publisher.publish(makeEvent(EventState.LOST, runtimeId=1))
    publisher.publish(makeEvent(EventState.DETECTED, runtimeId=2))
    publisher.publish(makeEvent(EventState.UPDATED, runtimeId=3))
    publisher.publish(makeEvent(EventState.UPDATED, runtimeId=4))
    # Full.  A Lost pushes out the oldest Updated, then the next Updated,
    # then the Detected; the Lost events stay.
    for runtimeId in (5, 6, 7):
        publisher.publish(makeEvent(EventState.LOST, runtimeId=runtimeId))
    assert subscription.queued == 4
    assert subscription.dropped == 3
    subscriber.writable = True
    clock.advance(0.5)
    ids = [dict(wire.decodeEventData(p.data)[0])["RuntimeID"]
           for p in subscriber.packets()]
    assert ids == ["1", "5", "6", "7"]


def test_full_queue_of_lost_events_drops_a_new_updated_itself():
    publisher, clock = makePublisher()
    publisher.queueLimit = 2
    subscriber = RecordingSubscriber(clock)
    subscriber.writable = False
    subscription = publisher.subscribe(subscriber)
    publisher.publish(makeEvent(EventState.LOST, runtimeId=1))
    publisher.publish(makeEvent(EventState.LOST, runtimeId=2))
    publisher.publish(makeEvent(EventState.UPDATED, runtimeId=3))
    assert (subscription.queued, subscription.dropped) == (2, 1)
    assert publisher.metrics.value("numberok_dropped_events_total",
                                   state="Updated") == 1


def test_unwritable_subscriber_keeps_its_queue_and_others_go_on():
    publisher, clock = makePublisher()
    stalled = RecordingSubscriber(clock)
    stalled.writable = False
    good = RecordingSubscriber(clock)
    publisher.subscribe(stalled)
    publisher.subscribe(good)
    for i in range(10):
        publisher.publish(makeEvent(EventState.UPDATED, runtimeId=i))
        clock.advance(0.25)
    assert stalled.writes == []
    assert len(good.packets()) == 10
    stalled.writable = True
    clock.advance(0.5)
    assert len(stalled.packets()) == 10


def test_unsubscribed_subscriber_gets_nothing_more():
    publisher, clock = makePublisher()
    subscriber = RecordingSubscriber(clock)
    publisher.subscribe(subscriber)
    publisher.publish(makeEvent())
    publisher.publish(makeEvent(EventState.LOST))
    publisher.unsubscribe(subscriber)
    clock.advance(1)
    assert subscriber.states() == ["Detected"]
    assert clock.getDelayedCalls() == []


def test_screenshot_is_encoded_once_for_many_subscribers():
    encoder = ControlledEncoder()
    settings = Settings().withChanges(
        {"NetServer.AttachScreenshotsToEvents": "1"})
    publisher, clock = makePublisher(settings, encoder)
    subscribers = [RecordingSubscriber(clock, wantsScreenshots=True)
                   for _ in range(4)]
    for s in subscribers:
        publisher.subscribe(s)
    publisher.publish(makeEvent(frame=b"\xff\xd8source"))
    assert len(encoder.calls) == 1
    encoder.calls[0].callback(b"\xff\xd8encoded")
    for s in subscribers:
        [packet] = s.packets()
        assert wire.decodeEventData(packet.data)[1] == b"\xff\xd8encoded"


def test_no_screenshot_is_encoded_when_no_subscriber_wants_one():
    encoder = ControlledEncoder()
    publisher, clock = makePublisher(encoder=encoder)
    subscriber = RecordingSubscriber(clock, wantsScreenshots=False)
    publisher.subscribe(subscriber)
    publisher.publish(makeEvent(frame=b"\xff\xd8source"))
    assert encoder.calls == []
    [packet] = subscriber.packets()
    assert wire.decodeEventData(packet.data)[1] == b""


def test_events_keep_their_order_while_a_screenshot_is_encoding():
    encoder = ControlledEncoder()
    publisher, clock = makePublisher(encoder=encoder)
    subscriber = RecordingSubscriber(clock, wantsScreenshots=True)
    publisher.subscribe(subscriber)
    publisher.publish(makeEvent(EventState.DETECTED, frame=b"\xff\xd8a"))
    publisher.publish(makeEvent(EventState.LOST))       # no frame
    assert subscriber.writes == []
    encoder.calls[0].callback(None)     # not a usable image: sent without
    clock.advance(0.5)
    assert subscriber.states() == ["Detected", "Lost"]


def test_unencodable_event_is_counted_and_skipped():
    publisher, clock = makePublisher()
    subscriber = RecordingSubscriber(clock)
    publisher.subscribe(subscriber)
    publisher.publish(makeEvent(plate="A\x05B"))
    publisher.publish(makeEvent())
    assert publisher.metrics.value("numberok_unencodable_events_total") == 1
    assert subscriber.states() == ["Detected"]


def test_when_dispatched_waits_for_pending_screenshots():
    encoder = ControlledEncoder()
    publisher, clock = makePublisher(encoder=encoder)
    publisher.subscribe(RecordingSubscriber(clock, wantsScreenshots=True))
    publisher.publish(makeEvent(frame=b"\xff\xd8a"))
    done = []
    publisher.whenDispatched().addCallback(done.append)
    assert done == []
    encoder.calls[0].callback(b"\xff\xd8b")
    assert done == [None]
    assert publisher.whenDispatched().called


def test_flush_all_ignores_the_rate_limit():
    publisher, clock = makePublisher()
    subscriber = RecordingSubscriber(clock)
    publisher.subscribe(subscriber)
    publisher.publish(makeEvent())
    publisher.publish(makeEvent(EventState.LOST))
    publisher.flushAll()
    assert subscriber.states() == ["Detected", "Lost"]
    assert succeed(None).called
