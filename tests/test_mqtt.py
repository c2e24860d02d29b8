"""
numberok over a real Mosquitto (docs/mqtt.rst): sites publish through the
journal's outbox, a central instance collects, outages and restarts lose
nothing and repeat nothing at the central instance.

The services run in this process on the real reactor; the broker is a real
C{mosquitto} (fixture in conftest.py).  An outside subscriber, where a test
needs to see the raw messages, is a bare paho client on its own thread:
the broker's other clients are outside our code.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from io import BytesIO

import pytest
import pytest_twisted
from conftest import FieldsClient, connectTo, waitFor
from paho.mqtt import client as paho
from PIL import Image
from zope.interface import implementer
from zope.interface.verify import verifyObject

from numberok.events import EventState, MovementType, PlateEvent, PlateRead, eventPairs
from numberok.interfaces import IEventSink, IPlateReadSink
from numberok.journal import Journal
from numberok.metrics import Metrics
from numberok.mqtt import MqttCollector, MqttPublisher
from numberok.mqtt.connection import MqttConnection
from numberok.mqtt.files import CURSOR_NAME, readCursor, writeCursor
from numberok.settings import Settings, SettingsStore

STARTED: list = []
"""Every service a test started, in order."""


def start(service):
    service.startService()
    STARTED.append(service)
    return service


@pytest_twisted.async_yield_fixture(autouse=True)
async def running():
    """Services a test started; stopped at its end whatever happened (a
    thread pool left running would hold the process at exit)."""
    yield
    from twisted.internet import reactor
    started, STARTED[:] = list(STARTED), []
    for service in reversed(started):
        if service.running:
            try:
                await service.stopService().addTimeout(10, reactor)
            except Exception:
                pass


@pytest.fixture(autouse=True)
def fastRetries(monkeypatch):
    """Reconnect within a test's patience, not an operator's."""
    monkeypatch.setattr(MqttConnection, "minDelay", 0.05)
    monkeypatch.setattr(MqttConnection, "maxDelay", 0.2)
    monkeypatch.setattr(MqttPublisher, "pollInterval", 0.1)


def jpeg(width: int = 320, height: int = 200) -> bytes:
    out = BytesIO()
    Image.new("RGB", (width, height), (90, 120, 30)).save(out, "JPEG")
    return out.getvalue()


FRAME = jpeg()


def lost(runtimeId: int, frame: bytes = None, bbox=None,
         state: EventState = EventState.LOST) -> PlateEvent:
    return PlateEvent(state=state, runtimeId=runtimeId, channel=1, zone=2,
                      plate="A%03dBC" % (runtimeId,),
                      rawPlate="A%03dBC" % (runtimeId,),
                      frameTimeMs=1700000000000 + runtimeId,
                      processTimeMs=12, movement=MovementType.IN,
                      checkpoint=3, confidence=0.87, reads=4, frame=frame,
                      bbox=bbox)


def store(systemId: int, broker: str, **mqtt: object) -> SettingsStore:
    changes = {"System.SystemId": str(systemId), "Mqtt.Broker": broker}
    changes.update({"Mqtt." + k: str(v) for k, v in mqtt.items()})
    return SettingsStore(Settings().withChanges(changes))


@implementer(IEventSink)
class EventList:
    def __init__(self) -> None:
        self.events: list[PlateEvent] = []

    def publish(self, event: PlateEvent) -> None:
        self.events.append(event)


@implementer(IPlateReadSink)
class ReadList:
    def __init__(self) -> None:
        self.reads = []

    def addRead(self, read) -> None:
        self.reads.append(read)


PROBE_PLATE = "P000PP"


async def readsSubscribed(central, outside) -> None:
    """
    Wait until the central's reads subscription is in place: CONNACK comes
    before the broker has taken the SUBSCRIBE, and a read published in
    between goes to nobody.  A probe read is published now and then until
    one arrives; the reads that follow come after every probe (one
    publisher's messages keep their order).
    """
    probe = json.dumps({"plate": PROBE_PLATE, "time_ms": 1700000000000})
    polls = [0]

    def arrived() -> bool:
        if polls[0] % 10 == 0:
            outside.client.publish("cams/9/reads", probe, qos=1)
        polls[0] += 1
        return any(r.plate == PROBE_PLATE for r in central.reads.reads)
    await waitUntil(arrived, "the reads subscription")


async def waitUntil(check, what: str, timeout: float = 8.0) -> None:
    """Poll C{check} on the reactor until true; fail after C{timeout}."""
    from twisted.internet import reactor, task
    deadline = reactor.seconds() + timeout
    while not check():
        if reactor.seconds() > deadline:
            raise AssertionError("timed out waiting for " + what)
        await task.deferLater(reactor, 0.02, lambda: None)


async def stopped(service) -> None:
    from twisted.internet import reactor
    await service.stopService().addTimeout(10, reactor)


class Site:
    """A site: journal + MQTT publisher, fed as the server's fan-out
    would (journal first, then the publisher)."""

    def __init__(self, folder, systemId: int, broker: str, **mqtt) -> None:
        self.journal = Journal(str(folder / ("journal-%d" % systemId)))
        self.metrics = Metrics()
        self.settings = store(systemId, broker, **mqtt)
        self.publisher = None

    def start(self) -> "Site":
        if not self.journal.running:
            start(self.journal)
        self.publisher = MqttPublisher(self.settings, self.journal,
                                       self.metrics)
        start(self.publisher)
        return self

    def emit(self, event: PlateEvent) -> None:
        self.journal.publish(event)
        if self.publisher is not None and self.publisher.running:
            self.publisher.publish(event)

    async def stop(self, journalToo: bool = True) -> None:
        await stopped(self.publisher)
        if journalToo:
            await stopped(self.journal)


class Central:
    """A collecting instance handing events to a list."""

    def __init__(self, folder, broker: str, systemId: int = 9,
                 **mqtt) -> None:
        self.folder = str(folder / "central")
        self.settings = store(systemId, broker, **dict({"Collect": 1}, **mqtt))
        self.metrics = Metrics()
        self.sink = EventList()
        self.reads = ReadList()

    def start(self) -> "Central":
        self.collector = MqttCollector(self.settings, self.sink, self.reads,
                                       self.folder, self.metrics)
        start(self.collector)
        return self

    async def connected(self) -> None:
        await waitUntil(lambda: self.collector.connection is not None
                        and self.collector.connection.isConnected,
                        "the collector's connection")

    def keys(self) -> list[tuple[int, int]]:
        return [(e.systemId, e.runtimeId) for e in self.sink.events]


class Listener:
    """A bare paho subscriber: what any other client of the broker sees."""

    def __init__(self, port: int, topic: str = "numberok/#") -> None:
        self.messages: list[paho.MQTTMessage] = []
        self.ready = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, 2)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = lambda c, u, m: self.messages.append(m)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def on(self, suffix: str) -> list[paho.MQTTMessage]:
        return [m for m in list(self.messages) if m.topic.endswith(suffix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def listener(mosquitto):
    made = []

    def make(topic: str = "numberok/#") -> Listener:
        made.append(Listener(mosquitto.port, topic))
        return made[-1]
    yield make
    for item in made:
        item.close()


def test_services_provide_their_interfaces():
    settings = store(1, "")
    assert verifyObject(IEventSink, MqttPublisher(settings))


@pytest_twisted.ensureDeferred
async def test_lost_is_published_with_id_pictures_and_online_status(
        tmp_path, mosquitto, listener):
    watch = listener()
    await waitUntil(watch.ready.is_set, "the listener's subscription")
    site = Site(tmp_path, 7, mosquitto.endpoint, Publish="lost").start()
    await waitUntil(lambda: watch.on("/7/status"), "status online")
    status = watch.on("/7/status")[-1]
    assert status.payload == b"online"
    event = lost(5, FRAME, (100, 80, 60, 20))
    site.emit(event)
    site.emit(lost(6, state=EventState.DETECTED))   # not with Publish=lost
    await waitUntil(lambda: watch.on("/events/1/2"), "the Lost message")
    message = watch.on("/events/1/2")[0]
    assert message.topic == "numberok/7/events/1/2"
    body = json.loads(message.payload)
    for key, value in eventPairs(event, 7):
        assert body[key] == value
    assert body["id"] == 1
    assert body["bbox"] == [100, 80, 60, 20]
    assert base64.b64decode(body["picture"]) == FRAME
    crop = Image.open(BytesIO(base64.b64decode(body["plate_picture"])))
    assert crop.format == "JPEG" and crop.width >= 160
    await waitUntil(lambda: site.publisher.outboxState()["acknowledged"] == 1,
                    "the cursor to pass id 1")
    await site.stop()
    assert readCursor(os.path.join(site.journal.path, CURSOR_NAME)) == 1
    await waitUntil(lambda: watch.on("/7/status")[-1].payload == b"offline",
                    "status offline on a clean stop")
    assert len(watch.on("/events/1/2")) == 1
    assert site.metrics.value("numberok_mqtt_acknowledged_total") == 1

    late = listener("numberok/7/status")     # retained: a newcomer sees it
    await waitUntil(lambda: late.messages, "the retained status")
    assert (late.messages[0].payload, late.messages[0].retain) == (
        b"offline", True)


@pytest_twisted.ensureDeferred
async def test_last_will_says_offline_when_the_connection_is_cut(
        tmp_path, mosquitto, listener):
    watch = listener("numberok/+/status")
    await waitUntil(watch.ready.is_set, "the listener's subscription")
    site = Site(tmp_path, 3, mosquitto.endpoint).start()
    await waitUntil(lambda: [m for m in watch.messages
                             if m.payload == b"online"], "online")
    import socket
    site.publisher.connection.client.socket().shutdown(socket.SHUT_RDWR)
    await waitUntil(lambda: [m for m in watch.messages
                             if m.payload == b"offline"], "the Last Will")
    await waitUntil(lambda: watch.messages[-1].payload == b"online",
                    "online again after the reconnect")
    assert site.metrics.value("numberok_mqtt_reconnects_total",
                              role="publish") >= 1
    await site.stop()


@pytest.mark.parametrize("mode,expected", [
    ("none", []), ("lost", ["Lost"]),
    ("all", ["Detected", "Updated", "Lost"])])
@pytest_twisted.ensureDeferred
async def test_publish_setting_chooses_the_states(
        tmp_path, mosquitto, listener, mode, expected):
    watch = listener()
    await waitUntil(watch.ready.is_set, "the listener's subscription")
    site = Site(tmp_path, 4, mosquitto.endpoint, Publish=mode,
                Pictures=0).start()
    if mode != "none":
        await waitUntil(lambda: watch.on("/status"), "online")
    for state in (EventState.DETECTED, EventState.UPDATED, EventState.LOST):
        site.emit(lost(1, FRAME, state=state))
    # A marker published after them by the outside client: once it is
    # here, everything the site sent before it is here too.
    await site.journal.whenIdle()
    if mode != "none":
        await waitUntil(lambda: site.publisher.outboxState()["acknowledged"]
                        == 1, "the Lost acknowledged")
    watch.client.publish("numberok/marker", b"x", qos=1)
    await waitUntil(lambda: watch.on("/marker"), "the marker")
    states = [json.loads(m.payload)["State"]
              for m in watch.messages if "/events/" in m.topic]
    assert states == expected
    assert all("picture" not in json.loads(m.payload)
               for m in watch.messages if "/events/" in m.topic)
    await site.stop()


@pytest_twisted.ensureDeferred
async def test_qos_comes_from_the_settings_and_lost_is_at_least_1(
        tmp_path, mosquitto, listener):
    watch = listener()
    await waitUntil(watch.ready.is_set, "the listener's subscription")
    site = Site(tmp_path, 5, mosquitto.endpoint, Publish="all",
                QoS=0).start()
    await waitUntil(lambda: watch.on("/status"), "online")
    site.emit(lost(1, state=EventState.DETECTED))
    site.emit(lost(1))
    await waitUntil(lambda: len(watch.on("/events/1/2")) == 2, "2 events")
    qos = {json.loads(m.payload)["State"]: m.qos
           for m in watch.on("/events/1/2")}
    assert qos == {"Detected": 0, "Lost": 1}
    await site.stop()

    site2 = Site(tmp_path, 6, mosquitto.endpoint, Publish="all",
                 QoS=2).start()
    await waitUntil(lambda: watch.on("/6/status"), "online")
    site2.emit(lost(2, state=EventState.DETECTED))
    site2.emit(lost(2))
    await waitUntil(lambda: len([m for m in watch.messages
                                 if "/6/events/" in m.topic]) == 2,
                    "2 events at QoS 2")
    assert {m.qos for m in watch.messages if "/6/events/" in m.topic} == {2}
    await site2.stop()


@pytest_twisted.ensureDeferred
async def test_broker_outage_at_two_sites_every_lost_once_at_central(
        tmp_path, mosquitto):
    central = Central(tmp_path, mosquitto.endpoint).start()
    await central.connected()
    sites = [Site(tmp_path, n, mosquitto.endpoint).start() for n in (1, 2)]
    for site in sites:
        await waitUntil(lambda: site.publisher.connection.isConnected,
                        "site connected")
    runtime = iter(range(1, 1000))
    expected = []

    def vehicles(count: int) -> None:
        for _ in range(count):
            for n, site in zip((1, 2), sites):
                rid = next(runtime)
                site.emit(lost(rid, FRAME, (10, 10, 50, 15)))
                expected.append((n, rid))

    vehicles(3)
    await waitUntil(lambda: len(central.sink.events) == 6, "first 6")
    mosquitto.stop()
    await waitUntil(lambda: not central.collector.connection.isConnected,
                    "the central to notice")
    vehicles(5)                          # journaled while the broker is away
    for site in sites:
        await site.journal.whenIdle()
    mosquitto.start()
    vehicles(2)
    await waitUntil(lambda: len(central.sink.events) >= len(expected),
                    "every Lost at the central instance", timeout=15)
    for site in sites:
        await waitUntil(lambda: site.publisher.outboxState()["inFlight"] == 0,
                        "the outbox to drain")
    assert sorted(central.keys()) == sorted(expected)
    assert len(central.keys()) == len(set(central.keys()))
    assert all(e.frame == FRAME and e.bbox == (10, 10, 50, 15)
               for e in central.sink.events)
    for site in sites:
        await site.stop()
    await stopped(central.collector)


@pytest_twisted.ensureDeferred
async def test_foreign_event_is_handed_on_unchanged_and_own_is_skipped(
        tmp_path, mosquitto):
    central = Central(tmp_path, mosquitto.endpoint, systemId=9,
                      Publish="lost").start()
    await central.connected()
    own = Site(tmp_path, 9, mosquitto.endpoint).start()
    site = Site(tmp_path, 41, mosquitto.endpoint).start()
    await waitUntil(lambda: site.publisher.connection.isConnected
                    and own.publisher.connection.isConnected, "sites")
    own.emit(lost(1))
    event = lost(77, FRAME, (5, 6, 70, 20))
    site.emit(event)
    await waitUntil(lambda: central.sink.events, "the foreign event")
    await waitUntil(lambda: own.publisher.outboxState()["acknowledged"] == 1,
                    "own Lost acknowledged")
    got = central.sink.events
    assert len(got) == 1
    assert got[0].systemId == 41 and got[0].runtimeId == 77
    expected = {k: v for k, v in eventPairs(event, 41)}
    assert dict(eventPairs(got[0], 9)) == expected
    assert (got[0].frame, got[0].bbox) == (FRAME, (5, 6, 70, 20))
    assert central.metrics.value("numberok_mqtt_collected_total") == 1
    for s in (own, site):
        await s.stop()
    await stopped(central.collector)


@pytest_twisted.ensureDeferred
async def test_site_restart_resumes_from_cursor_and_central_drops_repeats(
        tmp_path, mosquitto):
    central = Central(tmp_path, mosquitto.endpoint).start()
    await central.connected()
    site = Site(tmp_path, 12, mosquitto.endpoint).start()
    for rid in (1, 2, 3):
        site.emit(lost(rid))
    await waitUntil(lambda: len(central.sink.events) == 3, "3 events")
    await waitUntil(lambda: site.publisher.outboxState()["acknowledged"] == 3,
                    "cursor at 3")
    await site.stop(journalToo=False)
    for rid in (4, 5):                    # numberok's publisher is down
        site.emit(lost(rid))
    await site.journal.whenIdle()
    site.start()
    await waitUntil(lambda: len(central.sink.events) == 5, "5 events")
    await waitUntil(lambda: site.publisher.outboxState()["acknowledged"] == 5,
                    "cursor at 5")
    assert [e.runtimeId for e in central.sink.events] == [1, 2, 3, 4, 5]

    # The central instance restarts; the site then sends everything again
    # (a cursor lost behind): the central remembers and drops all of it.
    await stopped(central.collector)
    await site.stop(journalToo=False)
    writeCursor(os.path.join(site.journal.path, CURSOR_NAME), 0)
    central2 = Central(tmp_path, mosquitto.endpoint).start()
    await central2.connected()
    site.start()
    site.emit(lost(6))
    await waitUntil(lambda: central2.sink.events, "the new event")
    await waitUntil(lambda: central2.metrics.value(
        "numberok_mqtt_duplicates_total") == 5, "5 duplicates dropped")
    assert [e.runtimeId for e in central2.sink.events] == [6]
    await site.stop()
    await stopped(central2.collector)


@pytest_twisted.ensureDeferred
async def test_bad_event_message_is_counted_and_collecting_goes_on(
        tmp_path, mosquitto, listener):
    central = Central(tmp_path, mosquitto.endpoint).start()
    await central.connected()
    outside = listener("nothing/here")
    for payload in (b"\xff not json", b"[1, 2]",
                    json.dumps({"SystemId": "5", "State": "Gone"}).encode(),
                    json.dumps(dict(eventPairs(lost(1), 6))).encode()):
        outside.client.publish("numberok/5/events/0/0", payload, qos=1)
    good = dict(eventPairs(lost(2), 5), id=1)
    outside.client.publish("numberok/5/events/1/2", json.dumps(good), qos=1)
    await waitUntil(lambda: central.sink.events, "the good message")
    assert central.metrics.value("numberok_mqtt_bad_messages_total") == 4
    assert [(e.systemId, e.runtimeId) for e in central.sink.events] == [
        (5, 2)]
    await stopped(central.collector)


@pytest_twisted.ensureDeferred
async def test_reads_topic_takes_ingest_and_openalpr_and_counts_bad_ones(
        tmp_path, mosquitto, listener):
    central = Central(tmp_path, mosquitto.endpoint, Collect=0,
                      Reads="cams/+/reads").start()
    await central.connected()
    outside = listener("nothing/here")
    ours = {"plate": "X123YZ", "channel": 2, "confidence": 0.9,
            "time_ms": 1700000000000}
    alpr = {"data_type": "alpr_results", "epoch_time": 1700000000500,
            "camera_id": 1, "results": [
                {"plate": "B777CD", "confidence": 91.0, "coordinates": [
                    {"x": 1, "y": 2}, {"x": 50, "y": 2}, {"x": 50, "y": 20},
                    {"x": 1, "y": 20}]}]}
    await readsSubscribed(central, outside)
    outside.client.publish("cams/1/reads", json.dumps(ours), qos=1)
    outside.client.publish("cams/1/reads", b"{broken", qos=1)
    outside.client.publish("cams/2/reads", json.dumps(alpr), qos=1)

    def reads() -> list:
        return [r for r in central.reads.reads if r.plate != PROBE_PLATE]
    await waitUntil(lambda: len(reads()) == 2, "2 reads")
    await waitUntil(lambda: central.metrics.value(
        "numberok_read_errors_total", source="mqtt") == 1, "1 bad read")
    assert [(r.plate, r.source) for r in reads()] == [
        ("X123YZ", "mqtt"), ("B777CD", "mqtt")]
    assert reads()[0].channel == 2
    await stopped(central.collector)


@pytest_twisted.ensureDeferred
async def test_tls_with_credentials_delivers_and_a_wrong_password_retries(
        tmp_path, mosquittoBroker):
    broker = mosquittoBroker(tls=True, users={"site": "s3cret",
                                              "central": "c3ntral"})
    central = Central(tmp_path, broker.endpoint, Username="central",
                      Password="c3ntral").start()
    await central.connected()
    site = Site(tmp_path, 21, broker.endpoint, Username="site",
                Password="s3cret").start()
    site.emit(lost(1, FRAME))
    await waitUntil(lambda: central.sink.events, "the event over TLS")
    assert central.sink.events[0].systemId == 21

    intruder = Site(tmp_path, 22, broker.endpoint, Username="site",
                    Password="wrong").start()
    await waitUntil(lambda: intruder.metrics.value(
        "numberok_mqtt_reconnects_total", role="publish") >= 2,
        "retries after the refusal")
    assert not intruder.publisher.connection.isConnected
    assert intruder.publisher.connection.lastError == \
        "refused: Not authorized"


@pytest_twisted.inlineCallbacks
def test_a_sites_lost_reaches_the_central_servers_client_with_its_system_id(
        server, mosquitto, tmp_path):
    # Both servers built by buildServer, as twistd builds them: the wiring
    # of the outbox, the collector and the event fan-out is what is proved.
    site = server(journalPath=tmp_path / "site", **{
        "System.SystemId": "7", "Mqtt.Broker": mosquitto.endpoint,
        "Analytics.SkipFirstResults": "0",
        "Zone:0:0.LossIntervalSec": "0.5"})
    central = server(journalPath=tmp_path / "central", **{
        "System.SystemId": "1", "Mqtt.Broker": mosquitto.endpoint,
        "Mqtt.Collect": "1", "Mqtt.Publish": "none"})
    client = FieldsClient()
    yield connectTo(central.port, client)
    yield waitFor(lambda: central.publisher.subscriptions(), 5)
    from twisted.internet import reactor
    site.analytics.addRead(PlateRead(
        plate="A123BC77", timeMs=int(reactor.seconds() * 1000)))
    yield waitFor(lambda: any(e["State"] == "Lost" for e in client.events),
                  15)
    [lost] = client.events
    assert (lost["SystemId"], lost["PlateNumber"]) == ("7", "A123BC77")
    sitePage = yield site.journal.since(0, 10)
    assert lost["RuntimeID"] == str(sitePage.entries[0].runtimeId)
    page = yield central.journal.since(0, 10)
    assert [(e.systemId, e.plate) for e in page.entries] == [(7, "A123BC77")]


# -- round three: what other clients of the broker can send ----------------

class LogWatch:
    """Every log event of the test, from the global publisher."""

    def __init__(self) -> None:
        from twisted.logger import globalLogPublisher
        self.events: list[dict] = []
        self.publisher = globalLogPublisher
        self.publisher.addObserver(self.events.append)

    def close(self) -> None:
        self.publisher.removeObserver(self.events.append)

    def failures(self) -> list[dict]:
        return [e for e in self.events if e.get("log_failure") is not None]

    def containing(self, text: str) -> list[dict]:
        return [e for e in self.events if text in e.get("log_format", "")]


@pytest.fixture
def logWatch():
    watch = LogWatch()
    yield watch
    watch.close()


def message(systemId, runtimeId: int = 1, channel: int = 1, zone: int = 2,
            **changes) -> bytes:
    body = dict(eventPairs(lost(runtimeId), 5))
    body.update({"SystemId": systemId, "ChannelIndex": str(channel),
                 "ZoneIndex": str(zone)}, **changes)
    return json.dumps(body).encode()


async def collectAfterMarker(central, outside, systemId: int = 5) -> None:
    """Publish a good event last; once it is collected every message
    published before it was seen by the central instance."""
    outside.client.publish("numberok/%d/events/1/2" % systemId,
                           message(str(systemId), 999), qos=1)
    await waitUntil(lambda: any(e.runtimeId == 999
                                for e in central.sink.events), "the marker")


@pytest_twisted.ensureDeferred
async def test_a_site_cannot_pose_as_another_system_id_through_a_longer_topic(
        tmp_path, mosquitto, listener):
    central = Central(tmp_path, mosquitto.endpoint).start()
    await central.connected()
    outside = listener("nothing/here")
    # The ACL lets this site write numberok/2/#; it claims SystemId 1.
    outside.client.publish("numberok/2/events/1/events/0/0",
                           message("1", 7, 0, 0), qos=1)
    # Channel and zone of the topic must be the payload's too.
    outside.client.publish("numberok/5/events/3/2", message("5", 8), qos=1)
    outside.client.publish("numberok/5/events/1/2/extra", message("5", 9),
                           qos=1)
    await collectAfterMarker(central, outside)
    assert central.keys() == [(5, 999)]
    assert central.metrics.value("numberok_mqtt_bad_messages_total") == 3
    await stopped(central.collector)


@pytest.mark.parametrize("member", ["SystemId", "RuntimeID", "id"])
@pytest_twisted.ensureDeferred
async def test_poison_integers_are_counted_as_bad_without_a_traceback(
        tmp_path, mosquitto, listener, logWatch, member):
    central = Central(tmp_path, mosquitto.endpoint).start()
    await central.connected()
    outside = listener("nothing/here")
    poison = ["--1", "\u00b2", "9" * 5000, "\u0661", " 1 1"]
    for value in poison:
        outside.client.publish("numberok/5/events/1/2",
                               message("5", **{member: value}), qos=1)
    await collectAfterMarker(central, outside)
    assert central.keys() == [(5, 999)]
    assert central.metrics.value("numberok_mqtt_bad_messages_total") == len(
        poison)
    assert logWatch.failures() == []
    await stopped(central.collector)


@pytest_twisted.ensureDeferred
async def test_bad_message_warnings_are_rate_limited_and_all_counted(
        tmp_path, mosquitto, listener, logWatch):
    from numberok.mqtt.quiet import QuietLog
    central = Central(tmp_path, mosquitto.endpoint).start()
    await central.connected()
    outside = listener("nothing/here")
    for n in range(200):
        outside.client.publish("numberok/5/events/1/2", b"garbage %d" % n,
                               qos=1)
    await collectAfterMarker(central, outside)
    assert central.metrics.value("numberok_mqtt_bad_messages_total") == 200
    assert len(logWatch.containing("bad event message")) == QuietLog.burst
    await stopped(central.collector)


@pytest_twisted.ensureDeferred
async def test_events_dropped_as_our_own_are_counted_and_logged(
        tmp_path, mosquitto, listener, logWatch):
    central = Central(tmp_path, mosquitto.endpoint, systemId=1).start()
    await central.connected()
    site = Site(tmp_path, 1, mosquitto.endpoint).start()   # default 1 too
    for rid in (1, 2, 3):
        site.emit(lost(rid))
    await waitUntil(lambda: central.metrics.value(
        "numberok_mqtt_own_dropped_total") == 3, "3 own drops counted")
    assert central.sink.events == []
    warnings = logWatch.containing("dropped as our own")
    assert warnings and all(w["systemId"] == 1 for w in warnings)
    await site.stop()
    await stopped(central.collector)


@pytest_twisted.ensureDeferred
async def test_channel_1023_is_collected_like_ingest_takes_it(
        tmp_path, mosquitto, listener):
    central = Central(tmp_path, mosquitto.endpoint).start()
    await central.connected()
    outside = listener("nothing/here")
    outside.client.publish("numberok/5/events/1023/0",
                           message("5", 3, 1023, 0), qos=1)
    outside.client.publish("numberok/5/events/1024/0",
                           message("5", 4, 1024, 0), qos=1)
    await collectAfterMarker(central, outside)
    assert central.keys() == [(5, 3), (5, 999)]
    assert central.sink.events[0].channel == 1023
    assert central.metrics.value("numberok_mqtt_bad_messages_total") == 1
    await stopped(central.collector)


@pytest_twisted.ensureDeferred
async def test_an_oversized_message_is_refused_before_it_is_read(
        tmp_path, mosquitto, listener, monkeypatch):
    # A valid event padded past the limit: only its size is wrong.
    monkeypatch.setattr(MqttCollector, "maxMessageBytes", 256 * 1024)
    central = Central(tmp_path, mosquitto.endpoint).start()
    await central.connected()
    outside = listener("nothing/here")
    big = message("5", 1, padding="x" * (400 * 1024))
    outside.client.publish("numberok/5/events/1/2", big, qos=1)
    await collectAfterMarker(central, outside)
    assert central.keys() == [(5, 999)]
    # MQTT 5's Maximum Packet Size: the broker never sent it to us.
    assert central.metrics.value("numberok_mqtt_bad_messages_total") == 0
    assert "numberok-9-collect" in mosquitto.readLog()
    await stopped(central.collector)


@pytest_twisted.ensureDeferred
async def test_the_duplicate_memory_holds_a_bounded_number_of_system_ids(
        tmp_path, mosquitto, listener, monkeypatch):
    from numberok.mqtt.seen import SeenKeys
    monkeypatch.setattr(SeenKeys, "maxSystems", 20)
    central = Central(tmp_path, mosquitto.endpoint).start()
    await central.connected()
    outside = listener("nothing/here")
    for systemId in range(100, 160):
        outside.client.publish("numberok/%d/events/1/2" % systemId,
                               message(str(systemId), 1), qos=1)
    await collectAfterMarker(central, outside)
    assert len(central.sink.events) == 61
    assert len(central.collector.seen) == 20
    await stopped(central.collector)
    central2 = Central(tmp_path, mosquitto.endpoint).start()
    await central2.connected()
    assert len(central2.collector.seen) == 20     # on disk too


@pytest_twisted.ensureDeferred
async def test_stop_does_not_wait_for_a_tcp_handshake_that_never_completes():
    import socket
    from twisted.internet import reactor
    from numberok.mqtt.broker import BrokerAddress
    # A listener whose backlog is full and that never accepts: the
    # kernel drops further SYNs, so a connect hangs until its timeout.
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    port = blackhole.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    connection = MqttConnection(
        "collect", BrokerAddress("127.0.0.1", port), "x", False,
        lambda c: None, lambda c: None, lambda: None)
    connection.connectTimeout = 30.0
    connection.start()
    await waitUntil(lambda: connection._connecting is not None, "attempt")
    from twisted.internet import task
    await task.deferLater(reactor, 0.3, lambda: None)
    assert not connection.isConnected
    stopping = connection.stop()
    # It fires at once (well within the 3 s the docs promise for a
    # SIGTERM), not after the 30 s connect timeout.
    await task.deferLater(reactor, 1.0, lambda: None)
    assert stopping.called
    for s in fillers + [blackhole]:
        s.close()


def test_retry_delays_double_and_half_of_each_is_random():
    from numberok.mqtt.broker import BrokerAddress
    connection = MqttConnection(
        "publish", BrokerAddress("h", 1), "x", True,
        lambda c: None, lambda c: None, lambda: None)
    connection.minDelay, connection.maxDelay = 0.5, 30.0
    connection.random = lambda: 0.0
    low = [connection.retryDelay(n) for n in range(1, 10)]
    connection.random = lambda: 1.0
    high = [connection.retryDelay(n) for n in range(1, 10)]
    assert high == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert low == [d / 2 for d in high]


@pytest_twisted.ensureDeferred
async def test_a_hole_left_by_a_wiped_broker_store_is_asked_for_and_filled(
        tmp_path, mosquitto):
    central = Central(tmp_path, mosquitto.endpoint).start()
    await central.connected()
    site = Site(tmp_path, 7, mosquitto.endpoint).start()
    for rid in (1, 2, 3):
        site.emit(lost(rid))
    await waitUntil(lambda: len(central.sink.events) == 3, "3 events")
    await stopped(central.collector)
    for rid in range(4, 9):             # queued by the broker for central
        site.emit(lost(rid))
    await waitUntil(lambda: site.publisher.outboxState()["acknowledged"] == 8,
                    "the broker to take ids 4..8")
    mosquitto.stop()
    os.remove(os.path.join(mosquitto.folder, "mosquitto.db"))
    mosquitto.start()                   # ... and forgot them
    central2 = Central(tmp_path, mosquitto.endpoint).start()
    await central2.connected()
    await waitUntil(lambda: site.publisher.connection.isConnected, "site")
    for rid in (9, 10):
        site.emit(lost(rid))
    await waitUntil(lambda: len(central2.sink.events) >= 7, "ids 4..10",
                    timeout=15)
    assert sorted(central2.keys()) == [(7, rid) for rid in range(4, 11)]
    assert central2.metrics.value("numberok_mqtt_gap_events_total",
                                  outcome="asked") == 5
    await site.stop()
    await stopped(central2.collector)


@pytest_twisted.ensureDeferred
async def test_a_hole_nobody_fills_is_counted_as_unfilled(
        tmp_path, mosquitto, listener, monkeypatch):
    from numberok.mqtt.gaps import Gaps
    monkeypatch.setattr(Gaps, "patience", 0.2)
    monkeypatch.setattr(MqttCollector, "gapCheckInterval", 0.1)
    central = Central(tmp_path, mosquitto.endpoint).start()
    await central.connected()
    requests = listener("numberok/5/republish")
    await waitUntil(requests.ready.is_set, "the listener's subscription")
    for journalId in (1, 5):
        requests.client.publish("numberok/5/events/1/2", message(
            "5", journalId, id=journalId), qos=1)
    await waitUntil(lambda: central.metrics.value(
        "numberok_mqtt_gap_events_total", outcome="unfilled") == 3,
        "ids 2..4 given up")
    assert [json.loads(m.payload) for m in requests.messages] == [
        {"from": 2}]
    assert central.metrics.value("numberok_mqtt_gap_open") == 0
    await stopped(central.collector)


@pytest_twisted.inlineCallbacks
def test_after_a_central_restart_a_client_back_within_the_grace_misses_nothing(
        server, mosquitto, tmp_path):
    from twisted.internet import reactor, task
    settings = {"System.SystemId": "1", "Mqtt.Broker": mosquitto.endpoint,
                "Mqtt.Collect": "1", "Mqtt.Publish": "none"}
    central = server(journalPath=tmp_path / "central", **settings)
    client = FieldsClient()
    yield connectTo(central.port, client)
    yield waitFor(lambda: central.publisher.subscriptions(), 5)
    site = Site(tmp_path, 7, mosquitto.endpoint).start()
    site.emit(lost(1))
    yield waitFor(lambda: client.events, 10)
    yield central.stop()
    for rid in range(2, 32):           # the broker keeps them for central
        site.emit(lost(rid))
    yield waitFor(lambda: site.publisher.outboxState()["acknowledged"] == 31,
                  10)
    central2 = server(journalPath=tmp_path / "central", **settings)
    yield task.deferLater(reactor, 1.0, lambda: None)
    client2 = FieldsClient()            # reconnects a second later
    yield connectTo(central2.port, client2)
    yield waitFor(lambda: len(client2.events) >= 30, 15)
    assert sorted(int(e["RuntimeID"]) for e in client2.events) == list(
        range(2, 32))
    yield site.stop()


@pytest_twisted.ensureDeferred
async def test_the_admin_page_shows_events_dropped_as_our_own(
        tmp_path, mosquitto, adminServer):
    from conftest import http
    central = adminServer(**{
        "System.SystemId": "1", "Mqtt.Broker": mosquitto.endpoint,
        "Mqtt.Collect": "1", "Mqtt.Publish": "none"})
    await waitUntil(lambda: central.metrics.value(
        "numberok_mqtt_connected", role="collect") == 1, "collector")
    site = Site(tmp_path, 1, mosquitto.endpoint).start()    # the same id
    site.emit(lost(1))
    site.emit(lost(2))
    await waitUntil(lambda: central.metrics.value(
        "numberok_mqtt_own_dropped_total") == 2, "2 own drops")
    live = await http("GET", central.url + "/live")
    assert b"dropped as our own SystemId 2" in live.body
    page = await http("GET", central.url + "/")
    assert b"dropped as our own SystemId 2" in page.body
    await site.stop()
