"""
L{ListsShare}: lists of a central office reaching every site through the
broker (C{[Lists] Share}).

The central office (C{publish}) sends each list as one retained QoS 1
message on C{<prefix>/lists/<name>}: C{{"version", "list", "entries"}},
C{version} being its clock in ms at the time of sending, a second after
the last change to that list (changes in between are sent once), and again
on every connect; a deleted list is an empty retained message.  A site
(C{subscribe}) takes a message only when its version is newer than the copy
it holds, stores it with its entries in one transaction and swaps the
list's index in one step (L{numberok.lists.ListsService.applyRemote}); it
keeps deciding on its last copy, which survives restarts, while the broker
is away.  A site's own lists are its own: a central list of the same name
is ignored there, and central lists cannot be changed at a site (409).
"""

from __future__ import annotations

from typing import Any, Optional

from paho.mqtt import client as paho
from twisted.application.service import Service
from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.logger import Logger

from numberok.lists.model import ListError
from numberok.lists.service import ListsService
from numberok.metrics import Metrics
from numberok.mqtt.service import MqttService
from numberok.settings.keys import LISTS_SHARE


def listTopic(prefix: str, name: str) -> str:
    return "%s/lists/%s" % (prefix, name)


class ListsShare(MqttService):
    """
    @ivar sendDelaySec: how long after a change a list is sent (changes in
        between are sent together).
    """

    log = Logger()
    sendDelaySec = 1.0

    def __init__(self, store: Any, lists: ListsService,
                 metrics: Optional[Metrics] = None, reactor: Any = None,
                 broker: Optional[str] = None) -> None:
        MqttService.__init__(self, store, metrics, reactor, broker)
        self.lists = lists
        self.mode = "none"
        self._due: dict[str, Any] = {}
        self._unsent: set[str] = set()
        self.applied: list[tuple[str, str]] = []

    def startService(self) -> None:
        Service.startService(self)
        self.mode = self._setting(LISTS_SHARE)
        if not self.broker or self.mode == "none":
            return
        self._readStartSettings()
        self.connection = self._makeConnection(
            "lists", "-lists", True, self._configure, self._connected,
            lambda: None)
        if self.mode == "publish":
            self.lists.observers.append(self.changed)
        self.connection.start()

    def stopService(self) -> Deferred:
        Service.stopService(self)
        for call in self._due.values():
            if call.active():
                call.cancel()
        self._due.clear()
        if self.changed in self.lists.observers:
            self.lists.observers.remove(self.changed)
        if self.connection is None:
            return succeed(None)
        connection, self.connection = self.connection, None
        return connection.stop()

    # -- connection --------------------------------------------------------

    def _configure(self, client: paho.Client) -> None:
        client.on_message = self._onMessage

    def _connected(self, client: paho.Client) -> None:
        if self.mode == "subscribe":
            client.subscribe(listTopic(self.prefix, "+"), 1)
        else:
            self.lists.ready.addCallback(self._sendAll)

    def _sendAll(self, result: Any) -> Any:
        """Every list, and every deletion that could not go out."""
        names = {plateList.name for plateList, _ in self.lists.lists()
                 if not self.lists.isRemote(plateList.name)}
        for name in names | self._unsent:
            self.changed(name)
        return result

    # -- central office: sending -------------------------------------------

    def changed(self, name: str) -> None:
        """A list changed: send it L{sendDelaySec} from now."""
        call = self._due.get(name)
        if call is not None and call.active():
            call.reset(self.sendDelaySec)
            return
        self._due[name] = self.reactor.callLater(self.sendDelaySec,
                                                 self._send, name)

    def _send(self, name: str) -> None:
        self._due.pop(name, None)
        d = ensureDeferred(self.lists.snapshot(name))

        def send(payload: bytes) -> None:
            client = self.connection.client if self.connection else None
            if client is None or not self.connection.isConnected:
                self._unsent.add(name)      # sent on the next connect
                return
            client.publish(listTopic(self.prefix, name), payload, qos=1,
                           retain=True)
            self._unsent.discard(name)
            self.log.info("lists: sent {name} to the broker ({size} "
                          "bytes)", name=name, size=len(payload))
        d.addCallback(send)
        d.addErrback(lambda f: self.log.failure(
            "lists: {name} not sent", f, name=name))

    # -- site: receiving ---------------------------------------------------

    def _onMessage(self, client: paho.Client, userdata: Any,
                   message: paho.MQTTMessage) -> None:
        name = message.topic.rsplit("/", 1)[-1]
        d = ensureDeferred(self.lists.applyRemote(name, message.payload))

        def done(result: str) -> None:
            self.applied.append((name, result))
            if result == "local":
                self.log.warn("lists: the central office's list {name} is "
                              "ignored: a local list has that name",
                              name=name)
            elif result != "old":
                self.log.info("lists: {name} {result} from the central "
                              "office", name=name, result=result)

        def failed(f) -> None:
            f.trap(ListError)
            self.applied.append((name, "refused"))
            self.log.warn("lists: message for {name} refused: {error}",
                          name=name, error=f.value)
        d.addCallbacks(done, failed)
        d.addErrback(lambda f: self.log.failure(
            "lists: message for {name} failed", f, name=name))
