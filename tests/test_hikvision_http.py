"""
C{POST /api/cameras/hikvision} over real HTTP: the two Hikvision samples
with a token or Basic, refusals (no credentials, wrong token, a 50 MB body
before it is read, an XML bomb), heartbeats and unknown plates counted;
and one alarm through the real analytics gives Detected and one Lost.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import implementer

from helpers import ListSink, Received, jpegBytes, synchronous
from numberok import settings as S
from numberok.analytics import Analytics
from numberok.events import EventState
from numberok.interfaces import IEventSink
from numberok.metrics import Metrics
from numberok.threads import ServiceThreads
from numberok.web import auth
from numberok.web.cameras import BodyLimitRequest, CamerasService

SAMPLES = Path(__file__).parent / "samples"
TOKEN = "cam-7f3a9c2e51d04b"
PASSWORD = "correct horse 1"
BOUNDARY = "hikAlarmBoundary0x5f3a"
TIMEOUT = 5


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def multipartBody(xml: bytes, pictures: dict[str, bytes]) -> tuple[str, bytes]:
    body = b""
    for name, kind, data in [("anpr.xml", "application/xml", xml)] + [
            (n, "image/jpeg", d) for n, d in pictures.items()]:
        body += ('--%s\r\nContent-Disposition: form-data; name="%s"; '
                 'filename="%s"\r\nContent-Type: %s\r\n\r\n'
                 % (BOUNDARY, name, name, kind)).encode() + data + b"\r\n"
    return ("multipart/form-data; boundary=" + BOUNDARY,
            body + b"--%s--\r\n" % (BOUNDARY.encode(),))


def mounted(push) -> Resource:
    """A root with C{push} at C{/api/cameras/hikvision}, as the admin
    tree mounts it."""
    root, api, cameras = Resource(), Resource(), Resource()
    root.putChild(b"api", api)
    api.putChild(b"cameras", cameras)
    cameras.putChild(b"hikvision", push)
    return root


def makeStore() -> S.SettingsStore:
    return S.SettingsStore(S.Settings().withChanges({
        "Cameras.Token": TOKEN,
        "Admin.PasswordHash": auth.hashPassword(PASSWORD, iterations=1000)}))


class Camera:
    """A cameras service behind a real loopback site."""

    def __init__(self, sink, reactor) -> None:
        self.store = makeStore()
        self.metrics = Metrics()
        self.passwordThreads = ServiceThreads("test-passwords",
                                              reactor=reactor)
        self.passwordThreads.start()
        passwords = auth.PasswordChecker(
            self.store, reactor, self.passwordThreads,
            auth.LoginThrottle(reactor, baseDelay=0.01))
        self.service = CamerasService(self.store, passwords, sink,
                                      self.metrics, reactor)
        self.service.startService()
        self.site = Site(mounted(self.service.resource),
                         requestFactory=BodyLimitRequest)
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.url = "http://127.0.0.1:%d/api/cameras/hikvision" % (
            self.port.getHost().port,)

    def alarms(self, kind: str) -> float:
        return self.metrics.value("numberok_camera_alarms_total", kind=kind)

    def refused(self, reason: str) -> float:
        return self.metrics.value("numberok_camera_refused_total",
                                  reason=reason)

    async def stop(self) -> None:
        await self.port.stopListening()
        await self.service.stopService()
        await self.passwordThreads.stop()


@pytest_twisted.async_yield_fixture
async def cameras():
    from twisted.internet import reactor
    started = []

    def start(sink) -> Camera:
        camera = Camera(sink, reactor)
        started.append(camera)
        return camera

    yield start
    for camera in started:
        await camera.stop()


async def post(url: str, body: bytes, contentType: str = "application/xml",
               headers=None) -> tuple[int, bytes]:
    from twisted.internet import reactor
    from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool
    from twisted.web.http_headers import Headers
    agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
    fields = {b"Content-Type": [contentType.encode()]}
    for name, value in (headers or {}).items():
        fields[name.encode()] = [value.encode()]
    d = agent.request(b"POST", url.encode(), Headers(fields),
                      FileBodyProducer(io.BytesIO(body)))
    d.addTimeout(TIMEOUT, reactor)
    response = await d
    collector = Received()
    response.deliverBody(collector)
    collector.closed.addTimeout(TIMEOUT, reactor)
    return response.code, await collector.closed


def basic(password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(
        ("admin:" + password).encode()).decode()}


@pytest_twisted.ensureDeferred
async def test_bare_xml_sample_with_token_gives_a_read(cameras):
    sink = ListSink()
    camera = cameras(sink)
    code, body = await post(camera.url + "?token=" + TOKEN,
                            sample("hikvision_anpr.xml"))
    assert (code, body) == (200, b'{"kind": "anpr"}')
    [read] = sink.reads
    assert (read.plate, read.zone, read.perVehicle) == ("A123BC77", 1, True)
    assert camera.alarms("anpr") == 1


@pytest_twisted.ensureDeferred
async def test_multipart_sample_with_basic_gives_a_read_with_its_picture(
        cameras):
    sink = ListSink()
    camera = cameras(sink)
    vehicle = jpegBytes(size=(640, 360))
    kind, body = multipartBody(sample("hikvision_anpr_vehicle.xml"), {
        "licensePlatePicture.jpg": jpegBytes(size=(96, 24)),
        "vehiclePicture.jpg": vehicle})
    code, answer = await post(camera.url, body, kind, basic(PASSWORD))
    assert code == 200, answer
    [read] = sink.reads
    assert read.jpeg == vehicle and read.bbox == (256, 252, 128, 29)
    assert (read.plate, read.channel) == ("BMW1234", 1)


@pytest_twisted.ensureDeferred
async def test_without_credentials_is_401_and_nothing_is_read(cameras):
    sink = ListSink()
    camera = cameras(sink)
    code, body = await post(camera.url, sample("hikvision_anpr.xml"))
    assert code == 401 and b'"errors"' in body and b"token" in body
    assert sink.reads == [] and camera.refused("unauthorized") == 1


@pytest.mark.parametrize("query, headers", [
    ("?token=wrong", {}), ("?token=", {}), ("", basic("wrong password")),
    ("", {"Authorization": "Bearer " + TOKEN})],
    ids=["wrong-token", "empty-token", "wrong-password", "other-scheme"])
@pytest_twisted.ensureDeferred
async def test_wrong_credentials_are_401(cameras, query, headers):
    sink = ListSink()
    camera = cameras(sink)
    code, body = await post(camera.url + query, sample("hikvision_anpr.xml"),
                            headers=headers)
    assert code == 401, body
    assert sink.reads == [] and camera.refused("unauthorized") == 1


@pytest_twisted.ensureDeferred
async def test_unknown_plate_is_answered_200_counted_and_not_read(cameras):
    sink = ListSink()
    camera = cameras(sink)
    xml = sample("hikvision_anpr.xml").replace(b">A123BC77</licensePlate>",
                                               b">unknown</licensePlate>")
    code, body = await post(camera.url + "?token=" + TOKEN, xml)
    assert (code, body) == (200, b'{"kind": "unknown_plate"}')
    assert sink.reads == [] and camera.alarms("unknown_plate") == 1


@pytest_twisted.ensureDeferred
async def test_heartbeat_is_answered_200_and_counted(cameras):
    sink = ListSink()
    camera = cameras(sink)
    code, _ = await post(camera.url + "?token=" + TOKEN,
                         sample("hikvision_heartbeat.xml"))
    assert code == 200 and camera.alarms("heartbeat") == 1
    assert sink.reads == []


@pytest_twisted.ensureDeferred
async def test_xml_bomb_is_400_and_never_expanded(cameras):
    sink = ListSink()
    camera = cameras(sink)
    bomb = (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
            b"<EventNotificationAlert><eventType>ANPR</eventType><ANPR>"
            b"<licensePlate>&c;</licensePlate></ANPR>"
            b"</EventNotificationAlert>")
    code, body = await post(camera.url + "?token=" + TOKEN, bomb)
    assert code == 400 and b'"xml"' in body
    assert sink.reads == [] and camera.refused("invalid") == 1


@pytest_twisted.ensureDeferred
async def test_50_mb_body_is_refused_with_413_before_it_is_sent(cameras):
    from twisted.internet import reactor
    from twisted.internet.endpoints import (TCP4ClientEndpoint,
                                            connectProtocol)
    sink = ListSink()
    camera = cameras(sink)
    client = Received()
    await connectProtocol(TCP4ClientEndpoint(
        reactor, "127.0.0.1", camera.port.getHost().port), client)
    # Only the headers and the first 64 KiB of the 50 MB are ever sent.
    client.transport.write(
        b"POST /api/cameras/hikvision?token=%s HTTP/1.1\r\n"
        b"Host: camera\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        b"Content-Length: %d\r\n\r\n" % (TOKEN.encode(), 50 * 1024 * 1024)
        + b"\0" * 65536)
    client.closed.addTimeout(TIMEOUT, reactor)
    answer = await client.closed
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.endswith(b'{"errors": {"body": "larger than 8388608 bytes"}}')
    assert sink.reads == []


def test_chunked_body_streaming_past_the_limit_is_refused_in_memory():
    sink = ListSink()
    service = CamerasService(makeStore(), None, sink, runInThread=synchronous)

    class Small(BodyLimitRequest):
        maxBody = 1000
    channel = Site(mounted(service.resource),
                   requestFactory=Small).buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    channel.dataReceived(
        b"POST /api/cameras/hikvision?token=%s HTTP/1.1\r\nHost: c\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" % (TOKEN.encode(),))
    for _ in range(3):
        channel.dataReceived(b"200\r\n" + b"<" * 0x200 + b"\r\n")
    assert transport.value().startswith(b"HTTP/1.1 413 ")
    assert transport.disconnecting and sink.reads == []


def test_a_get_is_405_allowing_post_and_counted():
    metrics = Metrics()
    service = CamerasService(makeStore(), None, ListSink(), metrics,
                             runInThread=synchronous)
    channel = Site(service.resource).buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    channel.dataReceived(b"GET /api/cameras/hikvision?token=%s HTTP/1.1\r\n"
                         b"Host: c\r\n\r\n" % (TOKEN.encode(),))
    head, _, body = transport.value().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 ") and b"Allow: POST" in head
    assert body == b'{"errors": {"method": "send the alarm with POST"}}'
    assert metrics.value("numberok_camera_refused_total",
                         reason="method") == 1


@implementer(IEventSink)
class EventList(list):
    def publish(self, event) -> None:
        self.append(event)


@pytest_twisted.ensureDeferred
async def test_one_alarm_gives_detected_and_exactly_one_lost_with_picture(
        cameras):
    clock = Clock()
    clock.advance(1764000000)
    events = EventList()
    analytics = Analytics(makeStore(), events, reactor=clock)
    analytics.startService()
    camera = cameras(analytics)
    frame = jpegBytes(size=(640, 360))
    kind, body = multipartBody(sample("hikvision_anpr.xml"), {
        "detectionPicture.jpg": frame})
    code, _ = await post(camera.url + "?token=" + TOKEN, body, kind)
    assert code == 200
    assert [e.state for e in events] == [EventState.DETECTED]
    clock.advance(60)
    assert [e.state for e in events] == [EventState.DETECTED,
                                         EventState.LOST]
    lost = events[-1]
    assert lost.plate == "A123BC77" and lost.frame == frame
    assert lost.bbox is None or lost.bbox == (264, 236, 75, 15)
    clock.advance(60)
    assert len(events) == 2
    analytics.stopService()
