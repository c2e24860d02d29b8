"""
The search API and the exports over real HTTP on loopback, with the real
journal and its thread: the answer's shape, the 400 error shape, CSV that
survives separators, quotes and line breaks in fields (and opens in Excel:
BOM, C{;}), JSON lines, and an export larger than one page.
"""

from __future__ import annotations

import csv
import io
import json

import pytest_twisted

from numberok.events import EventState, MovementType, PlateEvent
from numberok.journal.export import EXPORT_COLUMNS, PAGE_ROWS

T0 = 1_764_000_000_000


def lost(i: int, plate: str = "A123BC77", raw: str | None = None,
         **kwargs) -> PlateEvent:
    return PlateEvent(state=EventState.LOST, runtimeId=i, channel=0, zone=0,
                      plate=plate, rawPlate=raw or plate,
                      frameTimeMs=T0 + i * 1000, **kwargs)


@pytest_twisted.inlineCallbacks
def test_search_answers_events_total_and_a_cursor_to_the_next_page(
        journalSite):
    journal, get = journalSite
    for i in range(5):
        journal.publish(lost(i, "A123BC77" if i != 2 else "E777KX199"))
    yield journal.whenIdle()
    code, _, body = yield get("/api/events/search?plate=a123bc77&limit=3")
    doc = json.loads(body)
    assert code == 200
    assert doc["total"] == 4
    assert [e["runtime_id"] for e in doc["events"]] == [4, 3, 1]
    assert set(doc["events"][0]) >= {"id", "plate", "frame_time_ms",
                                      "screenshot", "plate_picture"}
    assert "plate_skeleton" not in doc["events"][0]
    code, _, body = yield get("/api/events/search?plate=a123bc77&limit=3"
                              "&cursor=" + doc["cursor"])
    doc = json.loads(body)
    assert [e["runtime_id"] for e in doc["events"]] == [0]
    assert doc["cursor"] is None and doc["total"] == 4


@pytest_twisted.inlineCallbacks
def test_search_filters_by_the_list_decision(journalSite):
    journal, get = journalSite
    journal.publish(lost(1, "A123BC77", listName="staff", listKind="allow",
                         listPlate="A123BC77", listMatch="exact",
                         access="granted"))
    journal.publish(lost(2, "E777KX199", access="unknown"))
    journal.publish(lost(3, "K001OO50", listName="banned", listKind="deny",
                         listPlate="K001OO50", listMatch="fuzzy:1",
                         access="denied"))
    yield journal.whenIdle()
    code, _, body = yield get("/api/events/search?access=denied")
    doc = json.loads(body)
    assert code == 200 and [e["plate"] for e in doc["events"]] == [
        "K001OO50"]
    assert doc["events"][0]["ListMatch"] == "fuzzy:1"
    code, _, body = yield get("/api/events/search?list=staff")
    assert [e["plate"] for e in json.loads(body)["events"]] == ["A123BC77"]
    code, _, body = yield get("/api/events/search?access=maybe")
    assert code == 400 and "access" in json.loads(body)["errors"]


@pytest_twisted.inlineCallbacks
def test_bad_search_answers_400_naming_the_parameter_and_is_counted(
        journalSite):
    journal, get = journalSite
    code, _, body = yield get("/api/events/search?distance=5")
    assert code == 400
    assert json.loads(body) == {"errors": {"distance": "must be 0..2, not 5"}}
    code, _, body = yield get("/api/events/search?cursor=" + "0" * 32 + ".9")
    assert code == 400 and "epoch" in json.loads(body)["errors"]["cursor"]
    code, _, body = yield get("/api/events/export.csv?sep=|")
    assert code == 400 and "sep" in json.loads(body)["errors"]
    assert journal.metrics.value("numberok_search_refused_total",
                                 param="distance") == 1
    assert journal.metrics.value("numberok_search_refused_total",
                                 param="cursor") == 1


NASTY = ['semi;colon', 'quo"te', 'line\nbreak', 'comma,here',
         '=HYPERLINK("x")', "plain"]


@pytest_twisted.inlineCallbacks
def test_csv_export_keeps_separators_quotes_and_line_breaks_in_fields(
        journalSite):
    journal, get = journalSite
    for i, raw in enumerate(NASTY):
        journal.publish(lost(i, raw=raw))
    yield journal.whenIdle()
    for sep, param in ((",", ""), (";", "&sep=;")):
        code, headers, body = yield get(
            "/api/events/export.csv?plate=A123BC77" + param)
        assert code == 200, body
        assert headers.getRawHeaders(b"content-type") == [
            b"text/csv; charset=utf-8"]
        assert body.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(body[3:].decode("utf-8"),
                                           newline=""), delimiter=sep))
        assert rows[0] == list(EXPORT_COLUMNS)
        raws = [r[EXPORT_COLUMNS.index("raw_plate")] for r in rows[1:]]
        want = [("'" + r if r.startswith("=") else r) for r in NASTY]
        assert raws == list(reversed(want))


@pytest_twisted.inlineCallbacks
def test_exports_stream_every_match_across_many_pages(journalSite):
    journal, get = journalSite
    count = PAGE_ROWS * 2 + 7
    for i in range(count):
        journal.publish(lost(i, "A123BC77" if i % 3 else "E777KX199",
                             movement=MovementType.IN))
    yield journal.whenIdle()
    code, _, body = yield get("/api/events/export.jsonl?plate=A123BC77")
    lines = body.decode("utf-8").splitlines()
    assert code == 200
    want = [i for i in reversed(range(count)) if i % 3]
    assert [json.loads(line)["runtime_id"] for line in lines] == want
    code, _, body = yield get("/api/events/export.csv?limit=10")
    assert len(body.decode("utf-8-sig").splitlines()) == 11
    assert journal.metrics.value("numberok_export_rows_total") == \
        len(want) + 10
