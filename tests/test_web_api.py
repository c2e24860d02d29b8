"""
The admin JSON API over real HTTP on loopback: settings validation,
persistence across a restart, live rebind of the event port, disconnect of
the right socket, recent events.  The server is the real one, built by
L{numberok.build.buildServer} (conftest's C{adminServer}), on 127.0.0.1
port 0.
"""

from __future__ import annotations

import io
import os
import re
import socket

import pytest
import pytest_twisted

from conftest import (ADMIN_PASSWORD, bounded, connectTo, freePort, http,
                      waitFor)
from helpers import Collector, jpegBytes, makeEvent
from numberok import settings as S
from numberok.metrics import CONTENT_TYPE_LATEST
from numberok.web import auth
from numberok.web.recent import RecentEvents

# -- settings ----------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_get_settings_shows_values_zones_schema_and_the_bound_port(
        adminServer):
    stack = adminServer()
    r = await http("GET", stack.url + "/api/settings")
    assert r.code == 200
    doc = r.json()
    assert doc["settings"]["NetServer.Port"] == 7700
    assert doc["settings"]["NetServer.Enable"] is True
    assert doc["zones"] == [{"channel": 0, "zone": 0, "LossIntervalSec": 5.0,
                             "InDirection": "down"}]
    assert doc["schema"]["NetServer.AttachedScreenshotsQuality"]["allowed"] \
        == "10..100"
    assert doc["listening"]["port"] == stack.events.boundPort
    assert "Admin.PasswordHash" not in doc["settings"]
    assert doc["passwordSet"] is False


@pytest_twisted.ensureDeferred
async def test_invalid_put_answers_every_error_and_writes_nothing(adminServer):
    stack = adminServer()
    before = open(stack.path, "rb").read()
    r = await http("PUT", stack.url + "/api/settings", {
        "NetServer.Port": 70000,
        "NetServer.AttachedScreenshotsQuality": 5,
        "NetServer.AttachScreenshotsToEvents": True,
        "Zone:0:0.InDirection": "sideways",
        "Bogus.Key": 1})
    assert r.code == 400
    errors = r.json()["errors"]
    assert set(errors) == {"NetServer.Port",
                           "NetServer.AttachedScreenshotsQuality",
                           "Zone:0:0.InDirection", "Bogus.Key"}
    assert "out of range 1..65535" in errors["NetServer.Port"]
    assert open(stack.path, "rb").read() == before
    assert stack.store.current["NetServer.AttachScreenshotsToEvents"] is False


@pytest_twisted.ensureDeferred
async def test_put_that_is_not_a_json_object_is_400(adminServer):
    stack = adminServer()
    r = await http("PUT", stack.url + "/api/settings", b"[1, 2]",
                   {"Content-Type": "application/json"})
    assert r.code == 400 and "body" in r.json()["errors"]
    r = await http("PUT", stack.url + "/api/settings", b"{nope",
                   {"Content-Type": "application/json"})
    assert r.code == 400 and "not JSON" in r.json()["errors"]["body"]


@pytest_twisted.ensureDeferred
async def test_password_hash_cannot_be_set_over_the_api(adminServer):
    stack = adminServer()
    r = await http("PUT", stack.url + "/api/settings", {
        "Admin.PasswordHash": auth.hashPassword("whatever1", 1000)})
    assert r.code == 400
    assert "numberok-passwd" in r.json()["errors"]["Admin.PasswordHash"]


@pytest_twisted.ensureDeferred
async def test_saved_settings_survive_a_restart_and_keep_comments(
        adminServer, tmp_path):
    stack = adminServer()
    r = await http("PUT", stack.url + "/api/settings", {
        "NetServer.AttachedScreenshotsQuality": 80,
        "Analytics.SkipFirstResults": "2",
        "Zone:0:0": None,
        "Zone:3:1.LossIntervalSec": 2.5})
    assert r.code == 200, r.body
    doc = r.json()
    assert doc["settings"]["NetServer.AttachedScreenshotsQuality"] == 80
    assert doc["zones"] == [{"channel": 3, "zone": 1, "LossIntervalSec": 2.5,
                             "InDirection": "down"}]
    # Live: the parts read the store.
    assert stack.store.current["NetServer.AttachedScreenshotsQuality"] == 80
    # Persistent: a new store from the file (a restart) has the same.
    reloaded = S.load(stack.path)
    assert reloaded == stack.store.current
    text = open(stack.path).read()
    assert "; test settings -- this comment must survive saves" in text
    assert "AttachedScreenshotsQuality = 80 ; JPEG quality 10..100" in text
    assert "[Custom]\nkeep = me\n" in text
    assert "[Zone:0:0]" not in text
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []


@pytest_twisted.ensureDeferred
async def test_new_port_rebinds_the_event_server_live(adminServer):
    stack = adminServer()
    oldPort = stack.events.boundPort
    newPort = freePort()
    r = await http("PUT", stack.url + "/api/settings",
                   {"NetServer.Port": newPort})
    assert r.code == 200, r.body
    assert r.json()["listening"]["port"] == newPort
    client = await connectTo(newPort, Collector())
    await waitFor(lambda: stack.factory.connections())
    client.transport.loseConnection()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", oldPort), 2).close()
    assert S.load(stack.path)["NetServer.Port"] == newPort


@pytest_twisted.ensureDeferred
async def test_unusable_port_is_refused_and_the_old_port_kept(adminServer):
    stack = adminServer()
    oldPort = stack.events.boundPort
    before = open(stack.path, "rb").read()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        r = await http("PUT", stack.url + "/api/settings", {
            "NetServer.Port": busy,
            "NetServer.AttachedScreenshotsQuality": 90})
    assert r.code == 400
    message = r.json()["errors"]["NetServer.Port"]
    assert "cannot listen on port %d" % (busy,) in message
    assert stack.events.boundPort == oldPort
    assert stack.store.current["NetServer.Port"] == 7700
    assert stack.store.current["NetServer.AttachedScreenshotsQuality"] == 50
    assert open(stack.path, "rb").read() == before
    socket.create_connection(("127.0.0.1", oldPort), 2).close()


@pytest_twisted.ensureDeferred
async def test_enable_switch_stops_and_restarts_listening(adminServer):
    stack = adminServer()
    port = freePort()
    r = await http("PUT", stack.url + "/api/settings",
                   {"NetServer.Port": port})
    assert r.code == 200
    r = await http("PUT", stack.url + "/api/settings",
                   {"NetServer.Enable": False})
    assert r.code == 200 and r.json()["listening"]["port"] is None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), 2).close()
    r = await http("PUT", stack.url + "/api/settings",
                   {"NetServer.Enable": True})
    assert r.json()["listening"]["port"] == port
    socket.create_connection(("127.0.0.1", port), 2).close()


# -- connections -------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_disconnect_closes_the_right_socket(adminServer):
    stack = adminServer()
    port = stack.events.boundPort
    first = await connectTo(port, Collector())
    second = await connectTo(port, Collector())
    await waitFor(lambda: sum(c.subscribed for c in
                            stack.factory.connections()) == 2)
    r = await http("GET", stack.url + "/api/connections")
    rows = r.json()["connections"]
    assert len(rows) == 2 and all(row["subscribed"] for row in rows)
    firstPort = first.transport.getHost().port
    row = next(row for row in rows if row["port"] == firstPort)
    assert row["host"] == "127.0.0.1"

    r = await http("DELETE", stack.url + "/api/connections/%d" % (row["id"],))
    assert r.code == 204
    await bounded(first.closed, 5)
    assert not second.closed.called
    r = await http("GET", stack.url + "/api/connections")
    assert [c["port"] for c in r.json()["connections"]] == [
        second.transport.getHost().port]

    r = await http("DELETE", stack.url + "/api/connections/%d" % (row["id"],))
    assert r.code == 404 and "no connection" in r.json()["errors"]["id"]
    r = await http("DELETE", stack.url + "/api/connections/abc")
    assert r.code == 404
    second.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_unknown_path_and_wrong_method_answer_json(adminServer):
    stack = adminServer()
    r = await http("GET", stack.url + "/api/nothing")
    assert r.code == 404 and "path" in r.json()["errors"]
    r = await http("POST", stack.url + "/api/settings", {})
    assert r.code == 405 and r.header("Allow") == "GET, PUT"


# -- recent events -----------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_recent_events_come_newest_first_with_thumbnails(adminServer):
    stack = adminServer()
    frame = jpegBytes(size=(640, 480))
    stack.recent.publish(makeEvent(runtimeId=1, plate="A111AA77"))
    stack.recent.publish(makeEvent(runtimeId=2, plate="B222BB77",
                                   frame=frame))
    await waitFor(lambda: stack.recent.recent()[0].thumbnail is not None)
    r = await http("GET", stack.url + "/api/events/recent")
    events = r.json()["events"]
    assert [e["plate"] for e in events] == ["B222BB77", "A111AA77"]
    assert events[1]["thumbnail"] is None
    r = await http("GET", stack.url + events[0]["thumbnail"])
    assert r.code == 200 and r.header("Content-Type") == "image/jpeg"
    from PIL import Image
    assert max(Image.open(io.BytesIO(r.body)).size) <= 192


def test_recent_events_is_an_event_sink_keeping_the_last_ones():
    from zope.interface.verify import verifyObject
    from numberok.interfaces import IEventSink
    recent = RecentEvents(size=3)
    assert verifyObject(IEventSink, recent)
    for i in range(5):
        recent.publish(makeEvent(runtimeId=i, plate="P%d" % (i,)))
    assert [e.event.plate for e in recent.recent()] == ["P4", "P3", "P2"]
    assert recent.thumbnail(1) is None


@pytest_twisted.ensureDeferred
async def test_events_of_one_track_share_one_thumbnail(adminServer):
    stack = adminServer()
    frame = jpegBytes(size=(320, 240))
    for state in ("Detected", "Updated", "Lost"):
        from numberok.events import EventState
        stack.recent.publish(makeEvent(EventState(state), runtimeId=9,
                                       frame=frame))
    await waitFor(lambda: all(e.thumbnail for e in stack.recent.recent()))
    thumbs = {id(e.thumbnail) for e in stack.recent.recent()}
    assert len(thumbs) == 1


@pytest_twisted.ensureDeferred
async def test_frame_that_is_not_an_image_gets_no_thumbnail(adminServer):
    stack = adminServer()
    stack.recent.publish(makeEvent(frame=b"\xff\xd8 broken"))
    stack.recent.publish(makeEvent(runtimeId=2, frame=jpegBytes()))
    await waitFor(lambda: stack.recent.recent()[0].thumbnail is not None)
    assert stack.recent.recent()[1].thumbnail is None


@pytest_twisted.ensureDeferred
async def test_page_escapes_text_from_outside(adminServer):
    stack = adminServer()
    stack.recent.publish(makeEvent(plate="<script>x</script>"))
    r = await http("GET", stack.url + "/")
    assert r.code == 200
    page = r.body.decode("utf-8")
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert re.search(r'name="NetServer.Port"[^>]*value="7700"', page) or \
        re.search(r'value="7700"[^>]*name="NetServer.Port"', page)


@pytest_twisted.ensureDeferred
async def test_page_says_when_the_live_port_differs_from_the_saved_one(adminServer):
    # The stack listens on a free port while the file says 7700, as a
    # server started with --port does.
    stack = adminServer()
    r = await http("GET", stack.url + "/")
    assert ("Listening now on %d, set by --port" % (stack.events.boundPort,)
            in r.body.decode("utf-8"))


# -- metrics and error shapes ------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_metrics_need_the_api_password_and_expose_the_registry(adminServer):
    stack = adminServer(password=ADMIN_PASSWORD)
    metrics = stack.admin.resource.metrics
    metrics.connectionsRefused.labels(reason="limit").inc(3)
    r = await http("GET", stack.url + "/metrics")
    assert r.code == 401 and r.header("WWW-Authenticate").startswith("Basic")
    assert "Authorization" in r.json()["errors"]
    r = await http("GET", stack.url + "/metrics", headers=stack.basic())
    assert r.code == 200
    assert r.header("Content-Type") == CONTENT_TYPE_LATEST
    assert ('numberok_connections_refused_total{reason="limit"} 3.0'
            in r.body.decode())


@pytest_twisted.ensureDeferred
async def test_metrics_are_open_on_loopback_without_a_password(adminServer):
    stack = adminServer()
    r = await http("GET", stack.url + "/metrics")
    assert r.code == 200 and b"numberok_connections " in r.body


@pytest_twisted.ensureDeferred
async def test_connection_counters_come_from_the_metrics_registry(adminServer):
    stack = adminServer()
    metrics = stack.admin.resource.metrics
    metrics.connectionsAccepted.inc(4)
    metrics.connectionsRefused.labels(reason="not_allowed").inc()
    metrics.protocolErrors.labels(reason="handshake_timeout").inc(2)
    metrics.protocolErrors.labels(reason="bad_packet").inc()
    metrics.readErrors.labels(source="http").inc(5)
    r = await http("GET", stack.url + "/api/connections")
    assert r.json()["counters"] == {
        "accepted": 4, "refusedLimit": 0, "refusedNotAllowed": 1,
        "handshakeTimeouts": 2, "protocolErrors": 1, "httpReads": 0,
        "httpBadRequests": 5}
    r = await http("GET", stack.url + "/live")
    assert ("Accepted 4 · refused (limit) 0 · refused (not allowed) 1"
            in r.body.decode())


@pytest_twisted.ensureDeferred
async def test_refused_http_reads_are_counted_in_the_registry(adminServer):
    stack = adminServer()
    r = await http("POST", stack.url + "/api/reads", {"plate": ""})
    assert r.code == 400 and list(r.json()["errors"]) == ["plate"]
    assert stack.admin.resource.metrics.value(
        "numberok_read_errors_total", source="http") == 1


@pytest_twisted.ensureDeferred
async def test_settings_body_that_is_not_json_is_415(adminServer):
    stack = adminServer()
    r = await http("PUT", stack.url + "/api/settings", b"Port=1",
                   {"Content-Type": "text/plain"})
    assert r.code == 415
    assert "application/json" in r.json()["errors"]["Content-Type"]


@pytest_twisted.ensureDeferred
async def test_huge_integer_is_judged_by_settings_validation(adminServer):
    stack = adminServer()
    r = await http("PUT", stack.url + "/api/settings",
                   b'{"NetServer.Port": ' + b"9" * 5000 + b"}",
                   {"Content-Type": "application/json"})
    assert r.code == 400
    assert list(r.json()["errors"]) == ["NetServer.Port"]
    assert "not JSON" not in r.json()["errors"]["NetServer.Port"]


@pytest_twisted.ensureDeferred
async def test_every_error_answers_errors_by_field(adminServer):
    stack = adminServer(password=ADMIN_PASSWORD)
    for method, path, code in (("GET", "/nothing", 404),
                               ("DELETE", "/api/settings", 405),
                               ("GET", "/api/events/7/thumbnail", 404),
                               ("GET", "/api/events/7/frame.jpg", 404),
                               ("POST", "/metrics", 405)):
        r = await http(method, stack.url + path, headers=stack.basic())
        assert r.code == code, path
        errors = r.json()["errors"]
        assert errors and all(isinstance(v, str) for v in errors.values())
