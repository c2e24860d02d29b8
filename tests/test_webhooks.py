"""
Webhook outputs (docs/integrations.rst) against a real HTTP receiver on
loopback (C{webhookReceiver} in conftest.py) that checks every signature:
Lost events arrive at least once and in order through failures, timeouts
and 5xx; a poison event is parked and the rest flow; the outbox cursor
survives a restart; settings changes apply live.  The pure parts (headers,
signature, body, settings checks) are proved in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

import pytest
import pytest_twisted
from conftest import WEBHOOK_SECRET, bounded, http, waitFor
from twisted.internet.defer import Deferred, ensureDeferred, succeed
from zope.interface import implementer
from zope.interface.verify import verifyObject

from numberok.events import EventState, MovementType, PlateEvent
from numberok.interfaces import IEventSink, IOutbox, IOutboxOutput
from numberok.journal import Journal
from numberok.journal.cursor import readCursor, writeCursor
from numberok.journal.outbox import Outbox
from numberok.metrics import Metrics
from numberok.mqtt.payload import encodeEvent
from numberok.settings import Settings, SettingsError, SettingsStore
from numberok.settings.keys import WEBHOOK_FAMILY
from numberok.threads import ServiceThreads
from numberok.webhooks import WebhookService
from numberok.webhooks.body import buildBody, pictureBaseOf
from numberok.webhooks.config import TargetConfig, signature
from numberok.webhooks.target import WebhookTarget

SYSTEM_ID = 7


@pytest.fixture(autouse=True)
def quickRetries(monkeypatch):
    """Retry within a test's patience, not an operator's."""
    monkeypatch.setattr(WebhookTarget, "initialDelay", 0.02)
    monkeypatch.setattr(WebhookTarget, "maxDelay", 0.1)
    monkeypatch.setattr(WebhookTarget, "maxJitter", 0.01)
    monkeypatch.setattr(WebhookTarget, "pollInterval", 0.1)


def event(runtimeId: int, state: EventState = EventState.LOST,
          channel: int = 1, zone: int = 2) -> PlateEvent:
    return PlateEvent(state=state, runtimeId=runtimeId, channel=channel,
                      zone=zone, plate="A%03dBC" % (runtimeId,),
                      rawPlate="A%03dBC" % (runtimeId,),
                      frameTimeMs=1700000000000 + runtimeId,
                      processTimeMs=12, movement=MovementType.IN,
                      checkpoint=3, confidence=0.87, reads=4)


def settings(url: str, name: str = "erp", **keys: str) -> Settings:
    changes = {"System.SystemId": str(SYSTEM_ID),
               "Webhook:%s.Url" % (name,): url,
               "Webhook:%s.Secret" % (name,): WEBHOOK_SECRET,
               "Webhook:%s.TimeoutSec" % (name,): "1"}
    changes.update({"Webhook:%s.%s" % (name, k): v for k, v in keys.items()})
    return Settings().withChanges(changes)


class Site:
    """A journal and the webhook service, fed as the server's fan-out
    feeds them (journal first)."""

    def __init__(self, folder, settings: Settings) -> None:
        self.folder = folder
        self.store = SettingsStore(settings)
        self.metrics = Metrics()
        self.journal = Journal(str(folder / "journal"), metrics=self.metrics)
        self.webhooks = None

    def start(self, journalToo: bool = True) -> "Site":
        if journalToo:
            self.journal.startService()
        self.webhooks = WebhookService(self.store, self.journal,
                                       metrics=self.metrics)
        self.webhooks.startService()
        return self

    def emit(self, e: PlateEvent) -> None:
        self.journal.publish(e)
        self.webhooks.publish(e)

    def status(self, name: str = "erp") -> dict:
        [target] = [t for t in self.webhooks.status()["webhooks"]
                    if t["name"] == name]
        return target

    async def stop(self, journalToo: bool = True) -> None:
        if self.webhooks.running:
            await bounded(self.webhooks.stopService())
        if journalToo and self.journal.running:
            await bounded(self.journal.stopService())


@pytest.fixture
def sites():
    made: list[Site] = []

    def make(folder, settings: Settings) -> Site:
        site = Site(folder, settings)
        made.append(site)
        return site
    yield make
    for site in made:
        pytest_twisted.blockon(ensureDeferred(site.stop()))


def ids(bodies: list) -> list[int]:
    return [b["id"] for b in bodies]


# -- delivery over loopback ------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_lost_events_arrive_in_order_through_cut_timeout_and_500_and_a_poison_event_is_parked(  # noqa: E501
        tmp_path, sites, webhookReceiver):
    def script(n: int, body: dict) -> object:
        if body["RuntimeID"] == "4":
            return 400                  # the receiver refuses this event
        return {1: "abort", 2: "hang", 3: 500}.get(n, 200)
    receiver = webhookReceiver(script)
    site = sites(tmp_path, settings(receiver.url)).start()
    await waitFor(lambda: site.status()["cursor"] is not None)
    for rid in range(1, 7):
        site.emit(event(rid))
    await waitFor(lambda: ids(receiver.accepted) == [1, 2, 3, 5, 6], 15)
    await waitFor(lambda: site.status()["cursor"] == 6)

    assert receiver.badSignatures == 0
    tries = [b["RuntimeID"] for _, b in receiver.requests]
    assert tries[:4] == ["1", "1", "1", "1"]     # cut, timeout, 500, 200
    assert tries.count("4") == WebhookTarget.parkAfter
    status = site.status()
    assert status["parked_ids"] == [4]
    assert "HTTP 400" in status["parked"][0]["error"]
    assert status["lag"] == 0 and status["delivered"] == 5
    assert status["last_success"] is not None
    assert site.metrics.value("numberok_webhook_parked_total",
                              target="erp") == 1
    assert site.metrics.value("numberok_webhook_attempts_total",
                              target="erp", outcome="timeout") == 1
    assert site.metrics.value("numberok_webhook_attempts_total",
                              target="erp", outcome="5xx") == 1
    assert site.metrics.value("numberok_webhook_delivered_total",
                              target="erp", state="Lost") == 5
    for headers, body in receiver.requests:
        assert headers["idempotency-key"] == "%d-%d" % (SYSTEM_ID,
                                                        body["id"])
        assert headers["content-type"].startswith("application/json")
    # The parked list survives a restart (a file beside the cursor).
    await site.stop(journalToo=False)
    site.start(journalToo=False)
    await waitFor(lambda: site.status()["parked_ids"] == [4])


@pytest_twisted.ensureDeferred
async def test_a_receiver_closing_after_each_answer_unannounced_costs_no_failed_try(  # noqa: E501
        tmp_path, sites, webhookReceiver):
    receiver = webhookReceiver(lambda n, body: "close")
    site = sites(tmp_path, settings(receiver.url)).start()
    await waitFor(lambda: site.status()["cursor"] is not None)
    for rid in range(1, 31):
        site.emit(event(rid))
    await waitFor(lambda: site.status()["cursor"] == 30, 15)
    assert ids(receiver.accepted) == list(range(1, 31))
    assert site.status()["last_error"] is None
    for outcome in ("error", "timeout", "connect"):
        assert site.metrics.value("numberok_webhook_attempts_total",
                                  target="erp", outcome=outcome) == 0


@pytest_twisted.ensureDeferred
async def test_body_is_the_mqtt_event_message_with_the_journal_id(
        tmp_path, sites, webhookReceiver):
    receiver = webhookReceiver()
    site = sites(tmp_path, settings(receiver.url)).start()
    await waitFor(lambda: site.status()["cursor"] is not None)
    e = event(1)
    site.emit(e)
    await waitFor(lambda: len(receiver.accepted) == 1)
    assert receiver.accepted[0] == json.loads(encodeEvent(e, SYSTEM_ID, 1))


@pytest_twisted.ensureDeferred
async def test_restart_resumes_from_the_cursor_and_repeats_only_with_the_same_key(  # noqa: E501
        tmp_path, sites, webhookReceiver):
    holding = {"on": False}

    def script(n: int, body: dict) -> object:
        return "hang" if holding["on"] else 200
    receiver = webhookReceiver(script)
    site = sites(tmp_path, settings(receiver.url)).start()
    await waitFor(lambda: site.status()["cursor"] is not None)
    for rid in (1, 2):
        site.emit(event(rid))
    await waitFor(lambda: site.status()["cursor"] == 2)
    holding["on"] = True
    site.emit(event(3))
    await waitFor(lambda: len(receiver.requests) == 3)
    await site.stop(journalToo=False)      # mid-delivery of 3
    for rid in (4, 5):
        site.journal.publish(event(rid))   # while webhooks are down
    await site.journal.whenIdle()
    path = os.path.join(site.journal.path, "webhook-erp.cursor")
    assert readCursor(path) == 2
    holding["on"] = False
    site.start(journalToo=False)
    await waitFor(lambda: ids(receiver.accepted) == [1, 2, 3, 4, 5])
    keys = {}
    for headers, body in receiver.requests:
        keys.setdefault(body["id"], set()).add(headers["idempotency-key"])
    assert all(len(k) == 1 for k in keys.values())


@pytest_twisted.ensureDeferred
async def test_live_detected_goes_when_states_ask_and_is_dropped_when_down(
        tmp_path, sites, webhookReceiver):
    receiver = webhookReceiver(lambda n, body: 500 if n == 1 else 200)
    site = sites(tmp_path, settings(
        receiver.url, States="Detected,Lost", Channels="1")).start()
    await waitFor(lambda: site.status()["cursor"] is not None)
    site.emit(event(1, EventState.DETECTED))     # 500: dropped, counted
    await waitFor(lambda: site.metrics.value(
        "numberok_webhook_dropped_total", target="erp", reason="failed") == 1)
    site.emit(event(2, EventState.UPDATED))      # not in States
    site.emit(event(3, EventState.DETECTED, channel=5))   # not in Channels
    await waitFor(lambda: site.status()["last_error"] is not None)
    site.emit(event(4, EventState.LOST))
    await waitFor(lambda: ids([b for b in receiver.accepted
                               if "id" in b]) == [1])
    site.emit(event(5, EventState.DETECTED))
    await waitFor(lambda: [b["RuntimeID"] for b in receiver.accepted]
                  == ["4", "5"])
    detected = receiver.requests[-1]
    assert detected[1]["State"] == "Detected" and "id" not in detected[1]
    assert detected[0]["idempotency-key"] == "%d-Detected-5-4" % (SYSTEM_ID,)


@pytest_twisted.ensureDeferred
async def test_targets_follow_settings_changes_live(
        tmp_path, sites, webhookReceiver):
    first, second = webhookReceiver(), webhookReceiver()
    site = sites(tmp_path, settings(first.url)).start()
    await waitFor(lambda: site.status()["cursor"] is not None)
    site.emit(event(1))
    await waitFor(lambda: ids(first.accepted) == [1])
    # Add a second target and move the first one to another URL.
    site.store.replace(site.store.current.withChanges({
        "Webhook:erp.Url": second.url, "Webhook:gate.Url": first.url,
        "Webhook:gate.Secret": WEBHOOK_SECRET}))
    await waitFor(lambda: {t["name"] for t in site.webhooks.status()[
        "webhooks"]} == {"erp", "gate"})
    await waitFor(lambda: site.status("gate")["cursor"] is not None)
    site.emit(event(2))
    await waitFor(lambda: ids(second.accepted) == [2])
    await waitFor(lambda: ids(first.accepted) == [1, 2])
    # Remove one: it stops, the other goes on.
    site.store.replace(site.store.current.withChanges({"Webhook:gate": None}))
    await waitFor(lambda: list(site.webhooks.targets) == ["erp"])
    site.emit(event(3))
    await waitFor(lambda: ids(second.accepted) == [2, 3])
    assert ids(first.accepted) == [1, 2]


# -- the outbox itself -----------------------------------------------------

@implementer(IOutboxOutput)
class HeldOutput:
    """An output whose acknowledgments the test gives, in any order."""

    ready = True

    def __init__(self) -> None:
        self.sent: dict[int, Deferred] = {}

    def prepare(self, entry):
        return succeed(None)

    def send(self, entry, prepared):
        self.sent[entry.id] = Deferred()
        return self.sent[entry.id]


async def journalWith(tmp_path, count: int) -> Journal:
    journal = Journal(str(tmp_path / "journal"))
    journal.startService()
    for rid in range(1, count + 1):
        journal.publish(event(rid))
    await journal.whenIdle()
    return journal


@pytest_twisted.ensureDeferred
async def test_out_of_order_acknowledgments_move_the_cursor_over_the_contiguous_prefix_only(  # noqa: E501
        tmp_path):
    journal = await journalWith(tmp_path, 4)
    threads = ServiceThreads("test-outbox")
    threads.start()
    path = str(tmp_path / "test.cursor")
    writeCursor(path, 0)
    output = HeldOutput()
    outbox = Outbox("test", journal, output, path, threads, window=10)
    assert verifyObject(IOutbox, outbox)
    assert verifyObject(IOutboxOutput, output)
    outbox.start()
    try:
        await waitFor(lambda: sorted(output.sent) == [1, 2, 3, 4])
        output.sent[3].callback(None)
        output.sent[2].callback(None)
        assert outbox.state()["acknowledged"] == 0
        output.sent[1].callback(None)
        assert outbox.state()["acknowledged"] == 3
        output.sent[4].callback(None)
        assert outbox.state()["acknowledged"] == 4
        # rewind: everything from 2 on goes again.
        outbox.rewind(2)
        await waitFor(lambda: output.sent[2].called is False)
        assert outbox.state()["acknowledged"] == 1
    finally:
        await bounded(outbox.stop())
        await bounded(threads.stop())
        await bounded(journal.stopService())
    assert readCursor(path) == 1


@pytest_twisted.ensureDeferred
async def test_rows_removed_by_retention_before_delivery_are_counted_and_shown_not_skipped_silently(  # noqa: E501
        tmp_path):
    journal = await journalWith(tmp_path, 5)
    journal.maxMegabytes = 1e-9                  # every row must go
    await journal.prune()
    journal.publish(event(6))
    await journal.whenIdle()
    threads = ServiceThreads("test-outbox")
    threads.start()
    path = str(tmp_path / "late.cursor")
    writeCursor(path, 2)                         # it had 1..2 only
    metrics = Metrics()
    output = HeldOutput()
    outbox = Outbox("late", journal, output, path, threads, metrics)
    outbox.start()
    try:
        await waitFor(lambda: output.sent)
        state = outbox.state()
        assert state["skipped"] >= 3 and state["lastSkipped"][0] == 3
        assert metrics.value("numberok_outbox_skipped_total",
                             consumer="late") == state["skipped"]
    finally:
        await bounded(outbox.stop())
        await bounded(threads.stop())
        await bounded(journal.stopService())


# -- in memory: settings, signature, body ----------------------------------

def config(**keys: str) -> TargetConfig:
    s = settings("http://erp.example/hs/numberok/event", **keys)
    return TargetConfig.fromSection(s.family(WEBHOOK_FAMILY)[0])


def test_signature_is_hmac_sha256_of_the_raw_body_with_the_secret():
    body = b'{"id":1}'
    expected = hmac.new(b"key", body, hashlib.sha256).hexdigest()
    assert signature("key", body) == b"sha256=" + expected.encode()
    headers = config().requestHeaders(body, "7-1")
    assert headers[b"X-Numberok-Signature"] == [
        signature(WEBHOOK_SECRET, body)]
    assert headers[b"Idempotency-Key"] == [b"7-1"]


def test_basic_or_bearer_and_extra_headers_go_with_every_request():
    basic = config(Username="erp", Password="pw", Headers="X-Site: north\n")
    headers = basic.requestHeaders(b"{}", "7-1")
    assert headers[b"Authorization"] == [b"Basic ZXJwOnB3"]
    assert headers[b"X-Site"] == [b"north"]
    bearer = config(Token="abc")
    assert bearer.requestHeaders(b"{}", "7-1")[b"Authorization"] == [
        b"Bearer abc"]


@pytest.mark.parametrize("headers, message", [
    ("no colon here", "line 1: write 'Name: value'"),
    ("X-Ok: 1\nX-Numberok-Signature: forged", "line 2: X-Numberok-"
                                              "Signature is set by numberok"),
])
def test_bad_header_lines_are_refused_by_the_settings_check(headers, message):
    with pytest.raises(SettingsError) as e:
        settings("http://x/", Headers=headers)
    assert message in str(e.value)


def test_url_pictures_point_at_the_journal_pictures_on_the_admin_server():
    body = buildBody(config(Pictures="url"), event(1), SYSTEM_ID, 41,
                     pictureBase=pictureBaseOf(
                         "tcp:8080:interface=10.0.0.5"),
                     stored=(True, False))
    obj = json.loads(body.data)
    assert obj["picture_url"] == \
        "http://10.0.0.5:8080/api/events/41/screenshot.jpg"
    assert "plate_picture_url" not in obj and "picture" not in obj
    inline = buildBody(config(Pictures="inline"), event(1), SYSTEM_ID, 41,
                       (b"\xff\xd8jpeg", None))
    assert json.loads(inline.data)["picture"] == "/9hqcGVn"


def test_webhook_service_is_an_event_sink():
    assert verifyObject(IEventSink, WebhookService(SettingsStore()))


@pytest_twisted.ensureDeferred
async def test_api_webhooks_lists_each_target(adminServer, webhookReceiver):
    receiver = webhookReceiver()
    stack = adminServer()
    r = await http("PUT", stack.url + "/api/settings", {
        "Webhook:erp.Url": receiver.url, "Webhook:erp.Secret": "x"})
    assert r.code == 200, r.json()
    await waitFor(lambda: "erp" in stack.webhooks.targets)
    r = await http("GET", stack.url + "/api/webhooks")
    assert r.code == 200
    [target] = r.json()["webhooks"]
    assert target["name"] == "erp" and target["url"] == receiver.url
    for key in ("lag", "delivered", "last_success", "last_error",
                "parked_ids"):
        assert key in target


def test_mqtt_publisher_and_webhook_target_are_outbox_outputs():
    from numberok.mqtt import MqttPublisher
    assert verifyObject(IOutboxOutput, MqttPublisher(SettingsStore()))
    target = WebhookTarget(config(), None, None, ServiceThreads("t"),
                           Metrics())
    assert verifyObject(IOutboxOutput, target)


@pytest_twisted.ensureDeferred
async def test_rewind_over_the_api_sends_again_from_an_id(
        tmp_path, adminServer, webhookReceiver):
    receiver = webhookReceiver()
    stack = adminServer(journalPath=tmp_path / "journal")
    r = await http("PUT", stack.url + "/api/settings", {
        "Webhook:erp.Url": receiver.url,
        "Webhook:erp.Secret": WEBHOOK_SECRET})
    assert r.code == 200, r.json()
    await waitFor(lambda: "erp" in stack.webhooks.targets and stack.webhooks
                  .targets["erp"].status()["cursor"] is not None)
    for rid in (1, 2, 3):
        stack.journal.publish(event(rid))
        stack.webhooks.publish(event(rid))
    await waitFor(lambda: ids(receiver.accepted) == [1, 2, 3])
    url = stack.url + "/api/webhooks/erp/rewind"
    r = await http("POST", url, {"from_id": 2})
    assert r.code == 200 and r.json()["cursor"] == 1
    await waitFor(lambda: ids(receiver.accepted) == [1, 2, 3, 2, 3])
    r = await http("POST", url, {"from_id": 0})
    assert r.code == 400 and "from_id" in r.json()["errors"]
    r = await http("POST", stack.url + "/api/webhooks/nope/rewind",
                   {"from_id": 1})
    assert r.code == 404
    r = await http("GET", stack.url + "/api/webhooks/erp/other")
    assert r.code == 404
