"""
The admin web server as a service, built by L{numberok.build.buildServer}.
It owns the web site, the sessions, the login throttle and a small
thread pool for the blocking work of the admin side (PBKDF2, the settings
file, parsing pushed reads).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from twisted.application.service import MultiService
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from twisted.web.server import Request, Site

from numberok.interfaces import IPlateReadSink
from numberok.journal import Journal
from numberok.server import ListeningService, NumberOkFactory
from numberok.settings import SettingsError, SettingsStore, saveFile
from numberok.web import auth
from numberok.web.apply import EventPortApplier
from numberok.web.ingest import MAX_BODY_BYTES
from numberok.web.recent import RecentEvents
from numberok.metrics import Metrics
from numberok.web.recent import eventsResource
from numberok.web.resource import AdminResource

DEFAULT_ENDPOINT = "tcp:8080:interface=127.0.0.1"


class AdminRequest(Request):
    """
    A request that stops storing its body past L{maxBody} bytes (Twisted
    would buffer any size into a temporary file) and remembers that it was
    too large, so the resource answers 413 without reading it.
    """

    maxBody = MAX_BODY_BYTES + 1024 * 1024
    bodyTooLarge = False
    _received = 0

    def handleContentChunk(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > self.maxBody:
            self.bodyTooLarge = True
            return
        Request.handleContentChunk(self, data)


class AdminSite(Site):
    """
    A C{Site} whose access log leaves out the successful reads the page
    makes every second; changes, errors and logins are still logged.
    """

    displayTracebacks = False
    requestFactory = AdminRequest

    def log(self, request) -> None:
        if request.method == b"GET" and request.code < 400:
            return
        Site.log(self, request)


class AdminService(MultiService):
    """
    The admin page and API.

    @ivar events: the event port's L{ListeningService} (tap.py's
        C{"events"}); the page shows where it listens and moves it.
    @ivar sink: where C{POST /api/reads} delivers (the analytics), or
        L{None} to refuse pushed reads.
    @ivar recent: the L{RecentEvents} the page shows, or L{None}.
    @ivar web: the listening service of the admin site (its C{boundPort}
        tells tests the port when the endpoint says port 0).
    """

    log = Logger()
    maxReadBody = MAX_BODY_BYTES

    def __init__(self, store: SettingsStore, factory: NumberOkFactory,
                 events: ListeningService,
                 sink: Optional[IPlateReadSink] = None,
                 recent: Optional[RecentEvents] = None,
                 endpoint: str = DEFAULT_ENDPOINT, reactor=None,
                 loginDelay: Optional[float] = None,
                 journal: Optional[Journal] = None,
                 metrics: Optional[Metrics] = None) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.store = store
        self.factory = factory
        self.events = events
        self.sink = sink
        self.recent = recent
        self.eventsResource = eventsResource(journal, recent)
        self.reactor = reactor
        self.threadpool = ThreadPool(minthreads=0, maxthreads=2,
                                     name="numberok-admin")
        self.sessions = auth.Sessions(reactor)
        self.throttle = auth.LoginThrottle(reactor, loginDelay)
        self.passwords = auth.PasswordChecker(store, reactor, self.threadpool,
                                              self.throttle)
        self.applier = EventPortApplier(events)
        self.resource = AdminResource(self, metrics)
        self.site = AdminSite(self.resource)
        self.web = ListeningService(endpoint, self.site, reactor=reactor)
        self.web.setName("admin-web")
        self.web.setServiceParent(self)

    def startService(self) -> None:
        self.threadpool.start()
        self.store.addObserver(self.applier.settingsChanged)
        try:
            MultiService.startService(self)
        except BaseException:
            self.threadpool.stop()
            raise
        self.log.info("admin page on {endpoint}{warning}",
                      endpoint=self.web.description,
                      warning="" if self.store.current["Admin.PasswordHash"]
                      else " (no password set: open on loopback only)")

    def stopService(self):
        self.store.removeObserver(self.applier.settingsChanged)
        d = MultiService.stopService(self)
        return d.addBoth(lambda result: (self.threadpool.stop(), result)[1])

    # -- what the API and the page show -------------------------------------

    def listeningState(self) -> dict[str, Any]:
        return {"endpoint": self.events.description,
                "port": self.events.boundPort,
                "enabled": bool(self.events.enabled)}

    # -- saving --------------------------------------------------------------

    async def saveSettings(self, changes: Mapping[str, Any]) -> None:
        """
        Validate C{changes}, apply what needs a socket (the event port)
        while the old settings still hold, write the file, then make the
        new settings current so every part sees them.  Callers serialise.

        @raise SettingsError: invalid values, an unusable port, or a file
            that cannot be written; then nothing changed.
        """
        base = self.store.current
        new = base.withChanges(changes)
        if new == base:
            return
        await self.applier.prepare(base, new)
        if self.store.path is not None:
            try:
                await deferToThreadPool(self.reactor, self.threadpool,
                                        saveFile, self.store.path, base, new)
            except SettingsError:
                await self.applier.revert(base, new)
                raise
        self.store.replace(new)
