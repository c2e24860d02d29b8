"""
One MQTT connection driven by the reactor: paho-mqtt's client with its
external-event-loop hooks, a broker address in Twisted's endpoint syntax,
and reconnection with capped exponential backoff.

Why paho and not a Twisted-native client: docs/mqtt.rst, "Client library".

Blocking work stays off the reactor thread.  paho's C{reconnect()} resolves
the host name, connects the TCP socket and, for C{tls:}, does the TLS
handshake, all blocking; paho 2.2 has no public way to take a socket
connected by someone else (its socket comes from a private
C{_create_socket}), so C{reconnect()} runs in a short-lived daemon thread
of its own, bounded by paho's public C{connect_timeout}.  A stop never
waits for that thread: a broker whose TCP handshake never completes cannot
hold a SIGTERM (the abandoned attempt closes its socket when it ends).
Once C{reconnect()} returns, the (now non-blocking) socket is watched by
the reactor: readable calls C{loop_read} (again while the socket still
holds bytes: paho reads one packet per call), writable C{loop_write}, and
a C{LoopingCall} runs C{loop_misc} (keep-alive pings, and the close of a
connection whose CONNACK or PINGRESP never comes).

Retries back off exponentially with jitter (half the delay is random), so
the many sites that share one broker do not come back in step after it
restarts.

A fresh paho client is made for every attempt: what the old one still held
(QoS 1/2 messages it would retransmit) belongs to a dead connection, and
our parts resend from their own durable state (the outbox cursor, the
broker's session) instead.
"""

from __future__ import annotations

import random
import threading
from typing import Any, Callable, Optional

from paho.mqtt import client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorFDSet
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python import threadable
from twisted.python.failure import Failure

from numberok.metrics import Metrics
from numberok.mqtt.broker import BrokerAddress
from numberok.mqtt.descriptor import PahoSocket, closeClient
from numberok.reactors import LazyReactor

SESSION_NEVER_EXPIRES = 0xFFFFFFFF
"""MQTT 5's C{SessionExpiryInterval} for a persistent session: what MQTT
3.1.1's C{clean_session=False} meant."""


class MqttConnection:
    """
    Keeps one MQTT session to the broker alive while started.

    The owner gives callbacks, all called on the reactor thread and never
    with an exception escaping: C{configure(client)} before each attempt
    (will, manual acks, in-flight limit), C{connected(client)} after each
    CONNACK (subscribe, publish the status, resend), C{disconnected()} after
    each loss.  C{client} is the live paho client while connected, else
    L{None}; publish through it only between C{connected} and
    C{disconnected}.

    With C{maxPacketSize} the session is MQTT 5, whose CONNECT tells the
    broker the largest packet we take (it then never sends a larger one:
    the earliest a client can refuse one) and, with C{receiveMaximum}, how
    many QoS 1 messages it may send before we acknowledge (MQTT 3.1.1
    leaves that to the broker's configuration, 20 with Mosquitto); without
    it, MQTT 3.1.1.

    @ivar minDelay: seconds before the first retry; doubled per failure...
    @ivar maxDelay: ... up to this; each delay is between half and all of
        it (L{retryDelay}).
    @ivar keepAlive: MQTT keep-alive, also the CONNACK timeout.
    @ivar connectTimeout: seconds for the TCP (and TLS) handshake.
    @ivar packetsPerRead: packets read at most per readable socket.
    """

    log = Logger()
    minDelay = 0.5
    maxDelay = 30.0
    keepAlive = 30
    connectTimeout = 10.0
    miscInterval = 1.0
    packetsPerRead = 256
    random = staticmethod(random.random)

    def __init__(self, name: str, broker: BrokerAddress, clientId: str,
                 cleanSession: bool,
                 configure: Callable[[paho.Client], None],
                 connected: Callable[[paho.Client], None],
                 disconnected: Callable[[], None],
                 username: str = "", password: str = "",
                 metrics: Optional[Metrics] = None,
                 reactor: Optional[IReactorFDSet] = None,
                 maxPacketSize: Optional[int] = None,
                 receiveMaximum: Optional[int] = None) -> None:
        self.name = name
        self.broker = broker
        self.clientId = clientId
        self.cleanSession = cleanSession
        self.username = username
        self.password = password
        self._configure = configure
        self._connected = connected
        self._disconnected = disconnected
        self.metrics = metrics
        self._reactor = reactor
        self.maxPacketSize = maxPacketSize
        self.receiveMaximum = receiveMaximum
        self._running = False
        self._attempt: Optional[paho.Client] = None
        self._connecting: Optional[Deferred] = None
        self._socket: Optional[PahoSocket] = None
        self._retry: Any = None
        self._misc: Optional[LoopingCall] = None
        self._failures = 0
        self.client: Optional[paho.Client] = None
        self.lastError: Optional[str] = None
        self._refusal: Optional[str] = None

    reactor = LazyReactor()

    @property
    def isConnected(self) -> bool:
        return self.client is not None

    def _gauge(self, value: int) -> None:
        if self.metrics is not None:
            self.metrics.mqttConnected.labels(role=self.name).set(value)

    # -- life cycle --------------------------------------------------------

    def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._misc = LoopingCall(self._loopMisc)
        self._misc.clock = self.reactor
        self._misc.start(self.miscInterval, now=False).addErrback(
            lambda f: self.log.failure("mqtt {name}: loop", f, name=self.name))
        self._connect()

    def stop(self, beforeClose: Optional[Callable[[paho.Client], None]] = None
             ) -> Deferred:
        """
        Stop retrying and close the connection: a clean DISCONNECT (so the
        broker does not send the Last Will), after C{beforeClose(client)}
        had its chance to publish a last message.  @return: a Deferred that
        fires when the socket is gone (a connect attempt still in its
        thread is not waited for: it closes its own socket when it ends).
        """
        self._running = False
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        if self._misc is not None and self._misc.running:
            self._misc.stop()
        self._misc = None
        self._connecting = None
        client = self.client
        if client is not None and beforeClose is not None:
            try:
                beforeClose(client)
            except Exception:
                self.log.failure("mqtt {name}: last message", name=self.name)
        if client is not None:
            client.disconnect()
            self._flush(client)
        attempt, self._attempt = self._attempt, None
        self._detach(None)
        if attempt is not None:
            closeClient(attempt)
        if self.client is not None:
            self.client = None
            self._gauge(0)
        return succeed(None)

    def _flush(self, client: paho.Client) -> None:
        """Write what paho has queued (the DISCONNECT, a last status) before
        the socket goes; a few tries, never waiting."""
        for _ in range(20):
            if client.socket() is None or not client.want_write():
                return
            client.loop_write()

    # -- connecting --------------------------------------------------------

    def _connect(self) -> None:
        self._retry = None
        if not self._running or self._connecting is not None:
            return
        v5 = self.maxPacketSize is not None
        client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                             client_id=self.clientId,
                             protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
                             reconnect_on_failure=False,
                             **({} if v5 else {
                                 "clean_session": self.cleanSession}))
        client.suppress_exceptions = True
        if self.username:
            client.username_pw_set(self.username, self.password or None)
        client.on_connect = self._onConnect
        client.on_disconnect = self._onDisconnect
        client.on_socket_close = self._onSocketClose
        client.on_socket_register_write = self._onRegisterWrite
        client.on_socket_unregister_write = self._onUnregisterWrite
        client.connect_timeout = self.connectTimeout
        try:
            self._configure(client)
        except Exception:
            self.log.failure("mqtt {name}: configuring the client",
                             name=self.name)
            self._scheduleRetry("configuration failed")
            return
        if v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.MaximumPacketSize = self.maxPacketSize
            if self.receiveMaximum is not None:
                properties.ReceiveMaximum = self.receiveMaximum
            if not self.cleanSession:
                properties.SessionExpiryInterval = SESSION_NEVER_EXPIRES
            client.connect_async(self.broker.host, self.broker.port,
                                 keepalive=self.keepAlive,
                                 clean_start=self.cleanSession,
                                 properties=properties)
        else:
            client.connect_async(self.broker.host, self.broker.port,
                                 keepalive=self.keepAlive)
        self._attempt = client
        d: Deferred = Deferred()
        self._connecting = d
        d.addCallbacks(self._attached, self._connectFailed,
                       callbackArgs=(client,), errbackArgs=(client,))
        d.addErrback(lambda f: self.log.failure("mqtt {name}: connect",
                                                f, name=self.name))
        threading.Thread(target=self._connectInThread, args=(client, d),
                         name="numberok-mqtt-%s-connect" % (self.name,),
                         daemon=True).start()

    def _connectInThread(self, client: paho.Client, d: Deferred) -> None:
        """In the attempt's own thread: blocking name lookup, TCP and TLS
        handshakes, the CONNECT written.  The outcome goes back to the
        reactor thread."""
        try:
            context = self.broker.sslContext()
            if context is not None:
                client.tls_set_context(context)
            rc = client.reconnect()
            if rc != paho.MQTT_ERR_SUCCESS:
                raise ConnectionError(paho.error_string(rc))
        except BaseException:
            self.reactor.callFromThread(d.errback, Failure())
        else:
            self.reactor.callFromThread(d.callback, None)

    def _attached(self, _: object, client: paho.Client) -> None:
        if client is not self._attempt or not self._running:
            closeClient(client)      # stopped (or superseded) meanwhile
            return
        self._connecting = None
        sock = client.socket()
        if sock is None:
            self._connectFailed(Failure(ConnectionError("no socket")), client)
            return
        self._socket = PahoSocket(self, client, sock)
        self.reactor.addReader(self._socket)
        if client.want_write():
            self.reactor.addWriter(self._socket)

    def _connectFailed(self, failure: Failure, client: paho.Client) -> None:
        closeClient(client)
        if client is not self._attempt:
            return
        self._connecting = None
        self._attempt = None
        self._scheduleRetry(failure.getErrorMessage() or
                            failure.type.__name__)

    def retryDelay(self, failures: int) -> float:
        """
        Seconds before retry number C{failures}: L{minDelay} doubled per
        failure up to L{maxDelay}, of which the second half is random, so
        sites that lost the same broker at the same moment spread their
        reconnects over the broker's restart instead of arriving together.
        """
        full = min(self.maxDelay,
                   self.minDelay * 2 ** min(max(failures, 1) - 1, 16))
        return full / 2 + self.random() * full / 2

    def _scheduleRetry(self, reason: str) -> None:
        if not self._running or self._retry is not None:
            return
        self._failures += 1
        delay = self.retryDelay(self._failures)
        self.lastError = reason
        if self.metrics is not None:
            self.metrics.mqttReconnects.labels(role=self.name).inc()
        self.log.warn("mqtt {name}: broker {host}:{port} unavailable "
                      "({reason}); retry {failures} in {delay:.1f} s",
                      name=self.name, host=self.broker.host,
                      port=self.broker.port, reason=reason,
                      failures=self._failures, delay=delay)
        self._retry = self.reactor.callLater(delay, self._connect)

    # -- paho callbacks (reactor thread, except register-write) -------------

    def _onConnect(self, client: paho.Client, userdata: Any, flags: Any,
                   reasonCode: Any, properties: Any) -> None:
        if reasonCode.is_failure:
            self._refusal = "refused: %s" % (reasonCode,)
            self.log.error("mqtt {name}: broker refused the connection: "
                           "{reason}", name=self.name, reason=str(reasonCode))
            return      # paho closes; _onDisconnect schedules the retry
        self._failures = 0
        self.lastError = None
        self.client = client
        self._gauge(1)
        self.log.info("mqtt {name}: connected to {host}:{port} as "
                      "{clientId} (session present: {present})",
                      name=self.name, host=self.broker.host,
                      port=self.broker.port, clientId=self.clientId,
                      present=bool(flags.session_present))
        try:
            self._connected(client)
        except Exception:
            self.log.failure("mqtt {name}: after connect", name=self.name)

    def _onDisconnect(self, client: paho.Client, userdata: Any, flags: Any,
                      reasonCode: Any, properties: Any) -> None:
        self._lost(client, str(reasonCode))

    def _onSocketClose(self, client: paho.Client, userdata: Any,
                       sock: Any) -> None:
        if threadable.isInIOThread():
            self._detach(client)

    def _onRegisterWrite(self, client: paho.Client, userdata: Any,
                         sock: Any) -> None:
        self.reactor.callFromThread(self._wantWrite, client, True)

    def _onUnregisterWrite(self, client: paho.Client, userdata: Any,
                           sock: Any) -> None:
        if threadable.isInIOThread():
            self._wantWrite(client, False)

    def _wantWrite(self, client: paho.Client, on: bool) -> None:
        s = self._socket
        if s is None or s.client is not client:
            return
        if on and client.want_write():
            self.reactor.addWriter(s)
        elif not on:
            self.reactor.removeWriter(s)

    # -- running -----------------------------------------------------------

    def _step(self, client: paho.Client, work: Callable[[], Any]) -> None:
        try:
            work()
        except Exception:
            self.log.failure("mqtt {name}: network loop", name=self.name)
            self._detach(client)
            closeClient(client)
            self._lost(client, "error in the network loop")

    def _loopMisc(self) -> None:
        s = self._socket
        if s is not None:
            self._step(s.client, s.client.loop_misc)

    def _detach(self, client: Optional[paho.Client]) -> None:
        s = self._socket
        if s is None or (client is not None and s.client is not client):
            return
        self._socket = None
        self.reactor.removeReader(s)
        self.reactor.removeWriter(s)

    def _socketGone(self, client: paho.Client) -> None:
        self._detach(client)
        self._lost(client, "socket closed")

    def _lost(self, client: paho.Client, reason: str) -> None:
        self._detach(client)
        if client is not self._attempt:
            return
        if self._refusal is not None:
            reason, self._refusal = self._refusal, None
        self._attempt = None
        wasConnected = self.client is client
        self.client = None
        if wasConnected:
            self._gauge(0)
            self.log.warn("mqtt {name}: connection to {host}:{port} lost "
                          "({reason})", name=self.name,
                          host=self.broker.host, port=self.broker.port,
                          reason=reason)
            try:
                self._disconnected()
            except Exception:
                self.log.failure("mqtt {name}: after disconnect",
                                 name=self.name)
        self._scheduleRetry(reason)
