"""
Fixtures shared by the end-to-end tests: a real C{twistd numberok-tcp}
process on free loopback ports, always killed at the end.

The reactor is not imported here at module level (pytest-twisted installs
it first).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
                 admin: bool = False) -> None:
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
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
    Start servers with C{twistdServer(settings="...", args=[...])}; each is
    killed when the test ends, whatever happened.
    """
    servers: list[TwistdServer] = []

    def start(**kwargs) -> TwistdServer:
        server = TwistdServer(tmp_path, **kwargs)
        servers.append(server)
        server.waitForPort(server.ingestPort)
        return server

    yield start
    for server in servers:
        server.stop(signal.SIGKILL)


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
            self.cert = folder / "cert.pem"
            key = folder / "key.pem"
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                 "-keyout", str(key), "-out", str(self.cert), "-days", "1",
                 "-subj", "/CN=localhost",
                 "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                check=True, capture_output=True)
            lines += ["certfile %s" % (self.cert,), "keyfile %s" % (key,)]
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
            ["mosquitto", "-c", str(self.config)],
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


@pytest.fixture
def mosquittoBroker(tmp_path):
    """Start brokers with C{mosquittoBroker(tls=True, users={...})}; each
    is stopped when the test ends."""
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
