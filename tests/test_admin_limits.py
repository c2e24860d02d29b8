"""
The admin port's defences before any resource runs (numberok.web.limits),
in memory on a Clock: body limits and types decided from the request head,
no multipart parsing by Twisted, connection caps in total and per address,
and a deadline for a whole request however it trickles.
"""

from __future__ import annotations

import json

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource

from numberok.metrics import Metrics
from numberok.web.ingest import MAX_BODY_BYTES
from numberok.web.limits import SMALL_BODY_BYTES, AdminChannel, AdminSite

BOUNDARY = b"floodBoundary"


class Recorder(Resource):
    """A leaf resource standing for the admin tree: it keeps what reached
    it (path, parsed args, body)."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[bytes, dict, bytes]] = []

    def render(self, request) -> bytes:
        self.seen.append((request.path, dict(request.args),
                          request.content.read()))
        return b"ok"


class Harness:
    def __init__(self, isOpen: bool = False) -> None:
        self.clock = Clock()
        self.metrics = Metrics()
        self.resource = Recorder()
        self.site = AdminSite(self.resource, self.metrics,
                              isOpen=lambda: isOpen, reactor=self.clock)

    def connect(self, host: str = "10.0.0.1"):
        """@return: (channel, transport), or (None, None) when refused."""
        channel = self.site.buildProtocol(IPv4Address("TCP", host, 40000))
        if channel is None:
            return None, None
        transport = StringTransport(
            peerAddress=IPv4Address("TCP", host, 40000))
        channel.makeConnection(transport)
        return channel, transport

    def refused(self, reason: str) -> float:
        return self.metrics.value("numberok_admin_refused_total",
                                  reason=reason)


def close(channel) -> None:
    channel.connectionLost(Failure(ConnectionDone()))


def head(method: bytes, path: bytes, length=None, kind: bytes = b"",
         extra: bytes = b"") -> bytes:
    lines = [b"%s %s HTTP/1.1" % (method, path), b"Host: 127.0.0.1"]
    if kind:
        lines.append(b"Content-Type: " + kind)
    if length is None:
        lines.append(b"Transfer-Encoding: chunked")
    else:
        lines.append(b"Content-Length: %d" % (length,))
    if extra:
        lines.append(extra)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def flood(parts: int) -> bytes:
    part = (b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; "
            b'name="p"\r\n\r\nx\r\n')
    return part * parts + b"--" + BOUNDARY + b"--\r\n"


def status(transport) -> int:
    return int(transport.value().split(b" ", 2)[1])


def errors(transport) -> dict:
    return json.loads(transport.value().split(b"\r\n\r\n", 1)[1])["errors"]


# -- body limits and types ----------------------------------------------------

def test_multipart_flood_to_login_is_413_from_its_head_and_never_parsed():
    h = Harness()
    channel, transport = h.connect()
    body = flood(200_000)
    channel.dataReceived(head(b"POST", b"/login", len(body),
                              b"multipart/form-data; boundary=" + BOUNDARY))
    assert status(transport) == 413
    assert "16384" in errors(transport)["body"]
    for i in range(0, len(body), 65536):
        channel.dataReceived(body[i:i + 65536])
    assert h.resource.seen == []
    assert transport.value().count(b"HTTP/1.1") == 1
    assert transport.disconnecting
    assert h.refused("body_too_large") == 1


def test_multipart_within_the_limit_is_not_parsed_into_args_by_twisted():
    h = Harness()
    channel, transport = h.connect()
    body = flood(200)
    assert len(body) < SMALL_BODY_BYTES
    channel.dataReceived(head(b"POST", b"/login", len(body),
                              b"multipart/form-data; boundary=" + BOUNDARY))
    channel.dataReceived(body)
    [(path, args, content)] = h.resource.seen
    assert path == b"/login" and args == {} and content == body


@pytest.mark.parametrize("chunk", [1, 7, 100_000])
def test_small_url_encoded_form_is_parsed_fed_in_any_chunks(chunk):
    h = Harness()
    channel, transport = h.connect()
    body = b"password=s3cret+pass&csrf=abc"
    data = head(b"POST", b"/login", len(body),
                b"application/x-www-form-urlencoded") + body
    for i in range(0, len(data), chunk):
        channel.dataReceived(data[i:i + chunk])
    [(_, args, _)] = h.resource.seen
    assert args == {b"password": [b"s3cret pass"], b"csrf": [b"abc"]}
    assert status(transport) == 200


def test_chunked_body_is_refused_while_it_streams_past_the_limit():
    h = Harness()
    channel, transport = h.connect()
    channel.dataReceived(head(b"POST", b"/login", None,
                              b"application/x-www-form-urlencoded"))
    chunk = b"a" * 4096
    for _ in range(3):
        channel.dataReceived(b"1000\r\n" + chunk + b"\r\n")
    assert transport.value() == b""
    channel.dataReceived(b"1000\r\n" + chunk + b"\r\n" + b"1\r\na\r\n")
    assert status(transport) == 413
    for _ in range(100):
        channel.dataReceived(b"1000\r\n" + chunk + b"\r\n")
    channel.dataReceived(b"0\r\n\r\n")
    assert h.resource.seen == [] and transport.disconnecting


def test_large_read_needs_credentials_in_its_head_while_a_password_is_set():
    h = Harness()
    size = 200_000
    channel, transport = h.connect()
    channel.dataReceived(head(b"POST", b"/api/reads", size,
                              b"application/json"))
    assert status(transport) == 413
    assert "without credentials" in errors(transport)["body"]

    channel, transport = h.connect()
    channel.dataReceived(head(b"POST", b"/api/reads", size,
                              b"application/json",
                              b"Authorization: Basic eDp5"))
    channel.dataReceived(b" " * size)
    assert status(transport) == 200 and len(h.resource.seen) == 1

    channel, transport = h.connect()
    channel.dataReceived(head(b"POST", b"/api/reads", MAX_BODY_BYTES + 1,
                              b"application/json",
                              b"Authorization: Basic eDp5"))
    assert status(transport) == 413


def test_large_read_needs_no_credentials_when_no_password_is_set():
    h = Harness(isOpen=True)
    channel, transport = h.connect()
    channel.dataReceived(head(b"POST", b"/api/reads", 200_000,
                              b"application/json"))
    channel.dataReceived(b" " * 200_000)
    assert status(transport) == 200


@pytest.mark.parametrize("path, kind", [
    (b"/api/reads", b"text/plain"), (b"/api/reads", b""),
    (b"/api/settings", b"text/plain; charset=utf-8"),
    (b"/api/settings", b"multipart/form-data; boundary=x")])
def test_json_endpoints_refuse_other_body_types_with_415_before_the_body(
        path, kind):
    h = Harness(isOpen=True)
    channel, transport = h.connect()
    channel.dataReceived(head(b"POST", path, 10, kind))
    assert status(transport) == 415
    assert "application/json" in errors(transport)["Content-Type"]
    channel.dataReceived(b'{"a": 1}  ')
    assert h.resource.seen == [] and transport.disconnecting
    assert h.refused("content_type") == 1


def test_expect_continue_of_a_refused_body_gets_no_100_continue():
    h = Harness()
    channel, transport = h.connect()
    channel.dataReceived(head(b"POST", b"/login", 10**9,
                              b"application/x-www-form-urlencoded",
                              b"Expect: 100-continue"))
    assert status(transport) == 413
    assert b"100 Continue" not in transport.value()


# -- connection caps ----------------------------------------------------------

def test_connections_past_the_per_address_cap_are_refused_until_one_closes():
    h = Harness()
    channels = [h.connect("10.0.0.1")[0]
                for _ in range(AdminSite.maxPerAddress)]
    assert None not in channels
    assert h.connect("10.0.0.1") == (None, None)
    assert h.refused("connections_per_address") == 1
    assert h.connect("10.0.0.2")[0] is not None
    close(channels[0])
    assert h.connect("10.0.0.1")[0] is not None


def test_connections_past_the_total_cap_are_refused_from_any_address():
    h = Harness()
    for i in range(AdminSite.maxConnections):
        assert h.connect("10.0.%d.%d" % (i // 10, i % 10))[0] is not None
    assert h.connect("10.9.9.9") == (None, None)
    assert h.refused("connections") == 1
    assert h.site.open == AdminSite.maxConnections


# -- the request deadline -----------------------------------------------------

def test_request_trickled_one_byte_a_second_gets_408_at_the_deadline():
    h = Harness()
    channel, transport = h.connect()
    data = head(b"GET", b"/", 0)
    for byte in data[:int(AdminChannel.requestDeadline) - 1]:
        channel.dataReceived(bytes([byte]))
        h.clock.advance(1)
    assert transport.value() == b"" and not transport.disconnecting
    h.clock.advance(1)
    assert status(transport) == 408 and "request" in errors(transport)
    assert transport.disconnecting
    assert h.refused("slow_request") == 1
    h.clock.advance(AdminChannel.abortTimeout)
    assert transport.disconnected  # aborted: the peer did not close


def test_idle_connection_is_closed_silently_at_the_deadline():
    h = Harness()
    channel, transport = h.connect()
    h.clock.advance(AdminChannel.requestDeadline)
    assert transport.disconnecting and transport.value() == b""


def test_each_request_on_a_kept_alive_connection_gets_a_fresh_deadline():
    h = Harness()
    channel, transport = h.connect()
    for _ in range(5):
        h.clock.advance(AdminChannel.requestDeadline - 1)
        channel.dataReceived(head(b"GET", b"/", 0))
    assert len(h.resource.seen) == 5 and not transport.disconnecting
    h.clock.advance(AdminChannel.requestDeadline)
    assert transport.disconnecting


def test_a_large_declared_body_gets_time_to_arrive_at_the_minimum_rate():
    h = Harness(isOpen=True)
    channel, transport = h.connect()
    size = 4 * 1024 * 1024
    channel.dataReceived(head(b"POST", b"/api/reads", size,
                              b"application/json"))
    allowed = AdminChannel.requestDeadline + size / AdminChannel.minUploadRate
    h.clock.advance(allowed - 1)
    channel.dataReceived(b" " * size)
    assert status(transport) == 200

    channel, transport = h.connect()
    channel.dataReceived(head(b"POST", b"/api/reads", size,
                              b"application/json"))
    h.clock.advance(allowed)
    assert status(transport) == 408


def test_systemd_unit_gives_room_for_every_port_and_the_admin_cap():
    import configparser
    from pathlib import Path
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(Path(__file__).parent.parent / "etc" / "numberok.service")
    assert int(unit["Service"]["LimitNOFILE"]) >= 4 * AdminSite.maxConnections


# -- issue 21, attack 2: bytes in flight across requests ----------------------

class Holder(Resource):
    """Keeps every request open until the test finishes it: bodies stay in
    flight, as while a parse thread is busy."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.held = []

    def render(self, request):
        from twisted.web.server import NOT_DONE_YET
        self.held.append(request)
        return NOT_DONE_YET


def holdingHarness(budget: int) -> Harness:
    h = Harness(isOpen=True)
    h.resource = Holder()
    h.site.resource = h.resource
    h.site.maxBodyBytesInFlight = budget
    return h


def postRead(h: Harness, size: int, chunked: bool = False):
    channel, transport = h.connect()
    channel.dataReceived(head(b"POST", b"/api/reads",
                              None if chunked else size, b"application/json"))
    if chunked:
        for _ in range(size // 100_000):
            channel.dataReceived(b"%x\r\n" % (100_000,) + b" " * 100_000
                                 + b"\r\n")
        channel.dataReceived(b"0\r\n\r\n")
    else:
        channel.dataReceived(b" " * size)
    return channel, transport


def test_bodies_past_the_bytes_in_flight_budget_are_503_until_one_is_done():
    h = holdingHarness(budget=700_000)
    postRead(h, 300_000)
    postRead(h, 300_000)
    channel, transport = postRead(h, 300_000)
    assert status(transport) == 503
    assert "at once" in errors(transport)["body"]
    assert b"Retry-After: 1" in transport.value()
    assert h.refused("bodies_in_flight") == 1
    assert len(h.resource.held) == 2
    h.resource.held[0].finish()
    postRead(h, 300_000)
    assert len(h.resource.held) == 3


def test_a_chunked_body_counts_against_the_budget_as_it_streams():
    h = holdingHarness(budget=700_000)
    postRead(h, 600_000)
    channel, transport = postRead(h, 300_000, chunked=True)
    assert status(transport) == 503
    close(channel)
    [held] = h.resource.held
    close(held.channel)
    postRead(h, 600_000, chunked=True)
    assert len(h.resource.held) == 2


def test_small_bodies_such_as_a_settings_save_are_never_held_by_the_budget():
    h = holdingHarness(budget=300_000)
    postRead(h, 300_000)
    channel, transport = h.connect()
    body = b'{"NetServer.Port": 7700}'
    channel.dataReceived(head(b"PUT", b"/api/settings", len(body),
                              b"application/json") + body)
    assert transport.value() == b"" and len(h.resource.held) == 2
