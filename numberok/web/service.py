"""
The admin web server as a service, built by L{numberok.build.buildServer}.
It owns the web site (L{numberok.web.limits.AdminSite}: connection
caps, request deadline, body limits), the sessions, the login throttle and
two small thread pools: one for the blocking work of the admin side (the
settings file, parsing pushed reads) and one for password hashes alone, so
that guesses never delay C{POST /api/reads} or the page.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.logger import Logger
from twisted.internet.interfaces import IReactorTime

from numberok.interfaces import IPlateReadSink
from numberok.journal import Journal
from numberok.journal.visits_api import Visits
from numberok.listening import ListeningService
from numberok.reactors import LazyReactor
from numberok.server import NumberOkFactory
from numberok.settings import SettingsError, SettingsStore, saveFile
from numberok.settings.keys import ADMIN_PASSWORD_HASH
from numberok.threads import ServiceThreads
from numberok.web import auth
from numberok.web.apply import EventPortApplier
from numberok.web.common import Push
from numberok.web.ingest import MAX_BODY_BYTES, parseBody
from numberok.web.limits import SMALL_BODY_BYTES, AdminSite
from numberok.web.recent import RecentEvents
from numberok.metrics import Metrics, metricsOrPrivate
from numberok.web.resource import AdminResource

DEFAULT_ENDPOINT = "tcp:8080:interface=127.0.0.1"


class AdminService(MultiService):
    """
    The admin page and API.

    @ivar events: the event port's L{ListeningService} (tap.py's
        C{"events"}); the page shows where it listens and moves it.
    @ivar sink: where C{POST /api/reads} delivers (the analytics), or
        L{None} to refuse pushed reads.
    @ivar recent: the L{RecentEvents} the page shows, or L{None}.
    @ivar journal: the L{Journal} C{/api/events} pages, or L{None}.
    @ivar web: the listening service of the admin site (its C{boundPort}
        tells tests the port when the endpoint says port 0).
    @ivar threads: the pool for settings saves.
    @ivar readThreads: the pool that parses pushed reads (C{POST
        /api/reads}); its own, so that a sender's bodies never hold a Save.
    @ivar passwordThreads: the pool for PBKDF2 alone (one thread: the
        throttle admits at most two checks, the second waits its turn).
    """

    log = Logger()
    reactor = LazyReactor()
    maxReadBody = MAX_BODY_BYTES

    def __init__(self, store: SettingsStore, factory: NumberOkFactory,
                 events: ListeningService,
                 sink: Optional[IPlateReadSink] = None,
                 recent: Optional[RecentEvents] = None,
                 endpoint: str = DEFAULT_ENDPOINT,
                 reactor: Optional[IReactorTime] = None,
                 loginDelay: Optional[float] = None,
                 journal: Optional[Journal] = None,
                 metrics: Optional[Metrics] = None) -> None:
        super().__init__()
        self.metrics = metricsOrPrivate(metrics)
        self.store = store
        self.factory = factory
        self.events = events
        self.sink = sink
        self.recent = recent
        self.journal = journal
        self._reactor = reactor
        self.visits = (Visits(journal, store) if journal is not None
                       else None)
        self.threads = ServiceThreads("numberok-admin", 2, reactor=reactor)
        self.readThreads = ServiceThreads("numberok-reads", 2,
                                          reactor=reactor)
        self.passwordThreads = ServiceThreads("numberok-passwords", 1,
                                              reactor=reactor)
        self.sessions = auth.Sessions(self.reactor)
        self.throttle = auth.LoginThrottle(self.reactor, loginDelay)
        self.passwords = auth.PasswordChecker(
            store, self.reactor, self.passwordThreads, self.throttle,
            self.metrics)
        self.applier = EventPortApplier(events)
        self.resource = AdminResource(self, self.metrics)
        self.site = AdminSite(
            self.resource, self.metrics, reactor=reactor,
            isOpen=lambda: not store.current[ADMIN_PASSWORD_HASH])
        self.web = ListeningService(endpoint, self.site, reactor=reactor)
        self.web.setName("admin-web")
        self.web.setServiceParent(self)

    def putPush(self, push: Push) -> None:
        """Serve a device push (L{Push}) at its path, with its body limit
        and token rule."""
        self.resource.putPush(push)
        self.site.acceptPush(push)

    def startService(self) -> None:
        self.threads.start()
        self.readThreads.start()
        self.passwordThreads.start()
        self.store.addObserver(self.applier.settingsChanged)
        try:
            MultiService.startService(self)
        except BaseException:
            self._stopThreads()
            raise
        self.log.info("admin page on {endpoint}{warning}",
                      endpoint=self.web.description,
                      warning="" if self.store.current[ADMIN_PASSWORD_HASH]
                      else " (no password set: open on loopback only)")

    def stopService(self):
        self.store.removeObserver(self.applier.settingsChanged)
        d = MultiService.stopService(self)
        return d.addBoth(lambda result: self._stopThreads().addCallback(
            lambda _: result))

    def _stopThreads(self) -> defer.Deferred:
        """Every pool, joined off the reactor thread."""
        return defer.gatherResults(
            [self.threads.stop(), self.readThreads.stop(),
             self.passwordThreads.stop()],
            consumeErrors=True).addCallback(lambda _: None)

    def parseReads(self, contentType: str, body: bytes,
                   nowMs: int) -> defer.Deferred:
        """
        The reads of a C{POST /api/reads} body (L{parseBody}): a small JSON
        body in place (microseconds; a thread hop costs more), anything
        else -- multipart, or up to megabytes of JSON -- in the reads pool,
        never on the reactor thread nor in the pool that saves settings.

        @return: a Deferred firing with a list of
            L{numberok.events.PlateRead}, or failing
            with L{numberok.sources.formats.ReadFormatError}.
        """
        kind = contentType.split(";", 1)[0].strip().lower()
        if len(body) <= SMALL_BODY_BYTES and kind == "application/json":
            return defer.maybeDeferred(parseBody, contentType, body, nowMs)
        return self.readThreads.run(parseBody, contentType, body, nowMs)

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
                await self.threads.run(saveFile, self.store.path, base, new)
            except SettingsError:
                await self.applier.revert(base, new)
                raise
        self.store.replace(new)
