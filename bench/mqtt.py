"""
MQTT benchmark: N sites -> a local mosquitto -> one collecting instance,
on loopback, in one process on the real reactor (docs/mqtt.rst, "Sizing").

Each site is a real L{Journal} plus L{MqttPublisher}; the central instance
is a real L{MqttCollector} whose sink records when each event arrived.
Phases:
- throughput, pictures off and on: every site emits Lost events as fast as
  its journal takes them; Lost events/s end to end (first emit to last
  arrival at the central instance);
- sparse latency: one Lost per site every 100 ms, p50/p99 from the site's
  emit to the central instance's hand-over (this includes the journal
  write and the outbox's wake-up);
- broker restart: mosquitto is stopped and started while sites emit;
  missing and duplicate events at the central instance are counted;
- bare: the same broker and message size driven by bare paho clients
  (publisher QoS 1, subscriber QoS 1, no numberok): messages/s, and
  numberok's rate as a fraction of it.

    python bench/mqtt.py [--sites 3] [--events 2000] [--picture-kb 60]

The collecting instance here hands events to a list, not to NumberOk
clients: the publisher's fan-out is measured by bench/fanout.py.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from io import BytesIO

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from paho.mqtt import client as paho  # noqa: E402
from PIL import Image  # noqa: E402
from twisted.internet import defer, reactor, task  # noqa: E402
from zope.interface import implementer  # noqa: E402

from numberok.events import EventState, PlateEvent  # noqa: E402
from numberok.interfaces import IEventSink  # noqa: E402
from numberok.journal import Journal  # noqa: E402
from numberok.mqtt import MqttCollector, MqttPublisher  # noqa: E402
from numberok.mqtt.connection import MqttConnection  # noqa: E402
from numberok.settings import Settings, SettingsStore  # noqa: E402


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, folder: str) -> None:
        self.port = freePort()
        self.config = os.path.join(folder, "mosquitto.conf")
        with open(self.config, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\n"
                    "persistence true\npersistence_location %s/\nuser root\n"
                    "max_queued_messages 100000\nlog_dest none\n"
                    % (self.port, folder))
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", self.config])
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise SystemExit("mosquitto did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@implementer(IEventSink)
class Arrivals:
    def __init__(self) -> None:
        self.times: dict[tuple[int, int], float] = {}
        self.duplicates = 0

    def publish(self, event: PlateEvent) -> None:
        key = (event.systemId, event.runtimeId)
        if key in self.times:
            self.duplicates += 1
        self.times[key] = time.monotonic()


def picture(kb: int) -> bytes:
    size = 64
    while True:
        out = BytesIO()
        image = Image.effect_noise((size * 2, size), 60).convert("RGB")
        image.save(out, "JPEG", quality=90)
        if len(out.getvalue()) >= kb * 1024 or size > 4000:
            return out.getvalue()
        size = int(size * 1.3)


def settings(systemId: int, broker: str, **mqtt) -> SettingsStore:
    changes = {"System.SystemId": str(systemId), "Mqtt.Broker": broker}
    changes.update({"Mqtt." + k: str(v) for k, v in mqtt.items()})
    return SettingsStore(Settings().withChanges(changes))


def lost(runtimeId: int, frame) -> PlateEvent:
    return PlateEvent(state=EventState.LOST, runtimeId=runtimeId, channel=0,
                      zone=0, plate="A%06d" % (runtimeId,),
                      rawPlate="A%06d" % (runtimeId,),
                      frameTimeMs=1700000000000 + runtimeId, frame=frame,
                      bbox=(10, 10, 60, 16) if frame else None)


async def waitFor(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await task.deferLater(reactor, 0.01, lambda: None)
    return True


class Run:
    """N sites and a central instance on one broker."""

    def __init__(self, folder: str, broker: Broker, sites: int,
                 pictures: bool) -> None:
        self.broker = broker
        endpoint = "tcp:host=127.0.0.1:port=%d" % (broker.port,)
        self.arrivals = Arrivals()
        self.central = MqttCollector(settings(100, endpoint, Collect=1),
                                     self.arrivals, None,
                                     os.path.join(folder, "central"))
        self.sites = []
        for n in range(1, sites + 1):
            journal = Journal(os.path.join(folder, "site%d" % n))
            publisher = MqttPublisher(settings(n, endpoint,
                                               Pictures=int(pictures)),
                                      journal)
            self.sites.append((n, journal, publisher))
        self.sent: dict[tuple[int, int], float] = {}
        self.next = 1

    async def start(self) -> None:
        self.central.startService()
        for _, journal, publisher in self.sites:
            journal.startService()
            publisher.startService()
        await waitFor(lambda: self.central.connection.isConnected and all(
            p.connection.isConnected for _, _, p in self.sites), 10)

    def emitRound(self, frame) -> None:
        rid, self.next = self.next, self.next + 1
        for n, journal, publisher in self.sites:
            event = lost(rid, frame)
            self.sent[(n, rid)] = time.monotonic()
            journal.publish(event)
            publisher.publish(event)

    async def stop(self) -> None:
        for _, journal, publisher in self.sites:
            await publisher.stopService()
            await journal.stopService()
        await self.central.stopService()

    def missing(self) -> int:
        return len(set(self.sent) - set(self.arrivals.times))


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def throughput(folder, broker, sites, events, frame) -> float:
    run = Run(folder, broker, sites, frame is not None)
    await run.start()
    began = time.monotonic()
    for i in range(events):
        run.emitRound(frame)
        if i % 50 == 49:         # let the journal's queue breathe
            await run.sites[-1][1].whenIdle()
    await waitFor(lambda: len(run.arrivals.times) >= len(run.sent), 120)
    elapsed = max(run.arrivals.times.values()) - began
    await run.stop()
    return len(run.arrivals.times) / elapsed


async def sparse(folder, broker, sites, count) -> tuple[float, float]:
    run = Run(folder, broker, sites, False)
    await run.start()
    for _ in range(count):
        run.emitRound(None)
        await task.deferLater(reactor, 0.1, lambda: None)
    await waitFor(lambda: len(run.arrivals.times) >= len(run.sent), 30)
    latencies = [(run.arrivals.times[k] - t) * 1000
                 for k, t in run.sent.items() if k in run.arrivals.times]
    await run.stop()
    return percentile(latencies, 0.5), percentile(latencies, 0.99)


async def restart(folder, broker, sites, count) -> tuple[int, ...]:
    run = Run(folder, broker, sites, False)
    await run.start()
    for i in range(count):
        run.emitRound(None)
        if i == count // 3:
            broker.stop()
        if i == 2 * count // 3:
            broker.start()
        await task.deferLater(reactor, 0.005, lambda: None)
    await waitFor(lambda: len(run.arrivals.times) >= len(run.sent), 60)
    dropped = int(run.central.metrics.value("numberok_mqtt_duplicates_total"))
    result = (len(run.sent), run.missing(), run.arrivals.duplicates, dropped)
    await run.stop()
    return result


def bare(port: int, messages: int, size: int) -> float:
    """Bare paho publisher and subscriber (their own threads), QoS 1."""
    got = threading.Event()
    count = [0]

    def onMessage(c, u, m):
        count[0] += 1
        if count[0] == messages:
            got.set()
    sub = paho.Client(paho.CallbackAPIVersion.VERSION2)
    subscribed = threading.Event()
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_message = onMessage
    sub.connect("127.0.0.1", port)
    sub.subscribe("bare/#", 1)
    sub.loop_start()
    subscribed.wait(5)
    pub = paho.Client(paho.CallbackAPIVersion.VERSION2)
    pub.max_inflight_messages_set(100)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    payload = os.urandom(size)
    began = time.monotonic()
    for _ in range(messages):
        pub.publish("bare/1/events/0/0", payload, qos=1)
    got.wait(120)
    elapsed = time.monotonic() - began
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return count[0] / elapsed


async def main(options) -> None:
    MqttConnection.minDelay = 0.05
    MqttConnection.maxDelay = 0.5
    MqttPublisher.pollInterval = 0.2
    folder = tempfile.mkdtemp(prefix="numberok-mqtt-bench-")
    broker = Broker(folder)
    broker.start()
    frame = picture(options.picture_kb)
    try:
        print("sites %d, events %d per site, picture %d bytes"
              % (options.sites, options.events, len(frame)))
        off = await throughput(os.path.join(folder, "a"), broker,
                               options.sites, options.events, None)
        print("pictures off: %.0f Lost events/s end to end" % (off,))
        on = await throughput(os.path.join(folder, "b"), broker,
                              options.sites, options.events // 4, frame)
        print("pictures on:  %.0f Lost events/s end to end" % (on,))
        p50, p99 = await sparse(os.path.join(folder, "c"), broker,
                                options.sites, 50)
        print("sparse latency site -> central: p50 %.1f ms, p99 %.1f ms"
              % (p50, p99))
        sent, missing, dups, dropped = await restart(
            os.path.join(folder, "d"), broker, options.sites, 300)
        print("broker restart: %d sent, %d missing, %d duplicates at the "
              "client (%d repeats dropped by the collector)"
              % (sent, missing, dups, dropped))
        # Blocking on purpose: nothing of numberok runs any more.
        small = bare(broker.port, 20000, 420)
        big = bare(broker.port, 2000, len(frame) * 4 // 3 + 420)
        print("bare paho QoS 1, 420-byte messages: %.0f msg/s -> numberok "
              "pictures off is %.0f %%" % (small, 100 * off / small))
        print("bare paho QoS 1, picture-sized messages: %.0f msg/s -> "
              "numberok pictures on is %.0f %%" % (big, 100 * on / big))
    finally:
        broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--picture-kb", type=int, default=60)
    options = parser.parse_args()
    task.react(lambda _: defer.ensureDeferred(main(options)))
