"""
Accuracy benchmark: how many vehicles end as exactly one Lost event with the
exact true plate, for soft comparison on and off, on a seeded synthetic
stream of noisy reads.

    python bench/accuracy.py [--vehicles 2000] [--error-rate 0.5] [--seed 7]

The stream runs through the real analytics (numberok.analytics with
numberok.plates and the default settings) on a Clock, so it takes seconds,
not hours.

Traffic model
-------------
- Russian private-car plates ``L DDD LL RR[R]`` (letters ABEKMHOPCTYX),
  half of them spelled by the recognizer in Cyrillic.
- 8 zones (4 channels x 2 zones). In each zone cars follow each other 1 to 4
  s apart -- closer than the 5 s loss interval, so the previous car's track
  is still open when the next car arrives -- and one car in ten shares the
  zone with the car before it (two lanes seen by one camera).
- A pass is 5 to 30 reads, 100 to 200 ms apart.

OCR error model
---------------
A read is wrong with probability ``--error-rate`` (0.5: half the reads hold
at least one wrong character). A wrong read gets one error (70 %) or two
(30 %), each one of:

==========================  ======  =========================================
error                       share   example (A123BC77)
==========================  ======  =========================================
confusion of look-alikes    40 %    0/O, 8/B, 1/I/T, 5/S, 2/Z, 7/T, 4/A, 6/G
random substitution         20 %    A123BC77 -> A1Z3BC77 (any letter/digit)
dropped character           15 %    A123BC77 -> A12BC77
extra character             10 %    A123BC77 -> A123BC777
partial read                15 %    one or two characters lost at an end
==========================  ======  =========================================

Correct reads have confidence 0.80..0.98, wrong ones 0.45..0.90.
Each read is tagged with its vehicle (in process_time_ms, which a Lost event
reports for its best read) so that events can be scored against the truth.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twisted.internet.task import Clock  # noqa: E402

from numberok.analytics import Analytics  # noqa: E402
from numberok.events import EventState, PlateRead  # noqa: E402
from numberok.plates import ALPHABETS  # noqa: E402
from numberok.settings import Settings, SettingsStore  # noqa: E402

LETTERS = "ABEKMHOPCTYX"
TO_CYRILLIC = str.maketrans(ALPHABETS["ru"].native)
CONFUSIONS = {
    "0": "OD", "O": "0D", "D": "0O", "8": "B", "B": "8", "1": "IT", "I": "1",
    "T": "17", "5": "S", "S": "5", "2": "Z", "Z": "2", "7": "T", "4": "A",
    "A": "4", "6": "G", "G": "6", "H": "M", "M": "H", "K": "X", "X": "K",
    "3": "8", "9": "g", "C": "G", "E": "F", "P": "R", "Y": "V",
}
ALPHABET = LETTERS + "0123456789"


def truePlate(rng: random.Random) -> str:
    region = rng.randrange(10, 200) if rng.random() < 0.3 else rng.randrange(
        10, 100)
    return "%s%03d%s%s%d" % (rng.choice(LETTERS), rng.randrange(1, 1000),
                             rng.choice(LETTERS), rng.choice(LETTERS), region)


def corrupt(plate: str, rng: random.Random) -> str:
    text = list(plate)
    for _ in range(1 if rng.random() < 0.7 else 2):
        kind = rng.random()
        i = rng.randrange(len(text))
        if kind < 0.40:
            choices = CONFUSIONS.get(text[i])
            text[i] = rng.choice(choices) if choices else rng.choice(ALPHABET)
        elif kind < 0.60:
            text[i] = rng.choice([c for c in ALPHABET if c != text[i]])
        elif kind < 0.75 and len(text) > 4:
            del text[i]
        elif kind < 0.85:
            text.insert(i, rng.choice(ALPHABET))
        elif len(text) > 5:
            cut = rng.choice((1, 2))
            text = text[cut:] if rng.random() < 0.5 else text[:-cut]
    result = "".join(text)
    return result if result != plate else corrupt(plate, rng)


def stream(vehicles: int, errorRate: float, seed: int):
    """
    The reads of the whole run, in time order: (time, vehicle, PlateRead);
    and the true plates.
    """
    rng = random.Random(seed)
    zones = [(c, z) for c in range(4) for z in range(2)]
    clocks = {zone: 0.0 for zone in zones}
    truth = []
    reads = []
    for vehicle in range(vehicles):
        zone = zones[vehicle % len(zones)]
        plate = truePlate(rng)
        truth.append(plate)
        cyrillic = rng.random() < 0.5
        if rng.random() < 0.1 and vehicle >= len(zones):
            start = clocks[zone] - rng.uniform(0.5, 2.0)    # second lane
        else:
            start = clocks[zone] + rng.uniform(1.0, 4.0)
        t = start
        for _ in range(rng.randint(5, 30)):
            wrong = rng.random() < errorRate
            text = corrupt(plate, rng) if wrong else plate
            if cyrillic:
                text = text.translate(TO_CYRILLIC)
            confidence = (rng.uniform(0.45, 0.90) if wrong
                          else rng.uniform(0.80, 0.98))
            reads.append((t, vehicle, zone, text, confidence))
            t += rng.uniform(0.1, 0.2)
        clocks[zone] = max(clocks[zone], t)
    reads.sort()
    return reads, truth


class Collected(list):
    def publish(self, event):
        self.append(event)


def run(reads, truth, soft: bool) -> dict:
    clock = Clock()
    store = SettingsStore(Settings().withChanges(
        {"Analytics.SoftComparison": "1" if soft else "0"}))
    events = Collected()
    analytics = Analytics(store, events, reactor=clock)
    for t, vehicle, (channel, zone), text, confidence in reads:
        clock.advance(max(0.0, t - clock.seconds()))
        analytics.addRead(PlateRead(
            plate=text, timeMs=int(t * 1000), channel=channel, zone=zone,
            confidence=confidence, processTimeMs=vehicle))
    clock.advance(100)
    lost = [e for e in events if e.state is EventState.LOST]
    perVehicle: dict[int, list] = {}
    for e in lost:
        perVehicle.setdefault(e.processTimeMs, []).append(e)
    exact = sum(1 for v, plate in enumerate(truth)
                if [e.plate for e in perVehicle.get(v, [])] == [plate])
    spurious = len(lost) - len(perVehicle)
    missed = len(truth) - len(perVehicle)
    return dict(vehicles=len(truth), lost=len(lost), exact=exact,
                spurious=spurious, missed=missed,
                noise=int(analytics.metrics.value(
                    "numberok_noise_tracks_total")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vehicles", type=int, default=2000)
    parser.add_argument("--error-rate", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    reads, truth = stream(args.vehicles, args.error_rate, args.seed)
    wrong = sum(1 for _, v, _, text, _ in reads
                if text.translate(str.maketrans("АВЕКМНОРСТУХ", LETTERS))
                != truth[v])
    print("command: python bench/accuracy.py --vehicles %d --error-rate %g "
          "--seed %d" % (args.vehicles, args.error_rate, args.seed))
    print("reads: %d, with at least one wrong character: %.1f %%" % (
        len(reads), 100.0 * wrong / len(reads)))
    for soft in (True, False):
        started = time.perf_counter()
        r = run(reads, truth, soft)
        print("soft comparison %-3s: vehicles %d, Lost events %d, exactly one "
              "Lost with the true plate %.2f %%, spurious Lost %d, vehicles "
              "without Lost %d, noise tracks %d (%.1f s)" % (
                  "on" if soft else "off", r["vehicles"], r["lost"],
                  100.0 * r["exact"] / r["vehicles"], r["spurious"],
                  r["missed"], r["noise"], time.perf_counter() - started))


if __name__ == "__main__":
    main()
