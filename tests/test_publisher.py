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

from helpers import jpegBytes, makeEvent, synchronous
from numberok import wire
from numberok.events import EventState, eventPairs
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
        self.maxBytes: list[int] = []

    def encode(self, jpeg, quality, maxBytes, channel=0):
        d = Deferred()
        self.calls.append(d)
        self.maxBytes.append(maxBytes)
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


# -- encoding when a write is due -------------------------------------------

def test_updated_dropped_from_every_queue_before_its_write_is_never_encoded():
    # An event whose text cannot be encoded shows whether it was tried.
    publisher, clock = makePublisher()
    publisher.queueLimit = 1
    subscribers = [RecordingSubscriber(clock) for _ in range(4)]
    for s in subscribers:
        publisher.subscribe(s)
    publisher.publish(makeEvent(EventState.DETECTED, runtimeId=1))  # written
    publisher.publish(makeEvent(EventState.UPDATED, runtimeId=2,
                                plate="A\x05B"))
    publisher.publish(makeEvent(EventState.UPDATED, runtimeId=3))  # drops 2
    clock.advance(0.5)
    assert publisher.metrics.value("numberok_unencodable_events_total") == 0
    for s in subscribers:
        ids = [dict(wire.decodeEventData(p.data)[0])["RuntimeID"]
               for p in s.packets()]
        assert ids == ["1", "3"]
    assert publisher.metrics.value("numberok_dropped_events_total",
                                   state="Updated") == 4


def test_unencodable_event_is_counted_once_for_all_subscribers():
    publisher, clock = makePublisher()
    subscribers = [RecordingSubscriber(clock) for _ in range(3)]
    for s in subscribers:
        publisher.subscribe(s)
    publisher.publish(makeEvent(plate="A\x00B"))
    assert publisher.metrics.value("numberok_unencodable_events_total") == 1
    assert all(s.writes == [] for s in subscribers)


def test_packet_made_at_the_first_write_is_shared_by_later_writes():
    publisher, clock = makePublisher()
    early, late = RecordingSubscriber(clock), RecordingSubscriber(clock)
    publisher.subscribe(early)
    publisher.subscribe(late)
    publisher.publish(makeEvent(EventState.DETECTED, runtimeId=1))
    late.writable = False
    publisher.publish(makeEvent(EventState.LOST, runtimeId=2))
    clock.advance(0.5)
    late.writable = True
    clock.advance(0.5)
    assert early.writes[-1][1] is late.writes[-1][1]


def test_settings_saved_after_publish_do_not_change_a_queued_event():
    publisher, clock = makePublisher()
    subscriber = RecordingSubscriber(clock)
    publisher.subscribe(subscriber)
    publisher.publish(makeEvent(EventState.DETECTED))
    publisher.publish(makeEvent(EventState.LOST))      # waits 0.5 s
    publisher.store.replace(publisher.store.current.withChanges(
        {"System.SystemId": "42"}))
    clock.advance(0.5)
    publisher.publish(makeEvent(EventState.DETECTED, runtimeId=2))
    clock.advance(0.5)
    assert [dict(wire.decodeEventData(p.data)[0])["SystemId"]
            for p in subscriber.packets()] == ["1", "1", "42"]


def test_sent_events_and_bytes_are_counted():
    publisher, clock = makePublisher()
    subscribers = [RecordingSubscriber(clock) for _ in range(2)]
    for s in subscribers:
        publisher.subscribe(s)
    publisher.publish(makeEvent(EventState.DETECTED))
    publisher.publish(makeEvent(EventState.LOST))
    clock.advance(0.5)
    sent = sum(len(data) for s in subscribers for _, data in s.writes)
    assert publisher.metrics.value("numberok_events_sent_total") == 4
    assert publisher.metrics.value("numberok_sent_bytes_total") == sent
    assert [(sub.eventsSent, sub.bytesSent) for sub in
            publisher.subscriptions()] == [
        (2, sum(len(d) for _, d in s.writes)) for s in subscribers]


# -- the byte cap -------------------------------------------------------------

@implementer(IScreenshotEncoder)
class SizedEncoder:
    """Answers at once with a picture of the size the test chose."""

    def __init__(self, sizes):
        self.sizes = iter(sizes)

    def encode(self, jpeg, quality, maxBytes, channel=0):
        return succeed(b"\xff\xd8" + bytes(next(self.sizes) - 2))


def pictureSettings():
    return Settings().withChanges(
        {"NetServer.AttachScreenshotsToEvents": "1"})


def stalledWithPictures(sizes, queueBytes=None):
    """
    A publisher whose encoder answers with pictures of C{sizes} bytes, and
    one subscriber that wants them and does not read.
    """
    publisher, clock = makePublisher(pictureSettings(), SizedEncoder(sizes))
    if queueBytes is not None:
        publisher.queueBytes = queueBytes
    stalled = RecordingSubscriber(clock, wantsScreenshots=True)
    stalled.writable = False
    return publisher, clock, stalled, publisher.subscribe(stalled)


def test_queue_bytes_never_pass_the_cap_whatever_the_pictures():
    import random
    rnd = random.Random(7)
    sizes = [rnd.choice([1_000, 50_000, 300_000, 900_000])
             for _ in range(400)]
    publisher, clock, stalled, subscription = stalledWithPictures(
        sizes, 4 * 1024 * 1024)
    states = [EventState.UPDATED] * 6 + [EventState.DETECTED,
                                         EventState.LOST]
    for runtimeId in range(len(sizes)):
        publisher.publish(makeEvent(rnd.choice(states), runtimeId=runtimeId,
                                    frame=b"\xff\xd8frame"))
        assert subscription.queuedBytes <= publisher.queueBytes
    assert subscription.dropped > 0
    stalled.writable = True
    clock.advance(0.5)
    [(_, data)] = stalled.writes
    assert len(data) <= publisher.queueBytes
    assert len(stalled.packets()) == subscription.eventsSent == \
        len(sizes) - subscription.dropped


def test_queue_full_of_pictures_drops_the_oldest_updated_first():
    mib = 1024 * 1024
    publisher, clock, stalled, subscription = stalledWithPictures(
        [mib // 2] * 6, 2 * mib)
    for runtimeId, state in enumerate([
            EventState.LOST, EventState.UPDATED, EventState.DETECTED,
            EventState.UPDATED, EventState.LOST, EventState.LOST], 1):
        publisher.publish(makeEvent(state, runtimeId=runtimeId,
                                    frame=b"\xff\xd8frame"))
    # Room for three half-MiB pictures: the 4th event pushed out Updated 2,
    # the 5th Updated 4, the 6th Detected 3.
    assert subscription.queued == 3 and subscription.dropped == 3
    stalled.writable = True
    clock.advance(0.5)
    ids = [dict(wire.decodeEventData(p.data)[0])["RuntimeID"]
           for p in stalled.packets()]
    assert ids == ["1", "5", "6"]
    value = publisher.metrics.value
    assert [value("numberok_dropped_events_total", state=s)
            for s in ("Updated", "Detected", "Lost")] == [2, 1, 0]


def test_picture_that_would_push_out_a_lost_event_is_dropped_itself():
    mib = 1024 * 1024
    publisher, clock, stalled, subscription = stalledWithPictures(
        [mib // 2] * 5, 2 * mib)
    for runtimeId in (1, 2, 3):
        publisher.publish(makeEvent(EventState.LOST, runtimeId=runtimeId,
                                    frame=b"\xff\xd8frame"))
    publisher.publish(makeEvent(EventState.UPDATED, runtimeId=4,
                                frame=b"\xff\xd8frame"))
    assert (subscription.queued, subscription.dropped) == (3, 1)
    stalled.writable = True
    clock.advance(0.5)
    assert stalled.states() == ["Lost"] * 3


def test_unsubscribe_gives_the_queued_pictures_back():
    import gc
    import tracemalloc
    import weakref
    tracemalloc.start()
    try:
        publisher, clock, stalled, subscription = stalledWithPictures(
            [200_000] * 20)
        for runtimeId in range(20):
            publisher.publish(makeEvent(EventState.LOST, runtimeId=runtimeId,
                                        frame=b"\xff\xd8frame"))
        held, _ = tracemalloc.get_traced_memory()
        publisher.unsubscribe(stalled)
        # The connection object keeps its handle after it goes; the
        # pictures must not stay with it.
        gc.collect()
        left, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held - left > 20 * 200_000 * 0.9
    assert subscription.queued == subscription.queuedBytes == 0
    handle = weakref.ref(subscription)
    del subscription
    gc.collect()
    assert handle() is None
    assert clock.getDelayedCalls() == []


# -- PlateRect -----------------------------------------------------------------

def pairsOf(packet):
    return wire.decodeEventData(packet.data)


def picturePublisher():
    encoder = ControlledEncoder()
    clock = Clock()
    publisher = EventPublisher(SettingsStore(pictureSettings()), encoder,
                               reactor=clock, runInThread=synchronous)
    subscriber = RecordingSubscriber(clock, wantsScreenshots=True)
    publisher.subscribe(subscriber)
    return publisher, encoder, subscriber


def test_packet_with_a_picture_carries_plate_rect_right_after_read_count():
    publisher, encoder, subscriber = picturePublisher()
    frame = jpegBytes(size=(640, 480))
    publisher.publish(makeEvent(frame=frame, bbox=(100, 200, 96, 22)))
    attached = jpegBytes(size=(640, 480))
    encoder.calls[0].callback(attached)
    [packet] = subscriber.packets()
    pairs, jpeg = pairsOf(packet)
    assert jpeg == attached
    assert pairs[-2:] == [("ReadCount", "1"), ("PlateRect", "100,200,96,22")]


def test_plate_rect_is_scaled_with_a_picture_the_encoder_made_smaller():
    publisher, encoder, subscriber = picturePublisher()
    publisher.publish(makeEvent(frame=jpegBytes(size=(640, 480)),
                                bbox=(101, 200, 96, 23)))
    encoder.calls[0].callback(jpegBytes(size=(320, 240)))
    [packet] = subscriber.packets()
    assert dict(pairsOf(packet)[0])["PlateRect"] == "50,100,48,12"


def test_plate_rect_leaves_room_for_itself_under_the_packet_limit():
    publisher, encoder, subscriber = picturePublisher()
    event = makeEvent(frame=jpegBytes(size=(64, 48)), bbox=(10, 20, 30, 4))
    plainText = wire.encodePairs(eventPairs(event, 1))
    publisher.publish(event)
    # The encoder was given what is left after the text and the pair.
    maxBytes = encoder.maxBytes[0]
    assert maxBytes == wire.MAX_DATA_LENGTH - len(plainText) - len(
        b"\x05PlateRect=10,20,30,4")
    picture = jpegBytes(size=(64, 48))    # what follows the end is ignored
    encoder.calls[0].callback(picture + bytes(maxBytes - len(picture)))
    [packet] = subscriber.packets()
    assert dict(pairsOf(packet)[0])["PlateRect"] == "10,20,30,4"
    assert len(packet.data) == wire.MAX_DATA_LENGTH


def test_packets_without_a_picture_never_carry_plate_rect():
    publisher, encoder, withPictures = picturePublisher()
    without = RecordingSubscriber(withPictures.clock)
    publisher.subscribe(without)
    publisher.publish(makeEvent(frame=jpegBytes(size=(64, 48)),
                                bbox=(1, 2, 3, 4)))
    publisher.publish(makeEvent(EventState.LOST, runtimeId=2,
                                bbox=(1, 2, 3, 4)))          # no frame
    encoder.calls[0].callback(None)                       # unusable frame
    withPictures.clock.advance(0.5)
    for s in (withPictures, without):
        assert [("PlateRect" in dict(pairsOf(p)[0])) for p in s.packets()] \
            == [False, False]


def test_box_outside_the_picture_gives_no_plate_rect():
    from numberok.queues import attachedRect
    assert attachedRect((700, 10, 50, 10), (640, 480), (320, 240)) is None
    assert attachedRect((600, 470, 80, 20), (640, 480), (640, 480)) == \
        (600, 470, 40, 10)
    assert attachedRect((0, 0, 640, 480), (640, 480), (100, 75)) == \
        (0, 0, 100, 75)


# -- drain ---------------------------------------------------------------------

def test_drain_writes_as_fast_as_the_cap_allows_and_fires_when_written():
    publisher, clock = makePublisher()
    subscriber = RecordingSubscriber(clock)
    publisher.subscribe(subscriber)
    publisher.publish(makeEvent(EventState.DETECTED))
    clock.advance(0.1)
    publisher.publish(makeEvent(EventState.LOST))
    done = []
    publisher.drain(3).addCallback(done.append)
    clock.advance(0.3)
    assert done == [] and len(subscriber.writes) == 1
    clock.advance(0.1)
    assert done == [None]
    assert [t for t, _ in subscriber.writes] == [0, 0.5]
    assert clock.getDelayedCalls() == []


def test_drain_with_nothing_queued_fires_at_once():
    publisher, clock = makePublisher()
    publisher.subscribe(RecordingSubscriber(clock))
    assert publisher.drain(3).called


def test_drain_fires_after_the_timeout_when_a_client_does_not_read():
    publisher, clock = makePublisher()
    stalled = RecordingSubscriber(clock)
    stalled.writable = False
    publisher.subscribe(stalled)
    publisher.publish(makeEvent(EventState.LOST))
    results = []
    publisher.drain(2).addBoth(results.append)
    clock.advance(1.9)
    assert results == []
    clock.advance(0.1)
    assert results == [None]


def test_drain_sends_events_without_their_picture_when_the_timeout_ends():
    encoder = ControlledEncoder()
    publisher, clock = makePublisher(pictureSettings(), encoder)
    subscriber = RecordingSubscriber(clock, wantsScreenshots=True)
    publisher.subscribe(subscriber)
    publisher.publish(makeEvent(EventState.LOST, frame=b"\xff\xd8a"))
    done = []
    publisher.drain(1).addCallback(done.append)
    clock.advance(1)
    assert done == [None]
    encoder.calls[0].callback(b"\xff\xd8late")    # too late: ignored
    [packet] = subscriber.packets()
    assert pairsOf(packet)[1] == b""


def test_drain_waits_for_events_published_while_it_runs():
    publisher, clock = makePublisher()
    subscriber = RecordingSubscriber(clock)
    publisher.subscribe(subscriber)
    publisher.publish(makeEvent(EventState.DETECTED))
    publisher.publish(makeEvent(EventState.UPDATED))
    done = []
    publisher.drain(3).addCallback(done.append)
    clock.advance(0.2)
    publisher.publish(makeEvent(EventState.LOST))
    clock.advance(0.3)
    assert done == [None]
    assert subscriber.states() == ["Detected", "Updated", "Lost"]


def test_stop_service_drains_and_leaves_no_timers():
    clock = Clock()
    publisher = EventPublisher(SettingsStore(), reactor=clock,
                               runInThread=synchronous)
    publisher.startService()
    subscriber = RecordingSubscriber(clock)
    publisher.subscribe(subscriber)
    publisher.publish(makeEvent(EventState.DETECTED))
    publisher.publish(makeEvent(EventState.LOST))
    stopped = []
    publisher.stopService().addCallback(stopped.append)
    clock.advance(0.5)
    assert subscriber.states() == ["Detected", "Lost"]
    assert stopped == [None]
    assert clock.getDelayedCalls() == []
