"""
What the two MQTT services share: settings looked up at start, the broker
(C{--mqtt} over C{[Mqtt] Broker}), and the one connection each owns.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime

from numberok.metrics import Metrics, metricsOrPrivate
from numberok.mqtt.broker import parseBroker
from numberok.mqtt.connection import MqttConnection
from numberok.reactors import LazyReactor
from numberok.settings import Field
from numberok.settings.keys import (
    MQTT_BROKER,
    MQTT_CLIENT_ID,
    MQTT_PASSWORD,
    MQTT_QOS,
    MQTT_TOPIC_PREFIX,
    MQTT_USERNAME,
    SYSTEM_SYSTEM_ID,
)


class MqttService(Service):
    """
    Base of L{numberok.mqtt.MqttPublisher} and
    L{numberok.mqtt.MqttCollector}.

    @ivar store: the L{numberok.settings.SettingsStore}.
    @ivar brokerOverride: C{--mqtt}, replacing C{[Mqtt] Broker} when set.
    """

    def __init__(self, store: Any, metrics: Optional[Metrics],
                 reactor: Optional[IReactorTime], broker: Optional[str]
                 ) -> None:
        self.store = store
        self.metrics = metricsOrPrivate(metrics)
        self._reactor = reactor
        self.brokerOverride = broker
        self.connection: Optional[MqttConnection] = None

    reactor = LazyReactor()

    def _setting(self, key: Field) -> Any:
        return self.store.current[key]

    def _readStartSettings(self) -> None:
        """
        What both roles read once, at start (C{[Mqtt]} changes take effect
        at the next start): our C{SystemId}, the topic prefix, the QoS.
        """
        self.ownId = self.systemId
        self.prefix = self._setting(MQTT_TOPIC_PREFIX)
        self.qos = int(self._setting(MQTT_QOS))

    @property
    def broker(self) -> str:
        return self.brokerOverride or self._setting(MQTT_BROKER)

    @property
    def systemId(self) -> int:
        return int(self._setting(SYSTEM_SYSTEM_ID))

    def _makeConnection(self, role: str, clientIdSuffix: str,
                        cleanSession: bool,
                        configure: Callable, connected: Callable,
                        disconnected: Callable,
                        maxPacketSize: Optional[int] = None,
                        receiveMaximum: Optional[int] = None
                        ) -> MqttConnection:
        """The connection for C{role}, with the client id, credentials and
        broker of the settings (MQTT 5 when C{maxPacketSize} is given:
        L{MqttConnection})."""
        clientId = (self._setting(MQTT_CLIENT_ID)
                    or "numberok-%d" % (self.systemId,)) + clientIdSuffix
        return MqttConnection(
            role, parseBroker(self.broker), clientId, cleanSession,
            configure, connected, disconnected,
            self._setting(MQTT_USERNAME), self._setting(MQTT_PASSWORD),
            self.metrics, self._reactor, maxPacketSize, receiveMaximum)
