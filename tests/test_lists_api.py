"""
The lists over HTTP (numberok.lists.api) on the real server built by
L{numberok.build.buildServer}, and the decision that reaches the wire, the
journal and the MQTT payload.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted

from numberok.events import (EventState, MovementType, PlateEvent, PlateRead,
                             eventPairs)
from numberok.journal.fields import eventRow
from numberok.mqtt.payload import decodeEvent, encodeEvent
from numberok.sources.formats import ReadFormatError

from conftest import bounded, getReactor, http, waitFor

CSV = {"Content-Type": "text/csv"}


async def staffList(url: str) -> None:
    r = await http("POST", url + "/api/lists", {
        "name": "staff", "kind": "allow", "distance": 1, "scope": ["0"]})
    assert r.code == 201, r.body


@pytest_twisted.ensureDeferred
async def test_lists_are_created_changed_listed_and_deleted(adminServer):
    url = adminServer().url
    await staffList(url)
    r = await http("POST", url + "/api/lists", {"name": "staff"})
    assert r.code == 409
    r = await http("PUT", url + "/api/lists/banned", {"kind": "deny"})
    assert r.code == 201
    assert r.json() == {"name": "banned", "kind": "deny", "distance": 0,
                        "scope": [], "colour": "#c62828", "entries": 0,
                        "origin": "local"}
    r = await http("PUT", url + "/api/lists/banned", {"kind": "deny",
                                                       "colour": "#123456"})
    assert r.code == 200 and r.json()["colour"] == "#123456"
    r = await http("GET", url + "/api/lists")
    assert [l["name"] for l in r.json()["lists"]] == ["banned", "staff"]
    r = await http("DELETE", url + "/api/lists/banned")
    assert r.code == 204
    r = await http("GET", url + "/api/lists/banned")
    assert r.code == 404 and "no list named" in r.json()["errors"]["name"]


@pytest_twisted.ensureDeferred
async def test_bad_list_and_entry_input_gets_specific_errors(adminServer):
    url = adminServer().url
    r = await http("POST", url + "/api/lists", {"name": "x", "distance": 9})
    assert r.code == 400 and "0..2" in r.json()["errors"]["distance"]
    await staffList(url)
    r = await http("POST", url + "/api/lists/staff/entries", [
        {"plate": "A123BC77"}, {"plate": "*"},
        {"plate": "B1", "validUntil": "2001-02-03"},
        {"plate": "C1", "windows": ["Mon 08:00-12:00", "Mon 11:00-13:00"]}])
    errors = r.json()["errors"]
    assert r.code == 400
    assert "at least 2" in errors["[1].plate"]
    assert "in the past" in errors["[2].validUntil"]
    assert "overlap" in errors["[3].windows"]
    r = await http("GET", url + "/api/lists/staff/entries")
    assert r.json() == {"total": 0, "entries": []}   # nothing half-stored
    r = await http("PUT", url + "/api/lists/staff/entries", b"x",
                   {"Content-Type": "text/plain"})
    assert r.code == 415


@pytest_twisted.ensureDeferred
async def test_entries_upsert_search_delete_csv_and_preview(adminServer):
    url = adminServer().url
    await staffList(url)
    r = await http("POST", url + "/api/lists/staff/entries", {
        "plate": "a123bc77", "owner": "Ivanov",
        "windows": ["Mon-Sun 00:00-24:00"], "visitsLeft": 3})
    assert r.code == 200 and r.json() == {"upserted": 1}
    r = await http("POST", url + "/api/lists/staff/entries",
                   [{"plate": "A123BC77", "owner": "Petrov"},
                    {"plate": "B777OP199"}])
    r = await http("GET", url + "/api/lists/staff/entries?q=petr")
    assert [e["plate"] for e in r.json()["entries"]] == ["A123BC77"]
    assert r.json()["entries"][0]["visitsLeft"] is None   # replaced whole
    r = await http("GET", url + "/api/lists/match?plate=A123BC7")
    body = r.json()
    assert body["decision"]["ListMatch"] == "fuzzy:1"
    assert body["decision"]["Access"] == "granted"
    assert body["matches"][0]["plate"] == "A123BC77"
    r = await http("GET", url + "/api/lists/match?plate=A123BX7&distance=2")
    assert [m["match"] for m in r.json()["matches"]] == ["fuzzy:2"]
    r = await http("DELETE", url + "/api/lists/staff/entries/B777OP199")
    assert r.code == 204
    r = await http("DELETE", url + "/api/lists/staff/entries/B777OP199")
    assert r.code == 404
    r = await http("GET", url + "/api/lists/staff/entries.csv")
    assert r.header("Content-Type").startswith("text/csv")
    exported = r.body
    r = await http("PUT", url + "/api/lists/staff/entries",
                   b"plate;owner\nX1Y2Z3;a\nbad\n", CSV)
    assert r.code == 400 and "line 3" in r.json()["errors"]
    r = await http("GET", url + "/api/lists/staff/entries.csv")
    assert r.body == exported                           # unchanged
    big = "plate;owner\n" + "".join("A%05dBC;o%d\n" % (i, i)
                                    for i in range(5000))
    r = await http("PUT", url + "/api/lists/staff/entries",
                   big.encode("utf-8"), CSV)
    assert r.json() == {"entries": 5000}
    r = await http("GET", url + "/api/lists/staff")
    assert r.json()["entries"] == 5000


@pytest_twisted.ensureDeferred
async def test_passage_decision_reaches_wire_journal_and_recent_events(
        server, tmp_path):
    s = server(journalPath=tmp_path / "journal")
    await bounded(s.lists.ready)
    from numberok.lists import Entry, PlateList
    await s.lists.putList(PlateList("banned", "deny", 1))
    await s.lists.upsert("banned", [Entry("X555XX55")])
    s.analytics.addRead(PlateRead("X555XX5", int(getReactor().seconds()
                                                 * 1000), perVehicle=True))
    s.analytics.closeAll()
    await waitFor(lambda: s.journal.isOpen and len(s.recent.recent()) == 2)
    await bounded(s.journal.whenIdle())
    page = await bounded(s.journal.since(0, 10))
    [entry] = page.entries
    data = entry.toJSON()
    assert (data["ListName"], data["ListKind"], data["ListPlate"],
            data["ListMatch"], data["Access"]) == (
        "banned", "deny", "X555XX55", "fuzzy:1", "denied")
    assert entry.toEvent().access == "denied"
    assert all(r.event.access == "denied" for r in s.recent.recent())


def decided(**changes) -> PlateEvent:
    fields = dict(state=EventState.LOST, runtimeId=7, channel=0, zone=1,
                  plate="A123BC77", rawPlate="A123BC77", frameTimeMs=5,
                  movement=MovementType.IN, listName="staff",
                  listKind="allow", listPlate="A123BC77",
                  listMatch="lookalike", access="granted")
    fields.update(changes)
    return PlateEvent(**fields)


def test_wire_keys_of_the_decision_come_last_and_only_when_known():
    pairs = eventPairs(decided(), 1)
    assert pairs[-5:] == [("ListName", "staff"), ("ListKind", "allow"),
                          ("ListPlate", "A123BC77"),
                          ("ListMatch", "lookalike"), ("Access", "granted")]
    bare = eventPairs(decided(listName=None, listKind=None, listPlate=None,
                              listMatch=None), 1)
    assert bare[-1] == ("Access", "granted")
    assert not any(k.startswith("List") for k, _ in bare)
    none = eventPairs(decided(listName=None, access=None), 1)
    assert none[-1][0] == "ReadCount"


def test_journal_row_keeps_the_decision_columns():
    row = eventRow(decided())
    assert row[-5:] == ("staff", "allow", "A123BC77", "lookalike", "granted")


def test_mqtt_payload_carries_the_decision_and_the_collector_keeps_it():
    payload = encodeEvent(decided(), 3, 12)
    assert json.loads(payload)["ListMatch"] == "lookalike"
    collected = decodeEvent("numberok/3/events/0/1", payload)
    assert (collected.event.listName, collected.event.access) == (
        "staff", "granted")
    bad = json.loads(payload)
    bad["Access"] = 5
    with pytest.raises(ReadFormatError) as e:
        decodeEvent("numberok/3/events/0/1", json.dumps(bad).encode())
    assert "Access" in str(e.value)


@pytest_twisted.ensureDeferred
async def test_lists_page_is_served_with_its_script_and_csrf_token(
        adminServer):
    url = adminServer().url
    r = await http("GET", url + "/lists")
    assert r.code == 200
    assert b'<meta name="csrf-token" content="' in r.body
    assert b'src="/static/lists.js"' in r.body
    r = await http("GET", url + "/static/lists.js")
    assert r.code == 200 and b"textContent" in r.body


def test_last_events_row_shows_a_badge_by_access_and_an_add_link():
    from twisted.web.template import flattenString
    from numberok.web.page import _listBadge

    def html(row) -> str:
        out = []
        flattenString(None, _listBadge(row)).addCallback(out.append)
        return out[0].decode()
    denied = html({"plate": "X555XX5", "Access": "denied",
                   "ListName": "banned", "ListKind": "deny",
                   "ListPlate": "X555XX55", "ListMatch": "fuzzy:1"})
    assert 'class="badge access denied"' in denied
    assert 'title="deny entry X555XX55 (fuzzy:1), access denied"' in denied
    assert 'href="/lists?plate=X555XX5"' in denied
    odd = html({"plate": "A1", "Access": "<b>", "ListName": None})
    assert 'class="badge access unknown"' in odd and "<b>" not in odd
    bare = html({"plate": "A1"})
    assert "badge" not in bare and "add-to-list" in bare
