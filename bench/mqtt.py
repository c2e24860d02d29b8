"""
MQTT benchmark: N site instances -> a local mosquitto -> a central
instance -> 4 NumberOk clients, on loopback (docs/mqtt.rst, "Sizing").

Every instance is the real server, ``twistd -n numberok-tcp`` in its own
process, built by the one wiring (numberok/build.py); only the settings
file differs.  Sites: ``[Mqtt] Publish = lost``, their journal in a
temporary folder, every zone ``LossIntervalSec = 0.5``; reads go into each
site's ingest port as JSON lines with ``"per_vehicle": true``, so each read
is one vehicle: Detected at once, Lost 0.5 s later.  The central instance:
``[Mqtt] Collect = 1``, ``Publish = none``, 4 NumberOk clients on its event
port.  Each site also has one NumberOk client: the moment it decodes a Lost
is "the site's Lost"; the central clients' decode of the same
(SystemId, RuntimeID) is its arrival.

Phases (one cluster per picture setting):
- loaded, pictures off and on: every site is fed reads as fast as it takes
  them; Lost events/s end to end = Lost events at the central clients over
  the time from the first site Lost to the last central arrival; latency
  site Lost -> central client, p50/p99;
- sparse latency: one read at a time, a site after another, 0.6 s apart
  (under the publisher's 2 writes/s per client, so no write waits);
- broker restart: mosquitto stopped for 2 s and started again while sites
  emit; Lost events missing at the central clients, and duplicates (an
  event decoded twice by one client);
- backlog: the central paused (SIGSTOP) while the sites publish, then
  resumed: the rate at which it drains what the broker kept for it, its
  own intake (in the loaded phase it keeps up with the sites, so its rate
  there is theirs);
- bare: the same broker and message size driven by bare paho clients
  (publisher QoS 1, subscriber QoS 1, no numberok): messages/s, and
  numberok's rate as a fraction of it.

    python bench/mqtt.py [--sites 3] [--reads 400] [--picture-kb 60]
                         [--profile DIR]

``--profile DIR`` runs every twistd under cProfile (DIR/site1.prof, ...,
DIR/central.prof; read with ``python -m pstats``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from paho.mqtt import client as paho  # noqa: E402
from PIL import Image  # noqa: E402

from numberok import wire  # noqa: E402

TWISTD = [sys.executable, "-c",
          "import sys; sys.argv[0] = 'twistd'; "
          "from twisted.scripts.twistd import run; run()"]
CENTRAL_ID = 100
ZONES = [(c, z) for c in range(2) for z in range(4)]


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def waitForPort(port: int, process: subprocess.Popen = None,
                timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            if time.monotonic() > deadline or (
                    process is not None and process.poll() is not None):
                raise SystemExit("port %d did not open" % (port,))
            time.sleep(0.05)


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
        waitForPort(self.port, self.process, 10)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class Instance:
    """One ``twistd -n numberok-tcp`` with its settings file."""

    def __init__(self, name: str, folder: Path, settings: str,
                 profile: str = None) -> None:
        folder.mkdir(parents=True)
        (folder / "numberok.ini").write_text(settings)
        self.name = name
        self.folder = folder
        self.eventPort, self.ingestPort = freePort(), freePort()
        command = list(TWISTD)
        if profile:
            command += ["--profile=" + os.path.abspath(os.path.join(profile, name + ".prof")),
                        "--profiler=cprofile", "--savestats"]
        command += [
            "--nodaemon", "--pidfile=", "--logfile",
            str(folder / "twistd.log"), "numberok-tcp",
            "--config", str(folder / "numberok.ini"),
            "--journal", str(folder / "journal"),
            "--port", "tcp:%d:interface=127.0.0.1" % (self.eventPort,),
            "--ingest", "tcp:%d:interface=127.0.0.1" % (self.ingestPort,),
            "--admin", "none"]
        # This checkout first on the path, not whatever numberok is
        # installed: the benchmark measures the code beside it.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(ROOT)] + [p for p in os.environ.get(
                "PYTHONPATH", "").split(os.pathsep) if p]))
        self.process = subprocess.Popen(command, cwd=str(folder), env=env)
        waitForPort(self.eventPort, self.process)
        waitForPort(self.ingestPort, self.process)
        self.ingest = socket.create_connection(("127.0.0.1", self.ingestPort))

    def stop(self) -> None:
        self.ingest.close()
        self.process.terminate()
        self.process.wait(60)


def siteSettings(systemId: int, brokerPort: int, pictures: bool) -> str:
    zones = "".join("[Zone:%d:%d]\nLossIntervalSec = 0.5\n" % cz
                    for cz in ZONES)
    return ("[System]\nSystemId = %d\n[NetServer]\nMaxConnections = 4\n"
            "[Analytics]\nUseRawResults = 1\nSkipFirstResults = 0\n"
            "[Mqtt]\nBroker = tcp:host=127.0.0.1:port=%d\nPublish = lost\n"
            "Pictures = %d\nQoS = 1\n%s"
            % (systemId, brokerPort, int(pictures), zones))


def centralSettings(brokerPort: int) -> str:
    return ("[System]\nSystemId = %d\n[NetServer]\nMaxConnections = 4\n"
            "[Mqtt]\nBroker = tcp:host=127.0.0.1:port=%d\nPublish = none\n"
            "Collect = 1\nQoS = 1\n" % (CENTRAL_ID, brokerPort))


class Client(threading.Thread):
    """A NumberOk subscriber: when it first decoded each Lost, by
    (SystemId, RuntimeID), and how many it decoded twice."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), 5)
        # The connect timeout only: a phase may leave a client without
        # events for longer than that, and it must go on listening.
        self.sock.settimeout(None)
        self.sock.sendall(wire.subscribePacket())
        self.times: dict[tuple[str, str], float] = {}
        self.duplicates = 0

    def run(self) -> None:
        decoder = wire.PacketDecoder()
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except OSError:
                break
            if not data:
                break
            now = time.monotonic()
            for packet in decoder.feed(data):
                fields = dict(wire.decodeEventData(packet.data)[0])
                if fields.get("State") != "Lost":
                    continue
                key = (fields["SystemId"], fields["RuntimeID"])
                if key in self.times:
                    self.duplicates += 1
                else:
                    self.times[key] = now


def _plates(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    letters = "ABEKMHOPCTYX"
    return ["%s%03d%s%s%02d" % (
        rng.choice(letters), rng.randrange(1, 1000), rng.choice(letters),
        rng.choice(letters), rng.randrange(1, 100)) for _ in range(count)]


PLATES = _plates(5000, 13)


def readLine(seq: int, jpeg: str = None) -> bytes:
    channel, zone = ZONES[seq % len(ZONES)]
    obj = {"plate": PLATES[seq % len(PLATES)], "channel": channel,
           "zone": zone, "confidence": 0.9, "bbox": [40, 40, 120, 30],
           "per_vehicle": True, "process_time_ms": seq}
    if jpeg:
        obj["jpeg_b64"] = jpeg
    return json.dumps(obj).encode() + b"\n"


def picture(kb: int) -> bytes:
    size = 64
    while True:
        out = BytesIO()
        image = Image.effect_noise((size * 2, size), 60).convert("RGB")
        image.save(out, "JPEG", quality=90)
        if len(out.getvalue()) >= kb * 1024 or size > 4000:
            return out.getvalue()
        size = int(size * 1.3)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


class Cluster:
    """The sites, the central instance and their clients."""

    def __init__(self, folder: Path, broker: Broker, sites: int,
                 pictures: bool, profile: str = None) -> None:
        self.central = Instance("central", folder / "central",
                                centralSettings(broker.port), profile)
        self.sites = [Instance("site%d" % n, folder / ("site%d" % n),
                               siteSettings(n, broker.port, pictures),
                               profile)
                      for n in range(1, sites + 1)]
        self.centralClients = [Client(self.central.eventPort)
                               for _ in range(4)]
        self.siteClients = [Client(s.eventPort) for s in self.sites]
        for c in self.centralClients + self.siteClients:
            c.start()
        self.seq = 0
        time.sleep(2.0)   # MQTT sessions up

    def feed(self, site: int, count: int, jpeg: str = None) -> None:
        lines = []
        for _ in range(count):
            lines.append(readLine(self.seq, jpeg))
            self.seq += 1
        self.sites[site].ingest.sendall(b"".join(lines))

    def siteLost(self) -> dict:
        times: dict = {}
        for c in self.siteClients:
            times.update(c.times)
        return times

    def waitAll(self, timeout: float) -> bool:
        """Until the sites made no new Lost for 2 s (a read's Lost comes
        0.5 s after it; the analytics merge some close plates, so the
        count is not known ahead) and every central client has them
        all."""
        deadline = time.monotonic() + timeout
        count, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            sent = self.siteLost()
            if len(sent) != count:
                count, since = len(sent), time.monotonic()
            elif time.monotonic() - since > 2.0 and all(
                    set(sent) <= set(c.times) for c in self.centralClients):
                return True
            time.sleep(0.05)
        return False

    def latencies(self, keys) -> list[float]:
        sent = self.siteLost()
        return [(c.times[k] - sent[k]) * 1000 for c in self.centralClients
                for k in keys if k in c.times and k in sent]

    def missing(self, keys) -> int:
        """Of C{keys} (Lost events the sites' clients saw), how many some
        central client never had."""
        return max(len(set(keys) - set(c.times))
                   for c in self.centralClients)

    def duplicates(self) -> int:
        return sum(c.duplicates for c in self.centralClients)

    def centralIntake(self, sinceMs: float) -> tuple[int, float]:
        """
        Events the central instance collected (its journal's rows) since
        C{sinceMs}, and the span in seconds from the first to the last:
        the broker path's own rate, before the NumberOk clients' cap (two
        writes a second of at most 1024 events each).
        """
        import sqlite3
        db = sqlite3.connect("file:%s?mode=ro" % (
            self.central.folder / "journal" / "events.sqlite"), uri=True)
        try:
            count, first, last = db.execute(
                "SELECT COUNT(*), MIN(recorded_ms), MAX(recorded_ms) "
                "FROM events WHERE recorded_ms >= ?",
                (int(sinceMs),)).fetchone()
        finally:
            db.close()
        return count, ((last - first) / 1000.0 if count > 1 else 0.0)

    def stop(self) -> None:
        for instance in self.sites + [self.central]:
            instance.stop()


def loaded(cluster: Cluster, reads: int, jpeg: str = None) -> dict:
    before = set(cluster.siteLost())
    batch = 50 if jpeg is None else 5
    sinceMs = time.time() * 1000
    began = time.monotonic()
    fed = 0
    while fed < reads:
        for site in range(len(cluster.sites)):
            cluster.feed(site, batch, jpeg)
        fed += batch
    cluster.waitAll(180)
    sent = cluster.siteLost()
    keys = set(sent) - before
    arrivals = [c.times[k] for c in cluster.centralClients for k in keys
                if k in c.times]
    first = min(sent[k] for k in keys)
    central = sum(1 for k in keys if k in cluster.centralClients[0].times)
    late = cluster.latencies(keys)
    collected, span = cluster.centralIntake(sinceMs)
    return dict(
        collected=collected, intake=collected / span if span else 0.0,
        events=central, fed=reads * len(cluster.sites),
        rate=central / (max(arrivals) - first),
        siteRate=len(keys) / (max(sent[k] for k in keys) - first),
        feedSeconds=time.monotonic() - began,
        p50=percentile(late, 0.5), p99=percentile(late, 0.99))


def backlog(cluster: Cluster, reads: int) -> dict:
    """
    The central instance's own intake: it is paused (SIGSTOP) while the
    sites publish C{reads} vehicles each, so the broker holds them for
    its session; then it is resumed and drains them as fast as it can,
    like the bare subscriber is fed by a publisher faster than it.  The
    live phase cannot show this: there the central keeps up with the
    sites, and its rate is theirs.
    """
    before = set(cluster.siteLost())
    central = cluster.central.process
    central.send_signal(signal.SIGSTOP)
    try:
        fed = 0
        while fed < reads:
            for site in range(len(cluster.sites)):
                cluster.feed(site, 50)
            fed += 50
        deadline = time.monotonic() + 120
        count, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            made = len(set(cluster.siteLost()) - before)
            if made != count:
                count, since = made, time.monotonic()
            elif time.monotonic() - since > 2.0:
                break
            time.sleep(0.1)
    finally:
        sinceMs = time.time() * 1000
        central.send_signal(signal.SIGCONT)
    cluster.waitAll(180)
    collected, span = cluster.centralIntake(sinceMs)
    return dict(collected=collected, intake=collected / span if span
                else 0.0, made=count)


def sparse(cluster: Cluster, count: int) -> tuple[float, float]:
    before = set(cluster.siteLost())
    for n in range(count):
        cluster.feed(n % len(cluster.sites), 1)
        time.sleep(0.6)
    cluster.waitAll(30)
    keys = set(cluster.siteLost()) - before
    late = cluster.latencies(keys)
    return percentile(late, 0.5), percentile(late, 0.99)


def restart(cluster: Cluster, broker: Broker, seconds: float) -> tuple:
    before = set(cluster.siteLost())
    fed = 0
    began = time.monotonic()
    stopped = started = False
    while time.monotonic() - began < seconds:
        elapsed = time.monotonic() - began
        if not stopped and elapsed > seconds / 3:
            broker.stop()
            stopped = True
        if not started and elapsed > seconds / 3 + 2:
            broker.start()
            started = True
        for site in range(len(cluster.sites)):
            cluster.feed(site, 2)
        fed += 2 * len(cluster.sites)
        time.sleep(0.05)
    cluster.waitAll(90)
    # This phase's events only: the loaded phase before it fed the central
    # clients faster than the protocol lets a client take events (two
    # writes a second of at most 1024), and those drops are the cap's.
    keys = set(cluster.siteLost()) - before
    return len(keys), cluster.missing(keys), cluster.duplicates()


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


def main(options) -> None:
    print("$ python bench/mqtt.py " + " ".join(sys.argv[1:]))
    folder = Path(tempfile.mkdtemp(prefix="numberok-mqtt-bench-"))
    if options.profile:
        os.makedirs(options.profile, exist_ok=True)
    broker = Broker(str(folder))
    broker.start()
    frame = picture(options.picture_kb)
    jpeg = base64.b64encode(frame).decode("ascii")
    try:
        print("%d sites -> mosquitto -> central -> 4 NumberOk clients; "
              "%d reads per site, picture %d bytes"
              % (options.sites, options.reads, len(frame)))
        cluster = Cluster(folder / "off", broker, options.sites, False,
                          options.profile)
        try:
            off = loaded(cluster, options.reads)
            print("pictures off: %(rate).0f Lost events/s end to end "
                  "(%(events)d of %(fed)d reads; the sites made Lost at "
                  "%(siteRate).0f/s); site Lost -> central client p50 "
                  "%(p50).0f ms, p99 %(p99).0f ms (loaded)" % off)
            print("pictures off: the central instance collected %(collected)d "
                  "at %(intake).0f events/s (its journal; before the "
                  "NumberOk clients' cap of 2 writes/s x 1024 events)" % off)
            drained = backlog(cluster, options.reads)
            print("backlog: the central instance, paused while the sites "
                  "made %(made)d Lost, then drained %(collected)d at "
                  "%(intake).0f events/s (its journal)" % drained)
            p50, p99 = sparse(cluster, options.sparse)
            print("sparse latency site Lost -> central client: p50 %.1f ms,"
                  " p99 %.1f ms" % (p50, p99))
            sent, missing, dups = restart(cluster, broker, 9.0)
            print("broker restart: %d Lost events, %d missing, %d "
                  "duplicates at the central clients"
                  % (sent, missing, dups))
        finally:
            cluster.stop()
        if not options.no_pictures:
            cluster = Cluster(folder / "on", broker, options.sites, True,
                              options.profile and options.profile + "/on")
            try:
                on = loaded(cluster, max(1, options.reads // 4), jpeg)
                print("pictures on:  %(rate).0f Lost events/s end to end "
                      "(%(events)d of %(fed)d reads; sites %(siteRate).0f/s)"
                      "; p50 %(p50).0f ms, p99 %(p99).0f ms (loaded)" % on)
            finally:
                cluster.stop()
        small = bare(broker.port, 20000, 420)
        print("bare paho QoS 1, 420-byte messages: %.0f msg/s -> numberok "
              "pictures off is %.0f %% at the NumberOk clients, %.0f %% at "
              "the central instance live (the sites' pace), %.0f %% draining "
              "a backlog (the central's own intake)"
              % (small, 100 * off["rate"] / small,
                 100 * off["intake"] / small,
                 100 * drained["intake"] / small))
        if not options.no_pictures:
            big = bare(broker.port, 2000, len(frame) * 4 // 3 + 420)
            print("bare paho QoS 1, picture-sized messages: %.0f msg/s -> "
                  "numberok pictures on is %.0f %%"
                  % (big, 100 * on["rate"] / big))
    finally:
        broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--reads", type=int, default=400,
                        help="reads (= vehicles) per site, loaded phase; a site client's queue holds 1024 events (2 per read)")
    parser.add_argument("--sparse", type=int, default=20)
    parser.add_argument("--picture-kb", type=int, default=60)
    parser.add_argument("--no-pictures", action="store_true")
    parser.add_argument("--profile", metavar="DIR")
    main(parser.parse_args())
