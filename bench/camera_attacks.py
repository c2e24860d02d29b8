"""
Issue 21's camera-endpoint attacks against a real C{twistd numberok-tcp}:
while four senders post hostile bodies over and over (a multipart part
whose C{Content-Disposition} has 50,000 parameters, to the camera path and
to C{POST /api/reads}; a nested multipart of 100,000 inner parts; an 8 MiB
alarm of nested XML elements), how long a valid alarm from another camera
and a settings Save take, against the same requests on an idle server.
Prints both, their ratio, what the hostile bodies were answered and the
server's peak RSS.

    python bench/camera_attacks.py [--seconds 15]

Loopback only; the server is killed if anything goes wrong.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from fanout import TWISTD, freePort, waitForPort  # noqa: E402

TOKEN = "bench-token-0123456789"
ALARM = (ROOT / "tests" / "samples" / "hikvision_anpr.xml").read_bytes()
BOUNDARY = "benchBoundary"


def peakRssMB(pid: int) -> float:
    with open("/proc/%d/status" % (pid,)) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def request(port: int, method: str, path: str, body: bytes,
            kind: str) -> tuple[int, float]:
    """One request on its own connection: (status, seconds)."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body, {"Content-Type": kind})
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - start
    except OSError:
        return 0, time.perf_counter() - start
    finally:
        conn.close()


def hostileBodies() -> list[tuple[str, bytes, str]]:
    """(path, body, content type) of each hostile body listed above."""
    camera = "/api/cameras/hikvision?token=" + TOKEN
    multipart = "multipart/form-data; boundary=" + BOUNDARY
    params = "".join('; p%d="v"' % (i,) for i in range(50000))
    disposition = ("--%s\r\nContent-Disposition: form-data; name=\"read\"%s"
                   "\r\n\r\nx\r\n--%s--\r\n" % (BOUNDARY, params, BOUNDARY)
                   ).encode()
    inner = b"--inner\r\n\r\nx\r\n" * 100000 + b"--inner--\r\n"
    nested = (b"--%s\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n"
              % (BOUNDARY.encode(),) + inner
              + b"\r\n--%s--\r\n" % (BOUNDARY.encode(),))
    xml = b"<EventNotificationAlert>" + b"<a>" * (8 * 1024 * 1024 // 3 - 20)
    return [(camera, disposition, multipart),
            ("/api/reads", disposition, multipart),
            (camera, nested, multipart),
            (camera, xml, "application/xml")]


def measure(port: int, rounds: int) -> tuple[list[float], list[float]]:
    """Latencies of valid alarms and of settings Saves."""
    alarms, saves = [], []
    for n in range(rounds):
        status, took = request(port, "POST", "/api/cameras/hikvision?token="
                               + TOKEN, ALARM, "application/xml")
        assert status == 200, status
        alarms.append(took)
        body = json.dumps({"Analytics.SkipFirstResults": n % 3}).encode()
        status, took = request(port, "PUT", "/api/settings", body,
                               "application/json")
        assert status == 200, status
        saves.append(took)
        time.sleep(0.05)
    return alarms, saves


def summary(values: list[float]) -> str:
    return "median %.1f ms, max %.1f ms" % (
        statistics.median(values) * 1000, max(values) * 1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    print("command: python bench/camera_attacks.py --seconds %g"
          % (args.seconds,))
    tmp = Path(tempfile.mkdtemp(prefix="numberok-attacks-"))
    admin = freePort()
    config = tmp / "numberok.ini"
    config.write_text("[Cameras]\nToken = %s\n" % (TOKEN,), encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    command = TWISTD + [
        "--nodaemon", "--pidfile=", "--logfile=%s" % (tmp / "log",),
        "numberok-tcp", "--config", str(config),
        "--port", "tcp:%d:interface=127.0.0.1" % (freePort(),),
        "--ingest", "tcp:%d:interface=127.0.0.1" % (freePort(),),
        "--admin", "tcp:%d:interface=127.0.0.1" % (admin,)]
    server = subprocess.Popen(command, cwd=str(tmp), env=env)
    try:
        waitForPort(admin, server)   # exits, saying so, if it did not start
        time.sleep(0.5)
        idleAlarms, idleSaves = measure(admin, 20)
        stop = threading.Event()
        answered: Counter = Counter()
        bodies = hostileBodies()

        def attack(path: str, body: bytes, kind: str) -> None:
            while not stop.is_set():
                status, took = request(admin, "POST", path, body, kind)
                answered[(path.split("?")[0], len(body), status)] += 1

        attackers = [threading.Thread(target=attack, args=b, daemon=True)
                     for b in bodies]
        for a in attackers:
            a.start()
        end = time.monotonic() + args.seconds
        alarms: list[float] = []
        saves: list[float] = []
        while time.monotonic() < end:
            a, s = measure(admin, 5)
            alarms += a
            saves += s
        stop.set()
        for a in attackers:
            a.join(120)
        print("idle:         alarm %s; save %s" % (summary(idleAlarms),
                                                   summary(idleSaves)))
        print("under attack: alarm %s; save %s" % (summary(alarms),
                                                   summary(saves)))
        print("ratio of medians (attack / idle): alarm %.1f, save %.1f" % (
            statistics.median(alarms) / statistics.median(idleAlarms),
            statistics.median(saves) / statistics.median(idleSaves)))
        for (path, size, status), count in sorted(answered.items()):
            print("hostile %s (%d bytes): %d answered %d"
                  % (path, size, count, status))
        print("server peak RSS: %.0f MB" % (peakRssMB(server.pid),))
        print("(a shared 2-core machine: compare the ratios, not the ms)")
        return 0
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
