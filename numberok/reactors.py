"""
The one way a part finds its reactor when none was injected.

Parts take C{reactor=None} so tests can hand them a C{Clock} (or a
C{MemoryReactorClock}); the global reactor is looked up on first use, not
at import, because importing C{twisted.internet.reactor} installs the
default one (pytest-twisted and twistd choose theirs first).

A part keeps what it was given in C{self._reactor} and declares
C{reactor = LazyReactor()}.  Annotations name the interface the part uses
(L{IReactorTime} for timers, L{IReactorTCP} for ports, ...), never C{Any}.
"""

from __future__ import annotations

from typing import Any, cast

from twisted.internet.interfaces import IReactorTime


def globalReactor() -> IReactorTime:
    """The installed global reactor (installing the default one if none
    was installed yet)."""
    from twisted.internet import reactor
    return cast(IReactorTime, reactor)


class LazyReactor:
    """
    A C{reactor} attribute: the instance's C{_reactor} when one was
    injected, else the global reactor, looked up on first use and kept.
    """

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is None:
            return self
        if instance._reactor is None:
            instance._reactor = globalReactor()
        return instance._reactor
