"""
numberok over MQTT (docs/mqtt.rst): a site publishes its events
(L{MqttPublisher}), a central instance collects other sites' events and
raw reads (L{MqttCollector}); the broker in between is the distributed
part.  Both drive paho-mqtt from the reactor (L{connection}).
"""

from numberok.mqtt.collect import MqttCollector
from numberok.mqtt.broker import BrokerAddress, BrokerError, parseBroker
from numberok.mqtt.publish import MqttPublisher

__all__ = ["MqttPublisher", "MqttCollector", "BrokerAddress", "BrokerError",
           "parseBroker"]
