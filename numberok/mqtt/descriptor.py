"""
The reactor's side of one paho socket: readiness calls paho's network loop
(L{numberok.mqtt.connection.MqttConnection} adds and removes it), and the
close of a client we give up.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from paho.mqtt import client as paho
from twisted.internet.interfaces import IReadWriteDescriptor
from twisted.python.failure import Failure
from zope.interface import implementer

if TYPE_CHECKING:
    from numberok.mqtt.connection import MqttConnection


def closeClient(client: paho.Client) -> None:
    """Close the socket of a client we give up (an attempt superseded or
    stopped): paho's public C{disconnect()} would first send a DISCONNECT
    to a broker that may never have answered."""
    sock = client.socket()
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass


@implementer(IReadWriteDescriptor)
class PahoSocket:
    """The reactor's view of a paho socket: readiness calls paho's loop."""

    def __init__(self, connection: "MqttConnection", client: paho.Client,
                 sock: Any) -> None:
        self.connection = connection
        self.client = client
        self.sock = sock
        self._fileno = sock.fileno()

    def fileno(self) -> int:
        return self._fileno

    def logPrefix(self) -> str:
        return "mqtt"

    def doRead(self) -> None:
        self.connection._step(self.client, self._read)

    def _read(self) -> None:
        # paho reads one packet per loop_read: go on while bytes wait
        # (a burst of messages in one reactor turn, not one per select).
        for _ in range(self.connection.packetsPerRead):
            self.client.loop_read()
            if self.client.socket() is not self.sock or not self._waiting():
                return

    def _waiting(self) -> bool:
        """Bytes wait: TLS holds decrypted ones the kernel no longer
        reports, a plain socket answers a non-blocking peek."""
        pending = getattr(self.sock, "pending", None)
        if pending is not None:
            return pending() > 0
        try:
            return bool(self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True     # loop_read meets the error and closes

    def doWrite(self) -> None:
        self.connection._step(self.client, self._write)

    def _write(self) -> None:
        self.client.loop_write()
        # paho's unregister callback is skipped when its flag and our
        # (thread-safe, so deferred) registration crossed: check here.
        if not self.client.want_write():
            self.connection._wantWrite(self.client, False)

    def connectionLost(self, reason: Failure) -> None:
        self.connection._socketGone(self.client)
