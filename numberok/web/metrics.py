"""
C{GET /metrics}: the Prometheus text exposition of the server's one
L{numberok.metrics.Metrics} registry, behind the same gate as the JSON API
(HTTP Basic, which Prometheus sends with C{basic_auth}; open on loopback
while no password is set).  Also the figures the page and
C{/api/connections} show, read from the same registry.
"""

from __future__ import annotations

from numberok.metrics import CONTENT_TYPE_LATEST, Metrics
from numberok.web.common import Endpoint, answer


def byLabel(metrics: Metrics, name: str) -> dict[str, float]:
    """
    Every sample of a one-label metric as C{{label value: value}}, for
    counters whose reasons the page lists as they come (C{reason="limit"},
    ...) rather than from a second copy of their names.
    """
    out: dict[str, float] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name and len(sample.labels) == 1:
                out[next(iter(sample.labels.values()))] = sample.value
    return out


def connectionCounters(metrics: Metrics) -> dict[str, int]:
    """
    The admission counters of C{/api/connections} (their documented names)
    from the registry.
    """
    errors = byLabel(metrics, "numberok_protocol_errors_total")
    timeouts = errors.pop("handshake_timeout", 0)
    figures = {
        "accepted": metrics.value("numberok_connections_accepted_total"),
        "refusedLimit": metrics.value("numberok_connections_refused_total",
                                      reason="limit"),
        "refusedNotAllowed": metrics.value(
            "numberok_connections_refused_total", reason="not_allowed"),
        "handshakeTimeouts": timeouts,
        "protocolErrors": sum(errors.values()),
        "httpReads": metrics.value("numberok_reads_total", source="http"),
        "httpBadRequests": metrics.value("numberok_read_errors_total",
                                         source="http"),
    }
    return {name: int(value) for name, value in figures.items()}


def screenshotCounters(metrics: Metrics) -> dict[str, object]:
    """The screenshot figures docs/plates.rst promises on the page."""
    return {
        "encoded": int(metrics.value("numberok_screenshots_encoded_total")),
        "cacheHits": int(metrics.value(
            "numberok_screenshot_cache_hits_total")),
        "skipped": {reason: int(value) for reason, value in sorted(byLabel(
            metrics, "numberok_screenshots_skipped_total").items()) if value},
    }


class MetricsEndpoint(Endpoint):
    def __init__(self, gate, metrics: Metrics) -> None:
        super().__init__(gate)
        self.metrics = metrics

    async def GET(self, request, identity) -> None:
        answer(request, 200, CONTENT_TYPE_LATEST.encode("ascii"),
               self.metrics.render())
