"""
What a central instance can know of a site's Lost events it never had a
session for (issue 21 item 8, the case left open): the site's retained info
message says where its outbox started and what its journal still keeps, and
its messages say which journal ids are not its own (docs/mqtt.rst, "Gaps").
Through a real Mosquitto, as test_mqtt.py.
"""

from __future__ import annotations

import dataclasses
import json

import pytest_twisted
from conftest import FieldsClient, connectTo, waitFor
from test_mqtt import (  # noqa: F401  (fixtures used by name)
    FRAME,
    Central,
    Site,
    fastRetries,
    listener,
    lost,
    message,
    running,
    stopped,
    waitUntil,
)

from numberok.mqtt.gaps import Gaps
from numberok.mqtt.info import SiteInfo, decodeInfo, encodeInfo, infoTopic
from numberok.sources.formats import ReadFormatError


@pytest_twisted.inlineCallbacks
def test_a_central_started_after_the_site_published_gets_every_lost_once_at_its_client(  # noqa: E501
        server, mosquitto, tmp_path):
    count = 40
    site = Site(tmp_path, 7, mosquitto.endpoint).start()
    for rid in range(1, count + 1):      # the broker has no session for
        site.emit(lost(rid, FRAME, (10, 10, 50, 15)))   # the central yet
    yield waitFor(lambda: site.publisher.outboxState()["acknowledged"]
                  == count, 10)
    # Broker down while the central starts its first time, so its client
    # is surely subscribed before anything can reach it.
    mosquitto.stop()
    central = server(journalPath=tmp_path / "central", **{
        "System.SystemId": "1", "Mqtt.Broker": mosquitto.endpoint,
        "Mqtt.Collect": "1", "Mqtt.Publish": "none"})
    client = FieldsClient()
    yield connectTo(central.port, client)
    yield waitFor(lambda: central.publisher.subscriptions(), 5)
    mosquitto.start()
    yield waitFor(lambda: len(client.events) >= count, 15)
    yield waitFor(lambda: site.publisher.outboxState()["acknowledged"]
                  == count and site.publisher.outboxState()["inFlight"] == 0,
                  10)
    site.emit(lost(count + 1))           # a marker: every replay is in
    yield waitFor(lambda: len(client.events) >= count + 1, 10)
    ids = [int(e["RuntimeID"]) for e in client.events]
    assert sorted(ids) == list(range(1, count + 2))
    assert len(ids) == len(set(ids))
    metrics = central.metrics
    assert metrics.value("numberok_mqtt_gap_events_total",
                         outcome="asked") == count
    assert metrics.value("numberok_mqtt_gap_events_total",
                         outcome="unfilled") == 0
    assert central.mqttCollector.gaps.open() == 0
    yield site.stop()


@pytest_twisted.ensureDeferred
async def test_ids_older_than_the_sites_journal_are_counted_unfillable_at_first_contact(  # noqa: E501
        tmp_path, mosquitto, listener):
    outside = listener("numberok/5/republish")      # plays site 5
    await waitUntil(outside.ready.is_set, "the listener's subscription")
    info = SiteInfo(5, "e" * 32, firstId=1, lastId=10, oldestId=5)
    outside.client.publish("numberok/5/info", encodeInfo(info), qos=1,
                           retain=True).wait_for_publish(5)
    central = Central(tmp_path, mosquitto.endpoint).start()
    await waitUntil(lambda: outside.messages, "the republish request")
    assert [json.loads(m.payload) for m in outside.messages] == [
        {"from": 5}]
    metrics = central.metrics
    assert metrics.value("numberok_mqtt_gap_events_total",
                         outcome="unfilled") == 4
    assert metrics.value("numberok_mqtt_gap_events_total",
                         outcome="asked") == 6
    for journalId in range(5, 11):      # the site answers
        outside.client.publish("numberok/5/events/1/2", message(
            "5", journalId, id=journalId), qos=1)
    await waitUntil(lambda: len(central.sink.events) == 6, "ids 5..10")
    assert central.collector.gaps.open() == 0
    await stopped(central.collector)


@pytest_twisted.ensureDeferred
async def test_a_site_that_also_collects_shows_no_false_holes(
        tmp_path, mosquitto):
    site = Site(tmp_path, 5, mosquitto.endpoint).start()

    def collected(rid: int):
        return dataclasses.replace(lost(rid), systemId=41)

    # Journal ids 1..6: own, collected, collected, own, collected, own.
    for event in (lost(1), collected(2), collected(3), lost(4),
                  collected(5), lost(6)):
        site.emit(event)
    await waitUntil(lambda: site.publisher.outboxState()["acknowledged"]
                    == 6, "the site's outbox at 6")
    central = Central(tmp_path, mosquitto.endpoint).start()  # after them
    await waitUntil(lambda: len(central.sink.events) == 3, "own 1, 4, 6")
    site.emit(collected(7))
    site.emit(lost(8))                  # live, after collected id 7
    await waitUntil(lambda: len(central.sink.events) == 4, "own 8")
    assert sorted(e.runtimeId for e in central.sink.events) == [1, 4, 6, 8]
    assert central.collector.gaps.open() == 0
    assert central.metrics.value("numberok_mqtt_gap_events_total",
                                 outcome="unfilled") == 0
    await site.stop()
    await stopped(central.collector)


@pytest_twisted.ensureDeferred
async def test_the_site_publishes_where_its_outbox_started_retained(
        tmp_path, mosquitto, listener):
    site = Site(tmp_path, 3, mosquitto.endpoint).start()
    for rid in (1, 2):
        site.emit(lost(rid))
    await waitUntil(lambda: site.publisher.outboxState()["acknowledged"]
                    == 2, "the outbox at 2")
    late = listener("numberok/3/info")   # subscribes after: retained
    await waitUntil(lambda: late.messages and json.loads(
        late.messages[-1].payload)["last_id"] == 2, "the info at 2")
    got = json.loads(late.messages[-1].payload)
    assert got["SystemId"] == 3 and got["first_id"] == 1
    assert got["oldest_id"] == 1 and len(got["epoch"]) == 32
    await site.stop()


def test_gaps_from_an_info_message_and_ids_not_the_sites_own():
    gaps = Gaps()
    # Heard id 40 first, then the info: ask from the start for 1..39.
    assert gaps.observe(7, 40, 0.0) == (None, 0)
    start, hole, unfillable = gaps.introduce(7, 1, 40, 1, 0.0)
    assert (start, hole.first, hole.last, unfillable) == (1, 1, 39, 0)
    assert gaps.introduce(7, 1, 50, 1, 0.0) == (None, None, 0)  # once
    assert gaps.observe(7, 3, 1.0, after=0) == (None, 0)  # 1..2 not own
    assert gaps.open() == 36
    # Ids 41..44 were not its own: no hole; 45..46 missing are one.
    assert gaps.observe(7, 45, 1.0, after=40) == (None, 0)
    hole, _ = gaps.observe(7, 50, 1.0, after=46)
    assert (hole.first, hole.last) == (46, 46)
    # A site seeded from the duplicate memory is not introduced again.
    gaps.seed(8, 100)
    assert gaps.introduce(8, 1, 100, 1, 0.0) == (None, None, 0)
    # Nothing published since its start and nothing heard: ask anyway.
    assert gaps.introduce(9, 20, None, 25, 0.0) == (25, None, 5)


def test_info_messages_are_validated_like_events():
    good = SiteInfo(5, "a" * 32, 1, None, 3)
    assert decodeInfo(infoTopic("numberok", 5), encodeInfo(good),
                      "numberok") == good
    for topic, body in [
            ("numberok/6/info", encodeInfo(good)),          # another id
            ("numberok/5/info", b'{"SystemId": 5, "first_id": "--1"}'),
            ("numberok/5/info", b'{"SystemId": 5, "first_id": 0}'),
            ("numberok/5/info", b"[]"),
            ("numberok/5/info", b"x" * 2000)]:
        try:
            decodeInfo(topic, body, "numberok")
        except ReadFormatError:
            continue
        raise AssertionError("accepted %r on %s" % (body[:40], topic))

