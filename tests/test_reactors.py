"""The one lazy reactor lookup (numberok.reactors.LazyReactor)."""

from __future__ import annotations

from twisted.internet.task import Clock

from numberok.reactors import LazyReactor


class Part:
    reactor = LazyReactor()

    def __init__(self, reactor=None) -> None:
        self._reactor = reactor


def test_an_injected_reactor_is_the_one_used():
    clock = Clock()
    assert Part(clock).reactor is clock


def test_without_one_the_global_reactor_is_looked_up_and_kept():
    from twisted.internet import reactor
    part = Part()
    assert part.reactor is reactor
    assert part._reactor is reactor
