"""
The central side of MQTT: other instances' events in (C{Collect = 1}) and
raw reads in (C{Reads = <topic filter>}), over one persistent session.

Collected events are handed to the server's event sink (publisher and
journal) with their origin's C{SystemId} and C{RuntimeID} unchanged.
Exactly once at the NumberOk client: a message whose key (L{SeenKeys}) was
already handed on is dropped; the key is written to disk before the
message is acknowledged, so neither a redelivery by the broker nor a
restart of this instance repeats an event (docs/mqtt.rst, "Guarantees").

What arrives from the broker is input from outside: a message over
L{MqttCollector.maxMessageBytes} is refused (by the broker already, since
the CONNECT says so), a bad one is counted and logged at a bounded rate,
an event carrying our own C{SystemId} is dropped loudly (two instances
configured with the same C{SystemId} would otherwise lose everything
silently), and holes in a site's journal ids are asked for again
(L{numberok.mqtt.gaps}), from where the site's retained info message
(L{numberok.mqtt.info}) says it started when the collector first hears of
it.  After a start, collection waits up to
L{MqttCollector.holdSec} for as many NumberOk clients as were subscribed at
the last stop, so the backlog the broker kept is not handed to nobody.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Optional

from paho.mqtt import client as paho
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from numberok.interfaces import IEventSink, IPlateReadSink
from numberok.metrics import Metrics
from numberok.mqtt.gaps import Gaps, Hole, republishTopic
from numberok.mqtt.info import decodeInfo, infoFilter
from numberok.mqtt.payload import collectFilter, decodeEvent
from numberok.mqtt.quiet import QuietLog
from numberok.mqtt.seen import SeenKeys, SeenStore
from numberok.mqtt.service import MqttService
from numberok.settings.keys import MQTT_COLLECT, MQTT_READS
from numberok.sources import handOver
from numberok.sources.formats import (ReadFormatError, decodeReadLine,
                                      parseReadObject)
from numberok.threads import ServiceThreads

SEEN_NAME = "mqtt-seen.sqlite"


class MqttCollector(MqttService):
    """
    Subscribes to other instances' events and/or to raw reads.

    @ivar maxMessageBytes: larger messages are refused (MQTT 5's Maximum
        Packet Size in the CONNECT, so the broker does not send them; and
        checked again on arrival).  Room for the largest picture an
        event may carry (8 MiB as base64) and its plate crop.
    @ivar window: messages the broker may send before we acknowledge
        (MQTT 5's Receive Maximum): acknowledgements wait for the
        duplicate keys' write, so a window wider than Mosquitto's default
        20 keeps the broker sending meanwhile.
    @ivar holdSec: after a start, collection waits at most this long for
        the NumberOk clients subscribed at the last stop to come back.
    @ivar gapCheckInterval: seconds between two looks for holes whose
        republish did not come.
    """

    name = "mqtt-collector"
    log = Logger()
    maxMessageBytes = 12 * 1024 * 1024
    window = 200
    holdSec = 5.0
    holdPoll = 0.1
    gapCheckInterval = 5.0

    def __init__(self, store: Any, sink: Optional[IEventSink] = None,
                 readSink: Optional[IPlateReadSink] = None,
                 statePath: Optional[str] = None,
                 metrics: Optional[Metrics] = None,
                 reactor: Optional[IReactorTime] = None,
                 broker: Optional[str] = None,
                 clients: Optional[Callable[[], int]] = None) -> None:
        """
        @param store: the L{numberok.settings.SettingsStore}, read at start.
        @param sink: takes collected events (the server's event fan-out:
            publisher and journal).
        @param readSink: takes reads from the C{Reads} topic (the
            analytics).
        @param statePath: the folder for C{mqtt-seen.sqlite} (the journal's
            folder); L{None} remembers duplicates in memory only.
        @param broker: C{--mqtt}: replaces C{[Mqtt] Broker} when given.
        @param clients: how many NumberOk clients are subscribed now (the
            hold after a start waits for as many as at the last stop);
            L{None}: no hold.
        """
        MqttService.__init__(self, store, metrics, reactor, broker)
        self.sink = sink
        self.readSink = readSink
        self.statePath = statePath
        self._threads = ServiceThreads("numberok-mqtt-seen", 1,
                                       reactor=reactor)
        self._store: Optional[SeenStore] = None
        self.seen = SeenKeys()
        self._batch: list[tuple[int, str]] = []
        self._acks: list[tuple[paho.Client, int, int]] = []
        self._forgotten: list[int] = []
        self._writing: Optional[Deferred] = None
        self.clients = clients
        self.gaps = Gaps()
        self._quiet: Optional[QuietLog] = None
        self._holding: Any = None
        self._gapCheck: Any = None

    @property
    def enabled(self) -> bool:
        return bool(self.broker) and (bool(self._setting(MQTT_COLLECT))
                                 or bool(self._setting(MQTT_READS)))

    # -- life cycle --------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        if not self.enabled:
            return
        self._readStartSettings()
        self._quiet = QuietLog(self.log, self.reactor)
        self.eventsFilter = (collectFilter(self.prefix)
                             if self._setting(MQTT_COLLECT) else None)
        self.infoFilter = (infoFilter(self.prefix)
                           if self._setting(MQTT_COLLECT) else None)
        self.readsFilter = self._setting(MQTT_READS) or None
        self.connection = self._makeConnection(
            "collect", "-collect", False, self._configure, self._connected,
            self._disconnected, self.maxMessageBytes + 1024, self.window)
        self._threads.start()
        path = (os.path.join(self.statePath, SEEN_NAME)
                if self.statePath else None)
        d = self._threads.run(self._openInThread, path)

        def opened(result: tuple) -> None:
            loaded, clientsBefore = result
            self.seen = SeenKeys(loaded)
            for systemId, journalId in self.seen.newestLost().items():
                self.gaps.seed(systemId, journalId)
            self._hold(clientsBefore or 0, self.reactor.seconds())

        def failed(f: Any) -> None:
            self.log.critical(
                "mqtt: duplicate memory {path} cannot be opened ({error}); "
                "not collecting", path=path, error=f.getErrorMessage())
        d.addCallbacks(opened, failed)
        self._opening = d

    def _openInThread(self, path: Optional[str]) -> tuple:
        if path is not None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        self._store = SeenStore(path)
        return (self._store.load(SeenKeys.perSystem, SeenKeys.maxSystems),
                self._store.readMeta("clients"))

    def _hold(self, waitFor: int, since: float) -> None:
        """Connect once C{waitFor} NumberOk clients are subscribed, or
        L{holdSec} after the start, whichever comes first."""
        self._holding = None
        if self.connection is None:
            return
        now = self.reactor.seconds()
        present = self.clients() if self.clients is not None else 0
        if present >= waitFor or now - since >= self.holdSec:
            if waitFor:
                self.log.info("mqtt: collecting, {present} of {before} "
                              "NumberOk clients back after {after:.1f} s",
                              present=present, before=waitFor,
                              after=now - since)
            self.connection.start()
            self._gapCheck = LoopingCall(self._expireGaps)
            self._gapCheck.clock = self.reactor
            self._gapCheck.start(self.gapCheckInterval, now=False)
            return
        self._holding = self.reactor.callLater(self.holdPoll, self._hold,
                                               waitFor, since)

    def stopService(self) -> Deferred:
        """Close the session (the broker keeps it and queues for us),
        then finish the key write in progress and close the table."""
        Service.stopService(self)
        if self.connection is None:
            return succeed(None)
        if self._holding is not None and self._holding.active():
            self._holding.cancel()
        if self._gapCheck is not None and self._gapCheck.running:
            self._gapCheck.stop()
        clients = self.clients() if self.clients is not None else 0
        connection, self.connection = self.connection, None
        d = self._opening.addBoth(lambda _: connection.stop())
        d.addBoth(lambda _: self._writing)
        d.addBoth(lambda _: self._threads.run(self._store.writeMeta,
                                              "clients", clients)
                  if self._store is not None and self._threads.running
                  else None)
        d.addBoth(lambda _: self._threads.run(self._closeInThread)
                  if self._threads.running else None)
        d.addBoth(lambda _: self._threads.stop())
        return d

    def _closeInThread(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- connection callbacks -----------------------------------------------

    def _configure(self, client: paho.Client) -> None:
        client.manual_ack_set(True)
        client.on_message = self._onMessage

    def _connected(self, client: paho.Client) -> None:
        # At most QoS 1: paho keeps the state of an incoming QoS 2 message
        # in memory only, so a restart between PUBREC and PUBREL would
        # lose it; QoS 1 plus our duplicate removal is exactly once and
        # survives restarts (docs/mqtt.rst, "Guarantees").
        qos = min(self.qos, 1)
        topics = [(f, qos) for f in (self.eventsFilter, self.infoFilter,
                                     self.readsFilter) if f]
        client.subscribe(topics)

    def _disconnected(self) -> None:
        # Acknowledgements still waiting for their key's write belong to
        # the dead connection and are skipped then; the broker sends those
        # messages again and the keys make them duplicates.
        pass

    # -- messages ------------------------------------------------------------

    def _onMessage(self, client: paho.Client, userdata: Any,
                   message: paho.MQTTMessage) -> None:
        topic = message.topic
        try:
            if len(message.payload) > self.maxMessageBytes:
                self._bad("size", "mqtt: message of {size} bytes on {topic} "
                          "refused: over {limit}", size=len(message.payload),
                          topic=topic, limit=self.maxMessageBytes)
            elif self.eventsFilter and paho.topic_matches_sub(
                    self.eventsFilter, topic):
                if self._collect(topic, message.payload, client,
                                 message.mid, message.qos):
                    return
            elif self.infoFilter and paho.topic_matches_sub(
                    self.infoFilter, topic):
                self._info(client, topic, message.payload)
            elif self.readsFilter:
                self._reads(topic, message.payload)
        except Exception:
            self.log.failure("mqtt: message on {topic}", topic=topic)
        client.ack(message.mid, message.qos)

    def _collect(self, topic: str, payload: bytes, client: paho.Client,
                 mid: int, qos: int) -> bool:
        """Hand a foreign event on.  @return: True when its acknowledgement
        waits for the key's write."""
        try:
            collected = decodeEvent(topic, payload, self.prefix)
        except ReadFormatError as e:
            self._bad("event", "mqtt: bad event message on {topic}: {error}",
                      topic=topic, error=str(e))
            return False
        if collected.systemId == self.ownId:
            self.metrics.mqttOwnDropped.inc()
            self._quiet.warn(
                "own", "mqtt: event on {topic} dropped as our own: it "
                "carries our SystemId {systemId}; does another instance use "
                "the same [System] SystemId?", topic=topic,
                systemId=self.ownId)
            return False
        item = (collected.systemId, collected.key)
        if item in self.seen:
            self.metrics.mqttDuplicates.inc()
            return False
        try:
            if self.sink is not None:
                self.sink.publish(collected.event)
        except Exception:
            self.log.failure("mqtt: event sink failed on {topic}",
                             topic=topic)
        forgotten = self.seen.add(*item)
        if forgotten is not None:
            self._forgotten.append(forgotten)
        if collected.journalId is not None:
            self._observeId(client, collected.systemId, collected.journalId,
                            collected.after)
        self.metrics.mqttCollected.inc()
        self._batch.append(item)
        self._acks.append((client, mid, qos))
        self._flush()
        return True

    def _flush(self) -> None:
        """Write the keys of the messages handed on, then acknowledge
        them; one write at a time, in arrival order."""
        if self._writing is not None or not self._batch:
            return
        batch, self._batch = self._batch, []
        acks, self._acks = self._acks, []
        forgotten, self._forgotten = self._forgotten, []
        d = self._threads.run(self._store.add, batch, SeenKeys.perSystem,
                              forgotten)
        self._writing = d

        def written(_: object) -> None:
            current = self.connection.client if self.connection else None
            for client, mid, qos in acks:
                if client is current:
                    client.ack(mid, qos)

        def failed(f: Any) -> None:
            # Not acknowledged: the broker sends them again after a
            # reconnect; the memory still drops them as duplicates.
            self.log.error("mqtt: duplicate keys not saved: {error}",
                           error=f.getErrorMessage())

        def done(_: object) -> None:
            self._writing = None
            self._flush()
        d.addCallbacks(written, failed)
        d.addBoth(done)

    def _reads(self, topic: str, payload: bytes) -> None:
        try:
            reads = parseReadObject(decodeReadLine(payload),
                                    int(self.reactor.seconds() * 1000))
        except ReadFormatError as e:
            self.metrics.readErrors.labels(source="mqtt").inc()
            self._quiet.warn("read", "mqtt: bad read on {topic}: {error}",
                             topic=topic, error=str(e))
            return
        where = "mqtt " + topic
        for read in reads:
            if self.readSink is not None:
                handOver(self.readSink, dataclasses.replace(read,
                                                            source="mqtt"),
                         where)

    # -- what goes wrong -----------------------------------------------------

    def _bad(self, kind: str, format: str, **fields: Any) -> None:
        """A message we cannot use: counted, logged at a bounded rate."""
        self.metrics.mqttBadMessages.inc()
        self._quiet.warn(kind, format, **fields)

    def _observeId(self, client: paho.Client, systemId: int,
                   journalId: int, after: Optional[int]) -> None:
        hole, givenUp = self.gaps.observe(systemId, journalId,
                                          self.reactor.seconds(), after)
        if givenUp:
            self.metrics.mqttGapEvents.labels(outcome="unfilled").inc(givenUp)
        if hole is None:
            return
        self.metrics.mqttGapEvents.labels(outcome="asked").inc(hole.size)
        self.log.warn("mqtt: SystemId {systemId} journal ids {first}..{last} "
                      "never arrived; asking the site to publish them again",
                      systemId=systemId, first=hole.first, last=hole.last)
        self._askFrom(client, systemId, hole.first)

    def _askFrom(self, client: paho.Client, systemId: int,
                 journalId: int) -> None:
        client.publish(republishTopic(self.prefix, systemId),
                       json.dumps({"from": journalId}).encode("ascii"),
                       qos=1)

    def _info(self, client: paho.Client, topic: str, payload: bytes) -> None:
        """A site's retained info: the first time we hear of the site, ask
        for its Lost events from where it started publishing (those sent
        before our session existed never reached us)."""
        try:
            info = decodeInfo(topic, payload, self.prefix)
        except ReadFormatError as e:
            self._bad("info", "mqtt: bad info message on {topic}: {error}",
                      topic=topic, error=str(e))
            return
        if info.systemId == self.ownId:
            return
        start, hole, unfillable = self.gaps.introduce(
            info.systemId, info.firstId, info.lastId, info.oldestId,
            self.reactor.seconds())
        if unfillable:
            self.metrics.mqttGapEvents.labels(outcome="unfilled").inc(
                unfillable)
            self.log.error(
                "mqtt: SystemId {systemId} published from journal id "
                "{first} on, but its journal keeps ids from {oldest} on: "
                "{count} Lost events cannot reach this instance",
                systemId=info.systemId, first=info.firstId,
                oldest=info.oldestId, count=unfillable)
        if start is None:
            return
        if hole is not None:
            self.metrics.mqttGapEvents.labels(outcome="asked").inc(hole.size)
        self.log.info("mqtt: first heard of SystemId {systemId} (journal "
                      "epoch {epoch}, published from id {first}); asking it "
                      "to publish again from id {start}",
                      systemId=info.systemId, epoch=info.epoch,
                      first=info.firstId, start=start)
        self._askFrom(client, info.systemId, start)

    def _expireGaps(self) -> None:
        for systemId, hole in self.gaps.expire(self.reactor.seconds()):
            self._unfilled(systemId, hole)
        self.metrics.mqttGapOpen.set(self.gaps.open())

    def _unfilled(self, systemId: int, hole: Hole) -> None:
        self.metrics.mqttGapEvents.labels(outcome="unfilled").inc(hole.size)
        self.log.error("mqtt: SystemId {systemId} journal ids {first}..{last} "
                       "({count} Lost events) were not published again "
                       "within {patience:.0f} s: lost for this instance "
                       "(older than the site's journal retention, or the "
                       "site is gone)", systemId=systemId, first=hole.first,
                       last=hole.last, count=hole.size,
                       patience=self.gaps.patience)
