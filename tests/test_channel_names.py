"""
Names for camera channels (C{[Channel:<n>] Name}): made part of the event
where the analytics make it, sent as C{ChannelName} at the end of the wire
pairs (and so in MQTT and webhook payloads), kept by a collecting instance,
and checked like every other setting.
"""

from __future__ import annotations

import json

import pytest
from twisted.internet.task import Clock

from numberok.analytics import Analytics
from numberok.events import EventState, PlateRead, eventPairs
from numberok.mqtt.payload import decodeEvent, encodeEvent
from numberok.settings import Settings, SettingsError, SettingsStore
from numberok.sources.formats import ReadFormatError


class Events(list):
    def publish(self, event):
        self.append(event)


def analyticsWith(changes):
    clock = Clock()
    clock.advance(1000)
    events = Events()
    store = SettingsStore(Settings().withChanges(changes))
    analytics = Analytics(store, events, reactor=clock)
    return analytics, clock, events, store


def passBy(analytics, clock, channel):
    for _ in range(3):
        analytics.addRead(PlateRead(plate="A123BC77", channel=channel,
                                    timeMs=int(clock.seconds() * 1000)))
        clock.advance(0.1)
    clock.advance(10)


def test_events_of_a_named_channel_carry_its_name_last_on_the_wire():
    analytics, clock, events, _ = analyticsWith({
        "Analytics.SkipFirstResults": 0, "Channel:3.Name": "Gate north"})
    passBy(analytics, clock, 3)
    passBy(analytics, clock, 4)
    named = [e for e in events if e.channel == 3]
    assert {e.state for e in named} >= {EventState.DETECTED, EventState.LOST}
    for event in named:
        assert event.channelName == "Gate north"
        assert eventPairs(event, 1)[-1] == ("ChannelName", "Gate north")
    for event in (e for e in events if e.channel == 4):
        assert event.channelName is None
        assert "ChannelName" not in dict(eventPairs(event, 1))


def test_a_renamed_channel_names_the_events_made_after_the_change():
    analytics, clock, events, store = analyticsWith({
        "Analytics.SkipFirstResults": 0, "Channel:0.Name": "Old"})
    passBy(analytics, clock, 0)
    store.update({"Channel:0.Name": "New"})
    passBy(analytics, clock, 0)
    assert [e.channelName for e in events if e.state is EventState.LOST] \
        == ["Old", "New"]


@pytest.mark.parametrize("bad,message", [
    ("x" * 65, "at most 64 characters"),
    ("Gate\u202enorth", "U+202E"), ("Gate\u200b", "U+200B")])
def test_a_channel_name_that_would_mislead_is_refused(bad, message):
    with pytest.raises(SettingsError) as caught:
        Settings().withChanges({"Channel:1.Name": bad})
    assert message in caught.value.errors["Channel:1.Name"]


def test_a_collected_event_keeps_the_sites_channel_name():
    analytics, clock, events, _ = analyticsWith({
        "Analytics.SkipFirstResults": 0, "Channel:2.Name": "Entry"})
    passBy(analytics, clock, 2)
    lost = events[-1]
    payload = encodeEvent(lost, 5, 17)
    assert json.loads(payload)["ChannelName"] == "Entry"
    collected = decodeEvent("numberok/5/events/2/0", payload)
    assert collected.event.channelName == "Entry"
    assert eventPairs(collected.event, 1) == eventPairs(lost, 5)


@pytest.mark.parametrize("value,message", [
    (7, "must be a string"), ("a\u202eb", "U+202E"),
    ("n" * 100, "at most 64")])
def test_a_bad_collected_channel_name_is_named(value, message):
    analytics, clock, events, _ = analyticsWith({
        "Analytics.SkipFirstResults": 0})
    passBy(analytics, clock, 2)
    body = json.loads(encodeEvent(events[-1], 5, 17))
    body["ChannelName"] = value
    with pytest.raises(ReadFormatError) as caught:
        decodeEvent("numberok/5/events/2/0", json.dumps(body).encode())
    assert caught.value.field == "ChannelName"
    assert message in str(caught.value)
