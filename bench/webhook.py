"""
Webhook benchmark (docs/integrations.rst, "Sizing"): how fast one
``[Webhook:<name>]`` target delivers Lost events from the journal, against
a bare Twisted HTTP client posting the same bodies, in the same run.

The receiver is a minimal twisted.web server in its own process (answers
200 at once), so its work does not count against either sender.  Both
senders keep one request in flight (a target delivers in order, one at a
time) over a persistent connection.

Phases:

- throughput: the journal holds N Lost events the target has not sent
  (its cursor at 0); delivered events/s from start to the cursor at N
  (the real ``WebhookService``: outbox paging, pictures off, signature,
  cursor file) vs the bare client posting the same N signed bodies;
- outage: a journal pre-filled with 10 minutes of Lost events at a
  realistic rate (``--rate`` per second, 2 by default: four busy lanes),
  the receiver down while the target starts (it retries with backoff),
  then up: the catch-up rate (events/s from the first delivery to the
  cursor at the end) and the wait from the receiver's return to the
  first delivery (bounded by the backoff in force).

    python bench/webhook.py [--events 2000] [--rate 2] [--outage-min 10]
                            [--rounds 3]

Throughput runs alternate (numberok, bare, numberok, ...) and the best of
each is kept: on a shared machine the load moves between runs.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twisted.internet import defer, reactor, task  # noqa: E402
from twisted.web.client import Agent, HTTPConnectionPool  # noqa: E402
from twisted.web.http_headers import Headers  # noqa: E402

from numberok.events import EventState, MovementType, PlateEvent  # noqa: E402
from numberok.journal import Journal  # noqa: E402
from numberok.journal.cursor import writeCursor  # noqa: E402
from numberok.settings import Settings, SettingsStore  # noqa: E402
from numberok.settings.keys import WEBHOOK_FAMILY  # noqa: E402
from numberok.webhooks import WebhookService  # noqa: E402
from numberok.webhooks.body import buildBody  # noqa: E402
from numberok.webhooks.config import TargetConfig  # noqa: E402
from numberok.webhooks.http import BytesProducer, AnswerReader  # noqa: E402
from numberok.webhooks.target import WebhookTarget  # noqa: E402

RECEIVER = r"""
import sys
from twisted.internet import reactor
from twisted.web import resource, server
class Hook(resource.Resource):
    isLeaf = True
    def render_POST(self, request):
        request.content.read()
        return b"ok"
reactor.listenTCP(int(sys.argv[1]), server.Site(Hook()),
                  interface="127.0.0.1")
print("ready", flush=True)
reactor.run()
"""


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def startReceiver(port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    return process


def lost(n: int) -> PlateEvent:
    return PlateEvent(state=EventState.LOST, runtimeId=1764000000000 + n,
                      channel=n % 4, zone=0, plate="A%03dBC77" % (n % 1000,),
                      rawPlate="A%03dBC77" % (n % 1000,),
                      frameTimeMs=1764000000000 + n * 500,
                      processTimeMs=40, movement=MovementType.IN,
                      checkpoint=0, confidence=0.91, reads=7)


def settingsFor(url: str) -> Settings:
    return Settings().withChanges({
        "System.SystemId": "1", "Webhook:bench.Url": url,
        "Webhook:bench.Secret": "bench-secret"})


async def fillJournal(folder: str, count: int) -> Journal:
    journal = Journal(folder)
    journal.startService()
    for n in range(count):
        journal.publish(lost(n))
        if n % 500 == 499:
            await journal.whenIdle()
    await journal.whenIdle()
    return journal


async def waitCursor(service: WebhookService, count: int) -> float:
    while True:
        target = service.targets.get("bench")
        if target is not None and target.outbox is not None and \
                target.outbox.state()["acknowledged"] == count:
            return time.perf_counter()
        await task.deferLater(reactor, 0.005, lambda: None)


async def numberokRun(folder: str, url: str, count: int) -> float:
    journal = await fillJournal(folder, count)
    writeCursor(os.path.join(folder, "webhook-bench.cursor"), 0)
    service = WebhookService(SettingsStore(settingsFor(url)), journal)
    start = time.perf_counter()
    service.startService()
    end = await waitCursor(service, count)
    await service.stopService()
    await journal.stopService()
    return count / (end - start)


async def bareRun(url: str, count: int) -> float:
    config = TargetConfig.fromSection(
        settingsFor(url).family(WEBHOOK_FAMILY)[0])
    bodies = [buildBody(config, lost(n), 1, n + 1) for n in range(count)]
    pool = HTTPConnectionPool(reactor, persistent=True)
    agent = Agent(reactor, pool=pool)
    start = time.perf_counter()
    for body in bodies:
        response = await agent.request(
            b"POST", url.encode(),
            Headers(config.requestHeaders(body.data, body.key)),
            BytesProducer(body.data))
        done: defer.Deferred = defer.Deferred()
        response.deliverBody(AnswerReader(done))
        await done
        assert response.code == 200
    elapsed = time.perf_counter() - start
    await pool.closeCachedConnections()
    return count / elapsed


async def outageRun(folder: str, rate: float, minutes: float
                    ) -> tuple[int, float, float]:
    count = int(rate * minutes * 60)
    journal = await fillJournal(folder, count)
    writeCursor(os.path.join(folder, "webhook-bench.cursor"), 0)
    port = freePort()
    url = "http://127.0.0.1:%d/hook" % (port,)
    service = WebhookService(SettingsStore(settingsFor(url)), journal)
    service.startService()
    await task.deferLater(reactor, 3.0, lambda: None)   # refused meanwhile
    receiver = startReceiver(port)
    back = time.perf_counter()
    try:
        target = service.targets["bench"]
        while not target.delivered:
            await task.deferLater(reactor, 0.005, lambda: None)
        first = time.perf_counter()
        end = await waitCursor(service, count)
    finally:
        await service.stopService()
        await journal.stopService()
        receiver.kill()
    return count, first - back, count / (end - first)


async def main(args: argparse.Namespace) -> None:
    port = freePort()
    receiver = startReceiver(port)
    url = "http://127.0.0.1:%d/hook" % (port,)
    oursRuns, bareRuns = [], []
    try:
        for _ in range(args.rounds):       # interleaved: the load is shared
            with tempfile.TemporaryDirectory() as folder:
                oursRuns.append(await numberokRun(folder, url, args.events))
            bareRuns.append(await bareRun(url, args.events))
    finally:
        receiver.kill()
    ours, bare = max(oursRuns), max(bareRuns)
    print("throughput, %d Lost events, one request in flight, best of %d "
          "interleaved rounds:" % (args.events, args.rounds))
    print("  numberok webhook: %7.0f events/s" % (ours,))
    print("  bare Agent:       %7.0f events/s" % (bare,))
    print("  ratio:            %7.0f %%" % (100 * ours / bare,))
    with tempfile.TemporaryDirectory() as folder:
        count, wait, rate = await outageRun(folder, args.rate,
                                            args.outage_min)
    print("outage of %g min at %g Lost/s (%d events queued in the journal):"
          % (args.outage_min, args.rate, count))
    print("  first delivery %.1f s after the receiver came back (backoff: "
          "%.0f s doubling to %.0f s, + up to %.0f s jitter)"
          % (wait, WebhookTarget.initialDelay, WebhookTarget.maxDelay,
             WebhookTarget.maxJitter))
    print("  catch-up: %.0f events/s (%.1f s for the backlog, %.0fx real "
          "time)" % (rate, count / rate, rate / args.rate))
    print("command: python bench/webhook.py --events %d --rate %g "
          "--outage-min %g --rounds %d" % (args.events, args.rate,
                                          args.outage_min, args.rounds))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--outage-min", type=float, default=10.0)
    options = parser.parse_args()
    task.react(lambda _: defer.ensureDeferred(main(options)))
