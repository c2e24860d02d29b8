"""
C{POST /api/reads}: HTTP ingest.  The body is parsed (in the admin thread
pool: a multipart body with a JPEG is not parsed on the reactor) by
L{numberok.web.service.AdminService.parseReads}; every read goes to the
sink, or none.
"""

from __future__ import annotations


from numberok.metrics import Metrics
from numberok.sources import handOver
from numberok.sources.formats import ReadFormatError
from numberok.web.common import (Endpoint, HTTPError, answerJSON, peer,
                                 readBody)


class ReadsEndpoint(Endpoint):
    """
    @param admin: the L{numberok.web.service.AdminService} (its sink,
        reactor, thread pool and body limit).
    """

    def __init__(self, gate, admin, metrics: Metrics) -> None:
        super().__init__(gate)
        self.admin = admin
        self.refused = metrics.readErrors.labels(source="http")

    async def POST(self, request, identity) -> None:
        admin = self.admin
        if admin.sink is None:
            raise HTTPError(503, {"sink": "this server takes no reads"})
        contentType = request.getHeader("content-type") or ""
        nowMs = int(admin.reactor.seconds() * 1000)
        try:
            body = readBody(request, admin.maxReadBody)
            reads = await admin.parseReads(contentType, body, nowMs)
        except ReadFormatError as e:
            self.refused.inc()
            self.log.warn("HTTP ingest from {peer}: {field}: {message}",
                          peer=peer(request), field=e.field,
                          message=e.message)
            code = 415 if e.field == "Content-Type" else 400
            raise HTTPError(code, {e.field: e.message})
        except HTTPError:
            self.refused.inc()
            raise
        for read in reads:
            handOver(admin.sink, read, "HTTP ingest")
        answerJSON(request, 202, {"accepted": len(reads)})
