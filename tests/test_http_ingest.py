"""
C{POST /api/reads}: both body shapes (JSON; multipart with a JSON part and a
JPEG part) are accepted with 202, bad ones get 400 with a JSON error naming
the field; and the body parser, fed anything, raises only ReadFormatError.
"""

from __future__ import annotations

import base64
import json

import pytest_twisted
from hypothesis import given, strategies as st

from numberok.sources.formats import ReadFormatError
from numberok.web.ingest import parseBody
from conftest import ADMIN_PASSWORD, http
from helpers import HTTP_READ, jpegBytes

BOUNDARY = "numberokTestBoundary7MA4YWxk"


def multipart(parts) -> tuple[bytes, str]:
    """C{parts}: (name, filename or None, content type, bytes)."""
    out = b""
    for name, filename, kind, data in parts:
        disposition = 'form-data; name="%s"' % (name,)
        if filename:
            disposition += '; filename="%s"' % (filename,)
        out += ("--%s\r\nContent-Disposition: %s\r\nContent-Type: %s\r\n\r\n"
                % (BOUNDARY, disposition, kind)).encode() + data + b"\r\n"
    out += ("--%s--\r\n" % (BOUNDARY,)).encode()
    return out, "multipart/form-data; boundary=" + BOUNDARY


READ = HTTP_READ


@pytest_twisted.ensureDeferred
async def test_json_read_is_accepted_with_202_and_reaches_the_sink(adminServer):
    stack = adminServer()
    r = await http("POST", stack.url + "/api/reads", READ)
    assert r.code == 202
    assert r.json() == {"accepted": 1}
    [read] = stack.reads()
    assert (read.plate, read.channel, read.zone, read.bbox, read.source) == (
        "A123BC77", 2, 1, (10, 20, 100, 30), "http")


@pytest_twisted.ensureDeferred
async def test_json_read_with_inline_jpeg_keeps_the_image(adminServer):
    stack = adminServer()
    jpeg = jpegBytes(size=(64, 48))
    r = await http("POST", stack.url + "/api/reads",
                   dict(READ, jpeg_b64=base64.b64encode(jpeg).decode()))
    assert r.code == 202 and stack.reads()[0].jpeg == jpeg


@pytest_twisted.ensureDeferred
async def test_multipart_json_part_and_jpeg_part_make_one_read_with_image(
        adminServer):
    stack = adminServer()
    jpeg = jpegBytes(size=(64, 48))
    body, kind = multipart([
        ("read", None, "application/json", json.dumps(READ).encode()),
        ("jpeg", "frame.jpg", "image/jpeg", jpeg)])
    r = await http("POST", stack.url + "/api/reads", body,
                   {"Content-Type": kind})
    assert r.code == 202, r.body
    [read] = stack.reads()
    assert read.plate == "A123BC77" and read.jpeg == jpeg


@pytest_twisted.ensureDeferred
async def test_openalpr_result_posted_as_json_gives_a_read_per_plate(adminServer):
    stack = adminServer()
    result = {
        "epoch_time": 1764000000123, "camera_id": 3,
        "results": [
            {"plate": "ABC123", "confidence": 91.5,
             "coordinates": [{"x": 10, "y": 10}, {"x": 110, "y": 10},
                             {"x": 110, "y": 40}, {"x": 10, "y": 40}]},
            {"plate": "XYZ789", "confidence": 80.0,
             "coordinates": [{"x": 210, "y": 10}, {"x": 310, "y": 10},
                             {"x": 310, "y": 40}, {"x": 210, "y": 40}]}]}
    r = await http("POST", stack.url + "/api/reads", result)
    assert r.code == 202 and r.json() == {"accepted": 2}
    assert sorted(read.plate for read in stack.reads()) == ["ABC123",
                                                          "XYZ789"]


@pytest_twisted.ensureDeferred
async def test_bad_field_is_400_naming_the_field(adminServer):
    stack = adminServer()
    r = await http("POST", stack.url + "/api/reads", dict(READ, zone=9))
    assert r.code == 400
    assert list(r.json()["errors"]) == ["zone"]
    r = await http("POST", stack.url + "/api/reads", dict(READ, plate=""))
    assert r.code == 400 and list(r.json()["errors"]) == ["plate"]
    r = await http("POST", stack.url + "/api/reads", [READ, dict(READ,
                                                                 confidence=95)])
    assert r.code == 400 and list(r.json()["errors"]) == ["[1].confidence"]
    assert stack.analytics.reads == 0
    assert stack.admin.resource.metrics.value(
        "numberok_read_errors_total", source="http") == 3


@pytest_twisted.ensureDeferred
async def test_body_that_is_not_json_is_400_on_body(adminServer):
    stack = adminServer()
    r = await http("POST", stack.url + "/api/reads", b"{plate: 1",
                   {"Content-Type": "application/json"})
    assert r.code == 400 and "not JSON" in r.json()["errors"]["body"]


@pytest_twisted.ensureDeferred
async def test_multipart_without_json_part_is_400_on_read(adminServer):
    stack = adminServer()
    body, kind = multipart([("jpeg", "a.jpg", "image/jpeg", jpegBytes())])
    r = await http("POST", stack.url + "/api/reads", body,
                   {"Content-Type": kind})
    assert r.code == 400 and "no JSON part" in r.json()["errors"]["read"]


@pytest_twisted.ensureDeferred
async def test_multipart_image_that_is_not_a_jpeg_is_400_on_jpeg(adminServer):
    stack = adminServer()
    body, kind = multipart([
        ("read", None, "application/json", json.dumps(READ).encode()),
        ("jpeg", "a.jpg", "image/jpeg", b"GIF89a not a jpeg")])
    r = await http("POST", stack.url + "/api/reads", body,
                   {"Content-Type": kind})
    assert r.code == 400 and "not a JPEG" in r.json()["errors"]["jpeg"]


@pytest_twisted.ensureDeferred
async def test_multipart_with_bad_read_names_the_reads_field(adminServer):
    stack = adminServer()
    body, kind = multipart([
        ("read", None, "application/json",
         json.dumps(dict(READ, channel=-1)).encode()),
        ("jpeg", "a.jpg", "image/jpeg", jpegBytes())])
    r = await http("POST", stack.url + "/api/reads", body,
                   {"Content-Type": kind})
    assert r.code == 400 and list(r.json()["errors"]) == ["channel"]


@pytest_twisted.ensureDeferred
async def test_other_content_types_are_refused_naming_the_header(adminServer):
    stack = adminServer()
    r = await http("POST", stack.url + "/api/reads", b"plate=A1",
                   {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.code == 415 and "Content-Type" in r.json()["errors"]


@pytest_twisted.ensureDeferred
async def test_ingest_needs_the_password_when_one_is_set(adminServer):
    stack = adminServer(password=ADMIN_PASSWORD)
    r = await http("POST", stack.url + "/api/reads", READ)
    assert r.code == 401
    r = await http("POST", stack.url + "/api/reads", READ, stack.basic())
    assert r.code == 202 and stack.analytics.reads == 1


@pytest_twisted.ensureDeferred
async def test_ingest_from_a_cross_origin_page_is_refused(adminServer):
    stack = adminServer()
    body, kind = multipart([
        ("read", None, "application/json", json.dumps(READ).encode())])
    r = await http("POST", stack.url + "/api/reads", body,
                   {"Content-Type": kind, "Origin": "http://evil.example"})
    assert r.code == 403 and "Origin" in r.json()["errors"]
    assert stack.analytics.reads == 0


@pytest_twisted.ensureDeferred
async def test_pushed_read_becomes_an_event_through_the_analytics(adminServer):
    stack = adminServer()
    for _ in range(3):
        r = await http("POST", stack.url + "/api/reads", READ)
        assert r.code == 202
    assert stack.analytics.reads == 3
    assert [e.event.plate for e in stack.recent.recent()][-1:] == ["A123BC77"]


@pytest_twisted.ensureDeferred
async def test_oversized_body_is_413_and_not_stored(adminServer):
    stack = adminServer()
    from numberok.web.ingest import MAX_BODY_BYTES
    body = b"x" * (MAX_BODY_BYTES + 1)
    r = await http("POST", stack.url + "/api/reads", body,
                   {"Content-Type": "application/json"})
    assert r.code == 413 and "body" in r.json()["errors"]
    assert stack.analytics.reads == 0


# -- the parser on its own ---------------------------------------------------

@given(st.sampled_from(["application/json", "multipart/form-data",
                        "multipart/form-data; boundary=" + BOUNDARY,
                        "text/plain", ""]),
       st.binary(max_size=400))
def test_any_body_raises_only_read_format_error(kind, body):
    try:
        parseBody(kind, body, 0)
    except ReadFormatError as e:
        assert e.field and e.message


@given(st.lists(st.tuples(
    st.sampled_from(["read", "jpeg", "image", "other"]),
    st.one_of(st.none(), st.sampled_from(["a.jpg", "b.txt"])),
    st.sampled_from(["application/json", "image/jpeg", "text/plain"]),
    st.binary(max_size=60)), max_size=4))
def test_any_multipart_raises_only_read_format_error(parts):
    body, kind = multipart(parts)
    try:
        parseBody(kind, body, 0)
    except ReadFormatError as e:
        assert e.field and e.message


@pytest_twisted.ensureDeferred
async def test_multipart_is_parsed_in_the_admin_pool_small_json_in_place(
        adminServer):
    import threading
    stack = adminServer()
    admin = stack.admin
    release = threading.Event()
    busy = [admin.threads.run(release.wait, 30) for _ in range(2)]
    try:
        small = admin.parseReads("application/json",
                                 json.dumps(READ).encode(), 0)
        assert small.called and len(small.result) == 1
        body, kind = multipart([("read", None, "application/json",
                                 json.dumps(READ).encode())])
        large = admin.parseReads(kind, body, 0)
        assert not large.called  # queued behind the two busy threads
    finally:
        release.set()
    for d in busy:
        await d
    assert len(await large) == 1


def test_thousands_of_parts_are_refused_before_the_mime_parser():
    body, kind = multipart([("p", None, "text/plain", b"x")] * 5000)
    try:
        parseBody(kind, body, 0)
    except ReadFormatError as e:
        assert e.field == "body" and "more than 8 parts" in e.message
    else:
        raise AssertionError("5000 parts were accepted")
