"""
Webhook outputs: every C{[Webhook:<name>]} target receives events as signed
HTTP requests, Lost ones at least once and in order through its own outbox
cursor (docs/integrations.rst).

- L{numberok.webhooks.config}: a target's settings as a value, its filters,
  headers and signature;
- L{numberok.webhooks.body}: the body (the MQTT event object) and its
  idempotency key;
- L{numberok.webhooks.http}: one request over C{Agent}, and what its answer
  means;
- L{numberok.webhooks.target}: one target: retries, parking, live events;
- L{numberok.webhooks.service}: the targets of the settings, kept in step;
- L{numberok.webhooks.resource}: C{GET /api/webhooks}.
"""

from numberok.webhooks.service import WebhookService

__all__ = ["WebhookService"]
