"""
C{numberok-demo-record}: write the demo's reads to a JSONL file that
L{numberok.sources.replay} plays back.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Optional

from numberok.sources.demo.render import renderFrame
from numberok.sources.demo.simulation import validateRate, vehicles
from numberok.sources.formats import readToObject


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
        validateRate(args.rate, args.channels)
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
