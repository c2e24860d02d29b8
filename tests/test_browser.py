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
import shutil
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

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
    for i in range(SEEDED):
        last = i == SEEDED - 1
        recent.publish(PlateEvent(
            state=EventState.LOST if last else EventState.DETECTED,
            runtimeId=i // 10, channel=0, zone=0, plate="A%03dBC77" % (i,),
            rawPlate="A%03dBC77" % (i,), frameTimeMs=FRAME_AT_MS,
            frame=out.getvalue(), bbox=(200, 300, 160, 40),
            eventTimeMs=LOST_AT_MS if last else FRAME_AT_MS + i))
    metrics.screenshotsEncoded.inc(7)
    metrics.screenshotCacheHits.inc(5)
    metrics.screenshotsSkipped.labels(reason="overloaded").inc(2)


def serve(config: str, seeded: bool = False) -> None:
    """
    Run the real server (L{numberok.build.buildServer}, as C{twistd
    numberok-tcp} builds it) with its event and admin ports on loopback
    port 0, no ingest port and no journal; print the ports.
    """
    sys.path.insert(0, str(ROOT))
    from twisted.internet import reactor, stdio
    from twisted.internet.protocol import Protocol

    from numberok import settings as S
    from numberok.build import Endpoints, buildServer

    server = buildServer(
        S.load(config),
        Endpoints(events="tcp:0:interface=127.0.0.1", ingest=None,
                  admin="tcp:0:interface=127.0.0.1"),
        reactor=reactor, settingsPath=config)
    server.privilegedStartService()
    server.startService()
    server.admin.throttle.baseDelay = 0.05
    if seeded:
        seed(server.recent, server.metrics)

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
def browserPage(sync_playwright, chromium: str):
    """A page of a headless Chromium, closed after."""
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
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

    # A live client appears in the table without a reload.
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
                      "Token = s3cret/+\n")
    server = Server(config, "seeded")
    try:
        with browserPage(sync_playwright, chromium) as page:
            failed = []
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.on("response", lambda r: r.status >= 400 and
                    failed.append("%d %s" % (r.status, r.url)))
            page.on("console", lambda m: m.type == "error" and
                    failed.append(m.text))
            drivePageItems(page, server, config, failed)
    finally:
        server.stop()


def drivePageItems(page, server: Server, config: Path, failed: list) -> None:
    from playwright.sync_api import expect
    page.goto(server.url + "/")
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

    # The Lost row shows when the vehicle was lost, not the frame time.
    lost = page.locator("#events tbody tr", has_text="Lost")
    assert lost.locator("td[data-ms]").get_attribute("data-ms") == \
        str(LOST_AT_MS)

    # Screenshot counters from the metrics registry.
    expect(page.locator("#screenshot-counters")).to_have_text(
        "Screenshots encoded 7 · cache hits 5 · skipped 2 (overloaded 2)")

    # The camera URL to paste, and MQTT settings like the others.
    expect(page.locator("#camera-url")).to_have_text(
        server.url + "/api/cameras/hikvision?token=s3cret%2F%2B")
    page.locator('[name="Mqtt.TopicPrefix"]').fill("site7")

    # The plate templates show their whole value, also a long one.
    templates = page.locator('[name="Plates.Templates"]')
    longValue = "; ".join(["ru:L DDD LL RR[R]", "ru-taxi:LL DDD RR[R]",
                           "by:DDDD LL-D"] * 4)
    templates.fill(longValue)
    assert templates.evaluate(
        "t => t.scrollHeight <= t.clientHeight + 2 && "
        "t.scrollWidth <= t.clientWidth")

    # Save while the sticky header of "Last events" scrolls under the
    # Save bar: the click at Save's place reaches Save.
    save = page.locator("#save")
    page.evaluate("""() => {
        const head = document.querySelector('#events thead');
        const bar = document.querySelector('.savebar');
        window.scrollBy(0, head.getBoundingClientRect().top
                        - bar.getBoundingClientRect().top);
    }""")
    box = save.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    assert page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).closest('.savebar') "
        "&& document.querySelector('#events thead').getBoundingClientRect()"
        ".bottom > y", [x, y])
    page.mouse.click(x, y)
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
    serve(sys.argv[2], seeded=sys.argv[3:4] == ["seeded"])
