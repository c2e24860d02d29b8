"""
The contracts between numberok's parts.

Data flows one way (docs/architecture.rst): sources push L{PlateRead}s into an
L{IPlateReadSink}; the analytics turn them into L{PlateEvent}s and hand them
to an L{IEventPublisher}; the publisher writes encoded packets to
L{IEventSubscriber}s.  Each implementer declares itself with C{@implementer}
and has a C{verifyObject} test.
"""

from typing import Awaitable, Optional

from zope.interface import Attribute, Interface


class IPlateReadSink(Interface):
    """
    Something that takes raw plate reads: the analytics, or a test's list.
    Every source (demo, ingest, replay, HTTP, folder watch) feeds one of
    these and nothing else.
    """

    def addRead(read):
        """
        Take one raw read.

        @param read: the read, already validated by the source that made it.
        @type read: L{numberok.events.PlateRead}
        @return: L{None}.  Never raises for a valid read.
        """


class IEventSink(Interface):
    """
    Something that takes vehicle events as the analytics emit them.
    """

    def publish(event):
        """
        Take one event.

        @type event: L{numberok.events.PlateEvent}
        @return: L{None}.
        """


class IEventPublisher(IEventSink):
    """
    Fans events out to subscribers: queues each event per subscriber,
    encodes it once, when the first write that includes it is due, and
    writes at most twice per second to each.
    """

    def subscribe(subscriber):
        """
        Start delivering events to C{subscriber}.

        @type subscriber: L{IEventSubscriber}
        @return: a subscription handle with the counters C{eventsSent},
            C{bytesSent}, C{queued} and C{dropped}.
        """

    def unsubscribe(subscriber):
        """
        Stop delivering to C{subscriber} and forget its queue.  Unknown
        subscribers are ignored.
        """

    def drain(timeout):
        """
        Write what is queued to every subscriber as fast as the write cap
        allows, for the shutdown sequence.

        @param timeout: seconds to wait at most.
        @return: a L{Deferred} that fires (never fails) when every queue is
            empty or C{timeout} has passed.
        """


class IEventSubscriber(Interface):
    """
    One receiver of encoded event packets, usually a TCP connection.
    """

    wantsScreenshots = Attribute(
        "True when packets for this subscriber should carry the JPEG.")
    lostOnly = Attribute("True when this subscriber takes only Lost events.")

    def writePackets(data):
        """
        Write one or more whole packets, already concatenated, in one write.

        @type data: L{bytes}
        """

    def isWritable():
        """
        @return: C{False} while the peer's transport has asked us to pause
            (it stopped reading); the publisher then keeps the packets queued.
        """


class IScreenshotEncoder(Interface):
    """
    Re-encodes a frame to the JPEG that travels with an event.  The work
    runs off the reactor thread; the publisher asks once per event, never
    once per subscriber.
    """

    def encode(jpeg, quality, maxBytes, channel=0):
        """
        Re-encode C{jpeg} at C{quality}, scaled down until it fits.

        @param jpeg: the source frame.
        @type jpeg: L{bytes}
        @param quality: JPEG quality, 10..100 (clamped).
        @param maxBytes: the largest result allowed: what the packet has
            left under the 1 MiB limit after the text part.
        @param channel: the frame's camera; an unusable frame is logged
            once per channel, not once per frame, and counted.
        @return: a L{Deferred} firing with the JPEG L{bytes}, or with L{None}
            when the frame is not a usable image (or cannot fit).  It never
            fails.
        """


class IZoneOwner(Interface):
    """
    What one zone's tracks (L{numberok.zones.ZoneAggregator}) need from
    the analytics that own them: the things shared by every zone (settings,
    plate rules, ids, caps, the sink).  The zones module knows only this
    contract, so it imports nothing from the analytics.
    """

    store = Attribute("The L{numberok.settings.SettingsStore}.")
    config = Attribute("The C{[Analytics]} settings as the per-read path "
                       "uses them (L{numberok.zones.AnalyticsConfig}).")
    rules = Attribute("The L{numberok.plates.PlateRules} now in force.")
    reactor = Attribute("The L{IReactorTime} of the loss timers.")

    def openTrack(zone):
        """
        @return: a new L{numberok.tracks.Track} in C{zone}, after making
            room under the caps.
        """

    def announced(track):
        """C{track} was announced (its Detected went out)."""

    def merged(track):
        """C{track} was folded into an announced neighbour; it ends
        silently."""

    def emit(event, arrival):
        """
        Hand C{event} to the sink; C{arrival} is the reactor time of the
        read that caused it (L{None} for Lost, which a timer causes).
        """

    def fits(processed):
        """@return: whether the plate text C{processed} fits a template."""

    def closed(track, reason):
        """C{track} ended: Lost, or dropped for C{reason} (counted)."""

    def forgotten(track):
        """C{track} is gone from its zone: forget it."""


class IOutboxOutput(Interface):
    """
    An at-least-once output fed by an L{IOutbox} (the MQTT publisher, a
    webhook target): it is handed the journal's rows in id order and says
    when each is delivered.
    """

    ready = Attribute(
        "True when the output can take rows now (connected); while False "
        "the outbox holds what it has read and sends nothing.")

    def prepare(entry):
        """
        Load what sending C{entry} needs (its pictures), off the reactor
        thread.  Called for a whole page before any of it is sent.

        @type entry: L{numberok.journal.JournalEntry}
        @return: a L{Deferred} firing with a value for L{send}; a failure
            makes the outbox read the page again later.
        """

    def send(entry, prepared):
        """
        Send C{entry}; called in id order.

        @return: L{None} when there is nothing to send for this row (it
            counts as delivered), else a L{Deferred} that fires when the
            receiver acknowledged the row (or the output gave up on it and
            recorded that), and fails when the row must be sent again
            from the cursor (the outbox resets after its next poll).
        """


class IOutbox(Interface):
    """
    A durable consumer of the journal for one output
    (L{numberok.journal.outbox.Outbox}): a persisted cursor, paging, a
    window of rows in flight, restart from the cursor.
    """

    def start():
        """Load the cursor and begin reading; once."""

    def stop():
        """
        Stop reading and sending; persist the cursor.

        @return: a L{Deferred} firing when the cursor is on disk (or could
            not be written after a few tries).
        """

    def wake():
        """New rows may be in the journal: read them soon."""

    def reset():
        """
        Forget what is in flight and read again from the cursor (the
        output lost its connection; what it had not acknowledged goes
        again).
        """

    def rewind(journalId):
        """
        Send again from C{journalId} on: the cursor moves back to
        C{journalId - 1} (and is saved), what is in flight is forgotten.

        @type journalId: L{int}, at least 1.
        """

    def state():
        """
        @return: a L{dict} with C{acknowledged} (the cursor), C{sent},
            C{inFlight}, C{queued}, C{lastId}, C{backlog} and
            C{skipped} (rows retention removed before they were sent).
        """


class IRelay(Interface):
    """What opens a gate (L{numberok.gates.relay.HttpRelay})."""

    def open(method: str, url: str, body: Optional[bytes],
             timeout: float) -> Awaitable[int]:
        """
        Ask the device to open; give up after C{timeout} seconds.

        @return: an awaitable of the HTTP status (or a device's code).
        @raise numberok.gates.relay.RelayError: when it did not answer or
            the request failed.
        """
