"""
Journal search at scale: a journal of 1,000,000 events, then the search,
visits and export code the API runs, timed on it; and the cost of
recording one event against the journal of the release before search.

    python bench/journal_search.py [--events 1000000] [--queries 40]
                                   [--old-code DIR]

The journal is built through the store's own database in batches (the
rows are what C{JournalStore.record} writes, skeleton included, 10,000
per transaction) -- building it event by event would take the bench's
whole time.  The traffic: 30 days, 4 cameras of 2 zones, 20,000 regular
vehicles (80 % of passages) and a stream of vehicles seen once, so the
journal holds about 200,000 distinct plates.

Measured, each query with plates drawn from the journal (look-alike and
fuzzy queries with one character misread), through
C{numberok.journal.search.searchPage} (first page of 100 and the total,
exactly what C{GET /api/events/search} runs in the journal's thread):
exact, look-alike, distance 1, mask (C{A12*} style); one day of visits
(C{visitReport}); the CSV export of one week through C{exportPage} (rows
per second, RSS growth); and C{JournalStore.record} per event, this code
against the release before (C{--old-code DIR}: a checkout of it, e.g.
C{git worktree add DIR <commit>}), alternated in fresh processes, median
of the rounds.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from numberok.events import EventState, MovementType, PlateEvent  # noqa
from numberok.journal import JournalStore  # noqa
from numberok.journal.export import CSVFormat, exportPage  # noqa
from numberok.journal.fields import COLUMNS, eventRow, searchValues  # noqa
from numberok.journal.query import parseQuery  # noqa
from numberok.journal.search import SkeletonCache, searchPage  # noqa
from numberok.journal.visits import DAY_MS, visitReport  # noqa

LETTERS = "ABEKMHOPCTYX"
T0 = 1_760_000_000_000
ROLES = {(0, 0): "entry", (0, 1): "exit", (1, 0): "both"}
MOVES = (MovementType.IN, MovementType.OUT)


def randomPlate(rng: random.Random) -> str:
    return "%s%03d%s%s%d" % (rng.choice(LETTERS), rng.randrange(1000),
                             rng.choice(LETTERS), rng.choice(LETTERS),
                             rng.choice((77, 99, 50, 177, 199, 750)))


def build(path: str, events: int, rng: random.Random) -> None:
    store = JournalStore(path)
    regulars = [randomPlate(rng) for _ in range(20000)]
    insert = "INSERT INTO events (%s) VALUES (%s)" % (
        ", ".join(COLUMNS[1:]), ", ".join("?" * (len(COLUMNS) - 1)))
    step = 30 * DAY_MS // events
    batch = []
    db = store.db
    for i in range(events):
        plate = (rng.choice(regulars) if rng.random() < 0.8
                 else randomPlate(rng))
        t = T0 + i * step
        e = PlateEvent(state=EventState.LOST, runtimeId=i,
                       channel=rng.randrange(4), zone=rng.randrange(2),
                       plate=plate, rawPlate=plate, frameTimeMs=t,
                       movement=rng.choice(MOVES), confidence=0.9, reads=5)
        row = eventRow(e)
        batch.append(row + (t + 300, 0, None, None, 0) + searchValues(row))
        if len(batch) == 10000:
            db.execute("BEGIN")
            db.executemany(insert, batch)
            db.execute("COMMIT")
            batch = []
    if batch:
        db.execute("BEGIN")
        db.executemany(insert, batch)
        db.execute("COMMIT")
    store.close()


def misread(plate: str, rng: random.Random) -> str:
    swaps = {"O": "0", "B": "8", "A": "\u0410", "C": "\u0421", "0": "O",
             "8": "B", "1": "I", "5": "S"}
    spots = [i for i, c in enumerate(plate) if c in swaps]
    if not spots:
        return plate
    i = rng.choice(spots)
    return plate[:i] + swaps[plate[i]] + plate[i + 1:]


def typo(plate: str, rng: random.Random) -> str:
    i = rng.randrange(len(plate))
    return plate[:i] + rng.choice("0123456789") + plate[i + 1:]


def timed(f, n: int) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        f(i)
        out.append((time.perf_counter() - start) * 1000)
    return out


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def rssMB() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


RECORD_SNIPPET = r"""
import sys, time, tempfile
sys.path.insert(0, sys.argv[1])
from numberok.journal import JournalStore
from numberok.journal.fields import eventRow
from numberok.events import PlateEvent, EventState, MovementType
n = int(sys.argv[2])
frame = (b"\xff\xd8" + b"x" * (int(sys.argv[3]) * 1024) + b"\xff\xd9"
         if int(sys.argv[3]) else None)
with tempfile.TemporaryDirectory() as d:
    s = JournalStore(d)
    rows = [eventRow(PlateEvent(state=EventState.LOST, runtimeId=i, channel=0,
            zone=0, plate="A%03dBC77" % (i % 1000), rawPlate="a", 
            frameTimeMs=1760000000000 + i, movement=MovementType.IN))
            for i in range(n)]
    start = time.perf_counter()
    for i, row in enumerate(rows):
        s.record(row, 1760000000000 + i, frame, None)
    print((time.perf_counter() - start) / n * 1e6)
    s.close()
"""


def recordCost(code: str, n: int, frameKB: int) -> float:
    out = subprocess.run([sys.executable, "-c", RECORD_SNIPPET, code, str(n),
                          str(frameKB)],
                         check=True, capture_output=True, text=True).stdout
    return float(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--record-events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--old-code", default=None,
                        help="a checkout of the release to compare the "
                             "record cost with; without it that part is "
                             "skipped")
    parser.add_argument("--keep", help="build the journal here, or reuse "
                        "the one there")
    args = parser.parse_args()
    rng = random.Random(7)
    print("command: python bench/journal_search.py " + " ".join(sys.argv[1:]))
    folder = args.keep or tempfile.mkdtemp()
    if not os.path.exists(os.path.join(folder, "events.sqlite")):
        start = time.perf_counter()
        build(folder, args.events, rng)
        print("built %d events in %.1f s" % (args.events,
                                              time.perf_counter() - start))
    store = JournalStore(folder)
    db, epoch = store.db, store.epoch
    cache = SkeletonCache()
    rows = store.count()
    distinct = db.execute("SELECT COUNT(DISTINCT plate_skeleton) FROM events"
                          ).fetchone()[0]
    print("journal: %d events, %d distinct plates, %.0f MB"
          % (rows, distinct, os.path.getsize(store.path) / 2**20))
    plates = [p for (p,) in db.execute(
        "SELECT plate FROM events WHERE id % 997 = 0 LIMIT ?",
        (args.queries * 4,))]
    rng.shuffle(plates)

    def run(params):
        query = parseQuery({k: [str(v)] for k, v in params.items()})
        return searchPage(db, epoch, cache, query)

    start = time.perf_counter()
    run({"plate": "A000AA00", "distance": 1})
    print("first fuzzy search (loads the distinct plates): %.0f ms"
          % ((time.perf_counter() - start) * 1000))
    q = args.queries
    results = {
        "exact": timed(lambda i: run({"plate": plates[i], "match": "exact"}),
                       q),
        "lookalike (one look-alike misread)": timed(lambda i: run(
            {"plate": misread(plates[i], rng)}), q),
        "distance 1 (one wrong character)": timed(lambda i: run(
            {"plate": typo(plates[i], rng), "distance": 1}), q),
        "distance 2": timed(lambda i: run(
            {"plate": typo(plates[i], rng), "distance": 2}), q),
        "mask (A12*)": timed(lambda i: run(
            {"plate": plates[i][:3] + "*", "match": "mask"}), q),
        "mask (?123??77)": timed(lambda i: run(
            {"plate": "?" + plates[i][1:4] + "??" + plates[i][6:],
             "match": "mask"}), q),
        "fragment (3 characters)": timed(lambda i: run(
            {"plate": plates[i][1:4], "match": "fragment"}), q),
        "one hour, no plate": timed(lambda i: run(
            {"from": T0 + i * 3_600_000, "to": T0 + (i + 1) * 3_600_000}),
            q),
        "one day of visits": timed(lambda i: visitReport(
            db, ROLES, T0 + i % 29 * DAY_MS, T0 + (i % 29 + 1) * DAY_MS), q),
    }
    for name, values in results.items():
        print("%-36s median %7.1f ms   p95 %7.1f ms   max %7.1f ms"
              % (name, statistics.median(values), p95(values),
                 max(values)))
    week = parseQuery({"from": [str(T0)], "to": [str(T0 + 7 * DAY_MS)]})
    form = CSVFormat(";")
    rss0 = peak = rssMB()
    written = 0
    start = time.perf_counter()
    query = week.page(None, 2000)
    with open(os.devnull, "wb") as sink:
        while True:
            body, n, cursor = exportPage(store, cache, query, _rowJSON, form)
            sink.write(body)
            written += n
            peak = max(peak, rssMB())
            if cursor is None:
                break
            query = query.page(cursor)
    seconds = time.perf_counter() - start
    print("CSV export of one week: %d rows, %.0f rows/s, RSS growth %.1f MB"
          % (written, written / seconds, peak - rss0))
    store.close()
    here = os.path.join(os.path.dirname(__file__), "..")
    if args.old_code is None:
        print("record cost against the release before: skipped "
              "(give --old-code DIR)")
        return
    for frameKB in (0, 100):
        new, old = [], []
        for _ in range(args.rounds):
            old.append(recordCost(args.old_code, args.record_events, frameKB))
            new.append(recordCost(here, args.record_events, frameKB))
        print("record one event (%s): this code %.1f us, release before "
              "%.1f us (median of %d rounds): %+.1f %%"
              % ("%d KB frame" % frameKB if frameKB else "no picture",
                 statistics.median(new), statistics.median(old), args.rounds,
                 (statistics.median(new) / statistics.median(old) - 1) * 100))


def _rowJSON(entry) -> dict:
    base = "/api/events/%d/" % (entry.id,)
    return entry.toJSON(base + "screenshot.jpg", base + "plate.jpg")


if __name__ == "__main__":
    main()
