"""
Soak: a real C{twistd numberok-tcp --demo} with screenshots and the journal,
four clients (two read everything, two subscribe and never read), and a
connection storm every minute.  Prints RSS over time, events delivered to
the good clients, drops per client, journal rows and size, and whether any
event is missing.  Issue 7's target: RSS flat after the first minute and
<= 200 MB; zero events missing at the good clients or in the journal.

    python bench/soak.py --minutes 10

Loopback only; stops by itself (the server is killed if anything goes
wrong).  Runs the server with --journal.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from numberok import wire  # noqa: E402


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rssMB(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of C{pid} in MB, from /proc."""
    values = {}
    with open("/proc/%d/status" % (pid,)) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, kb = line.split()[:2]
                values[key] = int(kb) / 1024
    return values.get("VmRSS:", 0.0), values.get("VmHWM:", 0.0)


class GoodClient(threading.Thread):
    """Reads every event; remembers Detected and Lost RuntimeIDs."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), 5)
        self.sock.sendall(wire.subscribePacket())
        self.events = 0
        self.bytes = 0
        self.detected: set[str] = set()
        self.lost: list[str] = []
        self.start()

    def run(self) -> None:
        decoder = wire.PacketDecoder(allowedTypes=[wire.PT_EVENT])
        try:
            while True:
                data = self.sock.recv(262144)
                if not data:
                    return
                self.bytes += len(data)
                for packet in decoder.feed(data):
                    pairs, _ = wire.decodeEventData(packet.data)
                    f = dict(pairs)
                    self.events += 1
                    if f["State"] == "Detected":
                        self.detected.add(f["RuntimeID"])
                    elif f["State"] == "Lost":
                        self.lost.append(f["RuntimeID"])
        except OSError:
            return


def stalledClient(port: int) -> socket.socket:
    """Subscribes, then never reads."""
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.sendall(wire.subscribePacket())
    return s


def storm(port: int, attempts: int) -> tuple[int, float]:
    """C{attempts} connections, 50 open at a time; @return: (refused
    promptly, seconds taken)."""
    start = time.monotonic()
    closed = 0
    for _ in range(attempts // 50):
        socks = []
        for _ in range(50):
            try:
                socks.append(socket.create_connection(("127.0.0.1", port), 2))
            except OSError:
                pass
        for s in socks:
            s.settimeout(2)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except OSError:
                pass
            s.close()
    return closed, time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=2.0,
                        help="demo vehicles per second")
    parser.add_argument("--storm", type=int, default=500,
                        help="connection attempts per storm (once a minute)")
    parser.add_argument("--sample", type=float, default=10.0,
                        help="seconds between RSS samples")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory")
    args = parser.parse_args()
    print("command: %s %s" % (sys.executable, " ".join(sys.argv)))

    tmp = Path(tempfile.mkdtemp(prefix="numberok-soak-"))
    eventPort, ingestPort = freePort(), freePort()
    config = tmp / "numberok.ini"
    config.write_text("[NetServer]\nAttachScreenshotsToEvents = 1\n",
                      encoding="utf-8")
    journal = tmp / "journal"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                       if p])
    # twistd of this interpreter (python -m twisted is the newer "twist").
    command = [sys.executable, "-c",
               "import sys; sys.argv[0] = 'twistd'; "
               "from twisted.scripts.twistd import run; run()",
               "--nodaemon", "--pidfile=",
               "--logfile=%s" % (tmp / "twistd.log",), "numberok-tcp",
               "--config", str(config),
               "--port", "tcp:%d:interface=127.0.0.1" % (eventPort,),
               "--ingest", "tcp:%d:interface=127.0.0.1" % (ingestPort,),
               "--admin", "none", "--journal", str(journal),
               "--demo", "--demo-rate", str(args.rate)]
    server = subprocess.Popen(command, cwd=str(tmp), env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", eventPort), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    print("server did not start; see %s" % (tmp / "twistd.log"))
                    return 1
                time.sleep(0.2)
        # The probe above took a slot for a moment: let it go.
        time.sleep(0.5)
        good = [GoodClient(eventPort) for _ in range(2)]
        stalled = [stalledClient(eventPort) for _ in range(2)]
        start = time.monotonic()
        end = start + args.minutes * 60
        nextStorm = start + 60
        nextSample = start
        samples = []
        storms = []
        print("%8s %9s %9s %10s %10s" % ("t (s)", "RSS MB", "peak MB",
                                          "good ev", "journal"))
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= nextSample:
                rss, peak = rssMB(server.pid)
                samples.append((now - start, rss, peak))
                print("%8.0f %9.1f %9.1f %10d %10s" % (
                    now - start, rss, peak, min(g.events for g in good),
                    _journalRows(journal)), flush=True)
                nextSample += args.sample
            if now >= nextStorm:
                closed, took = storm(eventPort, args.storm)
                storms.append((closed, took))
                print("storm: %d/%d refused and closed in %.1f s"
                      % (closed, args.storm, took), flush=True)
                nextStorm += 60
            time.sleep(0.2)

        server.send_signal(signal.SIGTERM)
        server.wait(30)
        time.sleep(1)  # let the readers take the last bytes
        for g in good:
            g.join(5)
        log = (tmp / "twistd.log").read_text(encoding="utf-8",
                                             errors="replace")
        return report(args, samples, storms, good, stalled, journal, log, tmp)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _journalRows(journal: Path):
    try:
        db = sqlite3.connect("file:%s?mode=ro" % (journal / "events.sqlite"),
                             uri=True, timeout=1)
        try:
            return db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return "-"


def report(args, samples, storms, good, stalled, journal, log, tmp) -> int:
    afterFirst = [s for s in samples if s[0] >= 60] or samples
    rssAfter = [s[1] for s in afterFirst]
    peak = max(s[2] for s in samples)
    db = sqlite3.connect(str(journal / "events.sqlite"))
    journalLost = [str(r[0]) for r in db.execute(
        "SELECT runtime_id FROM events WHERE state = 'Lost' ORDER BY id")]
    shotBytes = db.execute(
        "SELECT COALESCE(SUM(screenshot_bytes), 0) FROM events").fetchone()[0]
    db.close()
    dbBytes = (journal / "events.sqlite").stat().st_size
    drops = {}
    for m in re.finditer(r"queue of <NumberOk connection (\d+) [^>]*> full "
                         r"\(\d+ events(?:, \d+ bytes)?\): (\d+) dropped",
                         log):
        drops[m.group(1)] = int(m.group(2))
    missing = 0
    print()
    print("RSS after the first minute: min %.1f MB, max %.1f MB; peak "
          "(VmHWM) %.1f MB" % (min(rssAfter), max(rssAfter), peak))
    for i, g in enumerate(good, 1):
        lostSet = set(g.lost)
        unclosed = g.detected - lostSet
        notInJournal = lostSet - set(journalLost)
        missing += len(unclosed) + len(notInJournal)
        print("good client %d: %d events (%d Detected, %d Lost), %.1f MB; "
              "Detected without Lost: %d; Lost not in journal: %d"
              % (i, g.events, len(g.detected), len(g.lost), g.bytes / 1e6,
                 len(unclosed), len(notInJournal)))
    goodLost = set(good[0].lost)
    journalOnly = set(journalLost) - goodLost
    print("journal: %d Lost rows (%d not seen by the good clients), "
          "database %.1f MB + screenshots %.1f MB"
          % (len(journalLost), len(journalOnly), dbBytes / 1e6,
             shotBytes / 1e6))
    print("drops per connection (from the server log, last count): %s"
          % (drops or "none logged"))
    print("storms: %s" % (", ".join("%d closed in %.1f s" % s
                                    for s in storms) or "none"))
    ok = missing == 0 and not journalOnly and max(rssAfter) <= 200
    flat = max(rssAfter) - min(rssAfter)
    print("RESULT: %s (missing %d, RSS spread after 1 min %.1f MB)"
          % ("PASS" if ok else "FAIL", missing, flat))
    if args.keep:
        print("kept %s" % (tmp,))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
