"""
The whole product as a user runs it: the real C{twistd numberok-tcp}
process, reads pushed into its ingest port, events read by the real
C{numberok-client}.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import subprocess
import sys

from PIL import Image

from conftest import TWISTD, checkoutEnvironment, freePort

SETTINGS = """\
[NetServer]
AttachScreenshotsToEvents = 1
AttachedScreenshotsQuality = 40

[Analytics]
SkipFirstResults = 1

[Zone:0:0]
LossIntervalSec = 0.5
"""


def startClient(port: int, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "numberok.client"] + list(args)
        + ["127.0.0.1", str(port)],
        env=checkoutEnvironment(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def frame() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (40, 90, 160)).save(buffer, "JPEG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def test_reads_pushed_to_ingest_reach_numberok_client_as_events(
        twistdServer, tmp_path):
    server = twistdServer(settings=SETTINGS)
    server.waitForPort(server.eventPort)
    shots = tmp_path / "shots"
    client = startClient(server.eventPort, "--json", "--count", "2",
                         "--save-screenshots", str(shots))
    try:
        server.waitForLog("subscribed")
        image = frame()
        reads = [json.dumps({"plate": "A123BC77", "confidence": 0.9,
                             "jpeg_b64": image}).encode(),
                 json.dumps({"plate": "А123ВС77"}).encode(),  # Cyrillic
                 b'{"plate": 42}']
        answer = server.sendReads(reads, replies=1)
        out, err = client.communicate(timeout=30)
    finally:
        client.kill()
    assert client.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["State"] for e in events] == ["Detected", "Lost"]
    assert {e["PlateNumber"] for e in events} == {"A123BC77"}
    assert events[0]["RuntimeID"] == events[1]["RuntimeID"]
    assert events[1]["ReadCount"] == "2"
    assert all(e["jpeg_bytes"] > 0 for e in events)
    assert len(list(shots.iterdir())) == 2
    [error] = [json.loads(line) for line in answer]
    assert error["line"] == 3 and "plate" in error["error"]


def test_missing_settings_file_is_created_with_the_defaults(tmp_path):
    config = tmp_path / "new.ini"
    result = subprocess.run(
        TWISTD + ["numberok-tcp", "--help"],
        env=checkoutEnvironment(), capture_output=True, text=True,
        timeout=60, cwd=str(tmp_path))
    assert "--ingest" in result.stdout
    from numberok.tap import Options
    options = Options()
    options.parseOptions(["--config", str(config)])
    assert config.exists()
    assert options.settings["NetServer.Port"] == 7700


def runTwistd(tmp_path, *args: str, timeout: float = 20.0):
    """Run C{twistd -n numberok-tcp ARGS} to its end; (code, output)."""
    return subprocess.run(
        TWISTD + ["--nodaemon", "--pidfile=", "--logfile=-", "numberok-tcp",
                  "--config", str(tmp_path / "numberok.ini")] + list(args),
        cwd=str(tmp_path), env=checkoutEnvironment(), capture_output=True,
        text=True, timeout=timeout)


def test_a_taken_port_ends_the_process_with_code_1_and_one_line(tmp_path):
    # The demo would start a worker thread that keeps the process alive:
    # nothing may start when a port cannot be bound.  (The subprocess
    # timeout guards against the old hang.)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        for option in ("--ingest", "--admin"):
            endpoint = "tcp:%d:interface=127.0.0.1" % (port,)
            others = {"--ingest": "none", "--admin": "none"}
            others[option] = endpoint
            result = runTwistd(
                tmp_path, "--demo", "--journal", "none",
                "--port", "tcp:%d:interface=127.0.0.1" % (freePort(),),
                "--ingest", others["--ingest"], "--admin", others["--admin"])
            assert result.returncode == 1, result.stdout + result.stderr
            # twistd logs what goes to stderr: one line says it all.
            said = [line for line in result.stdout.splitlines()
                    if "cannot listen" in line]
            assert len(said) == 1, result.stdout
            assert said[0].endswith(
                "numberok: cannot listen on %s: Couldn't listen on "
                "127.0.0.1:%d: [Errno 98] Address already in use"
                % (endpoint, port)), said
            assert "demo" not in result.stdout.lower()


def test_invalid_settings_are_reported_alone_before_any_usage_text(tmp_path):
    (tmp_path / "numberok.ini").write_text(
        "[NetServer]\nPort = 99999\nAttachedScreenshotsQuality = 5\n",
        encoding="utf-8")
    result = runTwistd(tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "numberok: invalid settings:",
        "%s: [NetServer] AttachedScreenshotsQuality: 5 is out of range "
        "10..100" % (tmp_path / "numberok.ini",),
        "%s: [NetServer] Port: 99999 is out of range 1..65535"
        % (tmp_path / "numberok.ini",)]
