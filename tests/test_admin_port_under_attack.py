"""
The real C{twistd numberok-tcp} under a low file-descriptor limit while its
admin port is attacked: 300 connections trickling requests from 20
addresses and a 200,000-part multipart body posted to C{/login}.  The event
and ingest ports must not notice: an event still reaches a NumberOk client
at once.  (The limits themselves are tested in memory in
test_admin_limits.py; only a real process shows the descriptors.)
"""

from __future__ import annotations

import json
import resource
import select
import socket
import threading
import time

from numberok import wire

FD_LIMIT = 128
SETTINGS = """\
[Analytics]
SkipFirstResults = 0

[Journal]
Path =
"""


def lowFdLimit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def trickle(port: int, count: int, addresses: int) -> list[socket.socket]:
    """C{count} connections from 127.0.0.2.. that send half a request,
    connected all at once (a full backlog drops SYNs; the kernel retries).
    @return: the sockets that connected within two seconds."""
    pending = []
    for i in range(count):
        s = socket.socket()
        s.bind(("127.0.0.%d" % (2 + i % addresses,), 0))
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        pending.append(s)
    connected, deadline = [], time.monotonic() + 2
    while pending and time.monotonic() < deadline:
        _, writable, _ = select.select([], pending, [], 0.1)
        for s in writable:
            pending.remove(s)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                try:
                    s.send(b"GET / HTTP/1.1\r\nHo")
                    connected.append(s)
                    continue
                except OSError:
                    pass
            s.close()
    for s in pending:
        s.close()
    return connected


def closedByPeer(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def postFlood(port: int, answers: list, started: threading.Event) -> None:
    part = (b"--b\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\nx\r\n")
    body = part * 200_000 + b"--b--\r\n"
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.settimeout(10)
        s.sendall(b"POST /login HTTP/1.1\r\nHost: localhost\r\n"
                  b"Content-Type: multipart/form-data; boundary=b\r\n"
                  b"Content-Length: %d\r\n\r\n" % (len(body),))
        started.set()
        try:
            s.sendall(body)
        except OSError:
            pass  # closed after the answer: what a refusal may do
        answers.append(s.recv(4096))


def test_event_and_ingest_ports_work_while_the_admin_port_is_flooded(
        twistdServer):
    server = twistdServer(settings=SETTINGS, admin=True, preexec=lowFdLimit)
    eventPort, ingestPort, adminPort = (server.eventPort, server.ingestPort,
                                        server.adminPort)
    sockets: list[socket.socket] = []
    try:
        answers: list = []
        started = threading.Event()
        flood = threading.Thread(target=postFlood,
                                 args=(adminPort, answers, started))
        flood.start()
        assert started.wait(5)
        sockets = trickle(adminPort, 300, addresses=20)
        # The refused ones are closed once accepted from the backlog.
        for _ in range(50):
            stillOpen = [s for s in sockets if not closedByPeer(s)]
            if len(stillOpen) <= 64:
                break
            time.sleep(0.1)
        assert len(sockets) > 200 and len(stillOpen) <= 64

        client = socket.create_connection(("127.0.0.1", eventPort), 5)
        sockets.append(client)
        client.sendall(wire.subscribePacket())
        server.waitForLog("subscribed")
        ingest = socket.create_connection(("127.0.0.1", ingestPort), 5)
        sockets.append(ingest)
        sent = time.monotonic()
        ingest.sendall(json.dumps({"plate": "A123BC77"}).encode() + b"\n")
        client.settimeout(5)
        received = b""
        while b"A123BC77" not in received:
            chunk = client.recv(65536)
            assert chunk, "the event port closed the client"
            received += chunk
        latency = time.monotonic() - sent

        flood.join(30)
        assert answers and answers[0].startswith(b"HTTP/1.1 413 ")
        assert latency < 1.0, latency
    finally:
        for s in sockets:
            s.close()
