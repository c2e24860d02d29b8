"""
The client protocol and the numberok-client command.

In-memory tests drive the protocol with a StringTransport and the command's
L{client.run} with a MemoryReactorClock (time is advanced by hand).  The
loopback tests put a tiny stand-in server, written here with numberok.wire
only, on 127.0.0.1 port 0: the real NumberOk server is a peer outside the
client, and the client must not lean on our server's code.
"""

from __future__ import annotations

import io
import json
import os
import sys

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python import usage
from twisted.python.failure import Failure

from conftest import ROOT, checkoutEnvironment, freePort
from numberok import client, wire

JPEG = b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9"


def _pairs(n: int = 1, state: str = "Lost", plate: str = "A123BC77",
           **extra: str) -> list[tuple[str, str]]:
    pairs = [
        ("SystemId", "1"),
        ("Status", "IAService.LPR"),
        ("State", state),
        ("RuntimeID", str(1764000000000 + n)),
        ("MovementType", "In"),
        ("uMovementType", "2"),
        ("FrameTimeStampMs", "1795654923456"),
        ("PlateNumber", plate),
        ("RawPlateNumber", plate),
        ("ZoneIndex", "1"),
        ("ChannelIndex", "0"),
        ("Checkpoint", "0"),
        ("Confidence", "93"),
        ("ReadCount", "12"),
    ]
    return pairs + list(extra.items())


def _event(n: int = 1, jpeg: bytes = b"", **kw) -> bytes:
    return wire.encodeEvent(_pairs(n, **kw), jpeg)


class RecordingClient(client.NumberOkClientProtocol):
    """An integrator's subclass: keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[tuple[list[tuple[str, str]], bytes]] = []

    def eventReceived(self, pairs, jpeg):
        self.events.append((pairs, jpeg))


def _connected(protocol=None):
    protocol = RecordingClient() if protocol is None else protocol
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


# --- the protocol -------------------------------------------------------

def test_client_subscribes_as_soon_as_it_is_connected():
    _, transport = _connected()
    assert transport.value() == b"\x19\x00\x00\x00\x00\x00\x00\x00"


@pytest.mark.parametrize("chunking", ["one chunk", "byte by byte", "uneven"])
def test_events_split_across_chunks_are_delivered_whole(chunking):
    stream = _event(1) + _event(2, jpeg=JPEG) + _event(3, state="Updated")
    if chunking == "one chunk":
        chunks = [stream]
    elif chunking == "byte by byte":
        chunks = [stream[i:i + 1] for i in range(len(stream))]
    else:
        chunks = [stream[:3], stream[3:9], stream[9:200], stream[200:]]
    protocol, transport = _connected()
    for chunk in chunks:
        protocol.dataReceived(chunk)
    assert protocol.events == [(_pairs(1), b""), (_pairs(2), JPEG),
                               (_pairs(3, state="Updated"), b"")]
    assert protocol.eventCount == 3
    assert not transport.disconnecting


def test_unexpected_packet_type_closes_the_connection():
    protocol, transport = _connected()
    protocol.dataReceived(_event(1))
    protocol.dataReceived(wire.subscribePacket())
    assert transport.disconnecting
    assert "0x19" in str(protocol.error)
    protocol.dataReceived(_event(2))
    assert len(protocol.events) == 1


def test_oversized_packet_closes_the_connection_before_its_data_arrives():
    protocol, transport = _connected()
    protocol.dataReceived(wire.HEADER.pack(wire.PT_EVENT,
                                           wire.MAX_DATA_LENGTH + 1))
    assert transport.disconnecting
    assert "limit" in str(protocol.error)


def test_malformed_event_is_skipped_and_the_next_one_delivered():
    protocol, transport = _connected()
    protocol.dataReceived(wire.encodePacket(wire.PT_EVENT, b"K=\xff\x00\x00")
                          + _event(2))
    assert protocol.malformedCount == 1
    assert protocol.events == [(_pairs(2), b"")]
    assert not transport.disconnecting


def test_a_failing_event_handler_does_not_lose_later_events():
    class Fragile(RecordingClient):
        def eventReceived(self, pairs, jpeg):
            super().eventReceived(pairs, jpeg)
            if len(self.events) == 1:
                raise RuntimeError("integrator bug")

    protocol, transport = _connected(Fragile())
    protocol.dataReceived(_event(1) + _event(2))
    assert len(protocol.events) == 2
    assert not transport.disconnecting


def test_event_fields_is_a_dict_view_where_the_last_repeat_wins():
    assert client.eventFields([("A", "1"), ("B", "2"), ("A", "3")]) == {
        "A": "3", "B": "2"}


# --- output formats -----------------------------------------------------

def test_event_line_has_the_documented_columns():
    line = client.formatEventLine(_pairs(5), 34567)
    assert line == ("2026-11-26 01:02:03.456Z Lost     A123BC77   sys=1  "
                    "ch0/z1  In           id=1764000000005 conf=93 "
                    "reads=12 [jpeg 34567 B]")


ARRIVED_MS = 1795654925000
"""Two seconds after the frame time of L{_pairs}."""


def test_event_line_leads_with_the_arrival_time_and_names_the_frame_time():
    line = client.formatEventLine(_pairs(5), 0, arrivedMs=ARRIVED_MS)
    assert line == ("2026-11-26 01:02:05.000Z Lost     A123BC77   sys=1  "
                    "ch0/z1  In           id=1764000000005 conf=93 "
                    "reads=12 frame=01:02:03.456Z")
    nextDay = client.formatEventLine(_pairs(5), 0,
                                     arrivedMs=ARRIVED_MS + 86400000)
    assert "frame=2026-11-26T01:02:03.456Z" in nextDay


def test_a_lost_after_a_later_detected_still_reads_in_order():
    # The Lost's best frame is older than the next vehicle's Detected,
    # but it arrives later: its line comes later, and so does its time.
    detected = _pairs(2, state="Detected")
    lost = [(k, "1795654920000" if k == "FrameTimeStampMs" else v)
            for k, v in _pairs(1)]
    lines = [client.formatEventLine(detected, 0, arrivedMs=ARRIVED_MS),
             client.formatEventLine(lost, 0, arrivedMs=ARRIVED_MS + 1)]
    assert sorted(lines) == lines
    assert "frame=01:02:00.000Z" in lines[1]


def test_event_line_shows_the_site_and_the_channel_name():
    line = client.formatEventLine(
        _pairs(1, ChannelName='Gate "north"') + [("SystemId", "12")], 0)
    assert " sys=12 ch0/z1 " in line
    assert line.endswith(' cam="Gate \\"north\\""')
    assert "cam=" not in client.formatEventLine(_pairs(1), 0)


def test_event_line_shows_the_list_decision_when_sent():
    pairs = _pairs(5) + [("ListName", "staff"), ("ListKind", "allow"),
                         ("ListPlate", "A123BC77"), ("ListMatch", "fuzzy:1"),
                         ("Access", "granted")]
    line = client.formatEventLine(pairs, 0)
    assert line.endswith("reads=12 access=granted list=staff:A123BC77"
                         "(fuzzy:1)")


def test_event_line_names_the_saved_screenshot():
    line = client.formatEventLine(_pairs(5), 10, "shots/x.jpg")
    assert line.endswith("[jpeg 10 B -> shots/x.jpg]")


def test_event_line_leaves_out_what_the_server_did_not_send():
    line = client.formatEventLine([("State", "Detected")], 0)
    assert line == "- Detected ?          sys=?  ch?/z?  ?            id=?"


def test_event_line_escapes_control_characters_from_the_server():
    line = client.formatEventLine(
        _pairs(1, plate="A1\n23\x1b[2J\u202e"), 0)
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert "A1\\x0a23\\x1b[2J\\u202e" in line


def test_event_line_shows_an_unusable_frame_time_as_sent():
    pairs = [("FrameTimeStampMs", "soon"), ("State", "Lost")]
    assert client.formatEventLine(pairs, 0).startswith("soon Lost")
    pairs = [("FrameTimeStampMs", "9" * 30)]
    assert client.formatEventLine(pairs, 0).startswith("9" * 30)


def test_json_line_holds_every_pair_and_the_jpeg_size():
    line = client.formatEventJSON(_pairs(1, plate="А123ВС77"), 42)
    assert "\n" not in line
    assert json.loads(line) == dict(_pairs(1, plate="А123ВС77"),
                                    jpeg_bytes=42)


def test_json_line_names_the_saved_screenshot():
    obj = json.loads(client.formatEventJSON(_pairs(1), 42, "d/f.jpg"))
    assert obj["screenshot"] == "d/f.jpg"


def test_screenshot_names_cannot_escape_the_directory():
    pairs = [("RuntimeID", "../../etc/passwd"), ("State", "Lost/..")]
    name = client.screenshotName(pairs, 3)
    assert name == "______etc_passwd_Lost____3.jpg"
    assert client.screenshotName(_pairs(7, state="Updated"), 12) == (
        "1764000000007_Updated_12.jpg")


# --- options ------------------------------------------------------------

def _options(*argv: str) -> client.Options:
    options = client.Options()
    options.parseOptions(list(argv))
    return options


def test_port_defaults_to_7700():
    options = _options("example.org")
    assert (options["host"], options["port"]) == ("example.org", 7700)


@pytest.mark.parametrize("argv, message", [
    (["h", "0"], "PORT must be a whole number from 1 to 65535, not '0'"),
    (["h", "http"], "PORT must be"),
    (["--count", "0", "h"], "--count must be a whole number of at least 1"),
    (["--timeout", "-1", "h"], "--timeout must be a number of seconds"),
    (["--timeout", "nan", "h"], "--timeout must be"),
    ([], "Wrong number of arguments"),
    (["h", "1", "2"], "Wrong number of arguments"),
])
def test_bad_arguments_are_refused_with_a_reason(argv, message):
    with pytest.raises(usage.UsageError, match=message.replace("-", r"\-")):
        _options(*argv)


def _hasTLS() -> bool:
    try:
        import OpenSSL  # noqa: F401
        import service_identity  # noqa: F401
    except ImportError:
        return False
    return True


needsTLS = pytest.mark.skipif(not _hasTLS(),
                              reason="needs pyOpenSSL and service_identity")


@pytest.mark.skipif(_hasTLS(), reason="only without pyOpenSSL")
def test_tls_without_the_tls_libraries_says_what_to_install():
    with pytest.raises(usage.UsageError, match=r"Twisted\[tls\]"):
        _options("--tls", "h")


@needsTLS
def test_missing_ca_file_is_a_usage_error(tmp_path):
    with pytest.raises(usage.UsageError, match="cannot read CA certificate"):
        _options("--ca", str(tmp_path / "nope.pem"), "h")


@needsTLS
def test_ca_file_without_a_certificate_is_a_usage_error(tmp_path):
    path = tmp_path / "ca.pem"
    path.write_text("not a certificate")
    with pytest.raises(usage.UsageError, match="holds no PEM certificate"):
        _options("--ca", str(path), "h")


# --- the command, in memory ---------------------------------------------

class Run:
    """
    L{client.run} on a MemoryReactorClock, connected to a StringTransport:
    what the server sends is fed by hand and time advances by hand.
    """

    def __init__(self, *argv: str, disk=None, out=None,
                 stopOnShutdown=False) -> None:
        self.reactor = MemoryReactorClock()
        self.out = io.StringIO() if out is None else out
        self.err = io.StringIO()
        self.result: list[int] = []
        d = client.run(self.reactor, _options(*argv, "127.0.0.1", "7700"),
                       self.out, self.err, inThread=disk,
                       stopOnShutdown=stopOnShutdown)
        d.addBoth(self.result.append)
        (host, port, factory, _, _) = self.reactor.tcpClients[0]
        assert (host, port) == ("127.0.0.1", 7700)
        self.protocol = factory.buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def close(self, reason=ConnectionDone) -> None:
        self.protocol.connectionLost(Failure(reason()))

    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()


def test_command_subscribes_and_prints_one_line_per_event():
    run = Run()
    assert run.transport.value() == wire.subscribePacket()
    run.send(_event(1) + _event(2)[:10])
    run.send(_event(2)[10:])
    # The memory reactor's clock stands at 0: that is when they arrived.
    assert run.lines() == [client.formatEventLine(_pairs(1), 0, arrivedMs=0),
                           client.formatEventLine(_pairs(2), 0, arrivedMs=0)]
    assert run.result == []


def test_count_closes_the_connection_and_exits_0_after_n_events():
    run = Run("--count", "2")
    run.send(_event(1) + _event(2) + _event(3))
    assert len(run.lines()) == 2
    assert run.transport.disconnecting
    assert run.result == []
    run.close()
    assert run.result == [client.EXIT_OK]
    assert run.err.getvalue() == ""


def test_json_option_prints_one_json_object_per_line():
    run = Run("--json")
    run.send(_event(1, jpeg=JPEG))
    (line,) = run.lines()
    assert json.loads(line) == dict(_pairs(1), jpeg_bytes=len(JPEG))


def test_silence_is_reported_each_time_the_timeout_passes():
    run = Run("--timeout", "10")
    run.reactor.advance(9.9)
    assert run.err.getvalue() == ""
    run.reactor.advance(0.1)
    run.reactor.advance(10)
    assert run.err.getvalue().splitlines() == [
        "numberok-client: no events for 10 s",
        "numberok-client: no events for 20 s"]
    run.send(_event(1))
    run.reactor.advance(9.5)
    assert len(run.err.getvalue().splitlines()) == 2
    run.reactor.advance(0.5)
    assert run.err.getvalue().splitlines()[-1] == (
        "numberok-client: no events for 10 s")
    assert not run.transport.disconnecting
    assert run.result == []


def test_server_closing_before_any_event_exits_3_with_a_hint():
    run = Run()
    run.close()
    assert run.result == [client.EXIT_DISCONNECTED]
    assert run.err.getvalue() == (
        "numberok-client: 127.0.0.1:7700: server closed the connection "
        "before sending any event (connection limit reached or this client "
        "not allowed?)\n")
    assert run.reactor.getDelayedCalls() == []


def test_disconnect_after_events_exits_3_and_says_how_many():
    run = Run("--timeout", "5")
    run.send(_event(1) + _event(2))
    run.close(ConnectionLost)
    assert run.result == [client.EXIT_DISCONNECTED]
    assert "disconnected after 2 events: connection lost" in (
        run.err.getvalue())
    assert len(run.lines()) == 2
    assert run.reactor.getDelayedCalls() == []


def test_protocol_error_exits_4_after_printing_the_good_events():
    run = Run()
    run.send(_event(1))
    run.send(wire.HEADER.pack(0x99, 0))
    assert run.transport.disconnecting
    run.close()
    assert run.result == [client.EXIT_PROTOCOL]
    assert len(run.lines()) == 1
    assert run.err.getvalue() == (
        "numberok-client: protocol error from 127.0.0.1:7700 after 1 "
        "events: unexpected packet type 0x99\n")


def test_malformed_event_is_reported_and_the_run_goes_on():
    run = Run()
    run.send(wire.encodePacket(wire.PT_EVENT, b"no terminator") + _event(2))
    assert "skipped a malformed event" in run.err.getvalue()
    assert len(run.lines()) == 1
    assert not run.transport.disconnecting


class SlowDisk:
    """
    Stands in for the thread pool: directories are made at once, each
    screenshot write waits until the test fires its Deferred.
    """

    def __init__(self) -> None:
        self.directories: list[str] = []
        self.writes: list[tuple[str, bytes, Deferred]] = []

    def __call__(self, f, *args, **kwargs) -> Deferred:
        if f is os.makedirs:
            self.directories.append(args[0])
            return succeed(None)
        assert f is client.session.saveScreenshot
        d = Deferred()
        self.writes.append((args[0], args[1], d))
        return d


def test_screenshot_is_saved_before_its_line_is_printed():
    disk = SlowDisk()
    run = Run("--save-screenshots", "shots", "--json", disk=disk)
    assert disk.directories == ["shots"]
    run.send(_event(1, jpeg=JPEG) + _event(2) + _event(3, jpeg=b"J"))
    assert [(p, data) for p, data, _ in disk.writes] == [
        (os.path.join("shots", "1764000000001_Lost_1.jpg"), JPEG)]
    assert run.lines() == []
    disk.writes[0][2].callback(None)
    disk.writes[1][2].errback(Failure(OSError(28, "No space left on device")))
    lines = [json.loads(line) for line in run.lines()]
    assert [obj.get("screenshot") for obj in lines] == [
        os.path.join("shots", "1764000000001_Lost_1.jpg"), None, None]
    assert [obj["jpeg_bytes"] for obj in lines] == [len(JPEG), 0, 1]
    assert ("cannot save screenshot shots/1764000000003_Lost_3.jpg: "
            "[Errno 28] No space left on device") in run.err.getvalue()


def test_count_stops_at_n_events_while_screenshots_are_still_being_saved():
    disk = SlowDisk()
    run = Run("--save-screenshots", "shots", "--count", "2", disk=disk)
    run.send(b"".join(_event(i, jpeg=b"J") for i in (1, 2, 3)))
    for _, _, written in disk.writes:
        written.callback(None)
    assert len(disk.writes) == 2
    assert len(run.lines()) == 2
    assert run.transport.disconnecting


def test_slow_screenshot_writes_pause_reading_until_they_catch_up():
    disk = SlowDisk()
    run = Run("--save-screenshots", "shots", disk=disk)
    n = client.session._Session.maxBacklog + 1
    run.send(b"".join(_event(i, jpeg=b"J") for i in range(1, n + 1)))
    assert run.transport.producerState == "paused"
    while run.transport.producerState == "paused":
        disk.writes[-1][2].callback(None)
    printed = len(run.lines())
    assert printed == n - client.session._Session.resumeBacklog
    ids = [line.split("id=")[1].split()[0] for line in run.lines()]
    assert ids == [str(1764000000000 + i) for i in range(1, printed + 1)]


def test_run_waits_for_pending_output_before_exiting():
    disk = SlowDisk()
    run = Run("--save-screenshots", "shots", disk=disk)
    run.send(_event(1, jpeg=b"J"))
    run.close()
    assert run.result == []
    disk.writes[0][2].callback(None)
    assert len(run.lines()) == 1
    assert run.result == [client.EXIT_DISCONNECTED]


def test_shutdown_of_the_process_closes_the_connection_and_exits_0():
    run = Run(stopOnShutdown=True)
    run.send(_event(1))
    for f, args, kw in run.reactor.triggers["before"]["shutdown"]:
        f(*args, **kw)
    assert run.transport.disconnecting
    run.close(ConnectionLost)
    assert run.result == [client.EXIT_OK]
    assert run.err.getvalue() == ""


def test_closed_stdout_ends_the_run_quietly():
    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    run = Run(out=ClosedPipe())
    run.send(_event(1))
    assert run.transport.disconnecting
    run.close()
    assert run.result == [client.EXIT_OK]
    assert run.err.getvalue() == ""


# --- the command over loopback ------------------------------------------

class StandInServer(Protocol):
    """
    Plays the NumberOk server for the client: waits for the subscribe
    packet, sends C{factory.packets}, then closes when C{factory.close}.
    """

    def connectionMade(self) -> None:
        self.decoder = wire.PacketDecoder(allowedTypes=[wire.PT_SUBSCRIBE])
        if self.factory.refuse:
            self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        for _ in self.decoder.feed(data):
            self.transport.write(b"".join(self.factory.packets))
            if self.factory.close:
                self.transport.loseConnection()


def _standIn(packets=(), close=False, refuse=False) -> Factory:
    factory = Factory.forProtocol(StandInServer)
    factory.packets, factory.close, factory.refuse = list(packets), close, \
        refuse
    return factory


@inlineCallbacks
def _withStandIn(factory, use, tlsOptions=None):
    """
    Listen with C{factory} on 127.0.0.1 port 0 (TLS with C{tlsOptions}),
    return what C{use(reactor, port)} gives, always stop listening.
    """
    from twisted.internet import reactor
    if tlsOptions is None:
        listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
    else:
        listening = reactor.listenSSL(0, factory, tlsOptions,
                                      interface="127.0.0.1")
    try:
        result = yield use(reactor, listening.getHost().port)
    finally:
        yield listening.stopListening()
    return result


def _linesAsArrived(lines: list[str], events: list) -> list[str]:
    """The lines expected for C{events}, each at the arrival time its
    printed line shows (a real clock's)."""
    from datetime import datetime, timezone
    expected = []
    for line, (pairs, jpegBytes) in zip(lines, events):
        arrived = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f"
                                    ).replace(tzinfo=timezone.utc)
        expected.append(client.formatEventLine(
            pairs, jpegBytes, arrivedMs=round(arrived.timestamp() * 1000)))
    return expected


def _runAgainst(reactor, port: int, *argv: str):
    out, err = io.StringIO(), io.StringIO()
    d = client.run(reactor, _options(*argv, "127.0.0.1", str(port)), out, err)
    d.addTimeout(5, reactor)
    d.addCallback(lambda code: (code, out.getvalue(), err.getvalue()))
    return d


@pytest_twisted.inlineCallbacks
def test_run_prints_events_from_a_real_server_and_exits_0_with_count():
    code, out, err = yield _withStandIn(
        _standIn([_event(1), _event(2, jpeg=JPEG), _event(3)]),
        lambda r, port: _runAgainst(r, port, "--count", "3"))
    assert (code, err) == (0, "")
    assert out.splitlines() == _linesAsArrived(out.splitlines(), [
        (_pairs(1), 0), (_pairs(2), len(JPEG)), (_pairs(3), 0)])


@pytest_twisted.inlineCallbacks
def test_screenshots_are_written_to_a_new_directory(tmp_path):
    shots = tmp_path / "new" / "shots"
    code, out, err = yield _withStandIn(
        _standIn([_event(1, jpeg=JPEG), _event(2),
                  _event(1, jpeg=b"second", state="Updated")]),
        lambda r, port: _runAgainst(r, port, "--count", "3", "--json",
                                    "--save-screenshots", str(shots)))
    assert (code, err) == (0, "")
    assert sorted(os.listdir(shots)) == ["1764000000001_Lost_1.jpg",
                                         "1764000000001_Updated_3.jpg"]
    assert (shots / "1764000000001_Lost_1.jpg").read_bytes() == JPEG
    assert (shots / "1764000000001_Updated_3.jpg").read_bytes() == b"second"
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o.get("screenshot") for o in objs] == [
        str(shots / "1764000000001_Lost_1.jpg"), None,
        str(shots / "1764000000001_Updated_3.jpg")]


@pytest_twisted.inlineCallbacks
def test_unusable_screenshot_directory_exits_1_before_connecting(tmp_path):
    from twisted.internet import reactor
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    code, out, err = yield _runAgainst(
        reactor, freePort(), "--save-screenshots", str(blocker / "sub"))
    assert code == client.EXIT_CONNECT
    assert err.startswith("numberok-client: cannot create screenshot "
                          "directory %s" % (blocker / "sub",))


@pytest_twisted.inlineCallbacks
def test_refused_connection_exits_1_with_a_clear_message():
    from twisted.internet import reactor
    port = freePort()
    code, out, err = yield _runAgainst(reactor, port)
    assert (code, out) == (client.EXIT_CONNECT, "")
    assert err == ("numberok-client: connection refused by 127.0.0.1:%d "
                   "(is the server running?)\n" % (port,))


@pytest_twisted.inlineCallbacks
def test_server_that_closes_at_once_exits_3():
    code, out, err = yield _withStandIn(
        _standIn(refuse=True),
        lambda r, port: _runAgainst(r, port))
    assert code == client.EXIT_DISCONNECTED
    assert "before sending any event (connection limit reached" in err


@pytest_twisted.inlineCallbacks
def test_server_that_closes_after_events_exits_3():
    code, out, err = yield _withStandIn(
        _standIn([_event(1), _event(2)], close=True),
        lambda r, port: _runAgainst(r, port))
    assert code == client.EXIT_DISCONNECTED
    assert len(out.splitlines()) == 2
    assert err.endswith("disconnected after 2 events: server closed the "
                        "connection\n")


def _script(reactor, *argv: str):
    from twisted.internet.utils import getProcessOutputAndValue
    d = getProcessOutputAndValue(
        sys.executable, ["-m", "numberok.client", *argv],
        env=checkoutEnvironment(), path=str(ROOT))
    d.addTimeout(20, reactor)
    return d


@pytest_twisted.inlineCallbacks
def test_console_script_prints_events_and_exits_0():
    out, err, code = yield _withStandIn(
        _standIn([_event(1), _event(2)]),
        lambda r, port: _script(r, "--count", "2", "127.0.0.1", str(port)))
    assert (code, err) == (0, b"")
    lines = out.decode("utf-8").splitlines()
    assert lines == _linesAsArrived(lines, [(_pairs(1), 0), (_pairs(2), 0)])


@pytest_twisted.inlineCallbacks
def test_console_script_exit_codes_for_refusal_and_bad_arguments():
    from twisted.internet import reactor
    port = freePort()
    out, err, code = yield _script(reactor, "127.0.0.1", str(port))
    assert (code, out) == (1, b"")
    assert err.decode() == ("numberok-client: connection refused by "
                            "127.0.0.1:%d (is the server running?)\n" % port)
    out, err, code = yield _script(reactor, "--count", "none", "h")
    assert code == 2
    assert err.decode().startswith("numberok-client: --count must be")


# --- TLS ----------------------------------------------------------------

@needsTLS
@pytest_twisted.inlineCallbacks
def test_tls_with_the_right_ca_receives_events(certificates):
    caPath, serverOptions = str(certificates.caPath), \
        certificates.serverOptions()
    code, out, err = yield _withStandIn(
        _standIn([_event(1), _event(2)]),
        lambda r, port: _runAgainst(r, port, "--ca", caPath, "--count", "2"),
        tlsOptions=serverOptions)
    assert (code, err) == (0, "")
    assert len(out.splitlines()) == 2


@needsTLS
@pytest_twisted.inlineCallbacks
def test_tls_with_an_unknown_ca_exits_1(certificates):
    serverOptions, otherPath = certificates.serverOptions(), \
        str(certificates.otherCaPath)
    code, out, err = yield _withStandIn(
        _standIn([_event(1)]),
        lambda r, port: _runAgainst(r, port, "--tls", "--ca", otherPath),
        tlsOptions=serverOptions)
    assert (code, out) == (client.EXIT_CONNECT, "")
    assert err.startswith("numberok-client: TLS handshake with 127.0.0.1:")
    assert "certificate verify failed" in err


def test_options_may_follow_host_and_port():
    options = client.Options()
    options.parseOptions(["10.0.0.5", "7701", "--json", "--count", "3"])
    assert (options["host"], options["port"]) == ("10.0.0.5", 7701)
    assert options["json"] and options["count"] == 3
    before = client.Options()
    before.parseOptions(["--count", "3", "10.0.0.5"])
    assert (before["host"], before["port"], before["count"]) == (
        "10.0.0.5", 7700, 3)


# --- plate crops and --version ---------------------------------------------

def _frameWithPlate() -> bytes:
    """A 320x240 grey frame with a white 60x20 'plate' at (100, 150)."""
    from PIL import Image, ImageDraw
    image = Image.new("RGB", (320, 240), (90, 90, 90))
    ImageDraw.Draw(image).rectangle((100, 150, 159, 169), fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


@pytest_twisted.inlineCallbacks
def test_plate_rect_saves_the_plate_cut_as_the_page_and_mqtt_cut_it(
        tmp_path):
    from PIL import Image
    from numberok.images import PLATE_MIN_WIDTH, cropPlate
    frame = _frameWithPlate()
    shots = tmp_path / "shots"
    code, out, err = yield _withStandIn(
        _standIn([wire.encodeEvent(_pairs(1) + [("PlateRect",
                                                 "100,150,60,20")], frame),
                  _event(2, jpeg=frame)]),
        lambda r, port: _runAgainst(r, port, "--count", "2",
                                    "--save-screenshots", str(shots)))
    assert (code, err) == (0, "")
    assert sorted(os.listdir(shots)) == [
        "1764000000001_Lost_1-plate.jpg", "1764000000001_Lost_1.jpg",
        "1764000000002_Lost_2.jpg"]
    saved = (shots / "1764000000001_Lost_1-plate.jpg").read_bytes()
    # One rule everywhere: the journal's, the page's and MQTT's crop.
    assert saved == cropPlate(frame, (100, 150, 60, 20))
    with Image.open(io.BytesIO(saved)) as plate:
        # The plate with its margin, scaled up to a readable width.
        assert plate.width == PLATE_MIN_WIDTH
        middle = plate.crop((plate.width // 3, plate.height // 3,
                             2 * plate.width // 3, 2 * plate.height // 3))
        low, high = middle.convert("L").getextrema()
        assert low > 200


@pytest.mark.parametrize("rect", ["0,0,0,0", "a,b,c,d", "1,2,3",
                                  "5000,5000,10,10"])
@pytest_twisted.inlineCallbacks
def test_unusable_plate_rect_keeps_the_screenshot_and_warns(tmp_path, rect):
    shots = tmp_path / "shots"
    code, out, err = yield _withStandIn(
        _standIn([wire.encodeEvent(_pairs(1) + [("PlateRect", rect)],
                                   _frameWithPlate())]),
        lambda r, port: _runAgainst(r, port, "--count", "1",
                                    "--save-screenshots", str(shots)))
    assert code == 0
    assert os.listdir(shots) == ["1764000000001_Lost_1.jpg"]
    assert err == "" if rect != "5000,5000,10,10" else "outside" in err


def test_version_prints_numberoks_version_not_twisteds(capsys):
    from importlib.metadata import version
    with pytest.raises(SystemExit) as exited:
        client.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == "numberok-client (numberok) %s\n" % (
        version("numberok"),)
