"""
Publisher micro-benchmark: CPU per event of C{publish} plus the writes,
four subscribers, under a raw-results flood (so the 2-writes-per-second cap
and the 1024-event queue cap drop most Updated events).

In memory, no sockets: a L{Clock} advanced by the flood's inter-arrival
time, subscribers that take every write.  The figure is the publisher's own
cost per published event, writes included.

    python bench/publisher.py [--events 200000] [--rate 20000] [--tracks 200]

To compare with another version, run this same file with that checkout
first on the path, for example::

    git archive <commit> | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old python bench/publisher.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from twisted.internet.task import Clock  # noqa: E402
from zope.interface import implementer  # noqa: E402

from numberok.events import EventState, PlateEvent  # noqa: E402
from numberok.interfaces import IEventSubscriber  # noqa: E402
from numberok.publisher import EventPublisher  # noqa: E402
from numberok.settings import SettingsStore  # noqa: E402


@implementer(IEventSubscriber)
class Sink:
    """A client that reads everything at once."""

    wantsScreenshots = False
    lostOnly = False

    def __init__(self) -> None:
        self.events = 0
        self.bytes = 0

    def writePackets(self, data: bytes) -> None:
        self.bytes += len(data)

    def isWritable(self) -> bool:
        return True


def flood(count: int, tracks: int) -> list[PlateEvent]:
    """Raw results: each track Detected, then Updated per read, then Lost."""
    events = []
    perTrack = max(3, count // tracks)
    for t in range(tracks):
        plate = "A%03dBC77" % (t % 1000,)
        for i in range(perTrack):
            state = (EventState.DETECTED if i == 0 else EventState.LOST
                     if i == perTrack - 1 else EventState.UPDATED)
            events.append(PlateEvent(
                state=state, runtimeId=1000 + t, channel=t % 4, zone=t % 4,
                plate=plate, rawPlate=plate, frameTimeMs=1764000000000 + i,
                processTimeMs=12, confidence=0.9, reads=i + 1,
                bbox=(400, 300, 96, 22)))
    # Interleave the tracks as a busy site does.
    events.sort(key=lambda e: (e.frameTimeMs, e.runtimeId))
    return events[:count]


def run(events: list[PlateEvent], rate: float) -> tuple[float, list[Sink]]:
    clock = Clock()
    publisher = EventPublisher(SettingsStore(), reactor=clock)
    sinks = [Sink() for _ in range(4)]
    for sink in sinks:
        publisher.subscribe(sink)
    step = 1.0 / rate
    started = time.process_time()
    for event in events:
        publisher.publish(event)
        clock.advance(step)
    clock.advance(1.0)
    return time.process_time() - started, sinks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=20_000,
                        help="events per simulated second")
    parser.add_argument("--tracks", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import numberok.publisher
    events = flood(args.events, args.tracks)
    # Baseline: the clock and the loop alone, to subtract.
    clock = Clock()
    started = time.process_time()
    for _ in events:
        clock.advance(1.0 / args.rate)
    loop = time.process_time() - started
    best = min(run(events, args.rate)[0] for _ in range(args.repeat))
    _, sinks = run(events, args.rate)
    print("publisher: %s" % (numberok.publisher.__file__,))
    print("command:   python %s" % (" ".join(sys.argv),))
    print("%d events at %.0f/s simulated, %d tracks, 4 subscribers"
          % (len(events), args.rate, args.tracks))
    print("bytes written per subscriber: %d" % (sinks[0].bytes,))
    print("CPU per published event: %.2f us (best of %d, loop %.2f us "
          "subtracted)" % ((best - loop) / len(events) * 1e6, args.repeat,
                           loop / len(events) * 1e6))


if __name__ == "__main__":
    main()
