"""
One webhook target's settings as a value (L{TargetConfig}, from a
C{[Webhook:<name>]} section), and what follows from them alone: which
events it wants, the request headers, the signature (docs/integrations.rst).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Optional

from numberok.events import PlateEvent
from numberok.settings.families import SectionSettings
from numberok.settings.fields import parseHeaders
from numberok.settings.keys import (
    WEBHOOK_CHANNELS,
    WEBHOOK_HEADERS,
    WEBHOOK_METHOD,
    WEBHOOK_PASSWORD,
    WEBHOOK_PICTURES,
    WEBHOOK_SECRET,
    WEBHOOK_STATES,
    WEBHOOK_TIMEOUT_SEC,
    WEBHOOK_TOKEN,
    WEBHOOK_URL,
    WEBHOOK_USERNAME,
    WEBHOOK_ZONES,
)

SIGNATURE_HEADER = b"X-Numberok-Signature"
IDEMPOTENCY_HEADER = b"Idempotency-Key"


def signature(secret: str, body: bytes) -> bytes:
    """C{sha256=<hex>}: HMAC-SHA256 of the raw body keyed with C{Secret}
    (its UTF-8 bytes)."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256)
    return b"sha256=" + digest.hexdigest().encode("ascii")


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """
    One C{[Webhook:<name>]} section, typed.

    @ivar name: the section's identifier (C{erp} of C{[Webhook:erp]}).
    @ivar states: the event states sent (C{"Lost"}, ...).
    @ivar channels: channels sent; empty = all.
    @ivar zones: zones sent; empty = all.
    @ivar pictures: C{none}, C{url} or C{inline}.
    """

    name: str
    url: str
    method: str
    headers: tuple[tuple[str, str], ...]
    authorization: Optional[str]
    secret: str
    states: frozenset[str]
    channels: frozenset[int]
    zones: frozenset[int]
    pictures: str
    timeout: float

    @classmethod
    def fromSection(cls, section: SectionSettings) -> "TargetConfig":
        """@raise ValueError: for a C{Headers} value that does not parse
        (the settings check refuses it first)."""
        authorization = None
        if section[WEBHOOK_TOKEN]:
            authorization = "Bearer " + section[WEBHOOK_TOKEN]
        elif section[WEBHOOK_USERNAME]:
            pair = "%s:%s" % (section[WEBHOOK_USERNAME],
                              section[WEBHOOK_PASSWORD])
            authorization = "Basic " + base64.b64encode(
                pair.encode("utf-8")).decode("ascii")
        return cls(
            name=section.ident, url=section[WEBHOOK_URL],
            method=section[WEBHOOK_METHOD].upper(),
            headers=parseHeaders(section[WEBHOOK_HEADERS]),
            authorization=authorization, secret=section[WEBHOOK_SECRET],
            states=frozenset(section[WEBHOOK_STATES]),
            channels=frozenset(section[WEBHOOK_CHANNELS]),
            zones=frozenset(section[WEBHOOK_ZONES]),
            pictures=section[WEBHOOK_PICTURES],
            timeout=float(section[WEBHOOK_TIMEOUT_SEC]))

    def wants(self, event: PlateEvent) -> bool:
        """Its state, channel and zone pass the target's filters."""
        return (event.state.value in self.states
                and (not self.channels or event.channel in self.channels)
                and (not self.zones or event.zone in self.zones))

    def requestHeaders(self, body: bytes, key: str
                       ) -> dict[bytes, list[bytes]]:
        """Every header of one delivery of C{body}, whose idempotency key
        is C{key}."""
        headers = {
            b"Content-Type": [b"application/json; charset=utf-8"],
            b"User-Agent": [b"numberok-webhook"],
            IDEMPOTENCY_HEADER: [key.encode("ascii")],
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = [signature(self.secret, body)]
        if self.authorization:
            headers[b"Authorization"] = [self.authorization.encode("utf-8")]
        for name, value in self.headers:
            headers.setdefault(name.encode("ascii"), []).append(
                value.encode("utf-8"))
        return headers

    @property
    def safeUrl(self) -> str:
        """The URL without credentials written into it, for status and
        logs."""
        scheme, sep, rest = self.url.partition("://")
        host, slash, path = rest.partition("/")
        return scheme + sep + host.rsplit("@", 1)[-1] + slash + path
