"""
Issue 20, part 3: memory stays bounded with big pictures.  A real
C{twistd numberok-tcp}, raw results on, screenshots at quality 100, one
client that subscribes and never reads; 600 vehicles at 25 per second, each
read with a 1280x720 frame of about 1 MB (a detailed, noisy scene at
quality 100).  The peak RSS stays under L{PEAK_BOUND}, and one minute after
the burst the RSS is back within L{RETURN_MARGIN} of its idle level
(docs/operations.rst, "Memory").

The code before this issue peaked near 800 MB here and kept most of it:
glibc kept the freed picture buffers.
"""

from __future__ import annotations

import base64
import io
import json
import random
import socket
import time

from PIL import Image, ImageDraw

from conftest import EVERY_READ_AT_FULL_QUALITY

from numberok import wire

from test_publisher_memory import PeakSampler, residentBytes

PEAK_BOUND = 400 * 1024 * 1024
RETURN_MARGIN = 100 * 1024 * 1024
VEHICLES = 600
PER_SECOND = 25
SETTLE_SECONDS = 60

def bigFrame(seed: int) -> bytes:
    """
    A 1280x720 scene that compresses badly: a gradient, 300 coloured
    boxes, and noise over all of it, at quality 100: about 1 MB.
    """
    rnd = random.Random(seed)
    width, height = 1280, 720
    scene = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(scene)
    for _ in range(300):
        x, y = rnd.randrange(width), rnd.randrange(height)
        draw.rectangle([x, y, x + rnd.randrange(5, 120),
                        y + rnd.randrange(5, 80)],
                       fill=(rnd.randrange(256), rnd.randrange(256),
                             rnd.randrange(256)))
    noise = Image.merge("RGB", [Image.effect_noise((width, height), 30)
                                for _ in range(3)])
    scene = Image.blend(scene, noise, 0.35)
    out = io.BytesIO()
    scene.save(out, "JPEG", quality=100)
    return out.getvalue()


def plate(n: int) -> str:
    letters = "ABEKMHOPCTYX"
    return "%s%03d%s%s77" % (letters[n % 12], n % 1000, letters[n // 12 % 12],
                             letters[n // 144 % 12])


def test_big_pictures_keep_peak_rss_bounded_and_memory_returns(
        twistdServer):
    frames = [bigFrame(seed) for seed in range(4)]
    assert all(900_000 < len(f) < 1_400_000 for f in frames), [
        len(f) for f in frames]
    encoded = [base64.b64encode(f).decode("ascii") for f in frames]
    server = twistdServer(settings=EVERY_READ_AT_FULL_QUALITY)
    pid = server.process.pid
    silent = socket.socket()
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    silent.connect(("127.0.0.1", server.eventPort))
    silent.sendall(wire.subscribePacket())
    server.waitForLog("subscribed")
    time.sleep(1.0)
    idle = residentBytes(pid)
    sampler = PeakSampler(pid)
    try:
        with socket.create_connection(("127.0.0.1", server.ingestPort),
                                      5) as ingest:
            start = time.monotonic()
            for n in range(VEHICLES):
                ingest.sendall(json.dumps({
                    "plate": plate(n), "confidence": 0.9,
                    "bbox": [500, 500, 180, 40],
                    "jpeg_b64": encoded[n % len(encoded)]}).encode("ascii")
                    + b"\n")
                pause = start + (n + 1) / PER_SECOND - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        burstEnd = time.monotonic()
        # Every track Lost (5 s), its pictures encoded; then the minute.
        time.sleep(SETTLE_SECONDS)
        assert server.process.poll() is None
        after = residentBytes(pid)
        peak = sampler.stop()
    finally:
        sampler.stop()
        silent.close()
    report = "idle %.0f MB, peak %.0f MB, %.0f s after the burst %.0f MB" % (
        idle / 2 ** 20, peak / 2 ** 20, time.monotonic() - burstEnd,
        after / 2 ** 20)
    print(report)
    assert peak <= PEAK_BOUND, report
    assert after - idle <= RETURN_MARGIN, report
