"""
The access log searched and exported over HTTP on loopback
(L{numberok.lists.accesslog}) on the real server, with the lists' real
database and thread: the journal search's filters, look-alike plates,
paging, the CSV and JSON lines exports, the 400 error shape; and an access
log of an older database made searchable in place.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest_twisted

from numberok.journal.export import PAGE_ROWS
from numberok.lists.store import ACCESS_COLUMNS, ListsStore
from numberok.plates.matching import skeleton as skeletonOf

from conftest import bounded, http

T0 = 1_764_000_000_000


def row(i: int, plate: str, decision: str = "unknown", listName=None,
        channel: int = 0, zone: int = 0, action: str = "decision",
        result=None, reason: str = "") -> tuple:
    """An access log row as the decider and the gates write it
    (L{ACCESS_COLUMNS} without C{id})."""
    return (T0 + i * 60_000, channel, zone, i, plate, listName,
            plate if listName else None, "exact" if listName else None,
            decision, action, result, None if result is None else 12.5,
            reason)


ROWS = [
    row(0, "A123BC77", "granted", "staff"),
    row(1, "E777KX199", "unknown"),
    row(2, "K001OO50", "denied", "banned", channel=1, zone=2),
    row(3, "A123BC77", "granted", "staff", action="open", result="ok"),
    row(4, "А123ВС77", "granted", "staff"),        # Cyrillic
    row(5, "4I23BC77", "denied", "banned", channel=1),  # a misread
]


async def loggedServer(adminServer, rows=ROWS):
    s = adminServer()
    await bounded(s.lists.ready)
    await bounded(s.lists.readAccessLog(ListsStore.logAccess, rows))
    return s


async def get(s, query: str, path: str = "/api/access-log"):
    return await http("GET", s.url + path + query)


def plates(r) -> list[str]:
    assert r.code == 200, r.body
    return [x["plate"] for x in r.json()["rows"]]


@pytest_twisted.ensureDeferred
async def test_access_log_filters_by_time_decision_list_channel_and_zone(
        adminServer):
    s = await loggedServer(adminServer)
    r = await get(s, "")
    assert plates(r) == [x[4] for x in reversed(ROWS)]
    assert r.json()["total"] == 6 and r.json()["cursor"] is None
    assert set(r.json()["rows"][0]) == set(ACCESS_COLUMNS)
    assert plates(await get(s, "?decision=denied")) == ["4I23BC77",
                                                        "K001OO50"]
    assert plates(await get(s, "?access=denied&channel=1&zone=2")) == [
        "K001OO50"]
    assert plates(await get(s, "?list=staff&from=%d&to=%d"
                            % (T0 + 60_000, T0 + 3 * 60_000))) == [
        "A123BC77"]
    # ISO 8601 with an offset, as the journal search takes it: T0 + 4 min
    # is 2025-11-24T16:04:00Z.
    assert plates(await get(s, "?from=2025-11-24T19:04:00%2B03:00")) == [
        "4I23BC77", "А123ВС77"]


@pytest_twisted.ensureDeferred
async def test_access_log_finds_a_plate_by_look_alike_and_exact_text(
        adminServer):
    s = await loggedServer(adminServer)
    # The look-alike skeleton folds case, Cyrillic and 4/A, 1/I.
    assert plates(await get(s, "?plate=a123bc77")) == [
        "4I23BC77", "А123ВС77", "A123BC77", "A123BC77"]
    assert plates(await get(s, "?plate=A123BC77&match=exact")) == [
        "А123ВС77", "A123BC77", "A123BC77"]
    assert plates(await get(s, "?plate=K0*&match=mask")) == ["K001OO50"]
    assert plates(await get(s, "?plate=E777KX198&distance=1")) == [
        "E777KX199"]


@pytest_twisted.ensureDeferred
async def test_access_log_pages_by_cursor_and_by_before_id(adminServer):
    s = await loggedServer(adminServer)
    first = (await get(s, "?limit=4")).json()
    assert len(first["rows"]) == 4 and first["total"] == 6
    rest = (await get(s, "?limit=4&cursor=" + first["cursor"])).json()
    assert [x["id"] for x in first["rows"] + rest["rows"]] == [
        6, 5, 4, 3, 2, 1]
    assert rest["cursor"] is None and rest["next_before_id"] is None
    old = (await get(s, "?limit=4&before_id=%d"
                     % (first["next_before_id"],))).json()
    assert old["rows"] == rest["rows"]


@pytest_twisted.ensureDeferred
async def test_access_log_exports_csv_with_escaping_and_json_lines(
        adminServer):
    tricky = 'relay said "no"; retry\nthen =1+1'
    s = await loggedServer(adminServer, ROWS + [
        row(6, "X555XX55", "denied", "banned;old", action="open",
            result="=HYPERLINK(1)", reason=tricky)])
    r = await get(s, "?sep=;&access=denied", "/api/access-log/export.csv")
    assert r.code == 200
    assert r.header("Content-Type") == "text/csv; charset=utf-8"
    assert "access-log.csv" in r.header("Content-Disposition")
    assert r.body.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(r.body[3:].decode("utf-8"),
                                        newline=""), delimiter=";"))
    assert table[0] == list(ACCESS_COLUMNS)
    assert [t[ACCESS_COLUMNS.index("plate")] for t in table[1:]] == [
        "X555XX55", "4I23BC77", "K001OO50"]
    made = dict(zip(ACCESS_COLUMNS, table[1]))
    assert made["list"] == "banned;old" and made["reason"] == tricky
    assert made["result"] == "'=HYPERLINK(1)"        # inert in Excel
    r = await get(s, "?plate=a123bc77&limit=2",
                  "/api/access-log/export.jsonl")
    lines = [json.loads(x) for x in r.body.decode("utf-8").splitlines()]
    assert [x["plate"] for x in lines] == ["4I23BC77", "А123ВС77"]
    assert set(lines[0]) == set(ACCESS_COLUMNS)


@pytest_twisted.ensureDeferred
async def test_bad_access_log_parameters_answer_400_naming_them(
        adminServer):
    s = await loggedServer(adminServer)
    for query, param in [("?decision=maybe", "decision"),
                         ("?access=maybe", "access"),
                         ("?from=yesterday", "from"),
                         ("?from=2026-12-03T10:00:00", "from"),
                         ("?distance=3", "distance"),
                         ("?limit=0", "limit"),
                         ("?cursor=" + "0" * 32 + ".9", "cursor"),
                         ("?before_id=x", "before_id"),
                         ("?movement=in", "movement"),
                         ("?colour=red", "colour")]:
        r = await get(s, query)
        assert r.code == 400, query
        assert list(r.json()["errors"]) == [param], (query, r.json())
    r = await get(s, "?sep=|", "/api/access-log/export.csv")
    assert r.code == 400 and list(r.json()["errors"]) == ["sep"]
    r = await get(s, "?sep=;", "/api/access-log/export.jsonl")
    assert r.code == 400 and list(r.json()["errors"]) == ["sep"]
    metrics = (await http("GET", s.url + "/metrics")).body.decode()
    assert 'numberok_search_refused_total{param="decision"} 1.0' in metrics


def test_an_older_access_log_is_made_searchable_in_place(tmp_path):
    db = sqlite3.connect(str(tmp_path / "lists.sqlite"))
    db.execute(
        "CREATE TABLE access_log (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "time_ms INTEGER NOT NULL, channel INTEGER, zone INTEGER, "
        "runtime_id INTEGER, plate TEXT, list TEXT, entry TEXT, match TEXT, "
        "decision TEXT, action TEXT, result TEXT, latency_ms REAL, "
        "reason TEXT)")
    db.execute("INSERT INTO access_log (time_ms, plate) VALUES (1, "
               "'a123bc77')")
    db.commit()
    db.close()
    store = ListsStore(str(tmp_path))
    epoch = store.epoch
    [(skeleton,)] = store.db.execute("SELECT plate_skeleton FROM access_log")
    assert skeleton == skeletonOf("A123BC77")
    store.close()
    assert ListsStore(str(tmp_path)).epoch == epoch


@pytest_twisted.ensureDeferred
async def test_access_log_export_streams_more_rows_than_a_page(
        adminServer):
    count = PAGE_ROWS + 300
    s = await loggedServer(adminServer, [row(i, "B%04dOP77" % (i,))
                                         for i in range(count)])
    r = await get(s, "", "/api/access-log/export.jsonl")
    ids = [json.loads(x)["id"] for x in r.body.decode().splitlines()]
    assert ids == list(range(count, 0, -1))
    r = await get(s, "?limit=%d" % (PAGE_ROWS + 1,),
                  "/api/access-log/export.csv")
    assert len(r.body.splitlines()) == PAGE_ROWS + 2    # and the header
