"""
Fan-out benchmark: reads pushed into the ingest port as fast as the server
takes them, four loopback clients subscribed, UseRawResults = 1 (so every
read becomes one event for every client).

Runs the real server (`twistd -n numberok-tcp`) as a subprocess and
measures it from outside: its CPU time and peak RSS from /proc, reads/s
sustained, events delivered/s, and the latency from the moment a read is
written to the ingest socket to the moment a client has its event.

Three phases:
- sparse: one read per 0.6 s, so the 2-writes-per-second cap never holds an
  event back: the latency is the server's own;
- throughput: reads as fast as the server takes them (reads/s, CPU);
- loaded: reads paced at 75 % of the measured throughput for a few
  seconds: the latency a client sees while the server is busy (at 100 %
  the ingest socket's buffers fill and latency only measures that queue).

    python bench/fanout.py [--reads 200000] [--sparse 40] [--loaded-seconds 10]
                            [--profile FILE] [--no-bare]

It first floods bench/bare_server.py with the same reads and prints both
servers' CPU per read (from /proc/<pid>/stat) and their ratio.

Note the cap the protocol puts on delivery: a client receives at most two
writes per second of at most 1024 queued events each, so under a raw-results
flood each client gets about 2,048 events/s and the rest are dropped by the
documented policy (oldest Updated first).

Each read carries its sequence number in process_time_ms, which its
Detected or Updated event returns as ProcessTimeMs: that is how a client
finds the send time.  (Lost events report the track's best read, sent a
loss interval earlier by design, so they are not counted in latency.)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from numberok import wire  # noqa: E402

SETTINGS = """\
[NetServer]
MaxConnections = 4
[Analytics]
UseRawResults = 1
SkipFirstResults = 0
"""

TWISTD = [sys.executable, "-c",
          "import sys; sys.argv[0] = 'twistd'; "
          "from twisted.scripts.twistd import run; run()"]


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def procStats(pid: int) -> tuple[float, int]:
    """(CPU seconds, peak RSS in bytes) of a process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    return cpu, peak


class Client(threading.Thread):
    """One NumberOk subscriber that timestamps every event it decodes."""

    def __init__(self, port: int, sendTimes: dict) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), 5)
        self.sock.sendall(wire.subscribePacket())
        self.sendTimes = sendTimes
        self.latencies: list[float] = []
        self.events = 0
        self.lastSeq = -1
        self.done = threading.Event()

    def run(self) -> None:
        decoder = wire.PacketDecoder()
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except OSError:
                break
            if not data:
                break
            now = time.perf_counter()
            for packet in decoder.feed(data):
                pairs, _ = wire.decodeEventData(packet.data)
                fields = dict(pairs)
                seq = int(fields["ProcessTimeMs"])
                self.events += 1
                # A Lost event reports the track's best read, which came
                # a loss interval ago by design: no ingest latency there.
                sent = self.sendTimes.get(seq)
                if sent is not None and fields["State"] != "Lost":
                    self.latencies.append(now - sent)
                self.lastSeq = max(self.lastSeq, seq)
        self.done.set()

    def reset(self) -> None:
        self.latencies = []
        self.events = 0


def _plates(count: int = 200, seed: int = 13) -> list[str]:
    """
    C{count} distinct Russian plates, random as traffic is.  (An earlier
    feed numbered them, A000BC10, A001BC11, ...: a zone's consecutive
    vehicles then differed in two characters, and soft comparison rightly
    took them for one car misread -- a case that measures the vote's
    slowest path, not the server's everyday one.)
    """
    import random
    rng = random.Random(seed)
    letters = "ABEKMHOPCTYX"
    plates: set[str] = set()
    while len(plates) < count:
        plates.add("%s%03d%s%s%02d" % (
            rng.choice(letters), rng.randrange(1, 1000), rng.choice(letters),
            rng.choice(letters), rng.randrange(1, 100)))
    return sorted(plates)


PLATES = _plates()


def readLine(seq: int) -> bytes:
    # 200 distinct plates over 8 zones (2 cameras x 4 zones); a vehicle is
    # 20 reads of one plate, its box moving down the frame.
    vehicle = seq // 20
    step = seq % 20
    plate = PLATES[vehicle % 200]
    return json.dumps({"plate": plate, "channel": vehicle % 2,
                       "zone": (vehicle // 2) % 4, "confidence": 0.9,
                       "bbox": [400, 100 + 20 * step, 120, 30],
                       "process_time_ms": seq}).encode() + b"\n"


def sendBatch(ingest: socket.socket, seq: int, count: int,
              sendTimes: dict) -> int:
    """Send C{count} reads from C{seq} on in one write; return the next."""
    now = time.perf_counter()
    lines = []
    for n in range(seq, seq + count):
        sendTimes[n] = now
        lines.append(readLine(n))
    ingest.sendall(b"".join(lines))
    return seq + count


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def waitForPort(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("server did not start")
            time.sleep(0.1)


def flood(server: subprocess.Popen, clients: list, ingest: socket.socket,
          seq: int, count: int, sendTimes: dict) -> dict:
    """Reads as fast as the server takes them; its CPU from /proc."""
    for c in clients:
        c.reset()
    cpuBefore, _ = procStats(server.pid)
    first = seq
    start = time.perf_counter()
    while seq < first + count:
        seq = sendBatch(ingest, seq, 500, sendTimes)
    sentAt = time.perf_counter()
    last = seq - 1
    waitUntil = time.monotonic() + 120
    while any(c.lastSeq < last for c in clients):
        if time.monotonic() > waitUntil:
            break
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    cpuAfter, peakRss = procStats(server.pid)
    return dict(seq=seq, reads=count, elapsed=elapsed, sentAfter=sentAt - start,
                rate=count / elapsed, cpu=cpuAfter - cpuBefore,
                delivered=sum(c.events for c in clients), peakRss=peakRss)


def connect(eventPort: int, ingestPort: int, sendTimes: dict):
    clients = [Client(eventPort, sendTimes) for _ in range(4)]
    for c in clients:
        c.start()
    time.sleep(1.0)
    return clients, socket.create_connection(("127.0.0.1", ingestPort), 5)


def bare(count: int) -> dict:
    """The same flood into bench/bare_server.py."""
    eventPort, ingestPort = freePort(), freePort()
    server = subprocess.Popen([sys.executable,
                               str(ROOT / "bench" / "bare_server.py"),
                               str(eventPort), str(ingestPort)])
    try:
        waitForPort(ingestPort, server)
        sendTimes: dict[int, float] = {}
        clients, ingest = connect(eventPort, ingestPort, sendTimes)
        result = flood(server, clients, ingest, 0, count, sendTimes)
        ingest.close()
        return result
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=200_000)
    parser.add_argument("--sparse", type=int, default=40)
    parser.add_argument("--loaded-seconds", type=float, default=10.0)
    parser.add_argument("--profile", metavar="FILE",
                        help="run twistd under cProfile, stats to FILE")
    parser.add_argument("--no-bare", action="store_true",
                        help="skip the bare Twisted server")
    parser.add_argument("--numbered-plates", action="store_true",
                        help="the earlier feed: A000BC10, A001BC11, ... "
                             "(a zone's consecutive vehicles two characters "
                             "apart)")
    args = parser.parse_args()
    if args.numbered_plates:
        PLATES[:] = ["A%03dBC%02d" % (n, 10 + n % 90) for n in range(200)]

    bareResult = None if args.no_bare else bare(args.reads)
    tmp = Path(tempfile.mkdtemp(prefix="numberok-fanout-"))
    (tmp / "numberok.ini").write_text(SETTINGS)
    eventPort, ingestPort = freePort(), freePort()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    profile = []
    if args.profile:
        profile = ["--profile=%s" % os.path.abspath(args.profile),
                   "--profiler=cprofile", "--savestats"]
    server = subprocess.Popen(
        TWISTD + ["--nodaemon", "--pidfile=", "--logfile=%s" % (tmp / "log")]
        + profile +
        ["numberok-tcp", "--config", str(tmp / "numberok.ini"),
         "--port", "tcp:%d:interface=127.0.0.1" % eventPort,
         "--ingest", "tcp:%d:interface=127.0.0.1" % ingestPort,
         "--admin", "none"], cwd=str(tmp), env=env)
    try:
        waitForPort(ingestPort, server)
        sendTimes: dict[int, float] = {}
        clients, ingest = connect(eventPort, ingestPort, sendTimes)

        # Sparse: one read per 0.6 s.
        seq = 0
        for _ in range(args.sparse):
            sendTimes[seq] = time.perf_counter()
            ingest.sendall(readLine(seq))
            seq += 1
            time.sleep(0.6)
        time.sleep(0.6)
        sparse = [lat for c in clients for lat in c.latencies]

        # Throughput: as fast as the server takes them.
        ours = flood(server, clients, ingest, seq, args.reads, sendTimes)
        seq, rate = ours["seq"], ours["rate"]

        # Loaded: paced at 75 % of that, in 10 ms slices.
        time.sleep(1.0)
        for c in clients:
            c.reset()
        paced = rate * 0.75
        perSlice = max(1, int(paced / 100))
        sliceStart = time.perf_counter()
        stopAt = sliceStart + args.loaded_seconds
        while time.perf_counter() < stopAt:
            seq = sendBatch(ingest, seq, perSlice, sendTimes)
            sliceStart += 0.01
            pause = sliceStart - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        time.sleep(1.0)
        loaded = [lat for c in clients for lat in c.latencies]
        _, peakRss = procStats(server.pid)

        command = "python bench/fanout.py " + " ".join(sys.argv[1:])
        print("command: %s" % command.strip())
        print("machine: %d cores, Python %s" % (
            os.cpu_count(), sys.version.split()[0]))
        print("feed: 200 distinct %s plates over 8 zones, boxes, raw "
              "results on, 4 clients draining"
              % ("numbered" if args.numbered_plates else "random",))
        reads = ours["reads"]
        print("reads pushed: %d in %.2f s (sender done after %.2f s)" % (
            reads, ours["elapsed"], ours["sentAfter"]))
        print("reads/s sustained: %.0f" % (rate,))
        print("events delivered/s (4 clients): %.0f (%d events, %d expected)"
              % (ours["delivered"] / ours["elapsed"], ours["delivered"],
                 reads * 4))
        perRead = ours["cpu"] / reads * 1e6
        print("server CPU per read: numberok %.1f us" % (perRead,))
        if bareResult is not None:
            barePerRead = bareResult["cpu"] / bareResult["reads"] * 1e6
            print("server CPU per read: bare Twisted %.1f us (%.0f reads/s)"
                  % (barePerRead, bareResult["rate"]))
            print("ratio numberok / bare: %.2fx (numberok at %.0f %% of bare)"
                  % (perRead / barePerRead, 100 * barePerRead / perRead))
        print("server peak RSS: %.1f MB" % (peakRss / 1e6))
        print("latency sparse: p50 %.1f ms, p99 %.1f ms (%d samples)" % (
            percentile(sparse, 0.5) * 1000, percentile(sparse, 0.99) * 1000,
            len(sparse)))
        print("latency loaded at %.0f reads/s: p50 %.1f ms, p99 %.1f ms "
              "(%d samples)" % (paced, percentile(loaded, 0.5) * 1000,
                                percentile(loaded, 0.99) * 1000, len(loaded)))
        ingest.close()
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
