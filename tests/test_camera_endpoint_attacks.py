"""
Issue 21, "Camera endpoint and HTTP reads", over real HTTP on loopback
(the real server from conftest's C{adminServer}): what one sender's bodies
may not take from others, and how camera tokens are checked, throttled and
kept out of the logs.
"""

from __future__ import annotations

import threading

import pytest_twisted

from conftest import bounded, http


@pytest_twisted.ensureDeferred
async def test_a_settings_save_does_not_wait_for_busy_read_parsers(
        adminServer):
    stack = adminServer()
    admin = stack.admin
    gate = threading.Event()
    busy = [admin.readThreads.run(gate.wait, 10) for _ in range(4)]
    try:
        r = await http("PUT", stack.url + "/api/settings",
                       {"Analytics.SkipFirstResults": 2})
        assert r.code == 200, r.body
    finally:
        gate.set()
        for d in busy:
            await bounded(d, 10)


# -- tokens: one form, throttled, never logged (in memory, on a Clock) --------

import io  # noqa: E402

import pytest  # noqa: E402
from twisted.internet.address import IPv4Address  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402
from twisted.internet.testing import StringTransport  # noqa: E402
from twisted.logger import globalLogPublisher  # noqa: E402
from twisted.web.resource import Resource  # noqa: E402

from helpers import ListSink, synchronous  # noqa: E402
from numberok import settings as S  # noqa: E402
from numberok.metrics import Metrics  # noqa: E402
from numberok.settings import SettingsError  # noqa: E402
from numberok.threads import ServiceThreads  # noqa: E402
from numberok.web import auth  # noqa: E402
from numberok.web.cameras import CamerasService  # noqa: E402
from numberok.web.limits import AdminSite  # noqa: E402

TOKEN = "Zq8r-W2m_Kd5xT7p"
HEARTBEAT = (b"<EventNotificationAlert><eventType>videoloss</eventType>"
             b"</EventNotificationAlert>")


class CameraSite:
    """The cameras resource at its path in an admin site, on a Clock, with
    the access log and the log events kept."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.metrics = Metrics()
        store = S.SettingsStore(S.Settings().withChanges(
            {"Cameras.Token": TOKEN}))
        passwords = auth.PasswordChecker(
            store, self.clock, ServiceThreads("unused", reactor=self.clock),
            auth.LoginThrottle(self.clock), self.metrics)
        self.sink = ListSink()
        self.service = CamerasService(store, passwords, self.sink,
                                      self.metrics, self.clock,
                                      runInThread=synchronous)
        root, api, cameras = Resource(), Resource(), Resource()
        root.putChild(b"api", api)
        api.putChild(b"cameras", cameras)
        cameras.putChild(b"hikvision", self.service.resource)
        self.site = AdminSite(root, self.metrics, reactor=self.clock)
        self.accessLog = io.StringIO()
        self.site._logFile = self.accessLog
        self.site._logDateTime = "-"

    def post(self, target: bytes, host: str = "10.0.0.7") -> tuple[int, bytes]:
        channel = self.site.buildProtocol(IPv4Address("TCP", host, 4000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", host,
                                                             4000))
        channel.makeConnection(transport)
        channel.dataReceived(
            b"POST %s HTTP/1.1\r\nHost: c\r\nContent-Type: application/xml"
            b"\r\nContent-Length: %d\r\n\r\n" % (target, len(HEARTBEAT))
            + HEARTBEAT)
        head, _, body = transport.value().partition(b"\r\n\r\n")
        channel.connectionLost(None)
        return int(head.split(b" ", 2)[1]), head + b"\r\n\r\n" + body


PATH = b"/api/cameras/hikvision"


def test_the_documented_token_form_is_taken():
    camera = CameraSite()
    assert camera.post(PATH + b"?token=" + TOKEN.encode())[0] == 200


@pytest.mark.parametrize("query", [
    b"?x=1;token=%s", b"?to%%6Ben=%s", b"?TOKEN=%s", b"?token=%s&x=1",
    b"?x=1&token=%s", b"?token=%s&token=%s", b"?token=%s;x=1"])
def test_any_other_token_form_is_refused_naming_the_token(query):
    camera = CameraSite()
    target = PATH + query.replace(b"%s", TOKEN.encode()).replace(b"%%", b"%")
    code, answer = camera.post(target)
    assert code == 400, answer
    assert b'"token"' in answer and b"?token=" in answer
    assert camera.sink.reads == [] and camera.service.resource is not None


def test_a_token_in_the_path_is_not_taken():
    camera = CameraSite()
    code, _ = camera.post(PATH + b"/" + TOKEN.encode())
    assert code == 404


def test_wrong_tokens_are_throttled_per_address_like_passwords():
    camera = CameraSite()
    assert camera.post(PATH + b"?token=guess-guess-guess1")[0] == 401
    code, answer = camera.post(PATH + b"?token=" + TOKEN.encode())
    assert code == 429 and b"Retry-After: 1" in answer
    assert camera.post(PATH + b"?token=" + TOKEN.encode(),
                       host="10.0.0.8")[0] == 200
    camera.clock.advance(1.01)
    assert camera.post(PATH + b"?token=guess-guess-guess2")[0] == 401
    camera.clock.advance(1.01)
    assert camera.post(PATH + b"?token=" + TOKEN.encode())[0] == 429
    camera.clock.advance(1.0)
    assert camera.post(PATH + b"?token=" + TOKEN.encode())[0] == 200
    assert camera.metrics.value("numberok_camera_refused_total",
                                reason="throttled") == 2


def test_a_token_reaches_no_log_line_whatever_its_form():
    camera = CameraSite()
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        for target in [b"?token=%s", b"?x=1;token=%s", b"?to%%6Ben=%s",
                       b"?TOKEN=%s", b"/%s", b"?%s", b"?token=%s-wrong"]:
            camera.post(PATH + target.replace(b"%s", TOKEN.encode())
                        .replace(b"%%", b"%"))
            camera.clock.advance(60)
        camera.post(b"/" + PATH + b"?token=" + TOKEN.encode())
    finally:
        globalLogPublisher.removeObserver(events.append)
    logged = camera.accessLog.getvalue()
    assert logged.count("\n") >= 7
    assert TOKEN not in logged
    assert TOKEN not in repr(events)


@pytest.mark.parametrize("value", ["short", "a" * 15, "sixteen chars ok",
                                   "sixteen/chars/ok"])
def test_a_camera_token_shorter_than_16_or_not_url_safe_is_refused(value):
    with pytest.raises(SettingsError) as caught:
        S.Settings().withChanges({"Cameras.Token": value})
    assert "16" in str(caught.value)


def test_a_url_safe_token_of_16_characters_or_none_is_taken():
    for value in ["", TOKEN, "a.b~c_d-e" + "f" * 7]:
        assert S.Settings().withChanges(
            {"Cameras.Token": value})["Cameras.Token"] == value


@pytest_twisted.ensureDeferred
async def test_the_page_offers_a_fresh_generated_token_the_settings_take(
        adminServer):
    import re
    stack = adminServer()
    tokens = []
    for _ in range(2):
        page = (await http("GET", stack.url + "/")).body.decode()
        [token] = re.findall(
            r'id="camera-token-generate"[^>]*data-token="([^"]+)"|'
            r'data-token="([^"]+)"[^>]*id="camera-token-generate"', page)
        tokens.append(token[0] or token[1])
    assert tokens[0] != tokens[1]
    r = await http("PUT", stack.url + "/api/settings",
                   {"Cameras.Token": tokens[0]})
    assert r.code == 200, r.body


def test_a_flood_of_wrong_tokens_writes_a_few_log_lines_not_two_each():
    camera = CameraSite()
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        for n in range(1000):
            camera.post(PATH + b"?token=guess-guess-guess-%04d" % (n,))
            camera.clock.advance(0.001)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert camera.metrics.value("numberok_camera_refused_total",
                                reason="throttled") == 999
    assert camera.accessLog.getvalue().count("\n") == 1
    warnings = [e for e in events if e.get("log_level") is not None
                and e["log_level"].name == "warn"]
    assert len(warnings) == 2


@pytest.mark.parametrize("uri, logged", [
    (b"/api/cameras/hikvision?token=" + TOKEN.encode(),
     b"/api/cameras/hikvision?token=-"),
    (b"/api/cameras/hikvision/" + TOKEN.encode() + b"/x",
     b"/api/cameras/hikvision/-"),
    (b"//api/cameras/hikvision?to%6Ben=" + TOKEN.encode() + b";x=1",
     b"//api/cameras/hikvision??=-&x=-"),
    (b"/api/events?" + TOKEN.lower().encode(), b"/api/events??"),
    (b"/api/events?since_id=5&limit=2", b"/api/events?since_id=-&limit=-")])
def test_the_access_log_sees_names_of_parameters_but_no_values(uri, logged):
    from numberok.web.tokens import redactedURI
    assert redactedURI(uri) == logged
