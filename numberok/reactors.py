"""
The one way a part finds its reactor when none was injected.

Parts take C{reactor=None} so tests can hand them a C{Clock}; the global
reactor is looked up on first use, not at import, because importing
C{twisted.internet.reactor} installs the default one (pytest-twisted and
twistd choose theirs first).
"""

from __future__ import annotations

from typing import Any


class LazyReactor:
    """
    A C{reactor} attribute: the instance's C{_reactor} when one was
    injected, else the global reactor, looked up on first use and kept.
    """

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is None:
            return self
        if instance._reactor is None:
            from twisted.internet import reactor
            instance._reactor = reactor
        return instance._reactor
