"""
The ingest port's line handling, in memory: fed in one chunk and byte by
byte alike, bad lines answered with their number while the connection goes
on, over-long lines refused without losing the lines around them.
"""

from __future__ import annotations

import json

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from helpers import ListSink
from numberok.sources.ingest import IngestFactory

GOOD = b'{"plate": "A123BC77", "zone": 1, "confidence": 0.9}'


def connect():
    clock = Clock()
    clock.advance(1764000000)
    sink = ListSink()
    factory = IngestFactory(sink, reactor=clock)
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4000))
    transport = StringTransport()
    protocol.makeConnection(transport)
    return factory, protocol, transport, sink


def replies(transport):
    return [json.loads(line) for line in transport.value().splitlines()]


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_lines_give_the_same_reads_in_one_chunk_or_byte_by_byte(chunk):
    factory, protocol, transport, sink = connect()
    data = GOOD + b"\n" + b'{"plate": 5}\r\n' + GOOD.replace(b"1,", b"2,") + b"\n"
    if chunk is None:
        protocol.dataReceived(data)
    else:
        for i in range(0, len(data), chunk):
            protocol.dataReceived(data[i:i + chunk])
    assert [(r.plate, r.zone) for r in sink.reads] == [("A123BC77", 1),
                                                       ("A123BC77", 2)]
    [error] = replies(transport)
    assert error["line"] == 2 and error["error"].startswith("plate")
    assert factory.metrics.value("numberok_read_errors_total",
                                 source="ingest") == 1
    assert not transport.disconnecting


def test_over_long_line_is_refused_and_the_next_lines_still_count():
    factory, protocol, transport, sink = connect()
    protocol.MAX_LENGTH = 100
    protocol.dataReceived(GOOD + b"\n" + b"x" * 150)
    protocol.dataReceived(b"y" * 150 + b"\n" + GOOD + b"\n")
    assert len(sink.reads) == 2
    [error] = replies(transport)
    assert error == {"error": "line longer than 100 bytes", "line": 2}


def test_over_long_complete_line_in_one_chunk_keeps_its_neighbours():
    factory, protocol, transport, sink = connect()
    protocol.MAX_LENGTH = 100
    protocol.dataReceived(GOOD + b"\n" + b"z" * 150 + b"\n" + GOOD + b"\n")
    assert len(sink.reads) == 2
    assert [e["line"] for e in replies(transport)] == [2]


def test_blank_lines_are_skipped_without_an_answer():
    factory, protocol, transport, sink = connect()
    protocol.dataReceived(b"\n\r\n   \n" + GOOD + b"\n")
    assert len(sink.reads) == 1
    assert transport.value() == b""


def test_reads_say_they_came_from_ingest():
    factory, protocol, transport, sink = connect()
    protocol.dataReceived(GOOD + b"\n")
    assert [r.source for r in sink.reads] == ["ingest"]


def test_many_lines_in_one_chunk_with_a_partial_tail():
    factory, protocol, transport, sink = connect()
    lines = [b'{"plate": "A%03dBC77"}' % (n,) for n in range(50)]
    data = b"\n".join(lines)
    protocol.dataReceived(data[:-5])
    assert len(sink.reads) == 49
    protocol.dataReceived(data[-5:] + b"\n")
    assert [r.plate for r in sink.reads] == [
        "A%03dBC77" % (n,) for n in range(50)]


def test_line_refused_as_too_long_while_still_arriving_is_answered_once():
    factory, protocol, transport, sink = connect()
    protocol.MAX_LENGTH = 100
    for _ in range(5):
        protocol.dataReceived(b"x" * 60)
    protocol.dataReceived(b"x\n" + GOOD + b"\n")
    assert replies(transport) == [
        {"error": "line longer than 100 bytes", "line": 1}]
    assert len(sink.reads) == 1


def test_recognizer_over_the_cap_is_refused_and_counted():
    factory, protocol, transport, sink = connect()
    factory.maxConnections = 1
    address = IPv4Address("TCP", "127.0.0.1", 4001)
    assert factory.buildProtocol(address) is None
    assert factory.metrics.value(
        "numberok_ingest_connections_refused_total") == 1


def test_time_defaults_to_the_reactor_clock():
    factory, protocol, transport, sink = connect()
    protocol.dataReceived(GOOD + b"\n")
    assert sink.reads[0].timeMs == 1764000000 * 1000
