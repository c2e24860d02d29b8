"""
A site's side of MQTT: every event as one JSON message, Lost events at
least once through the journal's outbox, the others live only, and a
retained online/offline status (docs/mqtt.rst).

The publisher is a thin output on an L{Outbox} (the journal package's
durable consumer: persisted cursor, paging, window, restart from the
cursor): the outbox hands it journal rows in id order and it publishes
each Lost at QoS >= 1; paho's C{on_publish} (the broker's acknowledgment)
is what tells the outbox a row is delivered.  A broker outage, a cut or a
restart of numberok starts again from the cursor (so a few messages may go
twice: the collecting side removes them).

So that a collector can tell what it should have (L{numberok.mqtt.gaps}):
a retained info message says where the outbox stands (L{numberok.mqtt.info}),
and a Lost message carries C{after} when the journal rows just before it
were not ours (collected from other instances, never published here).
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from paho.mqtt import client as paho
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from numberok.events import BBox, EventState, PlateEvent
from numberok.interfaces import IEventSink, IOutboxOutput
from numberok.journal.fields import JournalEntry
from numberok.journal.outbox import Outbox
from numberok.metrics import Metrics
from numberok.mqtt.files import CURSOR_NAME, loadPictures
from numberok.mqtt.gaps import republishTopic
from numberok.mqtt.info import SiteInfo, encodeInfo, infoTopic
from numberok.mqtt.payload import encodeEvent, eventTopic, statusTopic
from numberok.mqtt.service import MqttService
from numberok.settings.keys import (
    MQTT_PICTURES,
    MQTT_PUBLISH,
    SYSTEM_TEST_MODE,
)
from numberok.threads import ServiceThreads


class NotPublished(Exception):
    """paho refused a message (not connected, its queue full)."""


@implementer(IEventSink, IOutboxOutput)
class MqttPublisher(MqttService):
    """
    Publishes this instance's events to the broker.

    @ivar window: Lost messages sent and not yet acknowledged, at most
        (the outbox's window).
    @ivar pageSize: journal rows read (and pictures held) at once.
    @ivar pollInterval: seconds between two looks at the journal for rows
        the outbox has not seen (besides the look after each Lost).
    @ivar maxLive: live events waiting for their pictures, at most; more
        are dropped and counted.
    @ivar outbox: the L{Outbox} Lost events come from (L{None} without a
        journal, or before start).
    @ivar infoInterval: seconds between two looks at whether the retained
        info message must be published again.
    """

    name = "mqtt-publisher"
    log = Logger()
    window = 100
    pageSize = 20
    pollInterval = 1.0
    maxLive = 100
    infoInterval = 1.0

    def __init__(self, store: Any, journal: Any = None,
                 metrics: Optional[Metrics] = None,
                 reactor: Optional[IReactorTime] = None,
                 broker: Optional[str] = None,
                 cursorPath: Optional[str] = None) -> None:
        """
        @param store: the L{numberok.settings.SettingsStore}; C{[Mqtt]} and
            C{[System]} are read at start.
        @param journal: the L{numberok.journal.Journal} Lost events are read
            from; L{None} (no journal) publishes Lost live, without the
            at-least-once guarantee.
        @param broker: C{--mqtt}: replaces C{[Mqtt] Broker} when given.
        @param cursorPath: the outbox cursor file; default beside the
            journal's database.
        """
        MqttService.__init__(self, store, metrics, reactor, broker)
        self.journal = journal
        self.cursorPath = cursorPath or (
            os.path.join(journal.path, CURSOR_NAME) if journal is not None
            else None)
        self._threads = ServiceThreads("numberok-mqtt-pictures", 1,
                                       reactor=reactor)
        self.outbox: Optional[Outbox] = None
        # paho mid -> its row's acknowledgment and journal id
        self._mids: dict[int, tuple[Deferred, int]] = {}
        self._generation = 0
        self._live = 0
        self._after: Optional[int] = None   # rows after it were not ours
        # own rows sent with an after, until acknowledged: a resend after
        # a cut (the outbox restarts past the rows that were not ours)
        # says the same
        self._afters: dict[int, int] = {}
        self._lastOwn: Optional[int] = None  # newest own id acknowledged
        self._infoSent: Optional[bytes] = None
        self._infoLoop: Optional[LoopingCall] = None

    @property
    def enabled(self) -> bool:
        return bool(self.broker) and self._setting(MQTT_PUBLISH) != "none"

    @property
    def ready(self) -> bool:
        """L{IOutboxOutput}: connected to the broker."""
        return bool(self.connection and self.connection.isConnected)

    # -- life cycle --------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        if not self.enabled:
            return
        self._readStartSettings()
        self.mode = self._setting(MQTT_PUBLISH)
        self.pictures = bool(self._setting(MQTT_PICTURES))
        self.testMode = bool(self._setting(SYSTEM_TEST_MODE))
        self.status = statusTopic(self.prefix, self.ownId)
        self.republishTopic = republishTopic(self.prefix, self.ownId)
        self.infoTopic = infoTopic(self.prefix, self.ownId)
        self._threads.start()
        self.connection = self._makeConnection(
            "publish", "", True, self._configure, self._connected,
            self._disconnected)
        self.connection.start()
        if self.journal is not None:
            self.outbox = Outbox(
                "mqtt", self.journal, self, self.cursorPath, self._threads,
                self.metrics, self.reactor,
                backlog=self.metrics.mqttOutboxBacklog, window=self.window,
                pageSize=self.pageSize, pollInterval=self.pollInterval)
            self.outbox.start()
            self._infoLoop = LoopingCall(self._publishInfo)
            self._infoLoop.clock = self.reactor
            self._infoLoop.start(self.infoInterval, now=False)

    def stopService(self) -> Deferred:
        """Publish the retained C{offline}, disconnect cleanly (no Last
        Will), then persist the cursor and stop the thread."""
        Service.stopService(self)
        if self.connection is None:
            return succeed(None)
        if self._infoLoop is not None and self._infoLoop.running:
            self._infoLoop.stop()
        self._infoLoop = None
        connection, self.connection = self.connection, None
        outbox, self.outbox = self.outbox, None
        d = connection.stop(self._goodbye)
        if outbox is not None:
            d.addBoth(lambda _: outbox.stop())
        d.addBoth(lambda _: self._threads.stop())
        return d

    def _goodbye(self, client: paho.Client) -> None:
        client.publish(self.status, b"offline", qos=1, retain=True)

    def republishFrom(self, journalId: int) -> None:
        """
        Publish the journal's Lost events again from C{journalId} on (the
        outbox's cursor moves back; docs/mqtt.rst).

        @raise RuntimeError: without a journal, or before the outbox has
            read its cursor.
        """
        if self.outbox is None:
            raise RuntimeError("no outbox: the publisher has no journal or "
                               "is not running")
        self.outbox.rewind(journalId)

    def _onRepublish(self, client: paho.Client, userdata: Any,
                     message: paho.MQTTMessage) -> None:
        """A collector saw a hole in our ids (mqtt/gaps.py) and asks for
        C{{"from": N}} again: ids not sent yet, or before the journal's
        retention, change nothing."""
        try:
            value = json.loads(message.payload.decode("utf-8"))["from"]
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < 1:
                raise ValueError("from must be a journal id >= 1")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            self.log.warn("mqtt: republish request refused: {error}",
                          error=str(e)[:200])
            return
        self.log.info("mqtt: a collector asked for journal ids from {id} "
                      "again", id=value)
        try:
            self.republishFrom(value)
        except RuntimeError as e:
            self.log.warn("mqtt: republish request not served yet: {error}",
                          error=str(e))

    # -- connection callbacks -----------------------------------------------

    def _configure(self, client: paho.Client) -> None:
        client.will_set(self.status, b"offline", qos=1, retain=True)
        client.max_inflight_messages_set(self.window + 10)
        client.max_queued_messages_set(self.window + self.maxLive + 10)
        client.on_publish = self._onPublish

    def _connected(self, client: paho.Client) -> None:
        client.publish(self.status, b"online", qos=1, retain=True)
        self._infoSent = None
        self._publishInfo()
        if self.outbox is not None:
            client.message_callback_add(self.republishTopic,
                                        self._onRepublish)
            client.subscribe(self.republishTopic, 1)
            self.outbox.pump()

    def _disconnected(self) -> None:
        # What was in flight is resent from the cursor after the reconnect.
        self._generation += 1
        self._mids.clear()
        if self.outbox is not None:
            self.outbox.reset()

    # -- IEventSink ----------------------------------------------------------

    def publish(self, event: PlateEvent) -> None:
        """
        Take a live event.  A Lost only wakes the outbox (the journal has
        it, or soon will); Detected/Updated go out now if connected
        (C{Publish = all}), else they are dropped and counted.  Events
        collected from other instances are never published again.
        """
        if self.connection is None or event.systemId is not None:
            return
        if event.state is EventState.LOST and self.journal is not None:
            if self.outbox is not None:
                self.reactor.callLater(0, self.outbox.wake)
            return
        if self.mode != "all" and event.state is not EventState.LOST:
            return
        if not self.connection.isConnected:
            self.metrics.mqttDropped.labels(reason="disconnected").inc()
            return
        if self._live >= self.maxLive:
            self.metrics.mqttDropped.labels(reason="busy").inc()
            return
        self._live += 1
        generation = self._generation
        d = self._loadPictures(event.frame, None, event.bbox)

        def send(pictures: tuple) -> None:
            self._live -= 1
            if generation == self._generation:
                self._send(event, None, pictures, self.qos)
            else:
                self.metrics.mqttDropped.labels(reason="disconnected").inc()
        d.addCallback(send)
        d.addErrback(lambda f: self.log.failure("mqtt: live event", f))

    def _loadPictures(self, frame: Optional[bytes], path: Optional[str],
                      bbox: Optional[BBox]) -> Deferred:
        if not self.pictures or (frame is None and path is None):
            return succeed((None, None))
        return self._threads.run(loadPictures, frame, path, bbox)

    def _send(self, event: PlateEvent, journalId: Optional[int],
              pictures: tuple, qos: int, after: Optional[int] = None
              ) -> Optional[int]:
        client = self.connection.client if self.connection else None
        if client is None:
            return None
        payload = encodeEvent(event, self.ownId, journalId, pictures[0],
                              pictures[1], self.testMode, after)
        info = client.publish(eventTopic(self.prefix, self.ownId, event),
                              payload, qos=qos)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            self.metrics.mqttDropped.labels(reason="client").inc()
            self.log.warn("mqtt: event {runtimeId} not published: {error}",
                          runtimeId=event.runtimeId,
                          error=paho.error_string(info.rc))
            return None
        self.metrics.mqttPublished.labels(state=event.state.value).inc()
        return info.mid

    # -- IOutboxOutput -----------------------------------------------------

    def prepare(self, entry: JournalEntry) -> Deferred:
        """The row's pictures (when C{[Mqtt] Pictures} is on)."""
        if entry.systemId is not None:
            return succeed((None, None))
        path = (self.journal.screenshotPath(entry)
                if entry.hasScreenshot else None)
        return self._loadPictures(None, path, entry.toEvent().bbox)

    def send(self, entry: JournalEntry, prepared: tuple
             ) -> Optional[Deferred]:
        """Publish one Lost at QoS >= 1; its Deferred fires on the
        broker's acknowledgment.  Rows collected from other instances are
        not ours and not sent; the next own message says so (C{after})."""
        # The outbox hands rows in id order from its cursor: rows since
        # the last own one were all handed here.  After a rewind or a
        # reset an C{_after} at or above the row is stale.
        if self._after is not None and self._after >= entry.id:
            self._after = None
        if entry.systemId is not None:
            if self._after is None:
                self._after = entry.id - 1
            return None     # collected from another instance: not ours
        after, self._after = self._after, None
        if entry.id in self._afters:
            after = min(after if after is not None else entry.id,
                        self._afters[entry.id])
        elif after is not None and len(self._afters) < 2 * self.window:
            self._afters[entry.id] = after
        mid = self._send(entry.toEvent(), entry.id, prepared,
                         max(1, self.qos), after)
        if mid is None:
            return fail(NotPublished("paho refused journal id %d"
                                     % (entry.id,)))
        acked: Deferred = Deferred()
        self._mids[mid] = (acked, entry.id)
        return acked

    def _onPublish(self, client: paho.Client, userdata: Any, mid: int,
                   reasonCode: Any, properties: Any) -> None:
        waiting = self._mids.pop(mid, None)
        if waiting is not None:
            acked, entryId = waiting
            self._afters.pop(entryId, None)
            self._lastOwn = max(self._lastOwn or 0, entryId)
            self.metrics.mqttAcknowledged.inc()
            acked.callback(None)

    def _publishInfo(self) -> None:
        """The retained info message (L{numberok.mqtt.info}), when it
        changed or after a connect; not before the outbox knows its
        first id."""
        outbox = self.outbox
        client = self.connection.client if self.connection else None
        if outbox is None or outbox.firstId is None or client is None \
                or not self.ready:
            return
        payload = encodeInfo(SiteInfo(self.ownId, outbox.epoch or "",
                                      outbox.firstId, self._lastOwn,
                                      outbox.oldestId))
        if payload == self._infoSent:
            return
        info = client.publish(self.infoTopic, payload, qos=1, retain=True)
        if info.rc == paho.MQTT_ERR_SUCCESS:
            self._infoSent = payload

    def outboxState(self) -> dict[str, Any]:
        """For the admin page and tests: cursor, in flight, backlog."""
        state: dict[str, Any] = (
            self.outbox.state() if self.outbox is not None else
            {"acknowledged": None, "sent": 0, "inFlight": 0})
        state["connected"] = self.ready
        return state
