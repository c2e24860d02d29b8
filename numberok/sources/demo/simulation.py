"""
The demo's simulation: a seeded model of vehicles passing cameras, pure and
reactor-free.  L{vehicles} and L{reads} turn a seed into the same vehicles,
reads, OCR errors, bounding boxes and frame descriptions (L{Scene}) every
time.

The model and its rates are documented in docs/sources.rst; keep the
constants below and that page in step.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass
from typing import Iterator

from numberok.events import BBox, PlateRead
from numberok.plates import ALPHABETS

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
CYRILLIC = ALPHABETS["ru"].native

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


def validateRate(rate: float, channels: int) -> None:
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
    validateRate(rate, channels)
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
