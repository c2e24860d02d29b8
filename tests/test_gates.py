"""
Gates (numberok.gates): the open decision (When, Movement), at most one
open per passage, the retry window on a Clock, and a real HTTP relay
(twisted.web on 127.0.0.1, started by the test) that is slow, fails, then
succeeds.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest_twisted
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.web import resource, server
from zope.interface import implementer
from zope.interface.verify import verifyObject

from numberok.events import EventState, MovementType, PlateEvent
from numberok.gates import GateService, HttpRelay, RelayError, fill
from numberok.interfaces import IEventSink, IRelay
from numberok.journal.query import SearchQuery
from numberok.lists import ListsService
from numberok.lists.accesslog import searchAccessLog
from numberok.metrics import Metrics
from numberok.settings import Settings, SettingsStore

from conftest import bounded, getReactor, waitFor


def gateSettings(url: str = "http://127.0.0.1:9/open?plate={plate}",
                 **keys) -> SettingsStore:
    changes = {"Gate:0:1.Url": url}
    changes.update({"Gate:0:1.%s" % k: v for k, v in keys.items()})
    return SettingsStore(Settings().withChanges(changes), None)


def event(runtimeId: int = 1, access: str = "granted",
          movement: MovementType = MovementType.IN,
          state: EventState = EventState.DETECTED, zone: int = 1,
          plate: str = "A123BC77") -> PlateEvent:
    return PlateEvent(state=state, runtimeId=runtimeId, channel=0, zone=zone,
                      plate=plate, rawPlate=plate, frameTimeMs=0,
                      movement=movement, listName="staff", listKind="allow",
                      listPlate=plate, listMatch="exact", access=access)


@implementer(IRelay)
class Device:
    """The relay board as the gate sees it: each call's answer is a
    Deferred the test fires (the device is outside our process)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bytes, float, defer.Deferred]] = []

    def open(self, method, url, body, timeout):
        d: defer.Deferred = defer.Deferred()
        self.calls.append((method, url, body, timeout, d))
        return d


def clockGate(**keys) -> tuple[GateService, Device, Clock]:
    clock, device = Clock(), Device()
    gate = GateService(gateSettings(**keys), reactor=clock,
                       metrics=Metrics(), relay=device)
    gate.startService()
    return gate, device, clock


def test_gate_is_an_event_sink_and_its_relay_an_irelay():
    gate, device, _ = clockGate()
    assert verifyObject(IEventSink, gate)
    assert verifyObject(IRelay, HttpRelay(Clock()))


def test_allow_in_opens_once_per_passage_and_again_for_a_new_one():
    gate, device, _ = clockGate()
    gate.publish(event(1))
    gate.publish(event(1, state=EventState.UPDATED))
    gate.publish(event(1, state=EventState.LOST))
    assert len(device.calls) == 1
    method, url, body, timeout, _ = device.calls[0]
    assert (method, url, timeout) == ("get",
                                      "http://127.0.0.1:9/open?plate=A123BC77",
                                      2.0)
    gate.publish(event(2))                     # the same car comes back
    assert len(device.calls) == 2


def test_when_and_movement_decide_who_opens():
    gate, device, _ = clockGate()
    gate.publish(event(1, access="denied"))
    gate.publish(event(2, access="unknown"))
    gate.publish(event(3, movement=MovementType.OUT))
    gate.publish(event(4, zone=2))                     # no gate there
    assert device.calls == []
    gate.publish(event(3, state=EventState.UPDATED))   # now In: opens
    assert len(device.calls) == 1
    anyGate, anyDevice, _ = clockGate(When="any", Movement="any")
    anyGate.publish(event(1, access="unknown", movement=MovementType.OUT))
    assert len(anyDevice.calls) == 1
    never, neverDevice, _ = clockGate(When="never")
    never.publish(event(1))
    assert neverDevice.calls == []


def test_events_of_other_sites_never_open_a_gate_here():
    gate, device, _ = clockGate()
    from dataclasses import replace
    gate.publish(replace(event(1), systemId=42))
    assert device.calls == []


def test_failed_open_is_retried_only_within_the_window():
    gate, device, clock = clockGate(RetryWithinSec=1.2)
    gate.publish(event(1))
    device.calls[0][4].errback(RelayError("no answer within 2s"))
    clock.advance(0.5)
    device.calls[1][4].callback(503)
    clock.advance(0.5)
    device.calls[2][4].errback(RelayError("ConnectionRefusedError: x"))
    # The next attempt would start at 1.5 s, past the 1.2 s window.
    clock.advance(10)
    assert len(device.calls) == 3
    values = {r: gate.metrics.value("numberok_gate_opens_total", result=r)
              for r in ("ok", "failed", "timeout", "given_up")}
    assert values == {"ok": 0, "failed": 2, "timeout": 1, "given_up": 1}
    status = gate.status["0:1"]
    assert status["result"].startswith("ConnectionRefusedError")
    assert "attempt 3" in status["reason"] and "given up" in status["reason"]


def test_zero_retry_window_means_one_attempt():
    gate, device, clock = clockGate(RetryWithinSec=0)
    gate.publish(event(1))
    device.calls[0][4].callback(500)
    clock.advance(10)
    assert len(device.calls) == 1


def test_templates_fill_url_quoted_and_body_plain():
    values = {"plate": "А 1/2", "list": "staff", "zone": 1}
    assert fill("http://r/?p={plate}&z={zone}&x={unknown}", values, True) == \
        "http://r/?p=%D0%90%201%2F2&z=1&x={unknown}"
    assert fill('{"plate": "{plate}", "bad": "{0.__class__}"}', values,
                False) == '{"plate": "А 1/2", "bad": "{0.__class__}"}'


class RelayBoard(resource.Resource):
    """A relay board on loopback: answers per its C{modes}, one per
    request (C{slow}: never answers; C{fail}: 500; C{ok}: 200)."""

    isLeaf = True

    def __init__(self, modes: list[str]) -> None:
        super().__init__()
        self.modes = modes
        self.requests: list[tuple[bytes, bytes, bytes]] = []
        self.hanging: list = []
        self.dropped = 0

    def render(self, request):
        self.requests.append((request.method, request.uri,
                              request.content.read()))
        mode = self.modes.pop(0) if self.modes else "ok"
        if mode == "slow":
            self.hanging.append(request)
            request.notifyFinish().addErrback(self._dropped)
            return server.NOT_DONE_YET
        request.setResponseCode(500 if mode == "fail" else 200)
        return b"done"

    def _dropped(self, reason) -> None:
        self.dropped += 1


async def relayGate(modes: list[str], lists=None, **keys):
    board = RelayBoard(modes)
    reactor = getReactor()
    port = reactor.listenTCP(0, server.Site(board), interface="127.0.0.1")
    url = "http://127.0.0.1:%d/relay/0?turn=on&plate={plate}" % (
        port.getHost().port,)
    gate = GateService(gateSettings(url, **keys), lists=lists,
                       reactor=reactor, metrics=Metrics())
    gate.retryPauseSec = 0.05
    gate.startService()
    return gate, board, port


@pytest_twisted.ensureDeferred
async def test_real_relay_that_hangs_is_given_up_after_the_timeout():
    gate, board, port = await relayGate(["slow"], TimeoutSec=0.3,
                                        RetryWithinSec=0)
    try:
        gate.publish(event(1))
        await waitFor(lambda: "0:1" in gate.status, 5)
        assert gate.status["0:1"]["result"] == "no answer within 0.3s"
        assert gate.metrics.value("numberok_gate_opens_total",
                                  result="timeout") == 1
        # The timeout closed the connection: nothing is left hanging.
        await waitFor(lambda: board.dropped == 1, 5)
    finally:
        await port.stopListening()
        await bounded(gate.stopService())


@pytest_twisted.ensureDeferred
async def test_real_relay_that_fails_then_succeeds_opens_with_a_post_body(
        tmp_path):
    lists = ListsService(str(tmp_path), reactor=getReactor(),
                         metrics=Metrics(), zone=ZoneInfo("UTC"))
    lists.accessFlushSec = 0.05
    lists.startService()
    await bounded(lists.ready)
    gate, board, port = await relayGate(
        ["fail", "ok"], lists=lists, Method="post",
        Body='{"plate": "{plate}", "list": "{list}"}', RetryWithinSec=2)
    try:
        gate.publish(event(1))
        await waitFor(lambda: gate.status.get("0:1", {}).get("result")
                      == "ok", 5)
        assert [(m, b) for m, _, b in board.requests] == [
            (b"POST", b'{"plate": "A123BC77", "list": "staff"}')] * 2
        assert board.requests[0][1].endswith(b"turn=on&plate=A123BC77")
        await waitFor(lambda: not lists._pending and not lists._flushing, 5)
        rows = await searchAccessLog(lists, SearchQuery(limit=10))
        assert [(r["action"], r["result"], r["plate"], r["decision"])
                for r in rows] == [("open", "ok", "A123BC77", "granted"),
                                   ("open", "HTTP 500", "A123BC77",
                                    "granted")]
        assert all(r["latency_ms"] >= 0 for r in rows)
    finally:
        await port.stopListening()
        await bounded(gate.stopService())
        await bounded(lists.stopService())


@pytest_twisted.ensureDeferred
async def test_refused_connection_is_a_relay_error_not_an_exception():
    reactor = getReactor()
    port = reactor.listenTCP(0, server.Site(resource.Resource()),
                             interface="127.0.0.1")
    number = port.getHost().port
    await port.stopListening()
    relay = HttpRelay(reactor)
    try:
        await relay.open("get", "http://127.0.0.1:%d/" % number, None, 1.0)
    except RelayError as e:
        assert "ConnectionRefused" in str(e)
    else:
        raise AssertionError("no error from a closed port")


def test_gate_url_that_is_not_http_is_a_settings_error():
    import pytest
    from numberok.settings import SettingsError
    with pytest.raises(SettingsError) as e:
        Settings().withChanges({"Gate:0:1.Url": "ftp://10.0.0.5/open"})
    assert "Gate:0:1.Url" in e.value.errors
