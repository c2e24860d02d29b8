"""
A recording replayed gives the same vehicle events as the same reads fed
live through the ingest port: same plates, same RuntimeID order, same
phases.  This is what makes a replay file a faithful reproduction of a run.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from numberok.analytics import Analytics
from numberok.settings import Settings, SettingsStore
from numberok.sources.demo import recordMain
from numberok.sources.formats import parseReadLine
from numberok.sources.ingest import IngestFactory
from numberok.sources.replay import ReplaySource


class EventList(list):
    def publish(self, event):
        self.append(event)


def analyticsOn(clock):
    events = EventList()
    return Analytics(SettingsStore(Settings()), events, reactor=clock), events


def summary(events):
    """Events with RuntimeIDs replaced by their order of first appearance."""
    order: dict[int, int] = {}
    return [(order.setdefault(e.runtimeId, len(order)), e.state.value,
             e.plate, e.channel, e.zone, e.movement.wireName, e.reads)
            for e in events]


def test_replay_gives_the_events_of_live_ingest(tmp_path):
    path = tmp_path / "run.jsonl"
    assert recordMain([str(path), "--vehicles", "12", "--no-images"]) == 0
    lines = path.read_bytes().splitlines()
    times = [parseReadLine(line, 0)[0].timeMs for line in lines]

    # Live: each line reaches the ingest port at its recorded moment.
    liveClock = Clock()
    liveClock.advance(times[0] / 1000)
    live, liveEvents = analyticsOn(liveClock)
    protocol = IngestFactory(live, reactor=liveClock).buildProtocol(
        IPv4Address("TCP", "127.0.0.1", 1))
    protocol.makeConnection(StringTransport())
    for line, at in zip(lines, times):
        liveClock.advance(at / 1000 - liveClock.seconds())
        protocol.dataReceived(line + b"\n")
    liveClock.advance(60)

    # Replay of the same file at recorded speed.
    replayClock = Clock()
    replayClock.advance(times[0] / 1000)
    replayed, replayEvents = analyticsOn(replayClock)
    source = ReplaySource(replayed, str(path), reactor=replayClock,
                          runInThread=maybeDeferred)
    source.startService()
    replayClock.pump([0.01] * int((times[-1] - times[0]) / 10 + 6000))

    assert protocol.transport.value() == b""      # no line was refused
    assert len(liveEvents) > 12
    assert summary(replayEvents) == summary(liveEvents)
