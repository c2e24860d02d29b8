"""
C{/api/connections}: the NumberOk clients connected now, the admission
counters (from the metrics registry) and the listening state;
C{DELETE /api/connections/<id>} closes one.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from twisted.web import resource

from numberok.metrics import Metrics
from numberok.web.common import Endpoint, HTTPError, answer, answerJSON, peer
from numberok.web.metrics import connectionCounters


def connectionsDocument(admin, metrics: Metrics) -> dict[str, Any]:
    return {
        "connections": [asdict(c) for c in admin.factory.connections()],
        "counters": connectionCounters(metrics),
        "listening": admin.listeningState(),
    }


class ConnectionsEndpoint(Endpoint):
    """
    @param admin: the L{numberok.web.service.AdminService} (its factory and
        listening state).
    """

    def __init__(self, gate, admin, metrics: Metrics) -> None:
        super().__init__(gate)
        self.admin = admin
        self.metrics = metrics

    def getChild(self, path: bytes, request) -> resource.Resource:
        return ConnectionEndpoint(self.gate, self.admin.factory,
                                  path.decode("ascii", "replace"))

    async def GET(self, request, identity) -> None:
        answerJSON(request, 200, connectionsDocument(self.admin,
                                                     self.metrics))


class ConnectionEndpoint(Endpoint):
    def __init__(self, gate, factory, connectionId: str) -> None:
        super().__init__(gate)
        self.factory = factory
        self.connectionId = connectionId

    async def DELETE(self, request, identity) -> None:
        connectionId = self.connectionId
        if not connectionId.isdigit() or not self.factory.disconnect(
                int(connectionId)):
            raise HTTPError(404, {"id": "no connection %s" % (
                connectionId[:20],)})
        self.log.info("connection {id} disconnected by {peer}",
                      id=connectionId, peer=peer(request))
        answer(request, 204, None, b"")
