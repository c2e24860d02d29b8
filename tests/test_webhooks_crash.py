"""
A real C{twistd numberok-tcp} killed with SIGKILL while it delivers Lost
events to a webhook, then started again on the same journal: every Lost
in the journal reaches the receiver, none is skipped, and an event that
arrives twice arrives with the same idempotency key (docs/integrations.rst,
"Delivery").  The receiver is a small threaded HTTP server (outside
numberok, as an integrator's would be) that checks the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = "crash-test-secret"
LETTERS = "ABEKMHOPCTYX"


def plate(n: int) -> str:
    """Plates far apart from each other (no two merge into one track)."""
    return "%s%03d%s%s77" % (LETTERS[n % 12], (n * 137) % 1000,
                             LETTERS[(n * 5 + 3) % 12],
                             LETTERS[(n * 7 + 1) % 12])


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.received: list[tuple[str, dict]] = []
        self.badSignatures = 0
        self.delay = 0.5

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d/hs/numberok/event" % (
            self.server_address[1],)

    def snapshot(self) -> list[tuple[str, dict]]:
        with self.lock:
            return list(self.received)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers["Content-Length"]))
        expected = "sha256=" + hmac.new(SECRET.encode(), data,
                                        hashlib.sha256).hexdigest()
        server: Receiver = self.server
        if not hmac.compare_digest(
                self.headers.get("X-Numberok-Signature", ""), expected):
            with server.lock:
                server.badSignatures += 1
            self.send_response(401)
            self.end_headers()
            return
        time.sleep(server.delay)           # a slow ERP: kills land mid-way
        with server.lock:
            server.received.append((self.headers["Idempotency-Key"],
                                    json.loads(data)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def waitUntil(check, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def test_kill_9_mid_delivery_then_restart_delivers_every_lost_once_keyed(
        twistdServer, tmp_path):
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    settings = """\
[System]
SystemId = 5

[Analytics]
SkipFirstResults = 1

[Zone:0:0]
LossIntervalSec = 0.5

[Webhook:erp]
Url = %s
Secret = %s
TimeoutSec = 10
""" % (receiver.url, SECRET)
    journal = tmp_path / "journal"
    args = ["--journal", str(journal)]
    try:
        server = twistdServer(settings=settings, args=args)
        server.waitForLog("webhook erp: delivering")
        reads = [json.dumps({"plate": plate(n), "confidence": 0.9}).encode()
                 for n in range(20) for _ in range(2)]
        server.sendReads(reads)
        # Well into the deliveries (every Lost is journaled by now).
        waitUntil(lambda: len(receiver.snapshot()) >= 6, "6 deliveries")
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        before = len(receiver.snapshot())

        db = sqlite3.connect(str(journal / "events.sqlite"))
        rows = db.execute("SELECT id, plate FROM events ORDER BY id")
        plates = dict(rows.fetchall())
        db.close()
        journaled = sorted(plates)
        assert len(journaled) >= 10
        assert before < len(journaled)      # it was cut mid-delivery

        receiver.delay = 0.0
        twistdServer(settings=settings, args=args)
        waitUntil(lambda: {b["id"] for _, b in receiver.snapshot()}
                  >= set(journaled), "every journaled Lost")
    finally:
        receiver.shutdown()
    received = receiver.snapshot()
    assert receiver.badSignatures == 0
    firsts: list[int] = []
    keys: dict[int, set] = {}
    for key, body in received:
        if body["id"] not in keys:
            firsts.append(body["id"])
        keys.setdefault(body["id"], set()).add(key)
    assert firsts == journaled              # in order, none skipped
    assert all(k == {"5-%d" % (i,)} for i, k in keys.items())
    assert {b["id"]: b["PlateNumber"] for _, b in received} == plates
