"""
Applying saved settings to the running event port.

Most settings need no help: the publisher, the analytics and the factory
read C{store.current} for every event or connection.  Enable and Port are
different: they change a listening socket, and a port that cannot be bound
must be refused before anything is committed.  So the admin API calls
L{EventPortApplier.prepare} first, and only when it worked saves the file
and makes the settings current; L{EventPortApplier.revert} undoes it when
the save then fails.  As a settings observer it also follows changes made
by other means (a test, a future reload), where there is no one to refuse
to and a failure is only logged.
"""

from __future__ import annotations

import errno

from twisted.internet import defer
from twisted.logger import Logger

from numberok.endpoints import endpointWithPort
from numberok.listening import ListeningService
from numberok.settings import Settings, SettingsError
from numberok.settings.keys import NETSERVER_ENABLE, NETSERVER_PORT


class EventPortApplier:
    """
    Moves the event port (the L{ListeningService} that
    L{numberok.build.buildServer} names C{eventPort}) to what the settings
    say.
    """

    log = Logger()

    def __init__(self, events: ListeningService) -> None:
        self.events = events

    @defer.inlineCallbacks
    def prepare(self, old: Settings, new: Settings):
        """
        Make the event port follow what changed from C{old} to C{new}: bind
        a new port first (the old one stays when that fails), start or stop
        listening.  Only changes are applied, so a server started with
        C{--port} stays on it until the port is changed on the page.

        @return: a Deferred that fails with L{SettingsError} on
            C{NetServer.Port} when the port cannot be bound; the listening
            state is then unchanged.
        """
        port = new[NETSERVER_PORT]
        if port != old[NETSERVER_PORT]:
            endpoint = endpointWithPort(self.events.description, port)
            try:
                yield self.events.rebind(endpoint)
            except Exception as e:
                raise SettingsError({NETSERVER_PORT.name: (
                    "cannot listen on port %d: %s; %s"
                    % (port, _reason(e), self._where()))})
        enabled = new[NETSERVER_ENABLE]
        if enabled != old[NETSERVER_ENABLE]:
            try:
                yield self.events.setEnabled(enabled)
            except Exception as e:
                self.events.enabled = False
                raise SettingsError({NETSERVER_PORT.name: (
                    "cannot listen on port %d: %s" % (port, _reason(e)))})

    def _where(self) -> str:
        bound = self.events.boundPort
        if bound is None:
            return "not listening now"
        return "still listening on %d" % (bound,)

    @defer.inlineCallbacks
    def revert(self, old: Settings, new: Settings):
        """Undo L{prepare} after a failed save; never fails."""
        try:
            yield self.prepare(new, old)
        except Exception:
            self.log.failure("could not restore the event port")

    def settingsChanged(self, old: Settings, new: Settings) -> None:
        """
        Settings observer, for changes made without L{prepare} (a test, a
        future reload): there is no one to refuse to, so a port that cannot
        be bound is only logged.  After a prepared change it finds nothing
        left to do.
        """
        wantedPort = new[NETSERVER_PORT]
        if (new[NETSERVER_ENABLE] == self.events.enabled
                and (wantedPort == old[NETSERVER_PORT]
                     or self.events.description == endpointWithPort(
                         self.events.description, wantedPort))):
            return
        self.prepare(old, new).addErrback(
            lambda f: self.log.error("event port not changed: {reason}",
                                     reason=f.getErrorMessage()))


REASONS = {
    errno.EADDRINUSE: "it is in use by another program",
    errno.EACCES: ("permission denied (ports below 1024 need root or "
                   "CAP_NET_BIND_SERVICE)"),
    errno.EADDRNOTAVAIL: "the address is not one of this machine's",
}


def _reason(error: Exception) -> str:
    """
    Why a port could not be bound, in our words: Twisted's text ("Couldn't
    listen on any:7701: [Errno 98] Address already in use.") says it twice
    and in the wrong terms for an operator.
    """
    cause = getattr(error, "socketError", error)
    code = getattr(cause, "errno", None)
    if code in REASONS:
        return REASONS[code]
    text = getattr(cause, "strerror", None) or str(error) or \
        error.__class__.__name__
    return " ".join(text.split()).rstrip(".")
