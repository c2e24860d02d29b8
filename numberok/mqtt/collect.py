"""
The central side of MQTT: other instances' events in (C{Collect = 1}) and
raw reads in (C{Reads = <topic filter>}), over one persistent session.

Collected events are handed to the server's event sink (publisher and
journal) with their origin's C{SystemId} and C{RuntimeID} unchanged.
Exactly once at the NumberOk client: a message whose key (L{SeenKeys}) was
already handed on is dropped; the key is written to disk before the
message is acknowledged, so neither a redelivery by the broker nor a
restart of this instance repeats an event (docs/mqtt.rst, "Guarantees").
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional

from paho.mqtt import client as paho
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from numberok.interfaces import IEventSink, IPlateReadSink
from numberok.metrics import Metrics
from numberok.mqtt.payload import collectFilter, decodeEvent
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
    """

    name = "mqtt-collector"
    log = Logger()

    def __init__(self, store: Any, sink: Optional[IEventSink] = None,
                 readSink: Optional[IPlateReadSink] = None,
                 statePath: Optional[str] = None,
                 metrics: Optional[Metrics] = None, reactor: Any = None,
                 broker: Optional[str] = None) -> None:
        """
        @param store: the L{numberok.settings.SettingsStore}, read at start.
        @param sink: takes collected events (the server's event fan-out:
            publisher and journal).
        @param readSink: takes reads from the C{Reads} topic (the
            analytics).
        @param statePath: the folder for C{mqtt-seen.sqlite} (the journal's
            folder); L{None} remembers duplicates in memory only.
        @param broker: C{--mqtt}: replaces C{[Mqtt] Broker} when given.
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
        self._writing: Optional[Deferred] = None

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
        self.eventsFilter = (collectFilter(self.prefix)
                             if self._setting(MQTT_COLLECT) else None)
        self.readsFilter = self._setting(MQTT_READS) or None
        self.connection = self._makeConnection(
            "collect", "-collect", False, self._configure, self._connected,
            self._disconnected)
        self._threads.start()
        path = (os.path.join(self.statePath, SEEN_NAME)
                if self.statePath else None)
        d = self._threads.run(self._openInThread, path)

        def opened(loaded: dict) -> None:
            self.seen = SeenKeys(loaded)
            if self.connection is not None:
                self.connection.start()

        def failed(f: Any) -> None:
            self.log.critical(
                "mqtt: duplicate memory {path} cannot be opened ({error}); "
                "not collecting", path=path, error=f.getErrorMessage())
        d.addCallbacks(opened, failed)
        self._opening = d

    def _openInThread(self, path: Optional[str]) -> dict:
        if path is not None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        self._store = SeenStore(path)
        return self._store.load(SeenKeys.perSystem)

    def stopService(self) -> Deferred:
        """Close the session (the broker keeps it and queues for us),
        then finish the key write in progress and close the table."""
        Service.stopService(self)
        if self.connection is None:
            return succeed(None)
        connection, self.connection = self.connection, None
        d = self._opening.addBoth(lambda _: connection.stop())
        d.addBoth(lambda _: self._writing)
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
        topics = [(f, qos) for f in (self.eventsFilter, self.readsFilter)
                  if f]
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
            if self.eventsFilter and paho.topic_matches_sub(
                    self.eventsFilter, topic):
                if self._collect(topic, message.payload, client,
                                 message.mid, message.qos):
                    return
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
            collected = decodeEvent(topic, payload)
        except ReadFormatError as e:
            self.metrics.mqttBadMessages.inc()
            self.log.warn("mqtt: bad event message on {topic}: {error}",
                          topic=topic, error=str(e))
            return False
        if collected.systemId == self.ownId:
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
        self.seen.add(*item)
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
        d = self._threads.run(self._store.add, batch, SeenKeys.perSystem)
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
            self.log.warn("mqtt: bad read on {topic}: {error}", topic=topic,
                          error=str(e))
            return
        where = "mqtt " + topic
        for read in reads:
            if self.readSink is not None:
                handOver(self.readSink, dataclasses.replace(read,
                                                            source="mqtt"),
                         where)
