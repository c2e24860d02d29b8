"""
The access decision from memory (numberok.lists.matcher / index): the
levels exact -> look-alike -> distance -> region-less, ties, masks, scope,
and the bad input the lists refuse.  Property tests check the bounded near
search against a plain scan of every entry.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st
from rapidfuzz.distance import Levenshtein

from numberok.lists.index import ListIndex, _all
from numberok.lists.matcher import Matcher
from numberok.lists.model import Entry, ListError, PlateList, checkPlate, \
    parseEntry, parseList
from numberok.plates import fold, skeleton
from numberok.plates.alphabets import DIGIT_FOR, LATIN_TO_CYRILLIC

UTC = ZoneInfo("UTC")


def matcher(*lists: tuple[PlateList, list[str]]) -> Matcher:
    m = Matcher(UTC)
    for plateList, plates in lists:
        m.put(ListIndex(plateList, UTC, [Entry(p) for p in plates]))
    return m


def wire(decision) -> tuple:
    match = decision.match
    return (decision.access, match and match.list.name,
            match and match.plate, match and match.wire)


def test_exact_beats_lookalike_beats_fuzzy():
    m = matcher((PlateList("staff", "allow", 2), ["A123BC77", "4123BC78"]))
    assert wire(m.decide("A123BC77", 0, 0, 0)) == (
        "granted", "staff", "A123BC77", "exact")
    # 4 and A look alike.
    assert wire(m.decide("4123BC77", 0, 0, 0)) == (
        "granted", "staff", "A123BC77", "lookalike")
    assert wire(m.decide("A123XC77", 0, 0, 0)) == (
        "granted", "staff", "A123BC77", "fuzzy:1")


def test_cyrillic_read_is_an_exact_match_of_a_latin_entry():
    m = matcher((PlateList("staff"), ["A123BC77"]))
    assert wire(m.decide("\u0410123\u0412\u042177", 0, 0, 0))[3] == "exact"


def test_two_plates_tied_at_the_best_level_are_no_match_with_the_reason():
    m = matcher((PlateList("staff", "allow", 1), ["A123BC77", "A123BC78"]))
    decision = m.decide("A123BC7", 0, 0, 0)
    assert decision.access == "unknown" and decision.match is None
    assert "tie at fuzzy:1" in decision.reason
    assert "A123BC77" in decision.reason and "A123BC78" in decision.reason


def test_same_plate_in_allow_and_deny_lists_is_denied():
    m = matcher((PlateList("staff", "allow"), ["A123BC77"]),
                (PlateList("banned", "deny"), ["A123BC77"]))
    assert wire(m.decide("A123BC77", 0, 0, 0))[:2] == ("denied", "banned")


def test_info_list_match_leaves_access_unknown():
    m = matcher((PlateList("vip", "info"), ["A123BC77"]))
    assert wire(m.decide("A123BC77", 0, 0, 0))[:2] == ("unknown", "vip")


def test_distance_zero_list_takes_no_fuzzy_match():
    m = matcher((PlateList("staff", "allow", 0), ["A123BC77"]))
    assert m.decide("A123BX77", 0, 0, 0).match is None


def test_read_without_region_digits_matches_only_a_unique_entry():
    one = matcher((PlateList("staff"), ["A123BC77"]))
    assert wire(one.decide("A123BC", 0, 0, 0)) == (
        "granted", "staff", "A123BC77", "fuzzy:2")
    two = matcher((PlateList("staff"), ["A123BC77", "A123BC777"]))
    decision = two.decide("A123BC", 0, 0, 0)
    assert decision.match is None and "fits 2 entries" in decision.reason


def test_plain_entry_beats_a_mask_and_a_mask_matches_the_rest():
    m = matcher((PlateList("fleet"), ["K*99", "K555KK99"]))
    assert wire(m.decide("K555KK99", 0, 0, 0))[2] == "K555KK99"
    assert wire(m.decide("K123OP99", 0, 0, 0))[2:] == ("K*99", "exact")
    assert m.decide("K123OP77", 0, 0, 0).match is None


def test_scope_limits_a_list_to_its_channels_and_zones():
    m = matcher((PlateList("gate", "allow", 0, ("1:2",)), ["A123BC77"]),
                (PlateList("yard", "deny", 0, ("3",)), ["B777OP77"]))
    assert m.decide("A123BC77", 0, 0, 0) is None
    assert m.decide("A123BC77", 1, 2, 0).access == "granted"
    assert m.decide("B777OP77", 3, 5, 0).access == "denied"
    assert m.decide("B777OP77", 1, 2, 0).match is None


def test_entry_with_no_visits_left_stops_matching():
    m = Matcher(UTC)
    index = ListIndex(PlateList("once"), UTC, [Entry("A123BC77",
                                                     visitsLeft=0)])
    m.put(index)
    assert m.decide("A123BC77", 0, 0, 0).match is None


# -- bad input -----------------------------------------------------------------

@pytest.mark.parametrize("plate, message", [
    ("*", "at least 2"), ("*?*", "at least 2"), ("A\x00123", "control"),
    ("A123\u200bBC", "control"), ("", "missing"), ("A12#", "not a letter"),
    ("A" * 17, "longer than 16")])
def test_bad_plates_get_specific_errors(plate, message):
    with pytest.raises(ListError) as e:
        checkPlate(plate)
    assert message in e.value.errors["plate"]


def test_expiry_in_the_past_and_overlapping_windows_are_refused():
    with pytest.raises(ListError) as e:
        parseEntry({"plate": "A123BC77", "validUntil": "2020-01-01",
                    "windows": ["Mon-Fri 07:00-20:00", "Fri 19:00-22:00"]},
                   UTC, now=1.8e9)
    assert "in the past" in e.value.errors["validUntil"]
    assert "overlap" in e.value.errors["windows"]


def test_bad_list_members_are_all_reported():
    with pytest.raises(ListError) as e:
        parseList({"name": "a/b", "kind": "vip", "distance": 3,
                   "scope": ["x"], "colour": "red", "size": 1})
    assert set(e.value.errors) == {"name", "kind", "distance", "scope",
                                   "colour", "size"}
    with pytest.raises(ListError):
        parseList({"name": "match"})


# -- properties ------------------------------------------------------------------

PLATE = st.text(alphabet="ABEKMHOPCTYX0123456789", min_size=5, max_size=9)
SWAPS = {**{k: v for k, v in DIGIT_FOR.items()},
         **{v: k for k, v in DIGIT_FOR.items()}}


def lookalikeOf(plate: str, data) -> str:
    """C{plate} with some characters swapped for their look-alikes (O/0,
    B/8, Latin/Cyrillic)."""
    out = []
    for c in plate:
        choice = data.draw(st.integers(0, 2))
        if choice == 1 and c in SWAPS:
            c = SWAPS[c]
        elif choice == 2 and c in LATIN_TO_CYRILLIC:
            c = LATIN_TO_CYRILLIC[c]
        out.append(c)
    return "".join(out)


@settings(max_examples=200, deadline=None)
@given(st.lists(PLATE, min_size=1, max_size=30, unique=True), st.data())
def test_a_lookalike_read_matches_at_exact_or_lookalike_level_or_ties(
        plates, data):
    m = matcher((PlateList("l", "allow", 0), plates))
    target = data.draw(st.sampled_from(plates))
    read = lookalikeOf(target, data)
    decision = m.decide(read, 0, 0, 0)
    rivals = {p for p in plates if skeleton(p) == skeleton(read)}
    if len(rivals) == 1 or any(fold(p) == fold(read) for p in plates):
        assert decision.match is not None
        assert skeleton(decision.match.plate) == skeleton(read)
        assert decision.match.wire in ("exact", "lookalike")
    else:
        assert decision.match is None and "tie at" in decision.reason


@settings(max_examples=200, deadline=None)
@given(st.lists(PLATE, min_size=1, max_size=60, unique=True), PLATE,
       st.integers(1, 2))
def test_near_search_finds_exactly_what_a_full_scan_finds(plates, read,
                                                          distance):
    index = ListIndex(PlateList("l", "allow", distance), UTC,
                      [Entry(p) for p in plates])
    found = {(d, k[0]) for d, k in index.near(skeleton(read))}
    expected = set()
    for p in plates:
        d = Levenshtein.distance(skeleton(read), skeleton(p))
        if 0 < d <= distance:
            expected.add((d, p))
    assert found == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(PLATE, min_size=2, max_size=30, unique=True), st.data())
def test_removing_entries_leaves_the_index_as_if_never_added(plates, data):
    gone = data.draw(st.sets(st.sampled_from(plates)))
    index = ListIndex(PlateList("l", "allow", 2), UTC,
                      [Entry(p) for p in plates])
    for p in gone:
        index.remove(p)
    fresh = ListIndex(PlateList("l", "allow", 2), UTC,
                      [Entry(p) for p in plates if p not in gone])
    for table in ("exact", "skels", "regionless", "segments"):
        mine = {k: sorted(x[0] for x in _all(v))
                for k, v in getattr(index, table).items()}
        theirs = {k: sorted(x[0] for x in _all(v))
                  for k, v in getattr(fresh, table).items()}
        assert mine == theirs
    assert len(index) == len(fresh)


def test_index_entries_are_left_out_of_garbage_collection():
    import gc
    index = ListIndex(PlateList("l", "allow", 2), UTC,
                      [Entry("A%03dBC77" % n) for n in range(500)])
    gc.collect()
    assert not any(gc.is_tracked(k) for k in index.knowns())


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(
    st.sampled_from(["plate", "owner", "comment", "validFrom", "validUntil",
                     "windows", "visitsLeft", "other"]),
    st.one_of(st.text(max_size=30), st.integers(-5, 10 ** 10), st.none(),
              st.lists(st.text(max_size=20), max_size=3), st.booleans())))
def test_arbitrary_entry_objects_raise_only_list_errors(obj):
    try:
        entry = parseEntry(obj, UTC, 0.0)
    except ListError as e:
        assert e.errors and all(isinstance(m, str) for m in e.errors.values())
    else:
        assert entry.plate == checkPlate(entry.plate)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_csv_bytes_raise_only_list_errors(body):
    from numberok.lists.csvfile import parseCSV
    try:
        parseCSV(b"plate;owner;windows\n" + body, UTC, 0.0)
    except ListError as e:
        assert all(k == "body" or k == "more" or k.startswith("line ")
                   for k in e.errors)
