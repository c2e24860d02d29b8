"""
Unknown query parameters on the JSON API are a 400 naming them (issue 21,
"what a new user tripped over" 8): C{GET /api/events?plate=ZZZ} used to
answer every row as if the filter had been applied.
"""

from __future__ import annotations

import pytest_twisted

from conftest import http


@pytest_twisted.ensureDeferred
async def test_an_unknown_parameter_of_the_events_api_is_named(
        adminServer, tmp_path):
    stack = adminServer(journalPath=tmp_path / "journal")
    r = await http("GET", stack.url + "/api/events?plate=ZZZ")
    assert r.code == 400
    message = r.json()["errors"]["plate"]
    assert "unknown query parameter" in message
    assert "since_id" in message and "limit" in message


@pytest_twisted.ensureDeferred
async def test_the_events_api_still_takes_its_own_parameters(
        adminServer, tmp_path):
    stack = adminServer(journalPath=tmp_path / "journal")
    r = await http("GET", stack.url + "/api/events?since_id=0&limit=5")
    assert r.code == 200 and r.json()["events"] == []


@pytest_twisted.ensureDeferred
async def test_every_unknown_parameter_of_an_endpoint_is_named(adminServer):
    stack = adminServer()
    r = await http("GET", stack.url + "/api/settings?verbose=1&x=")
    assert r.code == 400
    assert set(r.json()["errors"]) == {"verbose", "x"}
    assert "takes none" in r.json()["errors"]["x"]
    r = await http("GET", stack.url + "/api/connections?all=1")
    assert r.code == 400 and set(r.json()["errors"]) == {"all"}


@pytest_twisted.ensureDeferred
async def test_the_page_is_not_refused_for_a_parameter(adminServer):
    stack = adminServer()
    r = await http("GET", stack.url + "/?utm_source=mail")
    assert r.code == 200


@pytest_twisted.ensureDeferred
async def test_a_cyrillic_plate_in_the_query_is_searched_not_a_500(
        adminServer, tmp_path):
    stack = adminServer(journalPath=tmp_path / "journal")
    r = await http("GET", stack.url + "/api/events/search?plate="
                   "%D0%90123%D0%92%D0%A177&match=lookalike")
    assert r.code == 200 and r.json()["events"] == []
    r = await http("GET", stack.url + "/api/events/search?%D0%AF=1")
    assert r.code == 400 and set(r.json()["errors"]) == {"\u042f"}
