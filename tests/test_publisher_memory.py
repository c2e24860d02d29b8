"""
Issue 11, defect 6: a client that subscribes and never reads must not pin
the server's memory.  A real C{twistd numberok-tcp} with screenshots at
quality 100 and raw results on; one client subscribes and never reads while
reads with large, noisy frames flood the ingest port.  The count cap alone
(1024 events) let that client hold a gigabyte of pictures; the byte cap
(C{EventPublisher.queueBytes}, 32 MiB) keeps the server's RSS under
L{RSS_BOUND}.
"""

from __future__ import annotations

import base64
import io
import json
import random
import socket
import threading
import time

from PIL import Image

from conftest import EVERY_READ_AT_FULL_QUALITY

from numberok import wire

RSS_BOUND = 250 * 1024 * 1024
"""
The documented bound for this load: about 70 MB of a started server, the
32 MiB queue, the write the transport holds (at most one more queue), the
screenshot cache and the frames in flight; 168 MB measured.  The code
before the byte cap reached 558 MB here (a gigabyte with 1024 pictures).
"""

READS = 320
"""About 290 MB of pictures if a queue kept them all: above L{RSS_BOUND}
on its own, so the bound fails without the byte cap (the code before it
reached 558 MB with 500 reads), in 20 paced batches instead of 31."""

def noiseFrame(width: int = 800, height: int = 600) -> bytes:
    """A frame that compresses badly: about 0.9 MB once re-encoded at 100."""
    rnd = random.Random(11)
    image = Image.frombytes("RGB", (width, height),
                            rnd.randbytes(width * height * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def residentBytes(pid: int) -> int:
    with open("/proc/%d/status" % (pid,)) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % (pid,))


class PeakSampler:
    """Samples a process's RSS every 20 ms in a thread; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = residentBytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, residentBytes(self.pid))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def test_client_that_never_reads_cannot_pin_the_servers_memory(
        twistdServer):
    server = twistdServer(settings=EVERY_READ_AT_FULL_QUALITY)
    pid = server.process.pid
    silent = socket.socket()
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    silent.connect(("127.0.0.1", server.eventPort))
    silent.sendall(wire.subscribePacket())
    server.waitForLog("subscribed")
    sampler = PeakSampler(pid)
    frame = base64.b64encode(noiseFrame()).decode("ascii")
    try:
        with socket.create_connection(("127.0.0.1", server.ingestPort),
                                      5) as ingest:
            for i in range(READS):
                # Rising confidence: every read is the track's new best,
                # so every Updated carries a picture of its own.
                ingest.sendall(json.dumps({
                    "plate": "A123BC77", "confidence": 0.4 + i / 1000,
                    "bbox": [300, 400, 120, 30],
                    "jpeg_b64": frame}).encode("ascii") + b"\n")
                if i % 16 == 15:
                    # Paced near what two encoder threads take, so the
                    # pictures are made rather than skipped as overload.
                    time.sleep(0.15)
        time.sleep(1.0)     # the last pictures encoded and queued
        assert server.process.poll() is None
        during = sampler.stop()
    finally:
        sampler.stop()
        silent.close()
    assert during < RSS_BOUND, "peak RSS %.0f MB" % (during / 2 ** 20)
