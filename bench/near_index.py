"""
The analytics' near-match index (L{numberok.plates.matching.TextIndex})
under issue 21's near-miss flood and under ordinary plates: memory held
(tracemalloc) after 63,000 plates one to four characters off one plate,
and microseconds per near search (distance 2) over 4,096 random plates --
the most one zone can hold (64 tracks of 64 texts).

    python bench/near_index.py
"""

from __future__ import annotations

import random
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from numberok.budgets import ByteBudget  # noqa: E402
from numberok.plates.matching import TextIndex, within  # noqa: E402

ALPHABET = "ABCEHKMOPTXY0123456789"


def nearMisses(count: int, rng: random.Random) -> list[str]:
    texts: set[str] = set()
    while len(texts) < count:
        text = list("A123BC77")
        for _ in range(rng.randint(1, 4)):
            text[rng.randrange(8)] = rng.choice(ALPHABET)
        texts.add("".join(text))
    return sorted(texts)


def main() -> None:
    print("command: python bench/near_index.py")
    rng = random.Random(1)
    flood = nearMisses(63000, rng)
    tracemalloc.start()
    index = TextIndex(ByteBudget(1 << 40))  # unbounded: the index's own size
    for n, text in enumerate(flood):
        index.add(text, n)
    index.near("A123BC77", 2)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print("63,000 near-miss plates: %.1f MB held (texts, holders and "
          "index), index estimate %.1f MB" % (held / 1e6,
                                              index.nearBytes / 1e6))
    plates = ["".join(rng.choice(ALPHABET) for _ in range(8))
              for _ in range(4096)]
    index = TextIndex()
    for n, text in enumerate(plates):
        index.add(text, n)
    queries = [text[:3] + "Z" + text[4:] for text in plates[:2000]]
    index.near(queries[0], 2)
    start = time.perf_counter()
    for query in queries:
        index.near(query, 2)
    indexed = (time.perf_counter() - start) / len(queries)
    start = time.perf_counter()
    for query in queries[:200]:
        within(query, index.holders, 2)
    scanned = (time.perf_counter() - start) / 200
    print("4,096 random plates: %.1f us per near search with the index, "
          "%.1f us by one scan (ratio %.1f)" % (indexed * 1e6, scanned * 1e6,
                                                 scanned / indexed))


if __name__ == "__main__":
    main()
