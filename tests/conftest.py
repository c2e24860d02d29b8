"""
Every fixture and polling helper the tests share (plain helpers without a
fixture are in helpers.py; no test module imports from another):

 - the hypothesis profiles ("ci" by default, HYPOTHESIS_PROFILE=thorough);
 - C{twistdServer}: the real C{twistd numberok-tcp} process on free
   loopback ports, always killed at the end;
 - C{server} / C{adminServer}: the server built by
   L{numberok.build.buildServer} in the test's reactor on port 0 (with the
   admin page, a settings file and a password for the web tests), and
   C{http}, C{waitFor}, C{connectTo}, C{subscribedCollectors} to talk to it;
 - C{certificates}: the one set of TLS certificates of a run.

The reactor is not imported here at module level (pytest-twisted installs
it first).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import pytest
from hypothesis import HealthCheck, settings as hypothesisSettings

ROOT = Path(__file__).resolve().parent.parent

# -- hypothesis ------------------------------------------------------------
#
# Property tests state no example count of their own: the profile decides.
# "ci" (the default) runs 100 examples a property, enough to catch the
# boundary cases the strategies aim at in a few seconds for the whole
# suite; HYPOTHESIS_PROFILE=thorough runs 500 (at least what every property
# ran before the profiles) for a deep run before a release.  No deadline:
# on a loaded machine one slow example is not a failure.

hypothesisSettings.register_profile(
    "ci", max_examples=100, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
hypothesisSettings.register_profile(
    "thorough", max_examples=500, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
hypothesisSettings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def freePort() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TWISTD = [sys.executable, "-c",
          "import sys; sys.argv[0] = 'twistd'; "
          "from twisted.scripts.twistd import run; run()"]
"""twistd of this interpreter, whatever PATH says (python -m twisted is the
newer 'twist' runner, which has other options)."""


def checkoutEnvironment() -> dict:
    """
    The environment for subprocesses that must run this checkout: the
    checkout first on PYTHONPATH, which also makes twistd find the plugin in
    its twisted/plugins/ folder.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                       if p])
    env["PYTHONUNBUFFERED"] = "1"
    return env


class TwistdServer:
    """
    A running C{twistd -n numberok-tcp}; its log lines are collected so that
    a test can wait for one ("subscribed", say) instead of sleeping.
    """

    def __init__(self, tmp: Path, settings: str = "", args=(),
                 admin: bool = False, preexec=None) -> None:
        self.eventPort = freePort()
        self.ingestPort = freePort()
        self.adminPort = freePort() if admin else None
        self.config = tmp / "numberok.ini"
        if settings:
            self.config.write_text(settings, encoding="utf-8")
        command = TWISTD + [
            "--nodaemon", "--pidfile=", "--logfile=-", "numberok-tcp",
            "--config", str(self.config),
            "--port", "tcp:%d:interface=127.0.0.1" % (self.eventPort,),
            "--ingest", "tcp:%d:interface=127.0.0.1" % (self.ingestPort,),
            "--admin", ("tcp:%d:interface=127.0.0.1" % (self.adminPort,)
                        if admin else "none"),
        ] + list(args)
        self.lines: list[str] = []
        self._newLine = threading.Condition()
        self.process = subprocess.Popen(
            command, cwd=str(tmp), env=checkoutEnvironment(),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            preexec_fn=preexec)
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        for line in self.process.stdout:
            with self._newLine:
                self.lines.append(line.rstrip("\n"))
                self._newLine.notify_all()

    def waitForLog(self, text: str, timeout: float = 15.0,
                   after: int = 0) -> int:
        """
        Wait until a log line (from index C{after} on) contains C{text}.
        @return: the index of that line.
        """
        deadline = time.monotonic() + timeout
        with self._newLine:
            while True:
                for i in range(after, len(self.lines)):
                    if text in self.lines[i]:
                        return i
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process.poll() is not None:
                    raise AssertionError(
                        "no log line with %r; log:\n%s"
                        % (text, "\n".join(self.lines[-40:])))
                self._newLine.wait(min(remaining, 0.2))

    def waitForPort(self, port: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("twistd exited:\n" + "\n".join(self.lines))
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("port %d never opened; log:\n%s"
                             % (port, "\n".join(self.lines[-40:])))

    def sendReads(self, lines: list[bytes], replies: int = 0) -> list[bytes]:
        """
        Write JSON lines to the ingest port and wait for C{replies} answer
        lines (the port answers bad lines only).  The connection stays open
        while waiting, as a recognizer's would.
        """
        with socket.create_connection(("127.0.0.1", self.ingestPort), 5) as s:
            s.sendall(b"".join(line + b"\n" for line in lines))
            s.settimeout(10)
            answer = b""
            while answer.count(b"\n") < replies:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
            return answer.splitlines()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


@pytest.fixture
def twistdServer(tmp_path):
    """
    Start servers with C{twistdServer(settings="...", args=[...],
    admin=..., preexec=...)}; each is returned once all its ports accept
    connections, and killed when the test ends, whatever happened.
    """
    servers: list[TwistdServer] = []

    def start(**kwargs) -> TwistdServer:
        server = TwistdServer(tmp_path, **kwargs)
        servers.append(server)
        for port in (server.ingestPort, server.eventPort, server.adminPort):
            if port is not None:
                server.waitForPort(port)
        return server

    yield start
    for server in servers:
        server.stop(signal.SIGKILL)


# -- the server in this process, on loopback ports ---------------------------

LOOPBACK_ANY_PORT = "tcp:0:interface=127.0.0.1"


def getReactor():
    from twisted.internet import reactor
    return reactor


def sleep(seconds: float):
    """A Deferred that fires after C{seconds} of real time."""
    from twisted.internet import task
    return task.deferLater(getReactor(), seconds, lambda: None)


def bounded(d, seconds: float = 10):
    """C{d} with a timeout, so a test that would hang fails instead."""
    return d.addTimeout(seconds, getReactor())


def waitFor(predicate, seconds: float = 10.0, step: float = 0.05):
    """Poll C{predicate} on the reactor until it holds (bounded)."""
    from twisted.internet import defer

    @defer.inlineCallbacks
    def poll():
        deadline = getReactor().seconds() + seconds
        while not predicate():
            if getReactor().seconds() > deadline:
                raise AssertionError("condition not met within %s s"
                                     % (seconds,))
            yield sleep(step)
    return poll()


class InProcessServer:
    """
    The real server, built by L{numberok.build.buildServer} exactly as
    C{twistd numberok-tcp} builds it, in the test's reactor, listening on
    127.0.0.1 port 0 (so tests read its parts and counters directly).
    """

    def __init__(self, journalPath=None, admin: bool = False,
                 settingsPath=None, settings=None, **changes) -> None:
        from numberok.build import Endpoints, buildServer
        from numberok.settings import Settings
        settings = (settings or Settings()).withChanges(changes)
        self.root = buildServer(
            settings,
            Endpoints(events=LOOPBACK_ANY_PORT, ingest=LOOPBACK_ANY_PORT,
                      admin=LOOPBACK_ANY_PORT if admin else None),
            reactor=getReactor(), settingsPath=settingsPath,
            journalPath=None if journalPath is None else str(journalPath),
            screenshotThreads=1)
        self.root.privilegedStartService()
        self.root.startService()

    def __getattr__(self, name: str):
        # The parts by name: s.publisher, s.factory, s.journal, ...
        return getattr(self.root, name)

    @property
    def port(self) -> int:
        return self.root.eventPort.boundPort

    @property
    def ingestPort(self) -> int:
        return self.root.ingest.boundPort

    @property
    def ingestFactory(self):
        return self.root.ingest.factory

    def stop(self):
        from twisted.internet import defer
        if not self.root.running:
            return defer.succeed(None)
        return bounded(defer.maybeDeferred(self.root.stopService), 15)


@pytest.fixture
def server():
    """Start in-process servers with C{server(**settings)}; all are stopped
    when the test ends."""
    yield from _stoppedAfter(InProcessServer)


def _stoppedAfter(make):
    """A fixture body: yields C{make}, stops what it made after the test."""
    import pytest_twisted
    servers: list[InProcessServer] = []

    def start(**kwargs) -> InProcessServer:
        s = make(**kwargs)
        servers.append(s)
        return s
    yield start
    for s in servers:
        if s.root.running:
            pytest_twisted.blockon(s.stop())


def openGate():
    """The admin site's real gate with no password set: it lets
    loopback requests in (for resource trees served without the whole
    admin site)."""
    from numberok.settings import Settings, SettingsStore
    from numberok.web.auth import Sessions
    from numberok.web.gate import Gate
    return Gate(SettingsStore(Settings()), Sessions(getReactor()), None)


def connectTo(port: int, protocol):
    """Connect C{protocol} to 127.0.0.1:C{port} (bounded)."""
    from twisted.internet.endpoints import TCP4ClientEndpoint
    from twisted.internet.protocol import Factory
    endpoint = TCP4ClientEndpoint(getReactor(), "127.0.0.1", port, timeout=5)
    return bounded(endpoint.connect(Factory.forProtocol(lambda: protocol)), 5)


@pytest.fixture(scope="session")
def certificates(tmp_path_factory):
    """TLS material for the whole run (L{helpers.Certificates}): made once,
    read-only for the tests."""
    from helpers import Certificates
    return Certificates(tmp_path_factory.mktemp("tls"))


def subscribedCollectors(s: InProcessServer, n: int):
    """Connect C{n} L{helpers.Collector}s to C{s}'s event port; fires with
    them once the server counts all of them subscribed."""
    from twisted.internet import defer

    from helpers import Collector

    @defer.inlineCallbacks
    def connectAll():
        collectors = [Collector() for _ in range(n)]
        for c in collectors:
            yield connectTo(s.port, c)
        yield waitFor(lambda: sum(p.subscribed for p in s.factory.connections())
                      >= n)
        return collectors
    return connectAll()


# -- the admin web, over HTTP on loopback ------------------------------------

ADMIN_PASSWORD = "correct horse battery"

ADMIN_SETTINGS = """\
; test settings -- this comment must survive saves
[NetServer]
Port = 7700                     ; 1..65535
AttachedScreenshotsQuality = 50 ; JPEG quality 10..100

[Zone:0:0]
LossIntervalSec = 5             ; gate
InDirection = down

[Custom]
keep = me
"""
"""The settings file an L{AdminServer} starts from (its comments and
unknown section must survive saves)."""


class AdminServer(InProcessServer):
    """
    The real server (L{InProcessServer}) with its admin page on 127.0.0.1
    port 0, its settings in a file (C{path}) the page saves to, and
    optionally a password.  Failed logins are slowed by 10 ms instead of
    1 s: the doubling is L{numberok.web.auth.LoginThrottle}'s own test's.
    """

    def __init__(self, tmp_path: Path, password: Optional[str] = None,
                 text: str = ADMIN_SETTINGS, **changes) -> None:
        from numberok import settings as S
        from numberok.web import auth
        if password is not None:
            text += "\n[Admin]\nPasswordHash = %s\n" % (
                auth.hashPassword(password, iterations=1000),)
        self.path = str(tmp_path / "numberok.ini")
        Path(self.path).write_text(text, encoding="utf-8")
        super().__init__(admin=True, settingsPath=self.path,
                         settings=S.load(self.path), **changes)
        self.root.admin.throttle.baseDelay = 0.01
        self.url = "http://127.0.0.1:%d" % (self.admin.web.boundPort,)

    @property
    def events(self):
        """The event port's listening service (the page moves it)."""
        return self.root.eventPort

    def reads(self) -> list:
        """The last read of every active track: what pushed reads became
        in the analytics (one read per vehicle in these tests)."""
        return [t.lastRead for t in self.analytics.activeTracks()]

    def basic(self, password: str = ADMIN_PASSWORD) -> dict:
        """HTTP Basic credentials for the admin user."""
        import base64
        token = base64.b64encode(("admin:" + password).encode()).decode()
        return {"Authorization": "Basic " + token}


@pytest.fixture
def adminServer(tmp_path):
    """Start admin servers with C{adminServer(password=..., text=...,
    **settings)}; all are stopped when the test ends."""
    yield from _stoppedAfter(lambda **kwargs: AdminServer(tmp_path, **kwargs))


class Response:
    """An HTTP answer read to its end."""

    def __init__(self, code: int, headers, body: bytes) -> None:
        self.code = code
        self.headers = headers
        self.body = body

    def header(self, name: str) -> Optional[str]:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None

    def headerValues(self, name: str) -> list[str]:
        return self.headers.getRawHeaders(name) or []

    def json(self):
        return json.loads(self.body)


async def http(method: str, url: str, body=None, headers=None) -> Response:
    """One request with C{Agent} (a dict or list body is sent as JSON),
    every wait bounded."""
    import io

    from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool
    from twisted.web.http_headers import Headers

    from helpers import Received

    reactor = getReactor()
    headers = dict(headers or {})
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode("utf-8")
        headers.setdefault("Content-Type", "application/json")
    agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
    response = await bounded(agent.request(
        method.encode("ascii"), url.encode("ascii"),
        Headers({k: [v] for k, v in headers.items()}),
        FileBodyProducer(io.BytesIO(body)) if body is not None else None), 5)
    body = Received()
    response.deliverBody(body)
    data = await bounded(body.closed, 5)
    return Response(response.code, response.headers, data)


class Mosquitto:
    """
    A real C{mosquitto} on a free loopback port, persisting to C{folder}
    (so a restart keeps sessions and queued messages).  C{stop()} and
    C{start()} again to simulate an outage; the fixture kills it at the end.
    """

    def __init__(self, folder: Path, tls: bool = False,
                 users: dict = None) -> None:
        self.folder = folder
        self.port = freePort()
        self.process = None
        self.log = folder / "mosquitto.log"
        self.config = folder / "mosquitto.conf"
        self.tls = tls
        # user root: started as root it would switch to the mosquitto user
        # and then fail to write its persistence file here.
        lines = ["listener %d 127.0.0.1" % (self.port,),
                 "persistence true", "persistence_location %s/" % (folder,),
                 "user root", "log_dest file %s" % (self.log,),
                 "max_queued_messages 10000"]
        if tls:
            from helpers import Certificates
            made = Certificates(folder)
            # Clients trust the CA that signed the broker's certificate.
            self.cert = made.caPath
            lines += ["certfile %s" % (made.certPath,),
                      "keyfile %s" % (made.keyPath,)]
        if users:
            passwords = folder / "passwords"
            passwords.write_text("")
            for name, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwords),
                                name, password], check=True,
                               capture_output=True)
            lines += ["allow_anonymous false",
                      "password_file %s" % (passwords,)]
        else:
            lines.append("allow_anonymous true")
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @property
    def endpoint(self) -> str:
        if self.tls:
            return "tls:host=localhost:port=%d:trustRoots=%s" % (
                self.port, self.cert)
        return "tcp:host=127.0.0.1:port=%d" % (self.port,)

    def start(self, timeout: float = 10.0) -> None:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("mosquitto exited:\n" + self.readLog())
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("mosquitto did not listen:\n" + self.readLog())

    def stop(self) -> None:
        """SIGTERM: mosquitto writes its persistence file, then exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def readLog(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@pytest.fixture
def mosquitto(mosquittoBroker):
    """A started plain L{Mosquitto}; stopped when the test ends."""
    return mosquittoBroker()


def _findMosquitto():
    import shutil
    for found in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if found and os.access(found, os.X_OK):
            return found
    return None


MOSQUITTO = _findMosquitto()
"""Debian's broker (``apt-get install mosquitto``); /usr/sbin is not on
every PATH."""


@pytest.fixture
def mosquittoBroker(tmp_path):
    """Start brokers with C{mosquittoBroker(tls=True, users={...})}; each
    is stopped when the test ends.  Without Mosquitto the test is skipped,
    except under CI (C{CI} set), where it fails: CI installs it."""
    if MOSQUITTO is None:
        message = ("needs Debian's Mosquitto broker: "
                   "`apt-get install -y mosquitto`")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    brokers: list = []

    def start(**kwargs) -> Mosquitto:
        folder = tmp_path / ("mosquitto%d" % (len(brokers),))
        folder.mkdir()
        broker = Mosquitto(folder, **kwargs)
        brokers.append(broker)
        broker.start()
        return broker
    yield start
    for broker in brokers:
        broker.stop()


class JournalSite:
    """What L{journalSite} gives: unpacks as C{(journal, get)}."""

    def __init__(self, journal, get, settings) -> None:
        self.journal, self.get, self.settings = journal, get, settings

    def __iter__(self):
        return iter((self.journal, self.get))


@pytest.fixture
def journalSite(tmp_path):
    """A running journal behind C{/api/events} and C{/api/visits} on a
    loopback port, with its own settings (for the zones' roles); C{get(
    path)} fires with C{(code, headers, body)}."""
    from twisted.internet import reactor
    from twisted.web.client import Agent, readBody
    from twisted.web.resource import Resource
    from twisted.web.server import Site

    from twisted.internet.task import Clock

    from numberok.journal import Journal
    from numberok.journal.resource import JournalResource
    from numberok.journal.visits_api import Visits, VisitsResource
    from numberok.metrics import Metrics
    from numberok.settings import SettingsStore

    journal = Journal(str(tmp_path / "j"), clock=Clock(), metrics=Metrics())
    journal.pruneInterval = 1e9
    journal.startService()
    root, api = Resource(), Resource()
    root.putChild(b"api", api)
    api.putChild(b"events", JournalResource(journal, openGate(),
                                            "/api/events"))
    settings = SettingsStore()
    api.putChild(b"visits", VisitsResource(Visits(journal, settings),
                                           openGate()))
    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    base = "http://127.0.0.1:%d" % (port.getHost().port,)
    agent = Agent(reactor)

    def get(path: str):
        d = agent.request(b"GET", (base + path).encode())
        d.addCallback(lambda r: readBody(r).addCallback(
            lambda body: (r.code, r.headers, body)))
        return d.addTimeout(20, reactor)
    import pytest_twisted
    try:
        yield JournalSite(journal, get, settings)
    finally:
        pytest_twisted.blockon(port.stopListening())
        pytest_twisted.blockon(journal.stopService())
# -- a webhook receiver ------------------------------------------------------

WEBHOOK_SECRET = "s3cret-key"


class WebhookReceiver:
    """
    A real HTTP receiver on 127.0.0.1 port 0 (twisted.web in the test's
    reactor), checking every request's X-Numberok-Signature as an
    integrator's would.  C{script(n, body)} chooses each answer: an HTTP
    code, C{"abort"} (the connection is cut), C{"hang"} (no answer: the
    sender's timeout) or C{"close"} (200, then the connection is closed
    without a C{Connection: close} having said so).  C{accepted} holds the
    bodies answered 2xx, in arrival order; C{requests} every request as
    C{(headers, body)}.
    """

    def __init__(self, script=None) -> None:
        from twisted.web import resource, server

        self.script = script or (lambda n, body: 200)
        self.requests: list = []
        self.accepted: list = []
        self.badSignatures = 0
        self.hanging: list = []
        receiver = self

        class Hook(resource.Resource):
            isLeaf = True

            def render_POST(self, request):
                return receiver._take(request)

            render_PUT = render_POST

        self.site = server.Site(Hook())
        self.port = getReactor().listenTCP(0, self.site,
                                           interface="127.0.0.1")

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d/hook" % (self.port.getHost().port,)

    def _take(self, request):
        import hashlib
        import hmac

        from twisted.web.server import NOT_DONE_YET
        data = request.content.read()
        headers = {k.decode().lower(): v[0].decode()
                   for k, v in request.requestHeaders.getAllRawHeaders()}
        expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), data,
                                        hashlib.sha256).hexdigest()
        if headers.get("x-numberok-signature") != expected:
            self.badSignatures += 1
            request.setResponseCode(401)
            return b"bad signature"
        body = json.loads(data)
        self.requests.append((headers, body))
        action = self.script(len(self.requests), body)
        if action == "abort":
            request.channel.transport.abortConnection()
            return NOT_DONE_YET
        if action == "hang":
            self.hanging.append(request)
            return NOT_DONE_YET
        if action == "close":           # 200, then closed unannounced
            self.accepted.append(body)
            transport = request.channel.transport
            request.write(b"ok")
            request.finish()
            transport.loseConnection()
            return NOT_DONE_YET
        request.setResponseCode(action)
        if 200 <= action < 300:
            self.accepted.append(body)
        return b"refused" if action >= 400 else b"ok"

    def stop(self):
        for request in self.hanging:
            if request.channel is not None:
                request.channel.transport.abortConnection()
        return self.port.stopListening()


@pytest.fixture
def webhookReceiver():
    """Start receivers with C{webhookReceiver(script)}; all stop at the
    end."""
    import pytest_twisted
    receivers: list = []

    def start(script=None) -> WebhookReceiver:
        receiver = WebhookReceiver(script)
        receivers.append(receiver)
        return receiver
    yield start
    for receiver in receivers:
        pytest_twisted.blockon(receiver.stop())


class MemoryHTTP:
    """
    A twisted.web resource served in memory to a real C{Agent}
    (C{Agent.usingEndpointFactory(clock, memory)}): each connection is a
    pair of L{twisted.test.iosim} transports, moved along by L{flush}.  For
    HTTP clients driven by a C{Clock}: no socket, no wall-clock time.
    """

    def __init__(self, resource) -> None:
        from twisted.web.server import Site
        self.site = Site(resource)
        self.site.timeOut = None
        self.pumps: list = []
        self.closedQuietly: list = []

    def endpointForURI(self, uri):
        return _MemoryEndpoint(self)

    def flush(self) -> None:
        for _ in range(3):
            for pump in self.pumps:
                pump.flush()
            for pump in self.closedQuietly:
                _meetClosedSocket(pump)

    def closeQuietly(self) -> None:
        """
        The receiver closes every open connection without the client
        hearing of it (the race of a receiver that closes after each answer
        without C{Connection: close}): the client learns only when it next
        writes -- its bytes meet a closed socket, the connection dies, no
        answer comes.
        """
        for pump in self.pumps:
            pump.serverIO.disconnected = True
            pump.serverIO.reportDisconnect()
        self.closedQuietly.extend(self.pumps)
        self.pumps = []


def _meetClosedSocket(pump) -> None:
    """Whatever the client wrote to a quietly closed connection is lost,
    and the client's connection dies (a reset)."""
    if pump.clientIO.getOutBuffer() and not pump.clientIO.disconnected:
        pump.clientIO.disconnected = True
        pump.clientIO.reportDisconnect()


class _MemoryEndpoint:
    def __init__(self, memory: MemoryHTTP) -> None:
        self.memory = memory

    def connect(self, factory):
        from twisted.internet.defer import succeed
        from twisted.test import iosim
        client = factory.buildProtocol(None)
        server = self.memory.site.buildProtocol(None)
        self.memory.pumps.append(iosim.connect(
            server, iosim.FakeTransport(server, isServer=True),
            client, iosim.FakeTransport(client, isServer=False),
            greet=False))
        return succeed(client)


# -- a NumberOk client that keeps what it read --------------------------------

from numberok.client import NumberOkClientProtocol, eventFields  # noqa: E402
# numberok.client imports no reactor, so conftest may import it here.


class FieldsClient(NumberOkClientProtocol):
    """A NumberOk client that keeps every event's fields."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def eventReceived(self, pairs, jpeg) -> None:
        self.events.append(eventFields(pairs))


EVERY_READ_AT_FULL_QUALITY = """\
[NetServer]
AttachScreenshotsToEvents = 1
AttachedScreenshotsQuality = 100
[Analytics]
UseRawResults = 1
SkipFirstResults = 0
"""
"""Settings of the real-process memory tests: an event for every read, each
with its screenshot at quality 100 (the worst case for memory)."""
