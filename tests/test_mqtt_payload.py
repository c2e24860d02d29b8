"""
The MQTT message format and the broker address, in memory: what a site
writes is what a collecting instance reads back, and anything else is
refused with our own error.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from numberok.events import EventState, MovementType, PlateEvent, eventPairs
from numberok.mqtt.broker import BrokerError, parseBroker
from numberok.mqtt.payload import decodeEvent, encodeEvent
from numberok.sources.formats import ReadFormatError

JPEG = b"\xff\xd8\xff\xe0fake-but-marked"


def event(**changes) -> PlateEvent:
    values = dict(state=EventState.LOST, runtimeId=31, channel=2, zone=1,
                  plate="А123ВС77", rawPlate="A123BC77",
                  frameTimeMs=1700000000123, processTimeMs=40,
                  movement=MovementType.OUT, checkpoint=5, confidence=0.93,
                  reads=6, frame=JPEG, bbox=(10, 20, 30, 8))
    values.update(changes)
    return PlateEvent(**values)


def test_message_round_trips_to_the_same_wire_event():
    original = event()
    payload = encodeEvent(original, 14, 99, original.frame)
    collected = decodeEvent("numberok/14/events/2/1", payload)
    assert collected.systemId == 14
    assert collected.key == "L99:1700000000123"
    assert dict(eventPairs(collected.event, 1)) == dict(
        eventPairs(original, 14))
    assert (collected.event.frame, collected.event.bbox) == (
        JPEG, (10, 20, 30, 8))


def test_message_without_picture_has_no_bbox_and_keeps_unicode():
    body = json.loads(encodeEvent(event(), 3, None, None))
    assert "picture" not in body and "bbox" not in body and "id" not in body
    assert body["PlateNumber"] == "А123ВС77"


def test_live_events_are_keyed_by_runtime_state_reads_and_time():
    payload = encodeEvent(event(state=EventState.UPDATED), 3, None)
    assert decodeEvent("p/3/events/2/1", payload, "p").key == \
        "U31:6:1700000000123"


def test_message_under_another_sites_topic_is_refused():
    payload = encodeEvent(event(), 3, 1)
    with pytest.raises(ReadFormatError, match="does not match the topic"):
        decodeEvent("numberok/4/events/2/1", payload)


@pytest.mark.parametrize("change,field", [
    ({"State": "Gone"}, "State"), ({"RuntimeID": "x"}, "RuntimeID"),
    ({"MovementType": "Sideways"}, "MovementType"),
    ({"PlateNumber": ""}, "PlateNumber"), ({"picture": "!!"}, "picture"),
    ({"bbox": [1, 2, 3]}, "bbox"), ({"Confidence": "101"}, "Confidence")])
def test_bad_members_are_named(change, field):
    body = json.loads(encodeEvent(event(), 3, 1, JPEG))
    body.update(change)
    with pytest.raises(ReadFormatError) as caught:
        decodeEvent("numberok/3/events/2/1", json.dumps(body).encode())
    assert caught.value.field == field


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_our_error(payload):
    try:
        decodeEvent("numberok/3/events/0/0", payload)
    except ReadFormatError:
        pass


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(
    ["SystemId", "State", "RuntimeID", "FrameTimeStampMs", "PlateNumber",
     "picture", "bbox", "id", "ReadCount", "Confidence"]),
    st.one_of(st.none(), st.integers(), st.text(max_size=12),
              st.lists(st.integers(), max_size=5), st.booleans())))
def test_arbitrary_objects_raise_only_our_error(obj):
    try:
        decodeEvent("numberok/3/events/0/0", json.dumps(obj).encode())
    except ReadFormatError:
        pass


@pytest.mark.parametrize("text,expected", [
    ("tcp:host=broker.lan:port=1884", ("broker.lan", 1884, False)),
    ("tcp:10.0.0.5:1883", ("10.0.0.5", 1883, False)),
    ("tls:host=mq.example.com", ("mq.example.com", 8883, True)),
    ("tls:host=h:port=8884:trustRoots=/etc/ca.pem",
     ("h", 8884, True))])
def test_broker_endpoints_parse(text, expected):
    address = parseBroker(text)
    assert (address.host, address.port, address.tls) == expected


@pytest.mark.parametrize("text,message", [
    ("unix:/tmp/x", "use tcp"), ("tcp:port=1883", "host is missing"),
    ("tcp:host=h:port=99999", "port"), ("tcp:host=h:colour=red", "unknown"),
    ("tcp:host=h:trustRoots=/ca", "need tls")])
def test_bad_broker_endpoints_say_why(text, message):
    with pytest.raises(BrokerError, match=message):
        parseBroker(text)


@pytest.mark.parametrize("key,value,reason", [
    ("Mqtt.Reads", "cams/#/reads", "# must be the whole last level"),
    ("Mqtt.Reads", "cams/x+/reads", "+ must be a whole level"),
    ("Mqtt.TopicPrefix", "site+2", "must not contain + or #"),
    ("Mqtt.TopicPrefix", "site/#", "must not contain + or #"),
    ("Mqtt.TopicPrefix", "a//b", "empty level"),
    ("Mqtt.TopicPrefix", "", "must not be empty"),
    ("Mqtt.TopicPrefix", "$SYS", "must not start with $")])
def test_topic_prefix_and_reads_filter_are_validated(key, value, reason):
    from numberok.settings import Settings, SettingsError
    with pytest.raises(SettingsError, match=re.escape(reason)):
        Settings().withChanges({key: value})


@pytest.mark.parametrize("key,value", [
    ("Mqtt.Reads", "cams/+/reads"), ("Mqtt.Reads", "cams/#"),
    ("Mqtt.Reads", ""), ("Mqtt.TopicPrefix", "region/north")])
def test_valid_topic_prefixes_and_filters_are_kept(key, value):
    from numberok.settings import Settings
    assert Settings().withChanges({key: value})[key] == value


@pytest.mark.parametrize("text", ["--1", "\u00b2", "9" * 5000, "\u0661",
                                  "1_000", " ", "0x10"])
def test_integers_are_ascii_digits_only(text):
    body = json.loads(encodeEvent(event(), 3, 1))
    body["RuntimeID"] = text
    with pytest.raises(ReadFormatError) as caught:
        decodeEvent("numberok/3/events/2/1", json.dumps(body).encode())
    assert caught.value.field == "RuntimeID"


def test_quiet_log_says_how_many_warnings_it_held_back():
    from twisted.internet.task import Clock
    from twisted.logger import Logger
    from numberok.mqtt.quiet import QuietLog
    lines = []
    log = Logger(observer=lines.append)
    clock = Clock()
    quiet = QuietLog(log, clock)
    for n in range(QuietLog.burst + 5):
        quiet.warn("event", "bad {n}", n=n)
    quiet.warn("read", "other kind")          # its own budget
    assert len(lines) == QuietLog.burst + 1
    clock.advance(QuietLog.interval)
    quiet.warn("event", "bad again")
    assert [e.get("held") for e in lines[-2:]] == [5, None]
    assert lines[-1]["log_format"] == "bad again"


def test_gaps_open_fill_split_and_expire():
    from numberok.mqtt.gaps import Gaps
    gaps = Gaps()
    assert gaps.observe(7, 10, 0.0) == (None, 0)     # first contact
    hole, given = gaps.observe(7, 20, 1.0)
    assert (hole.first, hole.last, given) == (11, 19, 0)
    assert gaps.observe(7, 15, 2.0) == (None, 0)     # splits 11..14, 16..19
    assert gaps.observe(7, 11, 2.0) == (None, 0)
    assert gaps.open() == 7
    assert gaps.observe(7, 21, 2.0) == (None, 0)     # next in line
    expired = gaps.expire(1.0 + Gaps.patience)
    assert sorted((h.first, h.last) for _, h in expired) == [(12, 14),
                                                             (16, 19)]
    assert gaps.open() == 0
