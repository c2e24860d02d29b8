"""
Screenshot throughput: events per second with screenshots on, 1280x720
frames, against bare Pillow decode + encode of the same frames, on the same
machine in the same run; and the CPU cost of publishing with one and with
four screenshot subscribers.

    python bench/screenshots.py [--frames 600] [--rounds 3] [--threads N]

What is measured (each round runs every measurement once, alternating, and
the median round is reported so a noisy neighbour hurts both sides alike):

 - bare: C{Image.open(...).load()} then C{save(quality=Q)} for every frame,
   in a C{ThreadPoolExecutor} with one thread per core (Pillow releases the
   GIL while coding, so threads use every core; processes would also pay
   for copying the frames);
 - service: L{ScreenshotService.encode} driven from the real reactor, every
   frame requested at once (as C{pool.map} does for the bare side), results
   collected through the Deferreds;
 - publisher: L{EventPublisher.publish} of a L{PlateEvent} with C{frame=}
   per frame, all published at once, 1 and then 4 subscribers that want
   screenshots (in-process subscribers that only count bytes), timed until
   every event reached every subscriber (C{whenDispatched} + C{flushAll}).
   CPU seconds are process time (all threads).

The service cache is turned off (C{cacheSize = 0}) so that every request is
a real encoding; frames are distinct objects cycled from a set of 16.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image, ImageDraw, ImageFilter  # noqa: E402
from twisted.internet.defer import (  # noqa: E402
    ensureDeferred, gatherResults)
from twisted.internet.task import react  # noqa: E402
from zope.interface import implementer  # noqa: E402

from numberok.events import EventState, PlateEvent  # noqa: E402
from numberok.interfaces import IEventSubscriber  # noqa: E402
from numberok.screenshots import ScreenshotService  # noqa: E402
from numberok.settings import SettingsStore  # noqa: E402

try:
    from numberok.publisher import EventPublisher  # noqa: E402
except ImportError:  # pragma: no cover - publisher not written yet
    EventPublisher = None


def makeFrame(seed: int, width: int = 1280, height: int = 720) -> bytes:
    """
    A camera-like frame: a rotated gradient, coarse sensor noise, coloured
    blocks, a white plate with black text, a slight blur; about 160 KB at
    JPEG quality 85.
    """
    rng = random.Random(seed)
    image = (Image.linear_gradient("L").rotate(rng.randrange(360))
             .resize((width, height)).convert("RGB"))
    noise = (Image.effect_noise((width // 2, height // 2), 60)
             .resize((width, height)).convert("RGB"))
    image = Image.blend(image, noise, 0.3)
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = rng.randrange(width), rng.randrange(height)
        draw.rectangle((x, y, x + rng.randrange(200), y + rng.randrange(120)),
                       fill=tuple(rng.randrange(256) for _ in range(3)))
    draw.rectangle((500, 400, 780, 460), fill=(240, 240, 240),
                   outline=(0, 0, 0), width=3)
    draw.text((520, 410), "A123BC77", fill=(0, 0, 0), font_size=40)
    image = image.filter(ImageFilter.GaussianBlur(0.6))
    out = BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def bareOne(jpeg: bytes, quality: int) -> int:
    image = Image.open(BytesIO(jpeg))
    image.load()
    out = BytesIO()
    image.save(out, "JPEG", quality=quality)
    return len(out.getvalue())


def runBare(frames: list[bytes], quality: int, threads: int) -> dict:
    cpu, wall = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        sizes = list(pool.map(bareOne, frames, [quality] * len(frames)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return dict(rate=len(frames) / wall, cpu=cpu, bytes=sum(sizes))


def startedService(reactor, frames: list[bytes],
                   threads: int) -> ScreenshotService:
    """A service for the run: no cache, room for every frame at once."""
    service = ScreenshotService(reactor, threads=threads)
    service.cacheSize = 0
    service.maxBacklog = len(frames) + 1
    service.startService()
    return service


async def runService(reactor, frames: list[bytes], quality: int,
                     threads: int) -> dict:
    service = startedService(reactor, frames, threads)
    cpu, wall = time.process_time(), time.perf_counter()
    results = await gatherResults([
        service.encode(jpeg, quality, 1 << 20) for jpeg in frames])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await service.stopService()
    assert all(results), "an encoding failed"
    return dict(rate=len(frames) / wall, cpu=cpu,
                bytes=sum(len(r) for r in results))


@implementer(IEventSubscriber)
class CountingSubscriber:
    """Takes every packet, with screenshots, and only counts it."""

    wantsScreenshots = True
    lostOnly = False

    def __init__(self) -> None:
        self.bytes = 0
        self.writes = 0

    def writePackets(self, data: bytes) -> None:
        self.bytes += len(data)
        self.writes += 1

    def isWritable(self) -> bool:
        return True


async def runPublisher(reactor, frames: list[bytes], threads: int,
                       subscribers: int) -> dict:
    service = startedService(reactor, frames, threads)
    publisher = EventPublisher(SettingsStore(), encoder=service,
                               reactor=reactor)
    publisher.queueLimit = len(frames) + 1
    publisher.queueBytes = len(frames) * (2 << 20)  # every picture fits
    publisher.startService()
    sinks = [CountingSubscriber() for _ in range(subscribers)]
    for sink in sinks:
        publisher.subscribe(sink)
    cpu, wall = time.process_time(), time.perf_counter()
    for i, jpeg in enumerate(frames):
        publisher.publish(PlateEvent(
            EventState.UPDATED, runtimeId=i, channel=0, zone=0,
            plate="A123BC77", rawPlate="A123BC77", frameTimeMs=i,
            frame=jpeg))
    await publisher.whenDispatched()
    publisher.flushAll()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await publisher.stopService()
    await service.stopService()
    encoded = int(service.metrics.value("numberok_screenshots_encoded_total"))
    assert encoded == len(frames), (encoded, len(frames))
    return dict(rate=len(frames) / wall, cpu=cpu, encoded=encoded,
                bytesPerSubscriber=[s.bytes for s in sinks])


async def main(reactor, options) -> None:
    threads = options.threads
    base = [makeFrame(seed) for seed in range(16)]
    # Distinct bytes objects, as a live source delivers them.
    frames = [bytes(bytearray(base[i % len(base)]))
              for i in range(options.frames)]
    print("frames: %d x 1280x720, source JPEG %d..%d KB (mean %d KB), "
          "quality %d, %d threads on %d cores"
          % (len(frames), min(map(len, base)) // 1024,
             max(map(len, base)) // 1024,
             statistics.mean(map(len, base)) // 1024, options.quality,
             threads, os.cpu_count()))
    bare, served, one, four = [], [], [], []
    bareOne(base[0], options.quality)  # warm up Pillow
    for _ in range(options.rounds):
        bare.append(runBare(frames, options.quality, threads))
        served.append(await runService(reactor, frames, options.quality,
                                       threads))
        if EventPublisher is not None:
            one.append(await runPublisher(reactor, frames, threads, 1))
            four.append(await runPublisher(reactor, frames, threads, 4))

    def median(runs, key):
        return statistics.median(r[key] for r in runs)

    bareRate, serviceRate = median(bare, "rate"), median(served, "rate")
    print("bare Pillow decode+encode, %d threads: %7.1f frames/s  "
          "(%.2f CPU s)" % (threads, bareRate, median(bare, "cpu")))
    print("ScreenshotService.encode, reactor:     %7.1f frames/s  "
          "(%.2f CPU s)" % (serviceRate, median(served, "cpu")))
    print("ratio service / bare: %.1f %% median of the rounds' ratios, "
          "%.1f %% ratio of the medians (target >= 90 %%)"
          % (100 * statistics.median(s["rate"] / b["rate"]
                                     for s, b in zip(served, bare)),
             100 * serviceRate / bareRate))
    print("CPU per frame: bare %.2f ms, service %.2f ms"
          % (1000 * median(bare, "cpu") / len(frames),
             1000 * median(served, "cpu") / len(frames)))
    if EventPublisher is None:
        print("publisher: numberok.publisher.EventPublisher not found; "
              "the 1 vs 4 subscriber CPU comparison needs it")
    else:
        cpuOne, cpuFour = median(one, "cpu"), median(four, "cpu")
        print("EventPublisher, 1 subscriber:  %7.1f events/s, %.2f CPU s, "
              "%d encodings, %d bytes delivered"
              % (median(one, "rate"), cpuOne, one[-1]["encoded"],
                 sum(one[-1]["bytesPerSubscriber"])))
        print("EventPublisher, 4 subscribers: %7.1f events/s, %.2f CPU s, "
              "%d encodings, %d bytes delivered"
              % (median(four, "rate"), cpuFour, four[-1]["encoded"],
                 sum(four[-1]["bytesPerSubscriber"])))
        print("CPU 4 subscribers / 1 subscriber: %.2f (target 1.00: one "
              "encoding per event however many subscribers)"
              % (cpuFour / cpuOne,))
    print("rounds: %d (medians shown); per-round service/bare: %s"
          % (options.rounds, ", ".join(
              "%.0f %%" % (100 * s["rate"] / b["rate"])
              for s, b in zip(served, bare))))
    print("command: %s" % (" ".join(
        [Path(sys.executable).name] + sys.argv),))


def parseOptions(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quality", type=int, default=50)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = parseOptions(sys.argv[1:])
    react(lambda reactor: ensureDeferred(main(reactor, options)))
