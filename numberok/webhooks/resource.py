"""
C{GET /api/webhooks}: each webhook target's lag, deliveries, last success,
last error and parked events; C{POST /api/webhooks/<name>/rewind} with
C{{"from_id": N}}: that target sends the journal's Lost events again from
id C{N} on (after its receiver was fixed, to resend parked events;
docs/integrations.rst, "Status").
"""

from __future__ import annotations

from typing import Any

from twisted.web import resource

from numberok.web.common import (Endpoint, HTTPError, Node, answerJSON,
                                 jsonObject, peer, readBody, requireJSON)

MAX_REWIND_BODY = 1024


class WebhooksEndpoint(Endpoint):
    """@param webhooks: the L{numberok.webhooks.WebhookService}."""

    def __init__(self, gate: Any, webhooks: Any) -> None:
        super().__init__(gate)
        self.webhooks = webhooks

    def getChild(self, path: bytes, request: Any) -> resource.Resource:
        name = path.decode("utf-8", "replace")
        return TargetNode(self.gate, self.webhooks, name)

    async def GET(self, request: Any, identity: Any) -> None:
        answerJSON(request, 200, self.webhooks.status())


class TargetNode(Node):
    """C{/api/webhooks/<name>/...}: C{rewind}; anything else a JSON 404."""

    def __init__(self, gate: Any, webhooks: Any, name: str) -> None:
        super().__init__(gate)
        self.webhooks = webhooks
        self.name = name

    def getChild(self, path: bytes, request: Any) -> resource.Resource:
        if path == b"rewind":
            return RewindEndpoint(self.gate, self.webhooks, self.name)
        return Node.getChild(self, path, request)


class RewindEndpoint(Endpoint):
    def __init__(self, gate: Any, webhooks: Any, name: str) -> None:
        super().__init__(gate)
        self.webhooks = webhooks
        self.name = name

    async def POST(self, request: Any, identity: Any) -> None:
        target = self.webhooks.targets.get(self.name)
        if target is None:
            raise HTTPError(404, {"name": "no webhook %r" % (
                self.name[:40],)})
        requireJSON(request)
        body = jsonObject(readBody(request, MAX_REWIND_BODY), "body",
                          '{"from_id": N}')
        fromId = body.get("from_id")
        if isinstance(fromId, bool) or not isinstance(fromId, int) \
                or not 1 <= fromId <= 2 ** 62:
            raise HTTPError(400, {"from_id": "must be a journal id, 1 or "
                                             "more"})
        if target.outbox is None or target.outbox.state()[
                "acknowledged"] is None:
            raise HTTPError(409, {"name": "this target has no journal "
                                          "cursor (yet): nothing to rewind"})
        target.outbox.rewind(fromId)
        self.log.info("webhook {target} rewound to {id} by {peer}",
                      target=self.name, id=fromId, peer=peer(request))
        answerJSON(request, 200, target.status())
