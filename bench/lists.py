"""
Lists benchmark: what 100,000 known plates cost.

In one run:

1. the CPU per read of the bench/fanout.py pipeline (the real server under
   twistd, reads flooded into the ingest port, four clients, raw results
   on) with no lists, then with a list of 100,000 entries in scope
   everywhere (match distance 1; half the feed's plates are in it), and
   their ratio (goal: at most 1.10);
2. the decision latency, in process: p50 / p99 / max of
   L{numberok.lists.Matcher.decide} over exact hits, misreads (one
   character off, look-alikes) and unknown plates (goal: p99 <= 1 ms);
3. the import of 100,000 entries as CSV over the admin API into the
   running server, with one read every 20 ms meanwhile: the import time
   (goal: <= 10 s) and how late those reads' events reached a client
   (goal: <= 100 ms);
4. the memory of the index: Python allocations of 100,000 entries
   (tracemalloc) and the server's RSS with and without them (goal:
   <= 50 MB).

    python bench/lists.py [--entries 100000] [--reads 30000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import fanout  # noqa: E402
from fanout import (SETTINGS, TWISTD, connect, freePort,  # noqa: E402
                    percentile, procStats, readLine, sendBatch, waitForPort)


READ_EVERY = 0.55
QUIET = 6.0
"""More than the loss interval (5 s): no Lost event competes for the
clients' writes during an import."""


def randomPlates(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    letters = "ABEKMHOPCTYX"
    plates: set[str] = set()
    while len(plates) < count:
        plates.add("%s%03d%s%s%d" % (
            rng.choice(letters), rng.randrange(1, 1000), rng.choice(letters),
            rng.choice(letters), rng.choice((rng.randrange(10, 100),
                                             rng.randrange(100, 200)))))
    return sorted(plates)


def listPlates(count: int) -> list[str]:
    """C{count} plates: half of the feed's 200, the rest random."""
    known = set(fanout.PLATES[::2])
    for plate in randomPlates(count, 7):
        if len(known) >= count:
            break
        known.add(plate)
    return sorted(known)


def csvBody(plates: list[str]) -> bytes:
    lines = ["plate;owner;comment"]
    lines += ["%s;Owner %d;bench" % (p, i) for i, p in enumerate(plates)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def api(port: int, method: str, path: str, body: bytes = b"",
        kind: str = "application/json") -> dict:
    request = urllib.request.Request(
        "http://127.0.0.1:%d%s" % (port, path), data=body or None,
        method=method, headers={"Content-Type": kind})
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read() or b"{}")


def measured(server: "Server", clients: list, ingest: socket.socket,
             seq: int, reads: int, sendTimes: dict) -> dict:
    """
    The flood of L{fanout.flood}, ended by one read of a vehicle of its
    own (a Detected): the flood ends when every client has that event.
    (Waiting for the last flood read's own event, as fanout.flood does,
    can wait long: under the flood it is an Updated, which the documented
    drop order may drop when the queue holds Detected events.)
    """
    cpuBefore, _ = procStats(server.process.pid)
    start = time.perf_counter()
    first = seq
    while seq < first + reads:
        seq = sendBatch(ingest, seq, 500, sendTimes)
    sentAt = time.perf_counter()
    sentinel = seq
    sendTimes[sentinel] = time.perf_counter()
    ingest.sendall(json.dumps({
        "plate": "M%03dMM%02d" % (sentinel % 1000, sentinel // 1000 % 100),
        "channel": 99, "zone": 0, "per_vehicle": True,
        "process_time_ms": sentinel}).encode() + b"\n")
    deadline = time.monotonic() + 60
    while any(c.lastSeq < sentinel for c in clients):
        if time.monotonic() > deadline:
            raise SystemExit("the flood's closing event never arrived")
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    cpuAfter, peak = procStats(server.process.pid)
    return dict(seq=sentinel + 1, reads=reads, elapsed=elapsed,
                sentAfter=sentAt - start, rate=reads / elapsed,
                cpu=cpuAfter - cpuBefore, peakRss=peak)


def rss(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Server:
    """The real server under twistd, with ingest and admin ports."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="numberok-lists-"))
        (self.tmp / "numberok.ini").write_text(SETTINGS)
        self.eventPort, self.ingestPort, self.adminPort = (
            freePort(), freePort(), freePort())
        self.process = subprocess.Popen(
            TWISTD + ["--nodaemon", "--pidfile=",
                      "--logfile=%s" % (self.tmp / "log"), "numberok-tcp",
                      "--config", str(self.tmp / "numberok.ini"),
                      "--journal", str(self.tmp / "journal"),
                      "--port", "tcp:%d:interface=127.0.0.1" % self.eventPort,
                      "--ingest",
                      "tcp:%d:interface=127.0.0.1" % self.ingestPort,
                      "--admin",
                      "tcp:%d:interface=127.0.0.1" % self.adminPort],
            cwd=str(self.tmp), env=dict(os.environ, PYTHONPATH=str(ROOT)))
        waitForPort(self.ingestPort, self.process)
        waitForPort(self.adminPort, self.process)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def importDuringReads(server: Server, body: bytes, clients: list,
                      ingest: socket.socket, sendTimes: dict,
                      seq: int) -> tuple[float, list]:
    """
    PUT the CSV while a read of one vehicle goes in every L{READ_EVERY}
    seconds; the import's time and the latencies of those reads' events.
    Reads are spaced past the protocol's two writes per second per client,
    and the import starts L{QUIET} seconds after the last read before it
    (every earlier track's Lost has gone out), so a late event is the
    server's lateness, not the write cap.
    """
    time.sleep(QUIET)
    for c in clients:
        c.reset()
    result: dict = {}

    import threading

    def put() -> None:
        started = time.perf_counter()
        result["answer"] = api(server.adminPort, "PUT",
                               "/api/lists/bench/entries", body, "text/csv")
        result["seconds"] = time.perf_counter() - started

    worker = threading.Thread(target=put)
    worker.start()
    while worker.is_alive():
        sendTimes[seq] = time.perf_counter()
        ingest.sendall(readLine(seq))
        seq += 1                        # one vehicle: Updated events
        worker.join(READ_EVERY)
    time.sleep(0.6)
    latencies = [lat for c in clients for lat in c.latencies]
    assert result["answer"]["entries"] > 0, result
    return result["seconds"], latencies


def decisionLatency(plates: list[str], samples: int) -> list[float]:
    from zoneinfo import ZoneInfo

    from numberok.lists import Entry, Matcher, PlateList
    from numberok.lists.index import ListIndex
    zone = ZoneInfo("UTC")
    matcher = Matcher(zone)
    matcher.put(ListIndex(PlateList("bench", "allow", 1), zone,
                          [Entry(p) for p in plates]))
    rng = random.Random(3)
    unknown = randomPlates(2000, 99)
    reads = []
    for i in range(samples):
        plate = rng.choice(plates)
        kind = i % 4
        if kind == 1:                       # one character off
            k = rng.randrange(len(plate))
            plate = plate[:k] + rng.choice("0123456789") + plate[k + 1:]
        elif kind == 2:                     # a look-alike
            plate = plate.replace("O", "0").replace("B", "8")
        elif kind == 3:
            plate = rng.choice(unknown)
        reads.append(plate)
    times = []
    for plate in reads:
        started = time.perf_counter()
        matcher.decide(plate, 0, 0, 1.8e9)
        times.append(time.perf_counter() - started)
    return times


def indexMemory(plates: list[str], distance: int) -> int:
    from zoneinfo import ZoneInfo

    from numberok.lists import Entry, PlateList
    from numberok.lists.index import ListIndex
    entries = [Entry(p) for p in plates]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = ListIndex(PlateList("m", "allow", distance), ZoneInfo("UTC"),
                      entries)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del index
    return used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=30_000)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--imports", type=int, default=3,
                        help="imports of the CSV in a row (each replaces "
                             "the list: the later ones free the old "
                             "index too)")
    args = parser.parse_args()
    plates = listPlates(args.entries)
    body = csvBody(plates)

    server = Server()
    try:
        api(server.adminPort, "POST", "/api/lists", json.dumps(
            {"name": "bench", "kind": "allow", "distance": 1}).encode())
        # One set of four clients for every phase (the server takes four).
        sendTimes: dict[int, float] = {}
        clients, ingest = connect(server.eventPort, server.ingestPort,
                                  sendTimes)
        for c in clients:
            # fanout's clients give up after 5 s without an event; the
            # quiet before each import is longer.
            c.sock.settimeout(None)
        measured(server, clients, ingest, 0, 2000, sendTimes)  # warm
        none = measured(server, clients, ingest, 2000, args.reads, sendTimes)
        time.sleep(1.0)
        rssNone = rss(server.process.pid)
        imports, lateness = [], []
        for n in range(args.imports):
            seconds, late = importDuringReads(
                server, body, clients, ingest, sendTimes,
                10_000_000 + n * 1_000)
            imports.append(seconds)
            lateness += late
            if n == 0:
                rssFirst = rss(server.process.pid)
        time.sleep(1.0)
        rssLoaded = rss(server.process.pid)
        seq = 20_000_000
        measured(server, clients, ingest, seq, 2000, sendTimes)   # warm
        loaded = measured(server, clients, ingest, seq + 3000, args.reads,
                          sendTimes)
        metrics = urllib.request.urlopen(
            "http://127.0.0.1:%d/metrics" % server.adminPort,
            timeout=10).read().decode()
        ingest.close()
    finally:
        server.stop()

    times = decisionLatency(plates, args.samples)
    memory1 = indexMemory(plates, 1)
    memory0 = indexMemory(plates, 0)

    decided = sum(float(line.split()[-1]) for line in metrics.splitlines()
                  if line.startswith("numberok_list_decisions_total{"))
    perNone = none["cpu"] / none["reads"] * 1e6
    perLoaded = loaded["cpu"] / loaded["reads"] * 1e6
    print("command: python bench/lists.py %s" % " ".join(sys.argv[1:]))
    print("machine: %d cores, Python %s (shared with other work: compare "
          "the ratios)" % (os.cpu_count(), sys.version.split()[0]))
    print("entries: %d in one allow list, distance 1, scope everywhere"
          % (len(plates),))
    print("server CPU per read, no entries: %.1f us (%.0f reads/s)"
          % (perNone, none["rate"]))
    print("server CPU per read, %d entries: %.1f us (%.0f reads/s)"
          % (len(plates), perLoaded, loaded["rate"]))
    print("ratio with / without: %.3f (goal <= 1.10); %d decisions made"
          % (perLoaded / perNone, decided))
    print("decision latency (in process, %d reads: exact, misread, "
          "look-alike, unknown): p50 %.3f ms, p99 %.3f ms, max %.3f ms "
          "(goal p99 <= 1 ms)" % (
              len(times), percentile(times, 0.5) * 1000,
              percentile(times, 0.99) * 1000, max(times) * 1000))
    print("import of %d entries (CSV, %.1f MB, over the API), %d times: "
          "%s s (goal <= 10 s)" % (len(plates), len(body) / 1e6,
                                   len(imports), ", ".join(
                                       "%.2f" % s for s in imports)))
    if lateness:
        print("events during the import: %d, latency p50 %.1f ms, p99 "
              "%.1f ms, max %.1f ms (goal <= 100 ms)" % (
                  len(lateness), percentile(lateness, 0.5) * 1000,
                  percentile(lateness, 0.99) * 1000, max(lateness) * 1000))
    print("index memory (tracemalloc): %.1f MB with distance 1, %.1f MB "
          "with distance 0 (goal <= 50 MB)" % (memory1 / 1e6, memory0 / 1e6))
    print("server RSS: %.1f MB without entries, %.1f MB after the first "
          "import (+%.1f MB), %.1f MB after %d (+%.1f MB: two indexes live "
          "during a swap, and the allocator keeps what it had)" % (
              rssNone / 1e6, rssFirst / 1e6, (rssFirst - rssNone) / 1e6,
              rssLoaded / 1e6, len(imports), (rssLoaded - rssNone) / 1e6))


if __name__ == "__main__":
    main()
