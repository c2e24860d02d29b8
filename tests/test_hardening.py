"""
The server under storms, stalls and garbage, on real loopback
sockets with the test's reactor: the server runs in-process so the tests
read its counters.  Every misbehaving peer must be answered by closing it
(or refusing its line), a log line and a counter -- never an exception into
the reactor -- while the good clients lose nothing.
"""

from __future__ import annotations

import base64
import io
import json

import pytest_twisted
from hypothesis import given, strategies as st
from PIL import Image
from twisted.internet import defer
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.internet.address import IPv4Address

from conftest import bounded, connectTo as connect, subscribedCollectors, waitFor
from helpers import Silent, closedFor, ingestCount, makeEvent, refusals
from numberok import wire
from numberok.analytics import Analytics, EventFanout
from numberok.events import EventState
from numberok.publisher import EventPublisher
from numberok.server import NumberOkFactory
from numberok.settings import SettingsStore
from numberok.sources.ingest import IngestFactory


def noiseJpeg(width=480, height=360, seed=1) -> bytes:
    """A JPEG that does not compress well, so a few fill socket buffers."""
    import random
    rnd = random.Random(seed)
    image = Image.frombytes("L", (width, height),
                            bytes(rnd.getrandbits(8)
                                  for _ in range(width * height)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


# -- connection storm ---------------------------------------------------------

@pytest_twisted.inlineCallbacks
def test_connection_storm_is_refused_while_four_clients_lose_nothing(server):
    from twisted.internet.task import LoopingCall

    s = server()
    good = yield subscribedCollectors(s, 4)
    published = []

    def publishOne():
        runtimeId = len(published) + 1
        published.append(runtimeId)
        s.publisher.publish(makeEvent(EventState.LOST, runtimeId=runtimeId))
    stream = LoopingCall(publishOne)
    stream.start(0.01)

    refusedClosed = []

    @defer.inlineCallbacks
    def attempt():
        p = Silent(stall=False)
        yield connect(s.port, p)
        yield bounded(p.closed, 5)  # a refused peer sees EOF promptly
        refusedClosed.append(p)

    # 50 at a time: the listen backlog (50 by default); beyond it the
    # kernel, not the server, holds the surplus back for seconds.
    attempts, wave = 2000, 50
    try:
        for batch in range(attempts // wave):
            yield bounded(defer.gatherResults(
                [attempt() for _ in range(wave)], consumeErrors=True), 20)
    finally:
        stream.stop()
    assert len(refusedClosed) == attempts
    assert refusals(s.factory, "limit") == attempts
    assert s.factory.peakConnections <= 4
    yield waitFor(lambda: all(len(c.ids) == len(published) for c in good))
    for c in good:
        assert c.ids == published
    assert all(sub.dropped == 0 for sub in s.publisher.subscriptions())


@pytest_twisted.inlineCallbacks
def test_storm_beyond_a_lower_limit_admits_at_most_that_many(server):
    from numberok.server import NumberOkProtocol
    s = server(**{"NetServer.MaxConnections": "2"})
    # The timeout's length is test_server.py's business; here only that
    # the admitted two are closed by it.
    s.factory.protocol = type("QuickHandshake", (NumberOkProtocol,),
                              {"handshakeTimeout": 0.1})
    peers = [Silent(stall=False) for _ in range(50)]
    yield bounded(defer.gatherResults([connect(s.port, p) for p in peers]))
    yield waitFor(lambda: refusals(s.factory, "limit") == 48)
    assert s.factory.peakConnections == 2
    # The two admitted never subscribe: closed after the handshake timeout.
    yield bounded(defer.gatherResults([p.closed for p in peers]), 5)
    assert closedFor(s.factory, "handshake_timeout") == 2


# -- slow clients ---------------------------------------------------------------

@pytest_twisted.inlineCallbacks
def test_clients_that_never_read_hit_their_queue_cap_and_others_lose_nothing(
        server):
    # Only real sockets fill a kernel buffer and pause the transport; the
    # 2-writes-a-second schedule itself is proved with a Clock in
    # test_publisher.py.
    from twisted.internet.task import LoopingCall

    s = server(**{"NetServer.AttachScreenshotsToEvents": "1",
                  "NetServer.AttachedScreenshotsQuality": "95"})
    # Small enough that the stalled peers reach it soon, large enough (over
    # a second of this stream) that a good client's queue never does, even
    # when a loaded machine makes a write late.
    s.publisher.queueLimit = 40
    s.root.shutdownGrace = 0.25     # the stalled peers never read their close
    stalled = [Silent(subscribe=True, stall=True) for _ in range(2)]
    for p in stalled:
        yield connect(s.port, p)
    good = yield subscribedCollectors(s, 2)
    frame = noiseJpeg()
    published = []

    def publishOne():
        runtimeId = len(published) + 1
        published.append(runtimeId)
        s.publisher.publish(makeEvent(EventState.LOST, runtimeId=runtimeId,
                                      frame=frame))
    stream = LoopingCall(publishOne)
    stream.start(1 / 30)
    try:
        yield waitFor(lambda: all(sub.dropped > 0 for sub in
                                  s.publisher.subscriptions()
                                  if sub.subscriber.transport.getPeer().port
                                  in [p.transport.getHost().port
                                      for p in stalled]), 20)
    finally:
        stream.stop()
    yield waitFor(lambda: all(len(c.ids) == len(published) for c in good))

    bySubscriber = {sub.subscriber.transport.getPeer().port: sub
                    for sub in s.publisher.subscriptions()}
    for p in stalled:
        sub = bySubscriber[p.transport.getHost().port]
        assert sub.dropped > 0
        assert sub.queued <= s.publisher.queueLimit  # memory bounded
        assert sub.eventsSent + sub.queued + sub.dropped == len(published)
    assert sum(s.metrics.value("numberok_dropped_events_total", state=state)
               for state in ("Updated", "Detected", "Lost")) == sum(
        bySubscriber[p.transport.getHost().port].dropped for p in stalled)
    for c in good:
        sub = bySubscriber[c.transport.getHost().port]
        assert c.ids == published and sub.dropped == 0


# -- garbage: event port --------------------------------------------------------

def memoryFactory():
    from twisted.internet.task import Clock
    clock = Clock()
    store = SettingsStore()
    publisher = EventPublisher(store, reactor=clock)
    return NumberOkFactory(store, publisher, reactor=clock), clock


packets = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda t, n, tail: wire.HEADER.pack(t, n) + tail,
              st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1),
              st.binary(max_size=16)),
)


@given(chunks=st.lists(packets, min_size=1, max_size=5))
def test_any_bytes_on_the_event_port_subscribe_or_close_that_peer(chunks):
    factory, clock = memoryFactory()
    address = IPv4Address("TCP", "127.0.0.1", 40000)
    protocol = factory.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    for chunk in chunks:
        protocol.dataReceived(chunk)  # must not raise
    data = b"".join(chunks)
    # Only whole headers are judged; a partial one waits for its rest.
    headers = [data[i:i + 8] for i in range(0, len(data) // 8 * 8, 8)]
    if any(h != wire.subscribePacket() for h in headers):
        assert transport.disconnecting
        assert closedFor(factory, "protocol") == 1
    else:
        assert not transport.disconnecting
        assert protocol.subscribed == bool(headers)
    assert transport.value() == b""  # nothing is ever answered


@pytest_twisted.inlineCallbacks
def test_garbage_on_the_event_port_closes_only_that_peer(server):
    s = server()
    [good] = yield subscribedCollectors(s, 1)
    samples = [
        wire.HEADER.pack(0x21, 10) + b"x" * 10,        # an Event from a client
        wire.HEADER.pack(0x19, 4) + b"abcd",          # subscribe with data
        wire.HEADER.pack(0x19, 2 ** 32 - 1),           # 4 GiB announced
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",           # wrong protocol
        b"\x00" * 7 + b"\xff" * 100,                     # binary noise
    ]
    for data in samples:
        p = Silent(stall=False)
        yield connect(s.port, p)
        p.transport.write(data)
        yield bounded(p.closed, 5)
    assert closedFor(s.factory, "protocol") == len(samples)
    s.publisher.publish(makeEvent(EventState.LOST, runtimeId=5))
    yield waitFor(lambda: good.ids == [5])


# -- garbage: ingest port -------------------------------------------------------

def ingestLines():
    """Hypothesis lines: random bytes, random JSON, and near-misses."""
    jsonValues = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8)
    nearMiss = st.fixed_dictionaries(
        {"plate": st.one_of(st.text(max_size=40), st.integers(),
                            st.none()),
         "channel": st.one_of(st.integers(-5, 2 ** 70), st.text(max_size=4),
                              st.floats()),
         "zone": st.one_of(st.integers(-1, 9), st.none()),
         "confidence": st.one_of(st.floats(), st.integers(-5, 5)),
         "jpeg_b64": st.one_of(st.text(max_size=20), st.just("!!notbase64"),
                           st.just(base64.b64encode(b"GIF89a...").decode()))})
    return st.one_of(
        st.binary(max_size=200).filter(lambda b: b"\n" not in b),
        jsonValues.map(lambda v: json.dumps(v).encode()),
        nearMiss.map(lambda v: json.dumps(v).encode()),
    )


@given(lines=st.lists(ingestLines(), min_size=1, max_size=6))
def test_any_ingest_line_is_taken_or_refused_with_a_specific_error(lines):
    from twisted.internet.task import Clock
    clock = Clock()
    clock.advance(1_764_000_000)
    analytics = Analytics(SettingsStore(), EventFanout(), reactor=clock)
    factory = IngestFactory(analytics, reactor=clock)
    address = IPv4Address("TCP", "127.0.0.1", 40001)
    protocol = factory.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    protocol.dataReceived(b"".join(line + b"\n" for line in lines))
    replies = [json.loads(r) for r in transport.value().splitlines()]
    nonBlank = [i + 1 for i, line in enumerate(lines)
                if line.rstrip(b"\r").strip()]
    assert ingestCount(factory, "numberok_read_errors_total",
                       source="ingest") == len(replies)
    assert ingestCount(factory, "numberok_read_sink_failures_total",
                       source="ingest") == 0
    for reply in replies:
        assert set(reply) == {"error", "line"}
        assert reply["line"] in nonBlank
        assert isinstance(reply["error"], str) and len(reply["error"]) > 5
    assert not transport.disconnecting


def ingestSamples() -> list[tuple[bytes, str]]:
    """Curated bad lines and a word their error must name."""
    good = {"plate": "A123BC77", "channel": 0, "zone": 0}

    def line(**changes):
        obj = dict(good, **changes)
        return json.dumps(obj).encode()
    return [
        (b"{not json", "JSON"),
        (b"[1, 2, 3]", "object"),
        (line(plate=123), "plate"),
        (line(channel="zero"), "channel"),
        (line(channel=10 ** 40), "channel"),
        (line(zone=2 ** 64), "zone"),
        (line(confidence="high"), "confidence"),
        (b'{"plate": "A1\xff\xfe23"}', "UTF-8"),
        (line(plate="\u0000\u0005" + "\u0007" * 40), "control"),
        (line(jpeg_b64="@@@ not base64 @@@"), "base64"),
        (line(jpeg_b64=base64.b64encode(b"GIF89a not a jpeg").decode()),
         "jpeg"),
        (b'{"plate": "A123BC77", "channel": NaN}', "NaN"),
    ]


@pytest_twisted.inlineCallbacks
def test_garbage_lines_on_the_ingest_port_get_specific_errors_and_serving_goes_on(
        server):
    s = server(**{"Analytics.SkipFirstResults": "0"})
    [good] = yield subscribedCollectors(s, 1)
    samples = ingestSamples()

    class Recognizer(Protocol):
        def __init__(self):
            self.data = b""
            self.closed = defer.Deferred()

        def dataReceived(self, data):
            self.data += data

        def connectionLost(self, reason):
            self.closed.callback(None)

    r = Recognizer()
    yield connect(s.ingestPort, r)
    r.transport.write(b"".join(line + b"\n" for line, _ in samples))
    r.transport.write(json.dumps({"plate": "K777KK77"}).encode() + b"\n")
    yield waitFor(lambda: r.data.count(b"\n") >= len(samples))
    replies = [json.loads(x) for x in r.data.splitlines()]
    assert [x["line"] for x in replies] == list(range(1, len(samples) + 1))
    for (line, word), reply in zip(samples, replies):
        assert word.lower() in reply["error"].lower(), (line, reply)
    assert ingestCount(s.ingestFactory, "numberok_read_errors_total",
                       source="ingest") == len(samples)
    # The good line after all that garbage made a vehicle.
    yield waitFor(lambda: len(good.ids) == 1)
    r.transport.loseConnection()
    yield bounded(r.closed)


def test_recognizer_that_does_not_read_its_error_replies_is_not_buffered():
    from twisted.internet.task import Clock
    clock = Clock()
    factory = IngestFactory(
        Analytics(SettingsStore(), EventFanout(), reactor=clock),
        reactor=clock)
    address = IPv4Address("TCP", "127.0.0.1", 40002)
    protocol = factory.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    assert transport.producer is protocol
    protocol.dataReceived(b"{bad\n")
    written = len(transport.value())
    # The transport's buffer is full: the peer does not read.
    protocol.pauseProducing()
    protocol.dataReceived(b"{bad\n" * 1000)
    assert len(transport.value()) == written
    assert ingestCount(factory, "numberok_read_errors_total",
                       source="ingest") == 1001
    assert ingestCount(factory,
                       "numberok_ingest_replies_dropped_total") == 1000
    protocol.resumeProducing()
    protocol.dataReceived(b"{bad\n")
    assert len(transport.value()) > written


@pytest_twisted.inlineCallbacks
def test_ingest_connections_beyond_the_limit_are_refused(server):
    s = server()
    s.ingestFactory.maxConnections = 3
    peers = [Silent(stall=False) for _ in range(5)]
    for p in peers:
        yield connect(s.ingestPort, p)
    yield waitFor(lambda: ingestCount(
        s.ingestFactory, "numberok_ingest_connections_refused_total") == 2)
