"""
L{ByteBudget}: a number of bytes that several holders share and none may
push past its bound -- the bodies the admin site holds at once
(L{numberok.web.limits}), the near-match indexes of all zones
(L{numberok.plates.matching}).  A holder takes its share before it holds
the bytes and gives it back when it lets them go.
"""

from __future__ import annotations


class ByteBudget:
    """
    @ivar maxBytes: the bound.
    @ivar used: what the holders hold now.
    """

    def __init__(self, maxBytes: int) -> None:
        self.maxBytes = maxBytes
        self.used = 0

    def take(self, size: int) -> bool:
        """Take C{size} bytes; C{False}, and nothing taken, past the bound."""
        if self.used + size > self.maxBytes:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        """Give back C{size} bytes taken before."""
        self.used -= size
