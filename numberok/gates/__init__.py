"""
Gates: what a decision does at a barrier.  L{GateService} opens the gate
of a channel and zone (C{[Gate:<channel>:<zone>]}) through an L{IRelay}
(L{HttpRelay}: a GET/POST to a relay board), at most once per passage,
retried only within a short window, every attempt in the access log.
docs/lists.rst, "Gates".
"""

from numberok.gates.relay import HttpRelay, RelayError, fill
from numberok.gates.service import GateService, wants

__all__ = ["GateService", "HttpRelay", "RelayError", "fill", "wants"]
