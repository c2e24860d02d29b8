"""
A site's side of MQTT: every event as one JSON message, Lost events at
least once through the journal and a persisted cursor (the outbox), the
others live only, and a retained online/offline status (docs/mqtt.rst).

The outbox holds no events in memory beyond a bounded window: the journal
is the queue.  After each CONNACK it reads C{journal.since(cursor)} page by
page, publishes each Lost at QoS >= 1 and moves the cursor over an id only
once the broker acknowledged that id and every id before it.  The cursor
is a small file beside the journal, replaced atomically in a thread; a
broker outage, a cut or a restart of numberok starts again from it (so a
few messages may go twice: the collecting side removes them).
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from paho.mqtt import client as paho
from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from numberok.events import BBox, EventState, PlateEvent
from numberok.interfaces import IEventSink
from numberok.metrics import Metrics
from numberok.mqtt.files import (CURSOR_NAME, loadPictures, readCursor,
                                 writeCursor)
from numberok.mqtt.gaps import republishTopic
from numberok.mqtt.payload import encodeEvent, eventTopic, statusTopic
from numberok.mqtt.service import MqttService
from numberok.settings.keys import (
    MQTT_PICTURES,
    MQTT_PUBLISH,
    SYSTEM_TEST_MODE,
)
from numberok.threads import ServiceThreads


@implementer(IEventSink)
class MqttPublisher(MqttService):
    """
    Publishes this instance's events to the broker.

    @ivar window: Lost messages sent and not yet acknowledged, at most.
    @ivar pageSize: journal rows read (and pictures held) at once.
    @ivar pollInterval: seconds between two looks at the journal for rows
        the outbox has not seen (besides the look after each Lost).
    @ivar maxLive: live events waiting for their pictures, at most; more
        are dropped and counted.
    """

    name = "mqtt-publisher"
    log = Logger()
    window = 100
    pageSize = 20
    pollInterval = 1.0
    maxLive = 100

    def __init__(self, store: Any, journal: Any = None,
                 metrics: Optional[Metrics] = None, reactor: Any = None,
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
        self._poll: Optional[LoopingCall] = None
        self._acked: Optional[int] = None   # the persisted cursor's value
        self._sent = 0                      # newest id handed to paho
        self._outstanding: dict[int, bool] = {}   # id -> acknowledged
        self._mids: dict[int, int] = {}           # paho mid -> journal id
        self._generation = 0
        self._reading = False
        self._lastId = 0
        self._saving: Optional[Deferred] = None
        self._saved: Optional[int] = None   # the value in the file
        self._live = 0
        self._gapLogged = 0

    @property
    def enabled(self) -> bool:
        return bool(self.broker) and self._setting(MQTT_PUBLISH) != "none"

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
        self._threads.start()
        self.connection = self._makeConnection(
            "publish", "", True, self._configure, self._connected,
            self._disconnected)
        self.connection.start()
        if self.journal is not None:
            self._reading = True
            self._loadCursor().addBoth(self._cursorLoaded)
            self._poll = LoopingCall(self._pump)
            self._poll.clock = self.reactor
            self._poll.start(self.pollInterval, now=False)

    def stopService(self) -> Deferred:
        """Publish the retained C{offline}, disconnect cleanly (no Last
        Will), then persist the cursor and stop the thread."""
        Service.stopService(self)
        if self._poll is not None and self._poll.running:
            self._poll.stop()
        self._poll = None
        if self.connection is None:
            return succeed(None)
        connection, self.connection = self.connection, None
        d = connection.stop(self._goodbye)
        d.addBoth(lambda _: self._flushCursor())
        d.addBoth(lambda _: self._threads.stop())
        return d

    def _goodbye(self, client: paho.Client) -> None:
        client.publish(self.status, b"offline", qos=1, retain=True)

    # -- connection callbacks -----------------------------------------------

    def _configure(self, client: paho.Client) -> None:
        client.will_set(self.status, b"offline", qos=1, retain=True)
        client.max_inflight_messages_set(self.window + 10)
        client.max_queued_messages_set(self.window + self.maxLive + 10)
        client.on_publish = self._onPublish

    def _connected(self, client: paho.Client) -> None:
        client.publish(self.status, b"online", qos=1, retain=True)
        if self.journal is not None:
            client.message_callback_add(self.republishTopic,
                                        self._onRepublish)
            client.subscribe(self.republishTopic, 1)
        self._pump()

    def _disconnected(self) -> None:
        # What was in flight is resent from the cursor after the reconnect.
        self._generation += 1
        self._outstanding.clear()
        self._mids.clear()
        self._reading = False
        if self._acked is not None:
            self._sent = self._acked

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
            self.reactor.callLater(0, self._wake)
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
              pictures: tuple, qos: int) -> Optional[int]:
        client = self.connection.client if self.connection else None
        if client is None:
            return None
        payload = encodeEvent(event, self.ownId, journalId, pictures[0],
                              pictures[1], self.testMode)
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

    # -- the outbox --------------------------------------------------------

    def _wake(self) -> None:
        if self.journal is not None:
            self.journal.whenIdle().addCallback(lambda _: self._pump())

    def _pump(self) -> None:
        """Read the next page of unsent Lost events when the window has
        room."""
        if self._reading or self.connection is None:
            return
        if self._acked is None:
            # The journal could not tell its end at start: try again.
            self._reading = True
            self._loadCursor().addBoth(self._cursorLoaded)
            return
        if not self.connection.isConnected:
            return
        room = self.window - len(self._outstanding)
        if room < min(self.pageSize, self.window):
            return
        self._reading = True
        generation = self._generation
        d = self.journal.since(self._sent, min(room, self.pageSize))
        d.addCallback(self._gotPage, generation)
        d.addErrback(self._pageFailed, generation)

    def _loadCursor(self) -> Deferred:
        """
        The cursor from its file; on the first run, the journal's end (its
        history is not sent).  The journal is asked at once, before any
        event this service will see is queued for it: its one thread
        answers in order, so no event falls between the end and the
        outbox.
        """
        end = self.journal.since(2 ** 62, 1)
        end.addCallback(lambda page: page.lastId or 0)
        d = self._threads.run(readCursor, self.cursorPath)

        def first(value: Optional[int]) -> Any:
            if value is not None:
                self._saved = value
                end.addErrback(lambda f: None)
                return value
            return end
        return d.addCallback(first)

    def _cursorLoaded(self, result: Any) -> None:
        self._reading = False
        if isinstance(result, int):
            self._acked = self._sent = result
            self.log.info("mqtt: outbox resumes after journal id {id}",
                          id=result)
            self._saveCursor()
            self._pump()
        else:
            self.log.error("mqtt: outbox cursor {path} unreadable: {error}",
                           path=self.cursorPath,
                           error=result.getErrorMessage())

    def _pageFailed(self, failure: Any, generation: int) -> None:
        if generation == self._generation:
            self._reading = False
        self.log.warn("mqtt: journal not readable for the outbox: {error}",
                      error=failure.getErrorMessage())

    def _gotPage(self, page: Any, generation: int) -> Optional[Deferred]:
        if generation != self._generation:
            return None
        self._lastId = page.lastId or 0
        self.metrics.mqttOutboxBacklog.set(self._lastId - self._acked)
        if page.oldestId is not None and page.oldestId > self._sent + 1 \
                and self._gapLogged != page.oldestId:
            self._gapLogged = page.oldestId
            self.log.error(
                "mqtt: journal retention removed Lost events {first}.."
                "{last} before the broker had them", first=self._sent + 1,
                last=page.oldestId - 1)
        if not page.entries:
            self._reading = False
            return None
        jobs = []
        for entry in page.entries:
            event = entry.toEvent()
            path = (self.journal.screenshotPath(entry)
                    if entry.hasScreenshot else None)
            jobs.append(self._loadPictures(None, path, event.bbox))
        d = gatherResults(jobs, consumeErrors=True)
        d.addCallback(self._sendPage, page.entries, generation)
        d.addErrback(self._pageFailed, generation)
        return d

    def _sendPage(self, pictures: Any, entries: list, generation: int) -> None:
        if generation != self._generation:
            return
        lostQoS = max(1, self.qos)
        for entry, shots in zip(entries, pictures):
            self._sent = entry.id
            event = entry.toEvent()
            if event.systemId is not None:
                # Collected from another instance: not ours to publish.
                self._outstanding[entry.id] = True
                continue
            self._outstanding[entry.id] = False
            mid = self._send(event, entry.id, shots, lostQoS)
            if mid is None:
                break
            self._mids[mid] = entry.id
        self._reading = False
        self._advance()
        self._pump()

    def _onPublish(self, client: paho.Client, userdata: Any, mid: int,
                   reasonCode: Any, properties: Any) -> None:
        entryId = self._mids.pop(mid, None)
        if entryId is None or entryId not in self._outstanding:
            return
        self._outstanding[entryId] = True
        self.metrics.mqttAcknowledged.inc()
        self._advance()
        self._pump()

    def _advance(self) -> None:
        """Move the cursor over the acknowledged ids at the window's
        start."""
        moved = False
        for entryId in list(self._outstanding):
            if not self._outstanding[entryId]:
                break
            del self._outstanding[entryId]
            self._acked = entryId
            moved = True
        if moved:
            self.metrics.mqttOutboxBacklog.set(
                max(0, self._lastId - self._acked))
            self._saveCursor()

    def _saveCursor(self) -> None:
        """Persist the cursor; one write at a time, the newest value
        last."""
        if (self._acked is None or self._acked == self._saved
                or self._saving is not None or not self._threads.running):
            return
        value = self._acked
        d = self._threads.run(writeCursor, self.cursorPath, value)
        self._saving = d

        def done(result: Any) -> None:
            self._saving = None
            if hasattr(result, "getErrorMessage"):
                self.log.error("mqtt: outbox cursor not saved: {error}",
                               error=result.getErrorMessage())
            else:
                self._saved = value
                self._saveCursor()
        d.addBoth(done)

    def _flushCursor(self, _: object = None, rounds: int = 3
                     ) -> Optional[Deferred]:
        """At stop: wait for the write in progress, then write the newest
        value if it is not on disk yet (a few tries: a failing disk must
        not hold the shutdown)."""
        if self._saving is None:
            self._saveCursor()
        if self._saving is None or rounds <= 0:
            return None
        waiting: Deferred = Deferred()
        self._saving.addBoth(lambda r: waiting.callback(None))
        return waiting.addCallback(self._flushCursor, rounds - 1)

    def outboxState(self) -> dict[str, Any]:
        """For the admin page and tests: cursor, in flight, backlog."""
        return {"acknowledged": self._acked, "sent": self._sent,
                "inFlight": len(self._outstanding),
                "connected": bool(self.connection
                                  and self.connection.isConnected)}

    # -- republish requests (a collector saw a hole: mqtt/gaps.py) -----------

    def _onRepublish(self, client: paho.Client, userdata: Any,
                     message: paho.MQTTMessage) -> None:
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
        self.republishFrom(value)

    def republishFrom(self, journalId: int) -> None:
        """
        Send the Lost events from C{journalId} on again, in order, at
        least once: the outbox forgets what it has in flight and moves its
        cursor back to C{journalId - 1} (persisted, so a restart resumes
        there too).  Ids at or after the cursor are not affected (they
        are sent anyway); ids the journal's retention removed are logged
        as such by the outbox.  Callers: a collector's request on
        C{<prefix>/<SystemId>/republish}.
        """
        if self._acked is None or journalId - 1 >= self._sent:
            return
        self._generation += 1
        self._outstanding.clear()
        self._mids.clear()
        self._reading = False
        self._sent = max(0, journalId - 1)
        self._acked = min(self._acked, self._sent)
        self._saveCursor()
        self._pump()
