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
