"""
The travel hint and the vehicle attributes, from every source that gives
them to every place an event goes: JSON ingest (both parse paths),
OpenALPR, Hikvision, the track's vote, the wire keys, the journal, MQTT,
and the real server end to end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.task import Clock

from helpers import makeEvent
from numberok.events import (EventState, MovementType, PlateRead,
                             VehicleAttributes, eventPairs)
from numberok.journal import Journal
from numberok.metrics import Metrics
from numberok.mqtt.payload import decodeEvent, encodeEvent
from numberok.sources.formats import (ReadFormatError, parseReadLine,
                                      parseReadObject, readToObject)
from numberok.sources.hikvision import parseAlarm
from numberok.vehicle import AttributeVote, checkAttribute

from tests.test_analytics import makeAnalytics

SAMPLES = Path(__file__).parent / "samples"
NOW = 1_764_000_000_000

ATTRIBUTES = {"vehicle": {"type": "sedan", "colour": "white",
                          "make": "Skoda", "model": "Octavia"},
              "plate_colour": "white"}


def line(**members) -> bytes:
    return json.dumps(dict({"plate": "A123BC77"}, **members)).encode()


# -- JSON ingest ---------------------------------------------------------------

def test_json_travel_hint_is_read_on_both_parse_paths():
    fast = parseReadLine(line(travel="leaving"), NOW)
    # An unknown member sends the line down the field-by-field path.
    slow = parseReadLine(line(travel="leaving", mine=1), NOW)
    assert fast[0].travel == slow[0].travel == "leaving"


def test_json_travel_other_than_approaching_or_leaving_is_refused():
    for bad in ("forward", 1, ["leaving"]):
        with pytest.raises(ReadFormatError) as e:
            parseReadLine(line(travel=bad), NOW)
        assert e.value.field == "travel"


def test_json_vehicle_attributes_are_read_on_both_parse_paths():
    expected = VehicleAttributes("sedan", "white", "Skoda", "Octavia",
                                 "white")
    [fast] = parseReadLine(line(**ATTRIBUTES), NOW)
    [slow] = parseReadLine(line(mine=1, **ATTRIBUTES), NOW)
    assert fast.vehicle == slow.vehicle == expected


def test_json_read_without_attributes_has_none():
    [read] = parseReadLine(line(), NOW)
    assert read.vehicle is None and read.travel is None


def test_json_unknown_or_empty_attribute_is_absent_not_a_guess():
    [read] = parseReadLine(line(vehicle={"colour": "unknown", "type": " "},
                                plate_colour="blue"), NOW)
    assert read.vehicle == VehicleAttributes(plateColour="blue")


def test_json_bad_vehicle_members_are_refused_naming_the_field():
    for members, field in (({"vehicle": "white"}, "vehicle"),
                           ({"vehicle": {"make": 7}}, "vehicle.make"),
                           ({"plate_colour": "x" * 65}, "plate_colour")):
        for extra in ({}, {"mine": 1}):
            with pytest.raises(ReadFormatError) as e:
                parseReadLine(line(**members, **extra), NOW)
            assert e.value.field == field


def test_recorded_read_with_travel_and_attributes_parses_back_the_same():
    read = PlateRead("A123BC77", NOW, travel="approaching", perVehicle=True,
                     vehicle=VehicleAttributes(colour="red",
                                               plateColour="yellow"))
    [again] = parseReadObject(readToObject(read), 0)
    assert again == read


# -- OpenALPR and Hikvision ----------------------------------------------------

def group(**members):
    obj = json.loads((SAMPLES / "openalpr_group.json").read_text())
    obj.update(members)
    return obj


@pytest.mark.parametrize("degrees, travel", [
    (0, "leaving"), (30, "leaving"), (350, "leaving"), (180, "approaching"),
    (140, "approaching"), (90, None), (270, None)])
def test_openalpr_travel_direction_gives_the_travel_hint(degrees, travel):
    [read] = parseReadObject(group(travel_direction=degrees), NOW)
    assert read.travel == travel


def test_openalpr_vehicle_takes_each_lists_first_candidate():
    vehicle = {"body_type": [{"name": "suv-standard", "confidence": 90}],
               "color": [{"name": "blue", "confidence": 70},
                         {"name": "black", "confidence": 20}],
               "make": [{"name": "bmw", "confidence": 80}],
               "make_model": [{"name": "bmw_x5", "confidence": 60}]}
    [read] = parseReadObject(group(vehicle=vehicle), NOW)
    assert read.vehicle == VehicleAttributes("suv-standard", "blue", "bmw",
                                             "bmw_x5")


def test_openalpr_bad_vehicle_is_refused_naming_the_field():
    with pytest.raises(ReadFormatError) as e:
        parseReadObject(group(vehicle={"color": "x" * 100}), NOW)
    assert e.value.field == "vehicle.color"


def test_hikvision_alarm_gives_vehicle_type_colour_and_plate_colour():
    body = (SAMPLES / "hikvision_anpr_vehicle.xml").read_bytes()
    alarm = parseAlarm("application/xml", body, NOW)
    assert alarm.read.vehicle == VehicleAttributes(
        type="vehicle", colour="black", plateColour="white")


def test_hikvision_alarm_with_unknown_colours_has_no_attributes():
    body = (SAMPLES / "hikvision_anpr_vehicle.xml").read_bytes()
    body = (body.replace(b"<plateColor>white", b"<plateColor>unknown")
            .replace(b"<color>black", b"<color>unknown")
            .replace(b"<vehicleType>vehicle</vehicleType>", b""))
    assert parseAlarm("application/xml", body, NOW).read.vehicle is None


def test_attribute_values_are_cleaned_and_unknowns_dropped():
    assert checkAttribute(" white\x00 ", "c") == "white"
    assert checkAttribute("Unknown", "c") is None
    assert checkAttribute(None, "c") is None


# -- the track, the event ------------------------------------------------------

def test_per_vehicle_json_sender_leaving_is_out():
    analytics, clock, events = makeAnalytics()
    [read] = parseReadLine(line(per_vehicle=True, travel="leaving"),
                           int(clock.seconds() * 1000))
    analytics.addRead(read)
    clock.advance(10)
    assert [(e.state, e.movement) for e in events] == [
        (EventState.DETECTED, MovementType.OUT),
        (EventState.LOST, MovementType.OUT)]


def test_attributes_are_voted_over_the_tracks_reads_like_the_plate():
    analytics, clock, events = makeAnalytics()
    colours = ["white", "white", "silver", None, "white"]
    for colour in colours:
        vehicle = (VehicleAttributes(colour=colour, type="sedan")
                   if colour else None)
        analytics.addRead(PlateRead("A123BC77", int(clock.seconds() * 1000),
                                    confidence=0.8, vehicle=vehicle))
        clock.advance(0.1)
    clock.advance(10)
    final = events[-1]
    assert final.state is EventState.LOST
    assert (final.vehicleColour, final.vehicleType) == ("white", "sedan")
    assert final.vehicleMake is None and final.plateColour is None


def test_vote_prefers_the_more_confident_value():
    vote = AttributeVote()
    vote.add(VehicleAttributes(colour="red"), 0.3)
    vote.add(VehicleAttributes(colour="red"), 0.3)
    vote.add(VehicleAttributes(colour="blue"), 0.9)
    assert vote.winner() == VehicleAttributes(colour="blue")


def test_wire_keys_come_last_and_only_when_known():
    event = makeEvent(EventState.LOST, vehicle=VehicleAttributes(
        colour="white", plateColour="yellow"))
    pairs = eventPairs(event, 1)
    assert pairs[-2:] == [("VehicleColour", "white"),
                          ("PlateColour", "yellow")]
    keys = [k for k, _ in eventPairs(makeEvent(EventState.LOST), 1)]
    assert not {"VehicleType", "VehicleColour", "VehicleMake",
                "VehicleModel", "PlateColour"} & set(keys)


def test_mqtt_message_carries_the_attributes_and_collects_them_back():
    event = makeEvent(EventState.LOST, vehicle=VehicleAttributes(
        type="bus", make="MAN", model="Lion's City"))
    payload = encodeEvent(event, 5, 9)
    obj = json.loads(payload)
    assert (obj["VehicleType"], obj["VehicleMake"]) == ("bus", "MAN")
    assert "VehicleColour" not in obj
    collected = decodeEvent("numberok/5/events/0/0", payload).event
    assert (collected.vehicleType, collected.vehicleMake,
            collected.vehicleModel, collected.vehicleColour) == (
        "bus", "MAN", "Lion's City", None)


@pytest_twisted.inlineCallbacks
def test_journal_stores_the_attributes_and_serves_them(tmp_path):
    from twisted.internet import reactor
    journal = Journal(str(tmp_path / "j"), clock=Clock(), metrics=Metrics())
    journal.startService()
    try:
        journal.publish(makeEvent(EventState.LOST, runtimeId=3,
                                  vehicle=VehicleAttributes(
                                      colour="green", plateColour="blue")))
        journal.publish(makeEvent(EventState.LOST, runtimeId=4))
        yield journal.whenIdle().addTimeout(10, reactor)
        page = yield journal.since(0, 10).addTimeout(10, reactor)
        first, second = page.entries
        assert first.toEvent().vehicle == VehicleAttributes(
            colour="green", plateColour="blue")
        assert second.toEvent().vehicle is None
        data = first.toJSON()
        assert (data["vehicle_colour"], data["plate_colour"],
                data["vehicle_type"]) == ("green", "blue", None)
        assert second.toJSON()["vehicle_colour"] is None
    finally:
        yield journal.stopService()


# -- end to end ----------------------------------------------------------------

def test_attributes_and_travel_reach_a_client_of_the_real_server(
        twistdServer):
    from test_e2e import SETTINGS, startClient
    server = twistdServer(settings=SETTINGS)
    server.waitForPort(server.eventPort)
    client = startClient(server.eventPort, "--json", "--count", "2")
    try:
        server.waitForLog("subscribed")
        server.sendReads([line(per_vehicle=True, travel="leaving",
                               **ATTRIBUTES)])
        out, err = client.communicate(timeout=30)
    finally:
        client.kill()
    assert client.returncode == 0, err
    events = [json.loads(text) for text in out.splitlines()]
    assert [e["State"] for e in events] == ["Detected", "Lost"]
    for event in events:
        assert event["MovementType"] == "Out"
        assert (event["VehicleType"], event["VehicleColour"],
                event["VehicleMake"], event["VehicleModel"],
                event["PlateColour"]) == ("sedan", "white", "Skoda",
                                          "Octavia", "white")
