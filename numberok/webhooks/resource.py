"""
C{GET /api/webhooks}: each webhook target's lag, deliveries, last success,
last error and parked events (docs/integrations.rst, "Status").
"""

from __future__ import annotations

from typing import Any

from numberok.web.common import Endpoint, answerJSON


class WebhooksEndpoint(Endpoint):
    """@param webhooks: the L{numberok.webhooks.WebhookService}."""

    def __init__(self, gate: Any, webhooks: Any) -> None:
        super().__init__(gate)
        self.webhooks = webhooks

    async def GET(self, request: Any, identity: Any) -> None:
        answerJSON(request, 200, self.webhooks.status())
