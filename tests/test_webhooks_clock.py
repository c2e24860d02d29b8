"""
A webhook target's retries in memory: a real C{Agent} talks to a
twisted.web resource over in-memory transports (C{MemoryHTTP} in
conftest.py) and time is a C{Clock}, so the backoff, C{Retry-After}, the
timeout and parking are proved without sockets or waiting.
"""

from __future__ import annotations

import json

from conftest import MemoryHTTP
from twisted.internet.task import Clock
from twisted.web import resource
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.server import NOT_DONE_YET

from numberok.events import EventState, MovementType, PlateEvent
from numberok.metrics import Metrics
from numberok.settings import Settings
from numberok.settings.keys import WEBHOOK_FAMILY
from numberok.threads import ServiceThreads
from numberok.webhooks.body import buildBody
from numberok.webhooks.config import TargetConfig
from numberok.webhooks.target import WebhookTarget


class Scripted(resource.Resource):
    """Answers each request with the next of C{answers}: a code, a
    C{(code, retryAfter)} pair, C{"hang"} or C{"abort"} (the connection
    is cut, no answer)."""

    isLeaf = True

    def __init__(self, answers: list) -> None:
        super().__init__()
        self.answers = list(answers)
        self.seen = 0
        self.ids: list = []
        self.hanging: list = []

    def render_POST(self, request):
        self.seen += 1
        self.ids.append(json.loads(request.content.read())["id"])
        answer = self.answers.pop(0) if self.answers else 200
        if answer == "hang":
            self.hanging.append(request)
            return NOT_DONE_YET
        if answer == "abort":
            request.channel.transport.abortConnection()
            return NOT_DONE_YET
        if isinstance(answer, tuple):
            answer, retryAfter = answer
            request.setHeader(b"Retry-After", b"%d" % (retryAfter,))
        request.setResponseCode(answer)
        return b"answer"


def lost(runtimeId: int) -> PlateEvent:
    return PlateEvent(state=EventState.LOST, runtimeId=runtimeId, channel=0,
                      zone=0, plate="A123BC77", rawPlate="A123BC77",
                      frameTimeMs=1700000000000, processTimeMs=1,
                      movement=MovementType.IN, checkpoint=0,
                      confidence=0.9, reads=3)


class Harness:
    def __init__(self, answers: list, timeout: str = "5",
                 persistent: bool = False) -> None:
        self.clock = Clock()
        self.receiver = Scripted(answers)
        self.memory = MemoryHTTP(self.receiver)
        agent = Agent.usingEndpointFactory(
            self.clock, self.memory,
            pool=HTTPConnectionPool(self.clock, persistent=persistent))
        settings = Settings().withChanges({
            "Webhook:erp.Url": "http://erp.example/hook",
            "Webhook:erp.TimeoutSec": timeout})
        self.config = TargetConfig.fromSection(
            settings.family(WEBHOOK_FAMILY)[0])
        self.metrics = Metrics()
        self.target = WebhookTarget(self.config, agent, self.clock,
                                    ServiceThreads("unused"), self.metrics)
        self.target.maxJitter = 0.0
        self.target.start()

    def send(self, journalId: int):
        body = buildBody(self.config, lost(journalId), 7, journalId)
        done = self.target.send(None, body)
        self.memory.flush()
        return done

    def nextDelay(self) -> float:
        [call] = [c for c in self.clock.getDelayedCalls() if c.active()]
        return call.getTime() - self.clock.seconds()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.memory.flush()

    def failedTries(self) -> float:
        return sum(self.metrics.value("numberok_webhook_attempts_total",
                                      target="erp", outcome=outcome)
                   for outcome in ("timeout", "connect", "error", "2xx",
                                   "3xx", "4xx", "5xx"))


def test_failures_back_off_exponentially_to_the_cap_and_never_give_up():
    h = Harness([503] * 12)
    done = h.send(1)
    delays = []
    for _ in range(12):
        delays.append(h.nextDelay())
        h.advance(delays[-1])
    assert delays[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert delays[-1] == WebhookTarget.maxDelay
    assert h.receiver.seen == 13 and done.called
    assert h.target.status()["delivered"] == 1
    assert h.metrics.value("numberok_webhook_attempts_total", target="erp",
                           outcome="5xx") == 12


def test_retry_after_of_a_429_is_the_wait():
    h = Harness([(429, 7)])
    done = h.send(1)
    assert h.nextDelay() == 7.0
    assert h.target.status()["retrying"] is True
    h.advance(7)
    assert done.called


def test_no_answer_within_timeout_sec_is_a_timeout_and_is_retried():
    h = Harness(["hang"], timeout="3")
    done = h.send(1)
    h.advance(2.9)
    assert not done.called and h.target.status()["last_error"] is None
    h.advance(0.2)
    assert h.target.status()["last_error"] == "no answer within 3 s"
    h.advance(h.nextDelay())
    assert done.called and h.receiver.seen == 2


def test_a_refused_event_is_parked_after_the_third_refusal_with_backoff():
    h = Harness([400, 422, 400])
    done = h.send(9)
    h.advance(h.nextDelay())
    h.advance(h.nextDelay())
    assert done.called and h.receiver.seen == 3
    assert h.target.status()["parked_ids"] == [9]
    assert h.target.status()["delivered"] == 0
    later = h.send(10)                  # the target moves on
    assert later.called and h.target.status()["delivered"] == 1


# -- a receiver that closes each connection after its answer -----------------

def test_a_lost_that_meets_a_connection_the_receiver_closed_goes_again_at_once_on_a_new_one():  # noqa: E501
    h = Harness([], persistent=True)
    for journalId in range(1, 31):
        done = h.send(journalId)
        assert done.called, journalId     # no backoff waited
        h.memory.closeQuietly()           # after the answer, unannounced
    assert h.receiver.ids == list(range(1, 31))
    assert h.failedTries() == 0
    assert h.target.status()["delivered"] == 30
    assert h.target.status()["last_error"] is None
    assert not [c for c in h.clock.getDelayedCalls()
                if c.active() and c.func == h.target._kick]


def test_a_resent_request_that_dies_again_is_one_failed_try_with_the_backoff():  # noqa: E501
    h = Harness([200, "abort"], persistent=True)
    assert h.send(1).called
    h.memory.closeQuietly()
    done = h.send(2)                      # dead connection, then a cut
    assert not done.called
    assert h.receiver.seen == 2           # sent again once, not more
    assert h.metrics.value("numberok_webhook_attempts_total", target="erp",
                           outcome="error") == 1
    assert h.failedTries() == 1
    assert h.nextDelay() == 1.0
    h.advance(1.0)
    assert done.called and h.receiver.ids == [1, 2, 2]


def test_the_resent_request_stays_within_timeout_sec_of_the_first():
    h = Harness([200, "hang"], timeout="3", persistent=True)
    assert h.send(1).called
    h.memory.closeQuietly()
    done = h.send(2)
    assert h.receiver.seen == 2
    h.advance(2.9)
    assert not done.called and h.target.status()["last_error"] is None
    h.advance(0.2)
    assert h.target.status()["last_error"] == "no answer within 3 s"
    assert h.failedTries() == 1
    assert h.metrics.value("numberok_webhook_attempts_total", target="erp",
                           outcome="timeout") == 1


def test_stopping_the_target_cancels_the_resent_request():
    h = Harness([200, "hang"], persistent=True)
    assert h.send(1).called
    h.memory.closeQuietly()
    h.send(2)
    [hanging] = h.receiver.hanging
    lost: list = []
    hanging.notifyFinish().addErrback(lost.append)
    h.target.stop()
    h.memory.flush()
    assert lost                          # the client hung up
    assert h.receiver.seen == 2 and h.failedTries() == 0
    assert not [c for c in h.clock.getDelayedCalls() if c.active()]


def test_stopping_the_target_mid_request_does_not_send_it_again():
    h = Harness(["hang"], persistent=True)
    h.send(1)
    h.target.stop()                      # cancels: not a dead connection
    h.memory.flush()
    assert h.receiver.seen == 1 and len(h.memory.pumps) == 1
