"""
Tests for numberok.sources.formats: our ingest object, OpenALPR messages,
and the line decoder every source shares.
"""

import base64
import io
import json
import os
import zlib

import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from numberok.events import PlateRead, VehicleAttributes
from numberok.sources.formats import (
    MAX_TIME_MS, ReadFormatError, cameraChannel, cleanPlate,
    parseReadLine, parseReadObject, readToObject)

SAMPLES = os.path.join(os.path.dirname(__file__), "samples")
NOW = 1764000000000


def sample(name):
    with open(os.path.join(SAMPLES, name), encoding="utf-8") as f:
        return json.load(f)


def tinyJpeg():
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, "JPEG")
    return buf.getvalue()


def errorOf(obj, nowMs=NOW):
    with pytest.raises(ReadFormatError) as info:
        parseReadObject(obj, nowMs)
    return info.value


# Our own format

def test_only_plate_is_required_and_defaults_apply():
    [read] = parseReadObject({"plate": "A123BC77"}, NOW)
    assert read == PlateRead(plate="A123BC77", timeMs=NOW, channel=0,
                             zone=0, confidence=1.0)


def test_every_field_is_read():
    jpeg = tinyJpeg()
    [read] = parseReadObject({
        "plate": "А123ВС77", "channel": 7, "zone": 3, "confidence": 0.93,
        "time_ms": 1764000000123, "bbox": [10, 20, 110, 30],
        "jpeg_b64": base64.b64encode(jpeg).decode(), "process_time_ms": 12,
        "checkpoint": 4}, NOW)
    assert read == PlateRead(
        plate="А123ВС77", timeMs=1764000000123, channel=7, zone=3,
        confidence=0.93, bbox=(10, 20, 110, 30), jpeg=jpeg,
        processTimeMs=12, checkpoint=4)


def test_unknown_keys_and_nulls_are_ignored():
    [read] = parseReadObject(
        {"plate": "A1", "vendor": {"x": 1}, "zone": None, "bbox": None}, NOW)
    assert read == PlateRead(plate="A1", timeMs=NOW)


def test_plate_is_cleaned_of_controls_and_spaces():
    [read] = parseReadObject({"plate": "  A1\x0523\x00BC\x7f "}, NOW)
    assert read.plate == cleanPlate("  A1\x0523\x00BC\x7f ") == "A123BC"


def test_jpeg_as_data_url_is_accepted():
    jpeg = tinyJpeg()
    url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    [read] = parseReadObject({"plate": "A1", "jpeg_b64": url}, NOW)
    assert read.jpeg == jpeg


@pytest.mark.parametrize("obj, field, words", [
    ({}, "plate", "missing"),
    ({"plate": None}, "plate", "missing"),
    ({"plate": 123}, "plate", "must be a string, not an integer"),
    ({"plate": " \x01\t "}, "plate", "empty"),
    ({"plate": "A" * 33}, "plate", "33 characters, at most 32"),
    ({"plate": "A\ud800"}, "plate", "surrogates"),
    ({"plate": "A", "channel": "1"}, "channel", "must be an integer, not a string"),
    ({"plate": "A", "channel": 1024}, "channel", "0..1023, got 1024"),
    ({"plate": "A", "channel": -1}, "channel", "0..1023"),
    ({"plate": "A", "channel": 1.0}, "channel", "not a number"),
    ({"plate": "A", "zone": 4}, "zone", "0..3, got 4"),
    ({"plate": "A", "zone": True}, "zone", "not a boolean"),
    ({"plate": "A", "confidence": 93}, "confidence", "not a percent"),
    ({"plate": "A", "confidence": -0.1}, "confidence", "0..1"),
    ({"plate": "A", "confidence": "high"}, "confidence", "must be a number, not a string"),
    ({"plate": "A", "confidence": False}, "confidence", "not a boolean"),
    ({"plate": "A", "time_ms": -1}, "time_ms", "0..253402300799999"),
    ({"plate": "A", "time_ms": MAX_TIME_MS + 1}, "time_ms", "got 253402300800000"),
    ({"plate": "A", "time_ms": 1.5e12}, "time_ms", "must be an integer"),
    ({"plate": "A", "bbox": [1, 2, 3]}, "bbox", "4 integers [x, y, w, h], not 3 items"),
    ({"plate": "A", "bbox": "1,2,3,4"}, "bbox", "not a string"),
    ({"plate": "A", "bbox": [1, 2, -3, 4]}, "bbox", "0..100000, got -3"),
    ({"plate": "A", "bbox": [1, 2, 3.5, 4]}, "bbox", "must be an integer"),
    ({"plate": "A", "jpeg_b64": 5}, "jpeg_b64", "base64 string, not an integer"),
    ({"plate": "A", "jpeg_b64": ""}, "jpeg_b64", "empty"),
    ({"plate": "A", "jpeg_b64": "!!!!"}, "jpeg_b64", "not valid base64"),
    ({"plate": "A", "jpeg_b64": "QUJD\nREVG"}, "jpeg_b64", "not valid base64"),
    ({"plate": "A", "jpeg_b64": "QUJD"}, "jpeg_b64", "3 bytes that are not a JPEG"),
    ({"plate": "A", "jpeg_b64": "ЖЖЖЖ"}, "jpeg_b64", "not valid base64"),
    ({"plate": "A", "process_time_ms": -5}, "process_time_ms", "0..2147483647, got -5"),
    ({"plate": "A", "checkpoint": "0"}, "checkpoint", "must be an integer"),
    ({"plate": "A", "checkpoint": 2 ** 31}, "checkpoint", "0..2147483647"),
])
def test_each_bad_field_gets_a_message_naming_it(obj, field, words):
    error = errorOf(obj)
    assert error.field == field
    assert words in error.message
    assert str(error) == "%s: %s" % (field, error.message)


def test_oversized_jpeg_is_refused_before_decoding():
    error = errorOf({"plate": "A", "jpeg_b64": "A" * (12 * 1024 * 1024)})
    assert error.field == "jpeg_b64"
    assert "larger than" in error.message


def test_a_non_object_is_refused():
    error = errorOf(["plate", "A"])
    assert (error.field, error.message) == (
        "object", "a read must be a JSON object, not an array")


def test_process_time_may_be_fractional_and_is_rounded():
    [read] = parseReadObject({"plate": "A", "process_time_ms": 12.6}, NOW)
    assert read.processTimeMs == 13


# Lines

def test_line_parses_with_or_without_line_ending():
    line = json.dumps({"plate": "A123BC77", "zone": 1}).encode()
    assert parseReadLine(line, NOW) == parseReadLine(line + b"\r\n", NOW)
    assert parseReadLine(line, NOW)[0].zone == 1


def test_blank_line_is_no_read():
    assert parseReadLine(b"  \r\n", NOW) == []


@pytest.mark.parametrize("line, words", [
    (b'{"plate": "A"', "not JSON: Expecting ',' delimiter at column 14 (char 13)"),
    (b"\xff{}", "not UTF-8: invalid start byte at byte 0"),
    (b'{"plate": "A", "confidence": NaN}', "NaN is not valid JSON"),
    (b'{"plate": "A", "confidence": -Infinity}', "-Infinity is not valid JSON"),
    (b'{"plate": "A", "confidence": 1e999}', "out of range"),
    (b"[" * 100000, "nested too deeply"),
    (b'{"plate": "A"} {}', "Extra data"),
])
def test_bad_lines_are_refused_with_position(line, words):
    with pytest.raises(ReadFormatError) as info:
        parseReadLine(line, NOW)
    assert info.value.field == "line"
    assert words in info.value.message


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_read_format_error(data):
    try:
        reads = parseReadLine(data, NOW)
    except ReadFormatError:
        return
    assert all(isinstance(read, PlateRead) for read in reads)


jsonValues = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                          allow_infinity=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20)
fieldValues = st.none() | st.booleans() | st.integers(-5, 2 ** 64) | st.floats() \
    | st.text(max_size=40) | st.lists(st.integers(-2, 5), max_size=5) \
    | st.just("QUJD") | st.just([{"x": 1, "y": 2}]) | jsonValues
keys = st.sampled_from([
    "plate", "channel", "zone", "confidence", "time_ms", "bbox", "jpeg_b64",
    "process_time_ms", "checkpoint", "results", "data_type", "epoch_time",
    "best_plate", "camera_id", "coordinates", "best_plate_number",
    "epoch_start", "processing_time", "vehicle_crop_jpeg"])


@settings(deadline=None)
@given(st.dictionaries(keys, fieldValues, max_size=8) | jsonValues)
def test_arbitrary_json_raises_only_read_format_error(obj):
    try:
        reads = parseReadObject(obj, NOW)
    except ReadFormatError:
        return
    for read in reads:
        assert 1 <= len(read.plate) <= 32
        assert 0 <= read.channel <= 1023 and 0 <= read.zone <= 3
        assert 0.0 <= read.confidence <= 1.0
        assert 0 <= read.timeMs <= MAX_TIME_MS


@settings(deadline=None)
@given(st.dictionaries(keys, fieldValues, max_size=8))
def test_arbitrary_objects_as_lines_raise_only_read_format_error(obj):
    try:
        line = json.dumps(obj).encode()
    except ValueError:
        return
    try:
        parseReadLine(line, NOW)
    except ReadFormatError:
        pass


plateText = st.text(
    alphabet="ABEKMHOPCTYX0123456789АВЕКМНОРСТУХ -", min_size=1,
    max_size=32).map(str.strip).filter(bool)
reads = st.builds(
    PlateRead,
    plate=plateText,
    timeMs=st.integers(0, MAX_TIME_MS),
    channel=st.integers(0, 1023),
    zone=st.integers(0, 3),
    confidence=st.floats(0.0, 1.0),
    bbox=st.none() | st.tuples(*[st.integers(0, 100000)] * 4),
    jpeg=st.none() | st.binary(max_size=50).map(lambda b: b"\xff\xd8" + b),
    processTimeMs=st.integers(0, 2 ** 31 - 1),
    checkpoint=st.integers(0, 2 ** 31 - 1))


@settings(deadline=None)
@given(reads)
def test_read_to_object_round_trips_through_a_line(read):
    obj = readToObject(read)
    assert parseReadObject(obj, 0) == [read]
    line = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    assert parseReadLine(line, 0) == [read]


def test_read_to_object_leaves_out_absent_bbox_and_jpeg():
    obj = readToObject(PlateRead(plate="A1", timeMs=5))
    assert "bbox" not in obj and "jpeg_b64" not in obj
    assert obj["plate"] == "A1" and obj["time_ms"] == 5


# OpenALPR

def test_alpr_j_sample_maps_field_by_field():
    reads = parseReadObject(sample("openalpr_alpr_j.json"), NOW)
    assert reads == [
        PlateRead(
            plate="B123CE177", timeMs=1764000123456, channel=0, zone=0,
            confidence=pytest.approx(0.91523178),
            # Corners (512,430) (655,427) (657,461) (514,465).
            bbox=(512, 427, 145, 38), processTimeMs=31, source="openalpr"),
        PlateRead(
            plate="HH4521", timeMs=1764000123456, channel=0, zone=0,
            confidence=pytest.approx(0.72004311),
            # A corner at x=-3 is clamped to the frame's edge.
            bbox=(0, 604, 90, 42), processTimeMs=28, source="openalpr"),
    ]


def test_alprd_sample_maps_seconds_camera_and_per_result_overrides():
    reads = parseReadObject(sample("openalpr_alprd.json"), NOW)
    assert [(r.plate, r.channel, r.timeMs, r.processTimeMs, r.bbox)
            for r in reads] == [
        # epoch_time 1764000200 is in seconds; top-level processing time.
        ("K777MP99", 2, 1764000200000, 122, (201, 301, 167, 58)),
        # The second result carries its own epoch_time and processing time.
        ("O001OO199", 2, 1764000201000, 48, (420, 118, 101, 27)),
    ]
    assert [r.confidence for r in reads] == [
        pytest.approx(0.8341), pytest.approx(0.649)]


def test_alpr_group_sample_gives_one_read_of_the_best_plate():
    obj = sample("openalpr_group.json")
    [read] = parseReadObject(obj, NOW)
    assert read == PlateRead(
        plate="1234AB7",
        timeMs=1764000301350,                  # best_uuid_epoch_ms
        channel=zlib.crc32(b"1414799424") % 1024,
        zone=0, confidence=pytest.approx(0.9325),
        bbox=(310, 384, 146, 40), processTimeMs=23,
        jpeg=base64.b64decode(obj["vehicle_crop_jpeg"]), source="openalpr",
        # travel_direction 182.5: moving down the frame, towards the camera.
        travel="approaching",
        vehicle=VehicleAttributes(colour="silver-gray", make="skoda"))


def test_alpr_group_without_best_uuid_time_uses_epoch_start():
    obj = sample("openalpr_group.json")
    del obj["best_uuid_epoch_ms"], obj["vehicle_crop_jpeg"]
    obj["best_plate_number"] = "1234AB-7"
    [read] = parseReadObject(obj, NOW)
    assert (read.timeMs, read.plate, read.jpeg) == (
        1764000300100, "1234AB-7", None)


def test_alpr_group_with_only_summary_keys():
    [read] = parseReadObject({
        "data_type": "alpr_group", "best_plate_number": "X1",
        "best_confidence": 50}, NOW)
    assert (read.plate, read.confidence, read.timeMs) == ("X1", 0.5, NOW)


def test_openalpr_without_results_is_no_read():
    assert parseReadObject(sample("openalpr_empty.json"), NOW) == []


def test_openalpr_heartbeat_is_no_read():
    assert parseReadObject(sample("openalpr_heartbeat.json"), NOW) == []


def test_openalpr_without_epoch_time_uses_now():
    [read] = parseReadObject({"results": [{"plate": "A1"}]}, NOW)
    assert (read.timeMs, read.confidence, read.bbox) == (NOW, 1.0, None)


@pytest.mark.parametrize("cameraId, channel", [
    (None, 0), (0, 0), (3, 3), (1023, 1023), ("12", 12), (" 7 ", 7),
    (1024, zlib.crc32(b"1024") % 1024),
    (-1, zlib.crc32(b"-1") % 1024),
    ("gate-north", zlib.crc32(b"gate-north") % 1024),
    ("٣", zlib.crc32("٣".encode()) % 1024),
])
def test_camera_id_maps_to_a_channel(cameraId, channel):
    assert cameraChannel(cameraId) == channel


@pytest.mark.parametrize("obj, field, words", [
    ({"data_type": "alpr_results"}, "results", "missing"),
    ({"results": {}}, "results", "must be an array, not an object"),
    ({"results": [1]}, "results[0]", "must be an object, not an integer"),
    ({"results": [{}]}, "results[0].plate", "missing"),
    ({"results": [{"plate": "A", "confidence": 101}]},
     "results[0].confidence", "0..100 percent"),
    ({"results": [{"plate": "A", "coordinates": []}]},
     "results[0].coordinates", "1..16 points"),
    ({"results": [{"plate": "A", "coordinates": [{"x": 1}]}]},
     "results[0].coordinates[0].y", "must be a number, not null"),
    ({"results": [{"plate": "A", "coordinates": [[1, 2]]}]},
     "results[0].coordinates[0]", "must be an object {x, y}"),
    ({"results": [{"plate": "A"}] * 101}, "results", "101 results"),
    ({"results": [], "epoch_time": "now"}, "epoch_time", "must be a number"),
    ({"results": [], "camera_id": 1.5}, "camera_id", "integer or a string"),
    ({"results": [], "site_id": 5}, "site_id", "must be a string"),
    ({"results": [], "processing_time_ms": -1}, "processing_time_ms", "0.."),
    ({"data_type": "alpr_video"}, "data_type", "unsupported OpenALPR message"),
    ({"data_type": "alpr_group", "best_plate": []}, "best_plate", "must be an object"),
    ({"data_type": "alpr_group", "best_plate": {}}, "best_plate.plate", "missing"),
    ({"data_type": "alpr_group", "best_plate_number": "A",
      "vehicle_crop_jpeg": "QUJD"}, "vehicle_crop_jpeg", "not a JPEG"),
    ({"data_type": "alpr_group", "best_plate_number": "",
      "best_plate": {"plate": "A"}}, "best_plate_number", "empty"),
])
def test_bad_openalpr_fields_are_named(obj, field, words):
    error = errorOf(obj)
    assert error.field == field
    assert words in error.message


def test_a_top_level_plate_means_our_format():
    [read] = parseReadObject({"plate": "A1", "results": "ignored"}, NOW)
    assert read.plate == "A1" and read.source == ""


# The two decoding paths: msgspec for lines that are valid as they stand,
# the standard library and the field checks for everything else.

def _slowPath(line, nowMs=NOW):
    """The reference: stdlib JSON and the field-by-field checks only."""
    from numberok.sources.formats import decodeReadLine
    if not line.strip():
        return []
    return parseReadObject(decodeReadLine(line), nowMs)


def _outcome(parse, line):
    try:
        return ("reads", parse(line))
    except ReadFormatError as e:
        return ("error", e.field, e.message)


ourKeys = st.sampled_from([
    "plate", "channel", "zone", "confidence", "time_ms", "bbox", "jpeg_b64",
    "process_time_ms", "checkpoint", "per_vehicle", "vendor"])
ourValues = st.none() | st.booleans() | st.integers(-5, 2 ** 70) \
    | st.integers(0, 5) | st.floats(0, 1) | st.just([1, 2, 3, 4]) \
    | st.floats(allow_nan=False) | st.text(max_size=40) \
    | st.sampled_from(["A123BC77", " a1 ", "\ud800", "x" * 40]) \
    | st.lists(st.integers(-2, 100001), max_size=5) \
    | st.just([1.0, 2, 3, 4]) | st.just("/9j/2w==")


@settings(deadline=None)
@given(st.dictionaries(ourKeys, ourValues, max_size=9))
def test_fast_and_field_by_field_paths_agree_on_every_line(obj):
    try:
        line = json.dumps(obj, ensure_ascii=False).encode("utf-8",
                                                          "surrogatepass")
    except ValueError:
        return
    assert _outcome(lambda l: parseReadLine(l, NOW), line) == \
        _outcome(_slowPath, line)


@pytest.mark.parametrize("line", [
    b'{"plate": "A123BC77", "channel": 1, "zone": 2, "confidence": 0.9, '
    b'"bbox": [400, 220, 120, 30], "process_time_ms": 12.6}',
    b'{"plate": "A", "x": 1e400}',
    b'{"plate": "A", "x": 1' + b"0" * 5000 + b'}',
    b'{"plate": "A", "channel": true}',
    b'{"plate": "A", "confidence": 1}',
    b'{"plate": "A", "plate": "B"}',
    b'\xef\xbb\xbf{"plate": "A"}',
    b'{"plate": "A\tB"}',
    b'{"plate": "A"} x',
    b'  {"plate": "A"}\r',
    b'{"plate": "A", "per_vehicle": 1}',
])
def test_fast_path_answers_what_the_field_checks_answer(line):
    assert _outcome(lambda l: parseReadLine(l, NOW), line) == \
        _outcome(_slowPath, line)


def test_per_vehicle_member_marks_the_read():
    [read] = parseReadLine(b'{"plate": "A123BC77", "per_vehicle": true}', NOW)
    assert read.perVehicle is True
    [read] = parseReadObject({"plate": "A123BC77", "per_vehicle": True}, NOW)
    assert read.perVehicle is True
    [read] = parseReadObject({"plate": "A123BC77"}, NOW)
    assert read.perVehicle is False


def test_per_vehicle_must_be_a_boolean():
    error = errorOf({"plate": "A123BC77", "per_vehicle": "yes"})
    assert (error.field, error.message) == (
        "per_vehicle", "must be true or false, not a string")


def test_per_vehicle_read_round_trips_through_a_line():
    read = PlateRead(plate="A123BC77", timeMs=NOW, perVehicle=True)
    line = json.dumps(readToObject(read)).encode()
    assert parseReadLine(line, 0) == [read]


def test_source_is_given_to_reads_of_our_format():
    [read] = parseReadLine(b'{"plate": "A1"}', NOW, source="ingest")
    assert read.source == "ingest"
