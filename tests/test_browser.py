"""
The admin page in a real browser: Debian's Chromium, headless, driven by
Playwright for Python (launched with C{executable_path}; never
C{playwright install}, which downloads a browser).

Log in, see a live NumberOk client in the connections table, press
Disconnect and watch the row go, change the quality, Save, reload and see it
kept, add a zone, enter an invalid port and see the error next to the field.

The server (built by L{numberok.build.buildServer}) runs in a subprocess
(this file, run as a script), on 127.0.0.1 port 0; it stops when the test closes its stdin, and by itself
after two minutes whatever happens.  Without Chromium or Playwright the test
skips with how to install them -- but when C{CI} is set it fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "browser test password"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu",
                 "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-dev-shm-usage"]
INSTALL_HINT = ("install Debian's Chromium and Playwright for Python: "
                "`apt-get install -y chromium` and `pip install playwright` "
                "(do NOT run `playwright install`; the test uses "
                "/usr/bin/chromium)")


def findChromium() -> str | None:
    for candidate in (os.environ.get("NUMBEROK_CHROMIUM"),
                      shutil.which("chromium"), "/usr/bin/chromium",
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def requireBrowser():
    """@return: (sync_playwright, chromium path); skips or, in CI, fails."""
    problems = []
    chromium = findChromium()
    if chromium is None:
        problems.append("no Chromium found")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
        problems.append("Playwright for Python is not installed")
    if problems:
        message = "; ".join(problems) + ": " + INSTALL_HINT
        if os.environ.get("CI"):
            pytest.fail("browser test cannot run in CI: " + message)
        pytest.skip(message)
    return sync_playwright, chromium


def test_missing_browser_skips_locally_but_fails_in_ci(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "findChromium", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        requireBrowser()
    assert "apt-get install -y chromium" in str(skipped.value)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as failed:
        requireBrowser()
    assert "cannot run in CI" in str(failed.value)


# -- the server, in a subprocess ----------------------------------------------

SEEDED = 60
"""Events the page-items server is given: more than the ring keeps (50)."""
FRAME_SIZE = (640, 480)
LOST_AT_MS = 1764000090000
FRAME_AT_MS = 1764000000000
TODAY = SEEDED - 2
"""The seeded event whose frame is from now (the others are a year old)."""
CHANNEL_NAME = "Gate north"
LOOK_ALIKE = "O111OO77"
"""A plate of Latin O and digits 1: one more event, on channel 1."""


def seed(recent, metrics) -> None:
    """
    Events for the page items: a Lost whose vehicle was lost 90 s after
    its best read's frame, frames to make thumbnails of, more events than
    the ring keeps (tracks of ten events sharing one frame, so that the
    ring makes every thumbnail); and screenshot counts in the registry the
    page reads.
    """
    import io
    from PIL import Image
    from numberok.events import EventState, PlateEvent
    out = io.BytesIO()
    Image.new("RGB", FRAME_SIZE, (90, 120, 150)).save(out, "JPEG")
    now = int(time.time() * 1000)
    for i in range(SEEDED):
        last = i == SEEDED - 1
        recent.publish(PlateEvent(
            state=EventState.LOST if last else EventState.DETECTED,
            runtimeId=i // 10, channel=0, zone=0, plate="A%03dBC77" % (i,),
            rawPlate="A%03dBC77" % (i,),
            frameTimeMs=now if i == TODAY else FRAME_AT_MS,
            frame=out.getvalue(), bbox=(200, 300, 160, 40),
            eventTimeMs=LOST_AT_MS if last else FRAME_AT_MS + i,
            channelName=CHANNEL_NAME if last else None))
    recent.publish(PlateEvent(
        state=EventState.DETECTED, runtimeId=99, channel=1, zone=0,
        plate=LOOK_ALIKE, rawPlate=LOOK_ALIKE, frameTimeMs=FRAME_AT_MS))
    metrics.screenshotsEncoded.inc(7)
    metrics.screenshotCacheHits.inc(5)
    metrics.screenshotsSkipped.labels(reason="overloaded").inc(2)


def serve(config: str, seeded: bool = False, demo: bool = False,
          journal: Optional[str] = None) -> None:
    """
    Run the real server (L{numberok.build.buildServer}, as C{twistd
    numberok-tcp} builds it) with its event and admin ports on loopback
    port 0, no ingest port, a journal only when given one (seeded with
    L{seedJournal}); print the ports.
    """
    sys.path.insert(0, str(ROOT))
    from twisted.internet import reactor, stdio
    from twisted.internet.protocol import Protocol

    from numberok import settings as S
    from numberok.build import Endpoints, buildServer

    if demo:
        # Through twistd's own options, as `twistd numberok-tcp --demo`.
        from numberok import tap
        options = tap.Options()
        options.parseOptions([
            "--config", config, "--port", "tcp:0:interface=127.0.0.1",
            "--admin", "tcp:0:interface=127.0.0.1", "--ingest", "none",
            "--journal", "none", "--demo", "--demo-rate", "0.01"])
        server = tap.makeService(options)
    else:
        server = buildServer(
            S.load(config),
            Endpoints(events="tcp:0:interface=127.0.0.1", ingest=None,
                      admin="tcp:0:interface=127.0.0.1"),
            reactor=reactor, settingsPath=config, journalPath=journal)
    server.privilegedStartService()
    server.startService()
    server.admin.throttle.baseDelay = 0.05
    if seeded:
        seed(server.recent, server.metrics)
    if journal is not None:
        seedJournal(server.journal, reactor.seconds())

    class StopOnEOF(Protocol):
        def connectionLost(self, reason):
            if reactor.running:
                reactor.stop()

    reactor.addSystemEventTrigger("before", "shutdown", server.stopService)
    stdio.StandardIO(StopOnEOF())
    reactor.callLater(120, reactor.stop)
    print("PORTS %d %d" % (server.admin.web.boundPort,
                           server.eventPort.boundPort), flush=True)
    reactor.run()


class Server:
    def __init__(self, config: Path, *extra: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "serve", str(config), *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, cwd=str(ROOT))
        line = ""
        for line in self.process.stdout:
            if line.startswith("PORTS "):
                break
        else:
            raise AssertionError("server did not start: " + line)
        admin, events = line.split()[1:]
        self.url = "http://127.0.0.1:%s" % (admin,)
        self.eventPort = int(events)

    def stop(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@contextmanager
def browserPage(sync_playwright, chromium: str, **context):
    """A page of a headless Chromium, closed after; C{context}: Playwright's
    page options (C{viewport}, C{timezone_id}, ...)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            context.setdefault("viewport", {"width": 1280, "height": 900})
            page = browser.new_page(**context)
            page.set_default_timeout(10000)
            yield page
        finally:
            browser.close()


def subscribedClient(port: int) -> socket.socket:
    from numberok import wire
    client = socket.create_connection(("127.0.0.1", port), 5)
    client.sendall(wire.subscribePacket())
    return client


def test_admin_page_in_a_real_browser(tmp_path):
    sync_playwright, chromium = requireBrowser()
    from numberok.web import auth
    config = tmp_path / "numberok.ini"
    config.write_text(
        "; browser test\n[NetServer]\nPort = 7700  ; keep me\n"
        "AttachedScreenshotsQuality = 50\n\n[Admin]\nPasswordHash = %s\n"
        % (auth.hashPassword(PASSWORD, iterations=1000),))
    server = Server(config)
    client = None
    try:
        with browserPage(sync_playwright, chromium) as page:
            page.on("console", lambda m: print("console:", m.type, m.text))
            page.on("pageerror", lambda e: print("page error:", e))
            page.on("response", lambda r: print(r.status, r.url))
            drive(page, server, tmp_path, config)
    finally:
        server.stop()
        if client is not None:
            client.close()


def drive(page, server: Server, tmp_path: Path, config: Path) -> None:
    from playwright.sync_api import expect

    # Log in.
    page.goto(server.url + "/")
    assert page.url.endswith("/login")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")
    expect(page.locator("h2", has_text="TCP server")).to_be_visible()

    # A live client appears in the Live tab's table without a reload.
    page.click("nav.tabs a[data-tab=live]")
    client = subscribedClient(server.eventPort)
    try:
        localPort = str(client.getsockname()[1])
        row = page.locator("#connections tbody tr", has_text=localPort)
        expect(row).to_be_visible()
        expect(row.locator("td").nth(3)).to_have_text("yes")

        # Disconnect: the row goes and the server closed the socket.
        row.locator("button.disconnect").click()
        expect(row).to_have_count(0)
        client.settimeout(5)
        try:
            assert client.recv(1024) == b""
        except ConnectionResetError:
            pass  # the server aborts the connection: a reset is a close
    finally:
        client.close()
    expect(page.locator("#connections td.empty")).to_be_visible()
    page.click("nav.tabs a[data-tab=settings]")

    # Change the quality and add a zone, Save, reload: kept.
    quality = page.locator('[name="NetServer.AttachedScreenshotsQuality"]')
    quality.fill("85")
    page.fill("#new-channel", "2")
    page.fill("#new-zone", "1")
    page.click("#add-zone")
    page.locator('[name="Zone:2:1.LossIntervalSec"]').fill("2.5")
    page.click("#save")
    expect(page.locator("#save-status")).to_have_text("Saved.")
    page.reload()
    expect(page.locator('[name="NetServer.AttachedScreenshotsQuality"]')
           ).to_have_value("85")
    expect(page.locator('[name="Zone:2:1.LossIntervalSec"]')
           ).to_have_value("2.5")
    text = config.read_text()
    assert "AttachedScreenshotsQuality = 85" in text
    assert "Port = 7700  ; keep me" in text and "[Zone:2:1]" in text

    # An invalid port: the error shows next to the field, nothing saved.
    page.locator('[name="NetServer.Port"]').fill("70000")
    page.click("#save")
    error = page.locator('[data-field="NetServer.Port"] .error')
    expect(error).to_contain_text("out of range 1..65535")
    expect(page.locator("#save-status")).to_contain_text("Not saved")
    assert "Port = 7700  ; keep me" in config.read_text()
    shots = os.environ.get("NUMBEROK_SCREENSHOTS")
    if shots:
        page.screenshot(path=os.path.join(shots, "admin-error.png"))


def test_page_items_a_new_user_tripped_over(tmp_path):
    sync_playwright, chromium = requireBrowser()
    config = tmp_path / "numberok.ini"
    config.write_text("[NetServer]\nPort = 7700\n\n[Cameras]\n"
                      "Token = s3cret~token.0001\n")
    server = Server(config, "seeded")
    try:
        with browserPage(sync_playwright, chromium) as page:
            failed = []
            page.on("requestfailed", lambda r: notAborted(r) and
                    failed.append(r.url))
            page.on("response", lambda r: r.status >= 400 and
                    failed.append("%d %s" % (r.status, r.url)))
            page.on("console", lambda m: m.type == "error" and
                    failed.append(m.text))
            drivePageItems(page, server, config, failed)
    finally:
        server.stop()


def drivePageItems(page, server: Server, config: Path, failed: list) -> None:
    from playwright.sync_api import expect
    page.goto(server.url + "/?tab=live")
    rows = page.locator("#events tbody tr")
    expect(rows).to_have_count(50)

    # The plate pictures load -- none of a row the ring dropped -- and are
    # readable: at least 160 px wide.
    thumbs = page.locator("#events img.thumb")
    expect(thumbs.first).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#events img.thumb')]"
        ".every(i => i.complete && i.naturalWidth > 0)")
    page.wait_for_timeout(2500)  # two refreshes of the live parts
    assert failed == []
    # (Measured in one call: the live refresh replaces the rows each second.)
    assert page.evaluate("() => document.querySelector('#events img.thumb')"
                         ".getBoundingClientRect().width") >= 160

    # The whole frame on click.
    thumbs.first.click()
    frame = page.locator("#frame-dialog img")
    expect(frame).to_be_visible()
    page.wait_for_function(
        "() => document.querySelector('#frame-dialog img').naturalWidth > 0")
    assert frame.evaluate("i => [i.naturalWidth, i.naturalHeight]") == \
        list(FRAME_SIZE)
    page.locator("#frame-dialog").click()
    expect(frame).not_to_be_visible()

    # The Lost row shows the vehicle's own (camera) time: its best frame's.
    lost = page.locator("#events tbody tr", has_text="Lost")
    assert lost.locator("td[data-ms]").get_attribute("data-ms") == \
        str(FRAME_AT_MS)

    # Screenshot counters from the metrics registry.
    expect(page.locator("#screenshot-counters")).to_have_text(
        "Screenshots encoded 7 · cache hits 5 · skipped 2 (overloaded 2)")

    # The camera URL to paste, and MQTT settings like the others.
    page.goto(server.url + "/")
    expect(page.locator("#camera-url")).to_have_text(
        server.url + "/api/cameras/hikvision?token=s3cret~token.0001")
    page.locator('[name="Mqtt.TopicPrefix"]').fill("site7")

    # The plate templates show their whole value, also a long one.
    templates = page.locator('[name="Plates.Templates"]')
    longValue = "; ".join(["ru:L DDD LL RR[R]", "ru-taxi:LL DDD RR[R]",
                           "by:DDDD LL-D"] * 4)
    templates.fill(longValue)
    assert templates.evaluate(
        "t => t.scrollHeight <= t.clientHeight + 2 && "
        "t.scrollWidth <= t.clientWidth")

    # (The last events are in the Live tab: no sticky table header can
    # lie under the Save bar of the Settings tab.)
    page.click("#save")
    expect(page.locator("#save-status")).to_have_text("Saved.")
    text = config.read_text()
    assert "TopicPrefix = site7" in text
    assert "Templates = " + longValue in text
    assert failed == []  # the refused saves below answer 400 on purpose

    # A port in use: our words, and where the server still listens.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        page.locator('[name="NetServer.Port"]').fill(str(busy))
        page.click("#save")
        expect(page.locator('[data-field="NetServer.Port"] .error')
               ).to_have_text(
            "cannot listen on port %d: it is in use by another program; "
            "still listening on %d" % (busy, server.eventPort))
    page.locator('[name="NetServer.Port"]').fill(str(server.eventPort))

    # A message about several entries shows whole, as the server wrote it.
    with page.expect_response(lambda r: r.request.method == "PUT") as put:
        page.locator('[name="NetServer.AllowedClients"]').fill(
            "10.0.0.300, foo")
        page.click("#save")
    message = put.value.json()["errors"]["NetServer.AllowedClients"]
    error = page.locator('[data-field="NetServer.AllowedClients"] .error')
    expect(error).to_have_text(message)
    assert error.evaluate("e => e.scrollWidth <= e.clientWidth")


def test_page_items_of_the_third_round(tmp_path):
    """Times with date and zone, plates a person can read, channel names,
    the Save bar off the Add-zone row, and what --demo overrides."""
    sync_playwright, chromium = requireBrowser()
    config = tmp_path / "numberok.ini"
    config.write_text("[NetServer]\nPort = 7700\n"
                      "AttachScreenshotsToEvents = 0\n\n"
                      "[Channel:0]\nName = %s\n" % (CHANNEL_NAME,))
    server = Server(config, "seeded", "demo")
    try:
        with browserPage(sync_playwright, chromium, timezone_id="Asia/Tokyo",
                         viewport={"width": 1400, "height": 1000}) as page:
            failed = []
            page.on("requestfailed", lambda r: notAborted(r) and
                    failed.append(r.url))
            page.on("console", lambda m: m.type == "error" and
                    failed.append(m.text))
            driveThirdRound(page, server, config)
            assert failed == []
    finally:
        server.stop()


# -- the Journal and Visits tabs ----------------------------------------------

JOURNAL_SETTINGS = ("[NetServer]\nPort = 7700\n\n[Zone:0:0]\nRole = entry\n\n"
                    "[Zone:0:1]\nRole = exit\n")


def seedJournal(journal, now: float) -> None:
    """
    Lost events with frames and plate boxes, camera times within the last
    hour: A001BC77 entered (inside), E777KX199 entered and left, and
    twelve other vehicles through a zone with no role.
    """
    import io
    from PIL import Image
    from numberok.events import EventState, MovementType, PlateEvent
    out = io.BytesIO()
    Image.new("RGB", FRAME_SIZE, (90, 120, 150)).save(out, "JPEG")
    base = int(now * 1000) - 3_000_000
    passages = [("A001BC77", 0, 0), ("E777KX199", 0, 60),
                ("E777KX199", 1, 1200)] + [
        ("K%03dOO50" % i, 2, 100 + i) for i in range(12)]
    for i, (plate, zone, second) in enumerate(passages):
        journal.publish(PlateEvent(
            state=EventState.LOST, runtimeId=i + 1, channel=0, zone=zone,
            plate=plate, rawPlate=plate, frameTimeMs=base + second * 1000,
            movement=MovementType.IN, frame=out.getvalue(),
            bbox=(200, 300, 160, 40)))


def test_journal_and_visits_tabs_in_a_real_browser(tmp_path):
    sync_playwright, chromium = requireBrowser()
    config = tmp_path / "numberok.ini"
    config.write_text(JOURNAL_SETTINGS)
    server = Server(config, "journal", str(tmp_path / "journal"))
    try:
        with browserPage(sync_playwright, chromium) as page:
            failed = []
            page.on("response", lambda r: r.status >= 400 and
                    failed.append("%d %s" % (r.status, r.url)))
            page.on("pageerror", lambda e: failed.append(str(e)))
            driveJournalAndVisits(page, server, failed)
    finally:
        server.stop()


UNCOVERED = """ids => ids.map(id => {
    const e = document.getElementById(id), r = e.getBoundingClientRect();
    const bar = document.querySelector('.savebar');
    const shown = getComputedStyle(bar).display !== 'none';
    const bottom = shown ? bar.getBoundingClientRect().top
                         : window.innerHeight;
    return r.top >= 0 && r.bottom <= bottom && document.elementFromPoint(
        r.left + r.width / 2, r.top + r.height / 2) === e;
})"""
ADD_ZONE_ROW = ["new-channel", "new-zone", "add-zone"]


def driveThirdRound(page, server: Server, config: Path) -> None:
    from playwright.sync_api import expect
    # Times: the camera's, in the browser's zone, with the date unless today.
    page.goto(server.url + "/?tab=live")
    lost = page.locator("#events tbody tr", has_text="Lost")
    cell = lost.locator("td[data-ms]")
    expect(cell).to_have_text("2025-11-25 01:00:00 GMT+9")
    assert cell.get_attribute("title") == (
        "processed by the server at 2025-11-25 01:01:30 GMT+9")
    today = page.locator("#events tbody tr", has_text="A%03dBC77" % (TODAY,))
    expect(today.locator("td[data-ms]")).to_have_text(
        re.compile(r"^\d\d:\d\d:\d\d GMT\+9$"))

    # Plates in a face that tells O from 0 and I from 1, served by us.
    plate = page.locator("#events td.plate .plate-text", has_text=LOOK_ALIKE)
    expect(plate).to_have_text(LOOK_ALIKE)
    assert platformFonts(page, "#events td.plate .plate-text") == [
        ("DejaVu Sans Mono", True)]
    expect(lost.locator("td", has_text="0 / 0")).to_contain_text(CHANNEL_NAME)

    # The settings: a tab is a page of its own, so before any edit.
    page.goto(server.url + "/")

    # At 1400x1000 the Add-zone row is in view and nothing lies over it,
    # also once there is something to save.
    assert page.evaluate(UNCOVERED, ADD_ZONE_ROW) == [True] * 3
    page.fill("#new-channel", "3")
    expect(page.locator(".savebar")).to_be_visible()
    page.wait_for_function("ids => (%s)(ids).every(Boolean)" % (UNCOVERED,),
                           arg=ADD_ZONE_ROW)
    box = page.locator("#add-zone").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator('[data-zone="Zone:3:0"]')).to_have_count(1)

    # --demo turns screenshots on for the run; the page says so.
    attach = page.locator('[data-field="NetServer.AttachScreenshotsToEvents"]')
    expect(attach.locator("input")).to_be_checked()
    expect(attach.locator(".help")).to_contain_text(
        "On for this run by --demo; the settings file says off.")

    help = page.locator('[data-field="Plates.Alphabet"] .help')
    expect(help).to_contain_text("Latin letters A123BC77")
    expect(help).to_contain_text("Cyrillic А123ВС77")
    assert platformFonts(page, '[data-field="Plates.Alphabet"] .help .plate'
                         ) == [("DejaVu Sans Mono", True)]

    # Channel names: shown with the events (above), edited and added on
    # the page.
    name = page.locator('[name="Channel:0.Name"]')
    expect(name).to_have_value(CHANNEL_NAME)
    name.fill("Gate south")
    page.fill("#new-name-channel", "5")
    page.click("#add-channel-name")
    page.locator('[name="Channel:5.Name"]').fill("Exit")
    page.click("#save")
    expect(page.locator("#save-status")).to_have_text("Saved.")
    text = config.read_text()
    assert "[Channel:0]\nName = Gate south" in text
    assert "[Channel:5]\nName = Exit" in text
    assert "[Zone:3:0]" in text
    # The run's override is not written into the file.
    assert "AttachScreenshotsToEvents = 0" in text
    page.reload()
    expect(page.locator('[name="Channel:5.Name"]')).to_have_value("Exit")
    page.locator('[data-channel="Channel:5"] .remove-channel-name').click()
    page.click("#save")
    expect(page.locator("#save-status")).to_have_text("Saved.")
    assert "[Channel:5]" not in config.read_text()


def notAborted(request) -> bool:
    """Whether a failed request failed on its own: a poll still in flight
    when the test moves to another tab (a page of its own) is aborted by
    the browser, which is no error of the page."""
    return request.failure != "net::ERR_ABORTED"


def platformFonts(page, selector: str) -> list:
    """
    The fonts Chromium drew the text of C{selector} with, as
    C{(family, isCustomFont)}: a web font of ours is custom, a font of the
    viewer's machine is not.
    """
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root,
                                          "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})
    return [(f["familyName"], f["isCustomFont"]) for f in fonts["fonts"]]


def driveJournalAndVisits(page, server: Server, failed: list) -> None:
    from playwright.sync_api import expect
    page.goto(server.url + "/")
    expect(page.locator("nav.tabs a")).to_have_text(
        ["Settings", "Live", "Journal", "Visits", "Lists"])
    page.click("nav.tabs a[data-tab=journal]")
    page.wait_for_url(server.url + "/?tab=journal")
    expect(page.locator("nav.tabs a[aria-current=page]")).to_have_text(
        "Journal")
    expect(page.locator("#tab-settings")).to_be_hidden()

    # A guard types what he reads off a dirty plate: O for 0, spaces.
    page.fill("#j-plate", "a0o1 bc 77")
    page.click("#journal-search")
    expect(page.locator("#journal-count")).to_have_text("1")
    row = page.locator("#journal-rows tr")
    expect(row).to_have_count(1)
    expect(row.locator("td.plate")).to_have_text("A001BC77")
    bookmark = page.url
    assert "tab=journal" in bookmark and "plate=a0o1" in bookmark

    # The plate crop loads; a click shows the whole frame.
    crop = row.locator("img.thumb")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#journal-rows img.thumb')]"
        ".every(i => i.complete && i.naturalWidth > 0)")
    crop.click()
    frame = page.locator("#frame-dialog img")
    expect(frame).to_be_visible()
    page.wait_for_function(
        "() => document.querySelector('#frame-dialog img').naturalWidth > 0")
    page.locator("#frame-dialog").click()

    # A fragment finds the twelve others; the bookmark opens the search.
    page.fill("#j-plate", "OO50")
    page.select_option("#j-match", "fragment")
    page.click("#journal-search")
    expect(page.locator("#journal-count")).to_have_text("12")
    page.goto(bookmark)
    expect(page.locator("#journal-count")).to_have_text("1")

    # No list has decided on that car: asking for refusals finds none.
    page.select_option("#j-access", "denied")
    page.click("#journal-search")
    expect(page.locator("#journal-count")).to_have_text("0")
    assert "access=denied" in page.url

    # A mask of only * answers in the page, in words.
    page.fill("#j-plate", "*")
    page.select_option("#j-match", "mask")
    page.click("#journal-search")
    expect(page.locator("#journal-error")).to_contain_text("every plate")
    assert failed == []

    # Visits: one vehicle inside now, one that left, the chart of today.
    page.click("nav.tabs a[data-tab=visits]")
    page.wait_for_url(server.url + "/?tab=visits")
    expect(page.locator("#inside-count")).to_have_text("1")
    expect(page.locator("#inside tbody tr td.plate")).to_have_text(
        "A001BC77")
    day = page.locator("#day-visits tbody tr")
    expect(day.filter(has_text="E777KX199")).to_contain_text("left")
    expect(page.locator("#entries-chart rect.bar")).to_have_count(24)
    assert page.locator("#entries-chart text.count").all_text_contents() \
        in (["2"], ["1", "1"])
    assert failed == []
    shots = os.environ.get("NUMBEROK_SCREENSHOTS")
    if shots:
        page.screenshot(path=os.path.join(shots, "admin-visits.png"),
                        full_page=True)



def test_webhook_target_added_and_removed_on_the_page(tmp_path):
    sync_playwright, chromium = requireBrowser()
    from playwright.sync_api import expect
    from numberok.web import auth
    config = tmp_path / "numberok.ini"
    config.write_text("[Admin]\nPasswordHash = %s\n"
                      % (auth.hashPassword(PASSWORD, iterations=1000),))
    server = Server(config)
    try:
        with browserPage(sync_playwright, chromium) as page:
            page.goto(server.url + "/")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(server.url + "/")
            # A URL that is not http(s): the settings check's words show.
            page.fill("#webhook-name", "erp")
            page.fill("#webhook-url", "ftp://erp.example/in")
            page.click("#webhook-save")
            expect(page.locator("#webhook-error")).to_contain_text(
                "Webhook:erp.Url")
            page.fill("#webhook-url", "http://127.0.0.1:9/hs/numberok/event")
            page.fill("#webhook-secret", "k3y")
            page.click("#webhook-save")
            row = page.locator("#webhook-rows tr", has_text="erp")
            expect(row).to_contain_text("http://127.0.0.1:9/hs/numberok/event")
            text = config.read_text()
            assert "[Webhook:erp]" in text and "Secret = k3y" in text
            row.locator("button", has_text="Remove").click()
            expect(page.locator("#webhook-rows")).to_contain_text(
                "No webhook.")
            assert "[Webhook:erp]" not in config.read_text()
    finally:
        server.stop()


def test_lists_page_in_a_real_browser(tmp_path):
    """
    The Lists page (numberok.lists.page): from a Last events row's
    "+ list" to a new list and entry, search, a CSV import with a bad line
    (nothing imported, the line named), a good one, the match preview and
    deleting an entry.
    """
    sync_playwright, chromium = requireBrowser()
    from numberok.web import auth
    config = tmp_path / "numberok.ini"
    config.write_text("[Admin]\nPasswordHash = %s\n" % (
        auth.hashPassword(PASSWORD, iterations=1000),))
    server = Server(config, "seeded")
    try:
        with browserPage(sync_playwright, chromium) as page:
            page.on("pageerror", lambda e: print("page error:", e))
            driveLists(page, server, tmp_path)
    finally:
        server.stop()


def driveLists(page, server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page.goto(server.url + "/")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")
    expect(page.locator("nav.tabs a")).to_have_text(
        ["Settings", "Live", "Journal", "Visits", "Lists"])
    page.goto(server.url + "/?tab=live")
    # "+ list" on a Last events row opens the Lists page with the plate.
    first = page.locator("#event-rows tr").first
    plate = first.locator("td.plate").inner_text().split()[0]
    first.locator("a.add-to-list").click()
    page.wait_for_url("**/lists?plate=*")
    entry = page.locator("#entry-form")
    expect(entry.locator('[name="plate"]')).to_have_value(plate)

    form = page.locator("#list-form")
    form.locator('[name="name"]').fill("staff")
    form.locator('[name="distance"]').fill("1")
    form.locator("button[type=submit]").click()
    expect(page.locator("#list-items button", has_text="staff (allow, 0)")
           ).to_be_visible()

    entry.locator('[name="owner"]').fill("\u0418\u0432\u0430\u043d\u043e\u0432")
    entry.locator('[name="windows"]').fill("Mon-Fri 07:00-20:00")
    entry.locator("button[type=submit]").click()
    rows = page.locator("#entry-rows tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(plate)
    expect(rows.first).to_contain_text("Mon-Fri 07:00-20:00")

    # A bad entry: the server's message, nothing added.
    entry.locator('[name="plate"]').fill("*")
    entry.locator("button[type=submit]").click()
    expect(page.locator("#entry-errors")).to_contain_text("plate: a mask")
    expect(rows).to_have_count(1)

    # A CSV with a bad line imports nothing and names the line.
    bad = tmp_path / "bad.csv"
    bad.write_bytes("\ufeffplate;owner\nB777OP199;x\n*;y\n".encode())
    page.set_input_files("#import", str(bad))
    expect(page.locator("#entry-errors")).to_contain_text("line 3:")
    expect(rows).to_have_count(1)
    good = tmp_path / "good.csv"
    good.write_bytes("plate,owner\nB777OP199,\u041f\u0451\u0442\u0440\n"
                     "X555XX55,z\n".encode())
    page.set_input_files("#import", str(good))
    expect(page.locator("#entry-errors")).to_have_text("imported 2 entries")
    expect(rows).to_have_count(2)
    page.fill("#search", "\u041f\u0451")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("B777OP199")
    page.fill("#search", "")
    expect(rows).to_have_count(2)

    # The match preview: a misread one character off.
    preview = page.locator("#preview-form")
    preview.locator('[name="plate"]').fill("X555XX5")
    preview.locator("button[type=submit]").click()
    expect(page.locator("#preview-decision")).to_contain_text("granted")
    expect(page.locator("#preview-rows tr").first).to_contain_text("fuzzy:1")

    page.once("dialog", lambda d: d.accept())
    page.locator('#entry-rows button[data-plate="X555XX55"]').click()
    expect(rows).to_have_count(1)
    href = page.locator("#export").get_attribute("href")
    assert href == "/api/lists/staff/entries.csv"


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    extra = sys.argv[3:]
    serve(sys.argv[2], seeded="seeded" in extra, demo="demo" in extra,
          journal=(extra[extra.index("journal") + 1] if "journal" in extra
                   else None))
