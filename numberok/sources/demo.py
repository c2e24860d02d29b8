"""
Demo traffic: a seeded simulator of vehicles passing cameras, so a fresh
install shows events (with screenshots) without any recognizer.

The simulation itself is pure and reactor-free: L{vehicles} and L{reads}
turn a seed into the same vehicles, reads, OCR errors, bounding boxes and
frame descriptions every time, and L{renderFrame} turns a frame description
into the same JPEG bytes every time.  L{DemoSource} plays that sequence on
the injected reactor's clock and renders frames in a thread;
L{recordMain} (C{numberok-demo-record}) writes it to a JSONL file that
L{numberok.sources.replay} plays back.

The model and its rates are documented in docs/sources.rst; keep the
constants below and that page in step.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import heapq
import io
import json
import math
import random
import sys
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable, Iterator, Optional

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from numberok.events import BBox, PlateRead
from numberok.sources import ThreadedSource, handOver
from numberok.sources.formats import readToObject

FRAME_WIDTH = 640
FRAME_HEIGHT = 360
JPEG_QUALITY = 70
ZONES = 4
MAX_CHANNELS = 1024
MAX_RATE = 50.0

# Plate formats and how often each appears.
PLATE_FORMATS = (("ru", 0.65), ("by", 0.10), ("kz", 0.10), ("de", 0.15))
RU_LETTERS = "ABEKMHOPCTYX"          # the 12 letters Russian plates use
BY_LETTERS = "ABEIKMHOPCTX"
KZ_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
DE_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
RU_REGIONS = (77, 97, 99, 177, 197, 199, 777, 50, 90, 150, 750, 78, 98,
              178, 16, 116, 66, 96, 54, 154, 23, 93, 123, 2, 102, 61, 161)
DE_CITIES = ("B", "M", "HH", "K", "F", "S", "DU", "HB", "L", "DD")
# The Cyrillic letters that look like (and on plates are) these Latin ones.
CYRILLIC = dict(zip("ABEKMHOPCTYX", "АВЕКМНОРСТУХ"))

# Per-read OCR outcome, one draw per read; rates are documented.
OCR_OUTCOMES = (("exact", 0.70), ("confusable", 0.14), ("dropped", 0.06),
                ("extra", 0.04), ("partial", 0.06))
CONFUSABLE = {
    "0": "O", "O": "0", "1": "I", "I": "1", "2": "Z", "Z": "2", "3": "8",
    "4": "A", "A": "4", "5": "S", "S": "5", "6": "G", "G": "6", "7": "T",
    "T": "7", "8": "B", "B": "8", "9": "0", "C": "G", "D": "0", "E": "F",
    "F": "E", "H": "M", "M": "H", "K": "X", "X": "K", "P": "R", "R": "P",
    "Y": "V", "V": "Y", "U": "V", "Q": "0", "N": "H", "L": "I", "J": "1",
    "W": "VV",
}

READS_PER_PASS = (3, 36, 10)          # triangular(low, high, mode)
READ_INTERVAL_MS = (100, 200)
LANE_GAP_MS = 800                     # a free lane after a vehicle leaves

CAR_COLOURS = ((200, 200, 205), (30, 30, 35), (150, 20, 25), (20, 60, 140),
               (230, 230, 225), (90, 95, 100), (25, 100, 50), (200, 150, 40),
               (120, 70, 40), (60, 60, 110))


@dataclass(frozen=True, slots=True)
class Scene:
    """
    Everything needed to draw one frame, and nothing random: rendering the
    same scene gives the same JPEG bytes.

    @ivar plate_text: the plate as painted on the car (Latin look-alikes;
        a plate's Cyrillic letters look the same).
    @ivar bbox: where the plate is, C{(x, y, w, h)}; the car is drawn around
        it.
    @ivar time_ms: printed in the corner like a camera's on-screen clock.
    """

    channel: int
    zone: int
    timeMs: int
    plate_text: str
    bbox: BBox
    colour: tuple[int, int, int]
    body: float
    roof: float
    background: int


@dataclass(frozen=True, slots=True)
class DemoRead:
    """
    One simulated read.

    @ivar read: the read as the recognizer would send it, without a frame.
    @ivar scene: the frame to render for it.
    @ivar vehicle: the index of its vehicle, counting from 0.
    @ivar truth: the vehicle's real plate, spelled like C{read.plate}.
    @ivar error: the OCR outcome: one of L{OCR_OUTCOMES}' names.
    """

    read: PlateRead
    scene: Scene
    vehicle: int
    truth: str
    error: str


@dataclass(frozen=True, slots=True)
class Vehicle:
    """
    One vehicle's pass through one zone.

    @ivar direction: C{"In"} (moving down the frame, towards the camera) or
        C{"Out"} (moving up, away).
    """

    index: int
    plate: str
    channel: int
    zone: int
    direction: str
    reads: tuple[DemoRead, ...]


def _choose(rng: random.Random, weighted) -> str:
    point = rng.random()
    for name, weight in weighted:
        point -= weight
        if point < 0:
            return name
    return weighted[-1][0]


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _letters(rng: random.Random, alphabet: str, count: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(count))


def makePlate(rng: random.Random) -> tuple[str, str]:
    """
    A random plate, as C{(format, text)} with Latin letters; the text is
    what recognizers usually emit (no spaces or dashes).
    """
    kind = _choose(rng, PLATE_FORMATS)
    if kind == "ru":      # А123ВС77
        number = _digits(rng, 3)
        if number == "000":
            number = "001"
        text = (_letters(rng, RU_LETTERS, 1) + number
                + _letters(rng, RU_LETTERS, 2) + "%02d" % rng.choice(RU_REGIONS))
    elif kind == "by":    # 1234 AB-7
        text = _digits(rng, 4) + _letters(rng, BY_LETTERS, 2) + str(
            rng.randint(1, 7))
    elif kind == "kz":    # 123 ABC 02
        text = _digits(rng, 3) + _letters(rng, KZ_LETTERS, 3) + "%02d" % (
            rng.randint(1, 20),)
    else:                 # B MW 1234
        text = (rng.choice(DE_CITIES) + _letters(rng, DE_LETTERS, 2)
                + str(rng.randint(1, 9999)))
    return kind, text


def misread(rng: random.Random, text: str) -> tuple[str, str]:
    """
    Apply the OCR error model to one read of C{text} (Latin spelling).

    @return: C{(outcome, text as read)}; for every outcome but C{"exact"}
        the text differs from C{text}.
    """
    outcome = _choose(rng, OCR_OUTCOMES)
    if outcome == "confusable":
        i = rng.randrange(len(text))
        return outcome, text[:i] + CONFUSABLE.get(text[i], "0") + text[i + 1:]
    if outcome == "dropped":
        i = rng.randrange(len(text))
        return outcome, text[:i] + text[i + 1:]
    if outcome == "extra":
        i = rng.randrange(len(text) + 1)
        # Recognizers mostly stutter a neighbour or see a bolt as "1"/"I".
        extra = rng.choice((text[max(0, i - 1)], "1", "I"))
        return outcome, text[:i] + extra + text[i:]
    if outcome == "partial":
        keep = max(2, len(text) - rng.randint(2, 4))
        if rng.random() < 0.5:
            return outcome, text[:keep]
        return outcome, text[-keep:]
    return "exact", text


def spell(text: str, cyrillic: bool) -> str:
    """Spell the look-alike letters Cyrillic when the recognizer does."""
    if not cyrillic:
        return text
    return "".join(CYRILLIC.get(c, c) for c in text)


def _validate(rate: float, channels: int) -> None:
    if not (isinstance(rate, (int, float)) and math.isfinite(rate)
            and 0 < rate <= MAX_RATE):
        raise ValueError("demo rate must be a number of vehicles per second "
                         "in (0, %g], got %r" % (MAX_RATE, rate))
    if not 1 <= channels <= MAX_CHANNELS:
        raise ValueError("demo channels must be 1..%d, got %r"
                         % (MAX_CHANNELS, channels))


def vehicles(seed: int = 1, rate: float = 2.0, channels: int = 2,
             startMs: int = 0) -> Iterator[Vehicle]:
    """
    The endless, seeded sequence of vehicles, in order of arrival.

    Arrivals are a Poisson process of C{rate} vehicles per second over all
    channels.  Each vehicle takes a random lane (channel and zone 0..3); a
    lane carries one vehicle at a time, so an arrival at a busy lane takes
    another free lane, or waits for the first lane to free up (then the
    real rate is below C{rate}).

    @param startMs: the time of the simulation's start; all times follow.
    """
    _validate(rate, channels)
    rng = random.Random(seed)
    freeAt: dict[tuple[int, int], float] = {}
    lanes = [(c, z) for c in range(channels) for z in range(ZONES)]
    clock = float(startMs)
    index = 0
    while True:
        clock += rng.expovariate(rate) * 1000.0
        lane = (rng.randrange(channels), rng.randrange(ZONES))
        if freeAt.get(lane, startMs) > clock:
            free = [ln for ln in lanes if freeAt.get(ln, startMs) <= clock]
            if free:
                lane = free[rng.randrange(len(free))]
            else:
                lane = min(lanes, key=lambda ln: (freeAt[ln], ln))
                clock = freeAt[lane]
        vehicle = _vehicle(rng, index, lane, round(clock))
        last = vehicle.reads[-1].read.timeMs
        freeAt[lane] = last + LANE_GAP_MS
        yield vehicle
        index += 1


def _vehicle(rng: random.Random, index: int, lane: tuple[int, int],
             startMs: int) -> Vehicle:
    channel, zone = lane
    kind, truth = makePlate(rng)
    cyrillic = kind == "ru" and channel % 2 == 0
    direction = "In" if rng.random() < 0.5 else "Out"
    count = int(rng.triangular(*READS_PER_PASS))
    colour = CAR_COLOURS[rng.randrange(len(CAR_COLOURS))]
    body = rng.uniform(1.6, 2.1)
    roof = rng.uniform(0.45, 0.7)
    drift = rng.uniform(-12, 12)
    baseConfidence = rng.uniform(0.82, 0.97)
    laneX = (zone + 0.5) * FRAME_WIDTH / ZONES
    reads = []
    timeMs = startMs
    for k in range(count):
        if k:
            timeMs += rng.randint(*READ_INTERVAL_MS)
        progress = k / (count - 1) if count > 1 else 0.5
        if direction == "Out":
            progress = 1.0 - progress
        # Moving down the frame ("In") the plate comes closer and grows.
        scale = 0.6 + 0.4 * progress
        w = round(84 * scale)
        h = round(w * 0.22)
        cx = laneX + drift * progress + rng.uniform(-2, 2)
        cy = 110 + 210 * progress + rng.uniform(-2, 2)
        x = min(max(0, round(cx - w / 2)), FRAME_WIDTH - w)
        y = min(max(0, round(cy - h / 2)), FRAME_HEIGHT - h)
        bbox = (x, y, w, h)
        error, text = misread(rng, truth)
        if error == "exact":
            confidence = min(0.99, baseConfidence + rng.uniform(-0.05, 0.03))
        else:
            confidence = rng.uniform(0.45, 0.85)
        read = PlateRead(
            plate=spell(text, cyrillic), timeMs=timeMs, channel=channel,
            zone=zone, confidence=round(confidence, 3), bbox=bbox,
            processTimeMs=rng.randint(8, 40), source="demo")
        scene = Scene(channel=channel, zone=zone, timeMs=timeMs,
                      plate_text=truth, bbox=bbox, colour=colour, body=body,
                      roof=roof, background=channel % 3)
        reads.append(DemoRead(read=read, scene=scene, vehicle=index,
                              truth=spell(truth, cyrillic), error=error))
    return Vehicle(index=index, plate=spell(truth, cyrillic), channel=channel,
                   zone=zone, direction=direction, reads=tuple(reads))


def reads(seed: int = 1, rate: float = 2.0, channels: int = 2,
          startMs: int = 0) -> Iterator[DemoRead]:
    """
    The endless, seeded sequence of reads of all vehicles, merged in time
    order (ties: earlier vehicle first).  Pure: no reactor, no frames.
    """
    pending: list = []
    fleet = vehicles(seed, rate, channels, startMs)
    upcoming = next(fleet)
    while True:
        # A vehicle's first read is never before its arrival, and arrivals
        # only grow: once the next arrival is later than the earliest
        # pending read, that read is the next one overall.
        while not pending or upcoming.reads[0].read.timeMs <= pending[0][0]:
            for k, demoRead in enumerate(upcoming.reads):
                heapq.heappush(pending, (demoRead.read.timeMs,
                                         upcoming.index, k, demoRead))
            upcoming = next(fleet)
        yield heapq.heappop(pending)[3]


@functools.lru_cache(maxsize=8)
def _font(size: int):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:      # Pillow < 10.1: one bitmap size only
        return ImageFont.load_default()


_BACKGROUNDS = (((120, 150, 175), (70, 72, 76)),
                ((160, 170, 150), (85, 80, 75)),
                ((60, 70, 95), (45, 47, 52)))


def renderFrame(scene: Scene) -> bytes:
    """
    Draw C{scene} and encode it as a JPEG.  Blocking (a few milliseconds):
    call it in a thread.  Deterministic for a scene and a Pillow version.
    """
    from PIL import Image, ImageDraw
    sky, road = _BACKGROUNDS[scene.background]
    image = Image.new("RGB", (FRAME_WIDTH, FRAME_HEIGHT), road)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, FRAME_WIDTH, 70), fill=sky)
    for lane in range(1, ZONES):
        x = lane * FRAME_WIDTH // ZONES
        for y in range(80, FRAME_HEIGHT, 40):
            draw.line((x, y, x, y + 20), fill=(220, 220, 210), width=3)
    x, y, w, h = scene.bbox
    cx = x + w / 2
    carW, carH = w * scene.body, w * 1.25
    top = y + h * 1.6 - carH
    draw.rounded_rectangle(
        (cx - carW / 2, top, cx + carW / 2, y + h * 1.6),
        radius=max(2, round(w / 8)), fill=scene.colour, outline=(15, 15, 15))
    roofW = carW * scene.roof
    draw.rectangle((cx - roofW / 2, top + carH * 0.08, cx + roofW / 2,
                    top + carH * 0.42), fill=(35, 45, 60))
    for side in (-1, 1):
        lx = cx + side * (carW / 2 - w * 0.25)
        draw.ellipse((lx - w * 0.12, y - h * 0.2, lx + w * 0.12,
                      y + h * 0.5), fill=(245, 240, 200))
    draw.rectangle((x, y, x + w - 1, y + h - 1), fill=(250, 250, 250),
                   outline=(0, 0, 0))
    font = _font(max(8, round(h * 0.8)))
    draw.text((cx, y + h / 2), scene.plate_text, fill=(0, 0, 0), font=font,
              anchor="mm")
    stamp = datetime.datetime.fromtimestamp(
        scene.timeMs / 1000, datetime.timezone.utc)
    draw.text((8, 6), "CAM %d  ZONE %d  %s UTC" % (
        scene.channel, scene.zone,
        stamp.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (scene.timeMs % 1000)),
        fill=(255, 255, 255), font=_font(14))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


class _Pending:
    __slots__ = ("read", "frame", "done")

    def __init__(self, read: PlateRead):
        self.read = read
        self.frame: Optional[bytes] = None
        self.done = False


class DemoSource(ThreadedSource):
    """
    Plays the simulation (L{reads}) into a sink on the reactor's clock.

    Each read is due at its simulated time; its frame is rendered in a
    thread and the read is handed to the sink as soon as its frame is ready,
    always in simulation order.  The read's C{time_ms} is its due time, so
    the sequence does not depend on how fast frames render.  When rendering
    falls more than L{maxPendingFrames} frames behind, reads go out without
    a frame (counted in C{framesSkipped}) rather than piling up.

    @ivar reads: reads handed to the sink so far.
    @ivar vehicles: vehicles whose first read was handed on.
    """

    workerName = "numberok-demo-frames"
    log = Logger()
    maxPendingFrames = 32

    def __init__(self, sink, rate: float = 2.0, seed: int = 1,
                 channels: int = 2, reactor=None, frames: bool = True,
                 runInThread: Optional[Callable[..., Deferred]] = None):
        """
        @param sink: an L{numberok.interfaces.IPlateReadSink}.
        @param rate: mean vehicles per second over all channels.
        @param frames: render JPEG frames (off: reads without images).
        @param runInThread: C{f(callable, *args) -> Deferred} running the
            call off the reactor thread; by default a one-thread pool this
            service owns.  Tests pass a synchronous one.
        @raise ValueError: rate or channels out of range.
        """
        _validate(rate, channels)
        ThreadedSource.__init__(self, reactor, runInThread)
        self.sink = sink
        self.rate = rate
        self.seed = seed
        self.channels = channels
        self.frames = frames
        self._call = None
        self._sequence: Optional[Iterator[DemoRead]] = None
        self._pending: deque[_Pending] = deque()
        self._lastVehicle = -1
        self.reads = 0
        self.vehicles = 0
        self.framesSkipped = 0

    def startService(self) -> None:
        super().startService()
        reactor = self._getReactor()
        if self.frames:
            self._render = self._startWorker()
        startMs = round(reactor.seconds() * 1000)
        self._sequence = reads(self.seed, self.rate, self.channels, startMs)
        self._pending = deque()
        self.log.info(
            "demo traffic: {rate} vehicles/s on {channels} channels, "
            "seed {seed}", rate=self.rate, channels=self.channels,
            seed=self.seed)
        self._scheduleNext()

    def stopService(self) -> None:
        super().stopService()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._sequence = None
        self._pending = deque()
        self._stopWorker()

    def _scheduleNext(self) -> None:
        demoRead = next(self._sequence)
        reactor = self._getReactor()
        delay = max(0.0, demoRead.read.timeMs / 1000.0 - reactor.seconds())
        self._call = reactor.callLater(delay, self._due, demoRead)

    def _due(self, demoRead: DemoRead) -> None:
        self._call = None
        pending = _Pending(demoRead.read)
        # First reads come in vehicle order, so a new index is a new vehicle.
        if demoRead.vehicle > self._lastVehicle:
            self._lastVehicle = demoRead.vehicle
            self.vehicles += 1
        if not self.frames:
            pending.done = True
        elif len(self._pending) >= self.maxPendingFrames:
            self.framesSkipped += 1
            pending.done = True
        queue = self._pending
        queue.append(pending)
        if not pending.done:
            d = self._render(renderFrame, demoRead.scene)
            d.addCallbacks(self._rendered, self._renderFailed,
                           callbackArgs=(pending, queue),
                           errbackArgs=(pending, queue))
        self._deliver(queue)
        if self.running:
            self._scheduleNext()

    def _rendered(self, frame: bytes, pending: _Pending, queue) -> None:
        pending.frame = frame
        pending.done = True
        self._deliver(queue)

    def _renderFailed(self, failure, pending: _Pending, queue) -> None:
        self.log.failure("demo frame rendering failed", failure)
        pending.done = True
        self._deliver(queue)

    def _deliver(self, queue) -> None:
        # A queue left over from before stopService is no longer ours.
        if queue is not self._pending or not self.running:
            return
        while queue and queue[0].done:
            pending = queue.popleft()
            read = pending.read
            if pending.frame is not None:
                read = replace(read, jpeg=pending.frame)
            self.reads += 1
            handOver(self.sink, read, "the demo")


def record(out, count: int, seed: int = 1, rate: float = 2.0,
           channels: int = 2, startMs: int = 1764000000000,
           images: bool = True) -> int:
    """
    Write the reads of the first C{count} vehicles to C{out} (a binary
    file), one ingest object per line in time order.

    @return: the number of lines written.
    """
    chosen = []
    for vehicle in vehicles(seed, rate, channels, startMs):
        if vehicle.index >= count:
            break
        chosen.extend((demoRead.read.timeMs, vehicle.index, k, demoRead)
                      for k, demoRead in enumerate(vehicle.reads))
    chosen.sort(key=lambda item: item[:3])
    for _, _, _, demoRead in chosen:
        read = demoRead.read
        if images:
            read = replace(read, jpeg=renderFrame(demoRead.scene))
        out.write(json.dumps(readToObject(read), ensure_ascii=False,
                             separators=(",", ":")).encode("utf-8") + b"\n")
    return len(chosen)


def recordMain(argv: Optional[list[str]] = None) -> int:
    """
    C{numberok-demo-record OUT.jsonl --vehicles N [--seed S] [--no-images]}:
    write a replayable file of demo reads.  The default start time is fixed,
    so the same arguments always write the same bytes.
    """
    parser = argparse.ArgumentParser(
        prog="numberok-demo-record",
        description="Write simulated plate reads as a JSONL replay file.")
    parser.add_argument("out", help="output file, or - for standard output")
    parser.add_argument("--vehicles", type=int, default=10,
                        help="number of vehicles (default 10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=2.0,
                        help="vehicles per second (default 2)")
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--start-ms", type=int, default=1764000000000,
                        help="time of the first arrival, ms since 1970")
    parser.add_argument("--no-images", action="store_true",
                        help="leave the frames out")
    args = parser.parse_args(argv)
    if args.vehicles < 0:
        parser.error("--vehicles must be 0 or more")
    try:
        _validate(args.rate, args.channels)
    except ValueError as e:
        parser.error(str(e))
    if args.out == "-":
        count = record(sys.stdout.buffer, args.vehicles, args.seed,
                       args.rate, args.channels, args.start_ms,
                       not args.no_images)
    else:
        try:
            with open(args.out, "wb") as out:
                count = record(out, args.vehicles, args.seed, args.rate,
                               args.channels, args.start_ms,
                               not args.no_images)
        except OSError as e:
            print("numberok-demo-record: %s" % (e,), file=sys.stderr)
            return 1
    print("wrote %d reads of %d vehicles to %s"
          % (count, args.vehicles, args.out), file=sys.stderr)
    return 0
