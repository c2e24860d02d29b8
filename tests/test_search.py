"""
Journal search: every match kind against a brute-force reference over
generated journals, keyset paging while rows arrive, the 400 errors, and
the migration of a journal made by the release before search
(tests/samples/journal-v1.sqlite, written by that code).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import sqlite3
import tempfile

import pytest
from hypothesis import given, settings, strategies as st
from rapidfuzz.distance import Levenshtein

from numberok.events import EventState, MovementType, PlateEvent
from numberok.journal import JournalStore
from numberok.journal.fields import eventRow
from numberok.journal.query import SearchError, parseQuery
from numberok.journal.schema import CURRENT_VERSION, schemaVersion
from numberok.journal.search import SkeletonCache, searchPage
from numberok.plates import fold, skeleton

SAMPLES = os.path.join(os.path.dirname(__file__), "samples")
T0 = 1_764_000_000_000


def event(plate: str, i: int, channel: int = 0, zone: int = 0,
          movement: MovementType = MovementType.IN,
          raw: str | None = None) -> PlateEvent:
    return PlateEvent(state=EventState.LOST, runtimeId=i, channel=channel,
                      zone=zone, plate=plate, rawPlate=raw or plate,
                      frameTimeMs=T0 + i * 1000, movement=movement)


def record(store: JournalStore, e: PlateEvent):
    return store.record(eventRow(e), e.frameTimeMs + 10, None, None)


def search(store: JournalStore, cache=None, **params):
    query = parseQuery({k: [str(v)] for k, v in params.items()})
    return searchPage(store.db, store.epoch, cache or SkeletonCache(), query)


def allPages(store: JournalStore, **params) -> list[int]:
    cache, ids, cursor = SkeletonCache(), [], None
    while True:
        extra = {"cursor": cursor} if cursor else {}
        page = search(store, cache, **params, **extra)
        ids += [e.id for e in page.entries]
        cursor = page.cursor
        if cursor is None:
            return ids


@pytest.fixture
def store(tmp_path):
    s = JournalStore(str(tmp_path / "j"))
    yield s
    s.close()


# -- against a brute-force reference --------------------------------------

# Few letters, many look-alikes (O/0, B/8, Cyrillic А/В), so that generated
# journals hold near and look-alike plates.
_CHARS = "AB0O8\u0410\u0412C1"
plates = st.text(alphabet=_CHARS, min_size=1, max_size=6)


def reference(entries, match: str, plate: str, distance: int = 0):
    """The ids a search must find, newest first, by brute force."""
    def hit(e) -> bool:
        if match == "exact":
            return fold(e.plate) == fold(plate)
        if match == "lookalike":
            return skeleton(e.plate) == skeleton(plate)
        if match == "fuzzy":
            return Levenshtein.distance(skeleton(e.plate),
                                        skeleton(plate)) <= distance
        pattern = plate if match == "mask" else "*" + plate + "*"
        return fnmatch.fnmatchcase(skeleton(e.plate), "".join(
            c if c in "*?" else skeleton(c) for c in pattern))
    return sorted((e.id for e in entries if hit(e)), reverse=True)


@settings(max_examples=40, deadline=None)
@given(journal=st.lists(plates, min_size=1, max_size=40), query=plates,
       distance=st.integers(0, 2), limit=st.integers(1, 7))
def test_every_match_kind_finds_what_brute_force_finds(journal, query,
                                                        distance, limit):
    folder = tempfile.mkdtemp()
    try:
        s = JournalStore(folder)
        entries = [record(s, event(p, i)) for i, p in enumerate(journal)]
        cases = [("exact", {}), ("lookalike", {}),
                 ("fuzzy", {"distance": distance}), ("fragment", {})]
        if query.strip("*?"):
            cases.append(("mask", {}))
            masked = query[:1] + "*" + query[2:] if len(query) > 1 else query
            cases.append(("mask", {"plate": masked.replace("A", "?")}))
        for match, extra in cases:
            params = {"plate": query, "match": match, "limit": limit}
            params.update(extra)
            if not params["plate"].strip("*?"):
                continue
            want = reference(entries, match, params["plate"],
                             params.get("distance", 0))
            assert allPages(s, **params) == want, (match, params)
            assert search(s, **params).total == len(want)
        s.close()
    finally:
        shutil.rmtree(folder)


def test_lookalike_finds_a_misread_in_either_script(store):
    misread = record(store, event("A123BC77", 1))
    cyrillic = record(store, event("\u0410123\u0412\u042177", 2))
    other = record(store, event("A123BC78", 3))
    ids = [e.id for e in search(store, plate="a 123 8c 77").entries]
    assert ids == [cyrillic.id, misread.id]
    assert other.id not in ids
    exact = search(store, plate="A123BC77", match="exact").entries
    assert [e.id for e in exact] == [cyrillic.id, misread.id]
    assert [e.id for e in search(store, plate="A123BC77",
                                 distance=1).entries] == [3, 2, 1]


def test_filters_and_camera_time_range_narrow_the_search(store):
    for i in range(10):
        record(store, event("A123BC77", i, channel=i % 2, zone=i % 3,
                            movement=MovementType.IN if i < 5
                            else MovementType.OUT))
    page = search(store, plate="A123BC77", channel=1, movement="Out")
    assert [e.runtimeId for e in page.entries] == [9, 7, 5]
    page = search(store, **{"from": T0 + 2000, "to": T0 + 4000})
    assert [e.runtimeId for e in page.entries] == [4, 3, 2]
    iso = search(store, **{"from": "2025-11-24T16:00:02+00:00",
                           "to": "2025-11-24T16:00:04Z"})
    assert [e.runtimeId for e in iso.entries] == [4, 3, 2]
    assert search(store, zone=2).total == 3


def test_cursor_paging_is_stable_while_new_events_arrive(store):
    first = [record(store, event("A123BC77", i)).id for i in range(25)]
    seen, cursor = [], None
    while True:
        extra = {"cursor": cursor} if cursor else {}
        page = search(store, plate="A123BC77", limit=4, **extra)
        seen += [e.id for e in page.entries]
        # New matching rows arrive between every two pages.
        for k in range(3):
            record(store, event("A123BC77", 100 + len(seen) * 3 + k))
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == sorted(first, reverse=True)


def test_cursor_of_another_epoch_is_refused(tmp_path, store):
    record(store, event("A123BC77", 1))
    record(store, event("A123BC77", 2))
    cursor = search(store, limit=1).cursor
    other = JournalStore(str(tmp_path / "other"))
    with pytest.raises(SearchError) as e:
        search(other, cursor=cursor)
    other.close()
    assert e.value.args[0] == "cursor"
    assert "another journal epoch" in e.value.args[1]


@pytest.mark.parametrize("params, param, words", [
    ({"from": "yesterday"}, "from", "not a time"),
    ({"from": "2026-12-03T10:00:00"}, "from", "no UTC offset"),
    ({"from": "2026-12-03T10:05:00Z", "to": "2026-12-03T10:00:00Z"}, "to",
     "wrong way round"),
    ({"plate": "*", "match": "mask"}, "plate", "every plate"),
    ({"plate": "*?*", "match": "mask"}, "plate", "every plate"),
    ({"plate": "A1*", "match": "exact"}, "plate", "wildcards"),
    ({"plate": "--"}, "plate", "no letters"),
    ({"distance": "5"}, "distance", "0..2"),
    ({"distance": "1", "match": "mask"}, "distance", "fuzzy only"),
    ({"limit": "1000000"}, "limit", "1..1000"),
    ({"limit": "0"}, "limit", "1..1000"),
    ({"match": "soundex"}, "match", "one of"),
    ({"channel": "-1"}, "channel", "whole number"),
    ({"zone": "4"}, "zone", "0..3"),
    ({"movement": "Sideways"}, "movement", "one of"),
    ({"cursor": "abc"}, "cursor", "not a cursor"),
])
def test_bad_parameter_is_refused_naming_it(params, param, words):
    with pytest.raises(SearchError) as e:
        parseQuery({k: [v] for k, v in params.items()})
    assert e.value.args[0] == param
    assert words in e.value.args[1]


# -- migration --------------------------------------------------------------

def test_journal_of_the_release_before_search_opens_in_place(tmp_path):
    folder = tmp_path / "j"
    folder.mkdir()
    shutil.copy(os.path.join(SAMPLES, "journal-v1.sqlite"),
                folder / "events.sqlite")
    old = sqlite3.connect(str(folder / "events.sqlite"))
    before = old.execute("SELECT id, plate, raw_plate FROM events "
                         "ORDER BY id").fetchall()
    epoch = old.execute("SELECT value FROM meta WHERE key = 'epoch'"
                        ).fetchone()[0]
    old.close()
    s = JournalStore(str(folder))
    try:
        assert s.epoch == epoch
        assert schemaVersion(s.db) == CURRENT_VERSION
        rows = s.db.execute("SELECT id, plate, raw_plate, plate_skeleton "
                            "FROM events ORDER BY id").fetchall()
        assert [r[:3] for r in rows] == before
        assert all(r[3] == skeleton(r[1]) for r in rows)
        # The old rows are found through the new index, new rows too.
        new = record(s, event("A123BC77", 9))
        ids = [e.id for e in search(s, plate="A123BC77").entries]
        assert ids == [new.id, 2, 1]
        assert search(s, plate="A123BC77", distance=1).total == 4
        indexes = {r[0] for r in s.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"events_skeleton", "events_frame_time"} <= indexes
    finally:
        s.close()
    again = JournalStore(str(folder))
    assert schemaVersion(again.db) == CURRENT_VERSION
    assert again.count() == len(before) + 1
    again.close()


def test_retention_keeps_the_search_index_consistent(store):
    for i in range(6):
        record(store, event("A123BC77" if i % 2 else "E777KX199", i))
    store.db.execute("UPDATE events SET recorded_ms = 0 WHERE id <= 3")
    assert store.prune(1, 10 ** 12) == 3
    assert [e.id for e in search(store, plate="A123BC77").entries] == [6, 4]
    assert search(store, plate="E777KX199", distance=1).total == 1
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
