"""
The Hikvision ISAPI alarm parser: the two samples map to the documented
read, heartbeats and unknown plates give no read, hostile XML is refused,
and arbitrary input raises only ReadFormatError.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from helpers import jpegBytes
from numberok.images import MAX_FRAME_PIXELS
from numberok.sources.formats import ReadFormatError
from numberok.sources.hikvision import (ANPR, HEARTBEAT, OTHER, UNKNOWN_PLATE,
                                        parseAlarm, scaleRect)

SAMPLES = Path(__file__).parent / "samples"
XML = "application/xml"
NOW = 1764000000000
BOUNDARY = "hikAlarmBoundary0x5f3a"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def multipart(xml: bytes, pictures: dict[str, bytes]) -> tuple[str, bytes]:
    """A body as the camera sends it: the XML part, then one part per
    picture named after its fileName."""
    parts = [("anpr.xml", "application/xml", xml)] + [
        (name, "image/jpeg", data) for name, data in pictures.items()]
    body = b""
    for name, kind, data in parts:
        body += ('--%s\r\nContent-Disposition: form-data; name="%s"; '
                 'filename="%s"\r\nContent-Type: %s\r\nContent-Length: %d'
                 '\r\n\r\n' % (BOUNDARY, name, name, kind, len(data))
                 ).encode() + data + b"\r\n"
    body += b"--%s--\r\n" % (BOUNDARY.encode(),)
    return "multipart/form-data; boundary=" + BOUNDARY, body


def withText(xml: bytes, tag: str, value: str) -> bytes:
    start = xml.index(b"<%s>" % tag.encode()) + len(tag) + 2
    end = xml.index(b"</%s>" % tag.encode())
    return xml[:start] + value.encode() + xml[end:]


def test_bare_xml_sample_maps_to_a_per_vehicle_read():
    alarm = parseAlarm(XML, sample("hikvision_anpr.xml"), NOW)
    assert alarm.kind == ANPR and alarm.direction == "forward"
    read = alarm.read
    assert read.travel == "approaching"
    stamp = datetime.datetime(2025, 11, 24, 12, 30, 12,
                              tzinfo=datetime.timezone.utc)
    assert (read.plate, read.channel, read.zone, read.confidence) == (
        "A123BC77", 0, 1, 0.91)
    assert read.timeMs == stamp.timestamp() * 1000
    assert read.perVehicle and read.source == "hikvision"
    # Bare XML: the pictures are listed but not sent.
    assert read.jpeg is None and read.bbox is None
    assert alarm.pictureProblem == "detectionPicture.jpg is listed but not sent"


def test_multipart_sample_takes_the_vehicle_picture_and_scales_plate_rect():
    vehicle = jpegBytes(size=(1000, 500))
    plate = jpegBytes(colour=(200, 200, 200), size=(120, 30))
    kind, body = multipart(sample("hikvision_anpr_vehicle.xml"), {
        "licensePlatePicture.jpg": plate, "vehiclePicture.jpg": vehicle})
    alarm = parseAlarm(kind, body, NOW)
    read = alarm.read
    assert read.jpeg == vehicle and alarm.pictureProblem is None
    # plateRect 400,700 200x80 in thousandths of 1000 x 500 pixels.
    assert read.bbox == (400, 350, 200, 40)
    assert (read.plate, read.channel, read.zone, read.confidence) == (
        "BMW1234", 1, 0, 0.84)
    assert alarm.direction == "reverse" and read.travel == "leaving"
    assert read.timeMs == 1763985944250     # 07:05:44.250-05:00


def test_detection_picture_is_the_frame_when_no_vehicle_picture_is_sent():
    frame = jpegBytes(size=(1920, 1080))
    kind, body = multipart(sample("hikvision_anpr.xml"), {
        "detectionPicture.jpg": frame,
        "licensePlatePicture.jpg": jpegBytes()})
    read = parseAlarm(kind, body, NOW).read
    assert read.jpeg == frame
    assert read.bbox == scaleRect((412, 655, 118, 42), 1920, 1080) == (
        791, 707, 227, 46)


def test_picture_over_the_pixel_limit_is_left_out_but_the_read_stays():
    # A header claiming 6300 x 6300 is refused before decoding.
    big = jpegBytes(size=(8, 8))
    big = big.replace(b"\xff\xc0\x00\x11\x08\x00\x08\x00\x08",
                      b"\xff\xc0\x00\x11\x08\x18\x9c\x18\x9c")
    assert 6300 * 6300 > MAX_FRAME_PIXELS
    kind, body = multipart(sample("hikvision_anpr.xml"),
                           {"detectionPicture.jpg": big})
    alarm = parseAlarm(kind, body, NOW)
    assert alarm.read.plate == "A123BC77" and alarm.read.jpeg is None
    assert "6300x6300" in alarm.pictureProblem


def test_unknown_plate_is_an_alarm_without_a_read():
    xml = withText(sample("hikvision_anpr.xml"), "licensePlate", "unknown")
    alarm = parseAlarm(XML, xml, NOW)
    assert (alarm.kind, alarm.read) == (UNKNOWN_PLATE, None)


def test_heartbeat_and_other_event_types_give_no_read():
    assert parseAlarm(XML, sample("hikvision_heartbeat.xml"), NOW).kind \
        == HEARTBEAT
    xml = withText(sample("hikvision_heartbeat.xml"), "eventType", "VMD")
    assert parseAlarm(XML, xml, NOW).kind == OTHER


@pytest.mark.parametrize("namespace", [
    b' xmlns="http://www.hikvision.com/ver10/XMLSchema"',
    b' xmlns="http://www.isapi.org/ver20/XMLSchema"', b""])
def test_every_isapi_namespace_and_none_is_read(namespace):
    xml = sample("hikvision_anpr.xml").replace(
        b' xmlns="http://www.hikvision.com/ver20/XMLSchema"', namespace)
    assert parseAlarm("text/xml", xml, NOW).read.plate == "A123BC77"


def test_absent_line_channel_and_time_default_to_zone_0_channel_0_now():
    xml = sample("hikvision_anpr.xml")
    for tag in (b"line", b"channelID", b"dateTime", b"confidenceLevel"):
        start = xml.index(b"<" + tag + b">")
        xml = xml[:start] + xml[xml.index(b"</" + tag + b">") + len(tag)
                                + 3:]
    read = parseAlarm(XML, xml, NOW).read
    assert (read.zone, read.channel, read.timeMs) == (0, 0, NOW)
    assert read.confidence == 0.90       # the weakest plateCharBelieve


@pytest.mark.parametrize("tag, value, field", [
    ("line", "5", "ANPR.line"), ("channelID", "0", "channelID"),
    ("confidenceLevel", "101", "ANPR.confidenceLevel"),
    ("dateTime", "yesterday", "dateTime"),
    ("licensePlate", "X" * 40, "ANPR.licensePlate")])
def test_out_of_range_fields_are_refused_naming_the_field(tag, value, field):
    xml = withText(sample("hikvision_anpr.xml"), tag, value)
    with pytest.raises(ReadFormatError) as caught:
        parseAlarm(XML, xml, NOW)
    assert caught.value.field == field


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<EventNotificationAlert><eventType>ANPR</eventType><ANPR>
<licensePlate>&lol3;</licensePlate></ANPR></EventNotificationAlert>"""

EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<EventNotificationAlert><eventType>ANPR</eventType><ANPR>
<licensePlate>&e;</licensePlate></ANPR></EventNotificationAlert>"""


@pytest.mark.parametrize("body", [BOMB, EXTERNAL], ids=["bomb", "external"])
def test_entities_and_dtds_are_refused_not_expanded(body):
    with pytest.raises(ReadFormatError) as caught:
        parseAlarm(XML, body, NOW)
    assert caught.value.field == "xml"
    assert caught.value.message.startswith("refused")


def test_other_content_types_and_roots_are_refused():
    with pytest.raises(ReadFormatError) as caught:
        parseAlarm("application/json", b'{"plate": "X"}', NOW)
    assert caught.value.field == "Content-Type"
    with pytest.raises(ReadFormatError) as caught:
        parseAlarm(XML, b"<Other/>", NOW)
    assert "EventNotificationAlert" in caught.value.message


def test_too_many_multipart_parts_are_refused_before_parsing():
    kind, body = multipart(sample("hikvision_anpr.xml"), {
        "p%d.jpg" % i: b"x" for i in range(40)})
    with pytest.raises(ReadFormatError) as caught:
        parseAlarm(kind, body, NOW)
    assert "parts" in caught.value.message


@given(st.binary(max_size=400), st.sampled_from(
    [XML, "multipart/form-data; boundary=" + BOUNDARY, ""]))
def test_arbitrary_bodies_raise_only_read_format_error(body, kind):
    try:
        parseAlarm(kind, body, NOW)
    except ReadFormatError:
        pass


@given(st.text(max_size=40))
def test_arbitrary_plate_text_is_a_read_or_a_read_format_error(text):
    xml = sample("hikvision_anpr.xml").replace(
        b"<licensePlate>A123BC77</licensePlate>",
        b"<licensePlate>" + text.replace("&", "&amp;").replace(
            "<", "&lt;").encode("utf-8", "replace") + b"</licensePlate>")
    try:
        parseAlarm(XML, xml, NOW)
    except ReadFormatError:
        pass


# -- issue 21, attacks 2 and 4: bounded XML, a 400 naming every bad field ----

def test_xml_nested_deeper_than_the_limit_is_refused_while_parsing():
    body = b"<EventNotificationAlert>" + b"<a>" * 100000
    with pytest.raises(ReadFormatError) as caught:
        parseAlarm(XML, body, NOW)
    assert caught.value.field == "xml" and "deeper" in caught.value.message


def test_xml_with_more_elements_than_the_limit_is_refused_while_parsing():
    body = (b"<EventNotificationAlert>" + b"<a/>" * 200000
            + b"</EventNotificationAlert>")
    with pytest.raises(ReadFormatError) as caught:
        parseAlarm(XML, body, NOW)
    assert caught.value.field == "xml" and "elements" in caught.value.message


@pytest.mark.parametrize("value", ["9" * 5000, "98,x,97", "98,101", "²"])
def test_a_malformed_plate_char_believe_is_a_named_refusal(value):
    xml = sample("hikvision_anpr.xml").replace(
        b"<confidenceLevel>", b"<plateCharBelieve>%s</plateCharBelieve>"
        b"<confidenceLevelX>" % (value.encode(),)).replace(
        b"</confidenceLevel>", b"</confidenceLevelX>")
    with pytest.raises(ReadFormatError) as caught:
        parseAlarm(XML, xml, NOW)
    assert caught.value.field == "ANPR.plateCharBelieve"


def test_plate_char_believe_gives_the_weakest_characters_confidence():
    xml = sample("hikvision_anpr.xml").replace(
        b"<confidenceLevel>", b"<plateCharBelieve>99,87,,95</plateCharBelieve>"
        b"<confidenceLevelX>").replace(
        b"</confidenceLevel>", b"</confidenceLevelX>")
    assert parseAlarm(XML, xml, NOW).read.confidence == 0.87


xmlPieces = st.lists(st.sampled_from([
    b"<EventNotificationAlert>", b"</EventNotificationAlert>",
    b"<eventType>ANPR</eventType>", b"<ANPR>", b"</ANPR>",
    b"<licensePlate>A1</licensePlate>", b"<plateCharBelieve>",
    b"</plateCharBelieve>", b"<channelID>", b"</channelID>", b"<line>",
    b"</line>", b"<dateTime>", b"</dateTime>", b"<confidenceLevel>",
    b"</confidenceLevel>", b"9", b"-", b"\xc2\xb2", b",", b"&#133;", b"<",
    b"<pictureInfoList><pictureInfo><fileName>v.jpg</fileName><type>"
    b"vehiclePicture</type><plateRect><X>", b"</X></plateRect>"
    b"</pictureInfo></pictureInfoList>", b"2025-11-24T15:30:12+03:00"]),
    max_size=30)


@given(xmlPieces)
def test_arbitrary_alarm_xml_raises_only_read_format_error(pieces):
    try:
        parseAlarm(XML, b"".join(pieces), NOW)
    except ReadFormatError as e:
        assert e.field and e.message
