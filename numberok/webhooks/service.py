"""
L{WebhookService}: every C{[Webhook:<name>]} target of the settings, each
a L{WebhookTarget} on its own outbox cursor, kept in step with the
settings while running (an observer on the L{SettingsStore}: a target
added starts, one removed stops, one changed restarts from its cursor).
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from numberok.events import EventState, PlateEvent
from numberok.interfaces import IEventSink
from numberok.metrics import Metrics, metricsOrPrivate
from numberok.reactors import LazyReactor
from numberok.settings import Settings
from numberok.settings.keys import (SYSTEM_SYSTEM_ID, SYSTEM_TEST_MODE,
                                    WEBHOOK_FAMILY)
from numberok.threads import ServiceThreads
from numberok.webhooks.config import TargetConfig
from numberok.webhooks.http import makeAgent
from numberok.webhooks.target import WebhookTarget


@implementer(IEventSink)
class WebhookService(Service):
    """
    The webhook outputs.  Added to the server after the journal (whose
    rows the targets' outboxes read) and as an event sink (live
    Detected/Updated, and the wake-up after each Lost).

    @ivar targets: name -> running L{WebhookTarget}.
    """

    name = "webhooks"
    log = Logger()
    reactor = LazyReactor()

    def __init__(self, store: Any, journal: Any = None,
                 metrics: Optional[Metrics] = None,
                 reactor: Optional[IReactorTime] = None,
                 pictureBase: Optional[str] = None) -> None:
        """
        @param store: the L{numberok.settings.SettingsStore}.
        @param journal: the journal Lost events are delivered from; without
            one, Lost events go live, best effort, like Detected/Updated.
        @param pictureBase: the admin server's URL, for C{Pictures = url}.
        """
        self.store = store
        self.journal = journal
        self.metrics = metricsOrPrivate(metrics)
        self._reactor = reactor
        self.pictureBase = pictureBase
        self.targets: dict[str, WebhookTarget] = {}
        self._stopping: dict[str, Deferred] = {}
        self._threads = ServiceThreads("numberok-webhooks", 1,
                                       reactor=reactor)
        self._agent: Any = None
        self._pool: Any = None

    # -- life cycle --------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        self._threads.start()
        self._agent, self._pool = makeAgent(self.reactor)
        self.store.addObserver(self._settingsChanged)
        self._apply(self.store.current)

    def stopService(self) -> Deferred:
        """Stop every target (cursors saved), close the kept connections,
        stop the thread."""
        Service.stopService(self)
        self.store.removeObserver(self._settingsChanged)
        stops = [t.stop() for t in self.targets.values()]
        stops += list(self._stopping.values())
        self.targets.clear()
        d = DeferredList(stops, consumeErrors=True)
        d.addCallback(lambda _: self._pool.closeCachedConnections())
        d.addBoth(lambda _: self._threads.stop())
        return d

    # -- settings ----------------------------------------------------------

    def _settingsChanged(self, old: Settings, new: Settings) -> None:
        if self.running:
            self._apply(new)

    def _apply(self, settings: Settings) -> None:
        wanted = {}
        for section in settings.family(WEBHOOK_FAMILY):
            try:
                wanted[section.ident] = TargetConfig.fromSection(section)
            except ValueError as e:
                self.log.error("webhook {target}: not started: {error}",
                               target=section.ident, error=str(e))
        systemId = int(settings[SYSTEM_SYSTEM_ID])
        testMode = bool(settings[SYSTEM_TEST_MODE])
        for name, target in list(self.targets.items()):
            if (wanted.get(name) != target.config
                    or target.systemId != systemId
                    or target.testMode != testMode):
                self._stopTarget(name)
        for name, config in wanted.items():
            if name in self.targets or name in self._stopping:
                continue
            target = WebhookTarget(
                config, self._agent, self.reactor, self._threads,
                self.metrics, self.journal, systemId, testMode,
                self.pictureBase)
            self.targets[name] = target
            target.start()
            self.log.info("webhook {target}: delivering to {url}",
                          target=name, url=config.safeUrl)

    def _stopTarget(self, name: str) -> None:
        """Stop a removed or changed target; its successor starts once the
        cursor is saved, from that cursor."""
        target = self.targets.pop(name)
        d = target.stop()
        self._stopping[name] = d
        self.log.info("webhook {target}: stopped (settings changed)",
                      target=name)

        def stopped(_: object) -> None:
            del self._stopping[name]
            if self.running:
                self._apply(self.store.current)
        d.addBoth(stopped)

    # -- IEventSink ----------------------------------------------------------

    def publish(self, event: PlateEvent) -> None:
        """A Lost wakes every target's outbox (the journal has it, or soon
        will); a live event goes to the targets that want it."""
        for target in self.targets.values():
            if event.state is EventState.LOST and target.outbox is not None:
                target.wake()
            elif target.config.wants(event):
                target.publishLive(event)

    # -- status ------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """C{GET /api/webhooks}: every target, by name."""
        return {"webhooks": [self.targets[name].status()
                             for name in sorted(self.targets)],
                "durable": self.journal is not None}
