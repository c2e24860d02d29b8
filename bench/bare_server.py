"""
The yardstick for bench/fanout.py: the least a Twisted server must do for
the fan-out feed -- split JSON lines, decode each, write one NumberOk Event
packet (Key=Value pairs, numberok.wire framing) to every subscribed client.
No analytics, no queues, no 2-writes cap.

    python bench/bare_server.py EVENT_PORT INGEST_PORT
"""

import json
import sys

from twisted.internet import protocol, reactor
from twisted.protocols.basic import LineOnlyReceiver

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from numberok import wire  # noqa: E402

subscribers = set()


class Client(protocol.Protocol):
    def dataReceived(self, data):
        if data.startswith(wire.subscribePacket()):
            subscribers.add(self.transport)

    def connectionLost(self, reason=None):
        subscribers.discard(self.transport)


class Ingest(LineOnlyReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 2 * 1024 * 1024

    def lineReceived(self, line):
        read = json.loads(line)
        packet = wire.encodeEvent([
            ("State", "Updated"), ("PlateNumber", read["plate"]),
            ("ChannelIndex", str(read.get("channel", 0))),
            ("ZoneIndex", str(read.get("zone", 0))),
            ("ProcessTimeMs", str(read.get("process_time_ms", 0)))])
        for transport in subscribers:
            transport.write(packet)


if __name__ == "__main__":
    eventPort, ingestPort = int(sys.argv[1]), int(sys.argv[2])
    reactor.listenTCP(eventPort, protocol.Factory.forProtocol(Client),
                      interface="127.0.0.1")
    reactor.listenTCP(ingestPort, protocol.Factory.forProtocol(Ingest),
                      interface="127.0.0.1")
    reactor.run()
