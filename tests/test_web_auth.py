"""
Admin authentication: the password hash and C{numberok-passwd}, where the
admin server may listen without a password, HTTP Basic for the API, the
login form and its session cookie, CSRF, slowed-down failures, and the
open loopback mode with no password.
"""

from __future__ import annotations

import re

import pytest
import pytest_twisted
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from numberok import settings as S
from numberok.web import auth
from conftest import ADMIN_PASSWORD, http
from helpers import HTTP_READ as READ

# -- the hash ----------------------------------------------------------------


def test_password_checks_against_its_hash_and_nothing_else():
    encoded = auth.hashPassword("s3cret-pass", iterations=1000)
    assert encoded.startswith("pbkdf2_sha256$1000$")
    assert auth.checkPassword("s3cret-pass", encoded)
    assert not auth.checkPassword("s3cret-pasS", encoded)
    assert not auth.checkPassword("s3cret-pass", encoded.replace("1000", "999"))
    assert not auth.checkPassword("x", "garbage")


def test_same_password_hashes_differently_each_time():
    assert auth.hashPassword("same-pass", 1000) != \
        auth.hashPassword("same-pass", 1000)


def test_hash_is_a_valid_settings_value():
    encoded = auth.hashPassword("s3cret-pass", iterations=1000)
    assert S.Settings().withChanges(
        {"Admin.PasswordHash": encoded})["Admin.PasswordHash"] == encoded


# -- throttling and sessions, on a Clock --------------------------------------

def test_failed_logins_wait_longer_each_time_up_to_a_cap():
    clock = Clock()
    throttle = auth.LoginThrottle(clock)
    delays = [throttle.failed("10.0.0.1") for _ in range(7)]
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert throttle.delayFor("10.0.0.1") == 30
    assert throttle.delayFor("10.0.0.2") == 0
    clock.advance(29)
    with pytest.raises(auth.Throttled) as refused:
        throttle.admit("10.0.0.1")
    assert refused.value.retryAfter == 1
    clock.advance(1)
    throttle.admit("10.0.0.1")
    throttle.release("10.0.0.1")
    throttle.succeeded("10.0.0.1")
    assert throttle.delayFor("10.0.0.1") == 0


def test_idle_session_expires():
    clock = Clock()
    sessions = auth.Sessions(clock, idleTimeout=60)
    session = sessions.create()
    clock.advance(59)
    assert sessions.get(session.token) is session
    clock.advance(61)
    assert sessions.get(session.token) is None
    assert sessions.get("forged") is None


def test_sessions_are_bounded():
    sessions = auth.Sessions(Clock(), maxSessions=3)
    first = sessions.create(anonymous=True)
    for _ in range(3):
        sessions.create(anonymous=True)
    assert len(sessions) == 3 and sessions.get(first.token) is None


# -- over HTTP ---------------------------------------------------------------

async def login(stack, password=ADMIN_PASSWORD):
    """Log in with the form.  @return: (response, cookie header, csrf)."""
    from urllib.parse import urlencode
    r = await http("POST", stack.url + "/login",
                   urlencode({"password": password}).encode(),
                   {"Content-Type": "application/x-www-form-urlencoded"})
    cookies = r.headerValues("Set-Cookie")
    if not cookies:
        return r, None, None
    cookie = cookies[0].split(";")[0]
    page = await http("GET", stack.url + "/", headers={"Cookie": cookie})
    csrf = re.search(r'name="csrf-token" content="([^"]+)"',
                     page.body.decode()).group(1)
    return r, cookie, csrf


@pytest_twisted.ensureDeferred
async def test_api_without_credentials_is_401_with_a_basic_challenge(adminServer):
    stack = adminServer(password=ADMIN_PASSWORD)
    r = await http("GET", stack.url + "/api/settings")
    assert r.code == 401
    assert r.header("WWW-Authenticate").startswith("Basic ")
    r = await http("GET", stack.url + "/api/connections",
                   headers={"X-Numberok-Page": "1"})
    assert r.code == 401 and r.header("WWW-Authenticate") is None


@pytest_twisted.ensureDeferred
async def test_basic_auth_opens_the_api_and_a_wrong_password_does_not(
        adminServer):
    stack = adminServer(password=ADMIN_PASSWORD)
    r = await http("GET", stack.url + "/api/settings", headers=stack.basic())
    assert r.code == 200 and r.json()["passwordSet"] is True
    r = await http("GET", stack.url + "/api/settings",
                   headers=stack.basic("wrong password"))
    assert r.code == 401
    assert stack.admin.metrics.value("numberok_login_failures_total") == 1
    r = await http("GET", stack.url + "/api/settings", headers=stack.basic())
    assert r.code == 200


@pytest_twisted.ensureDeferred
async def test_basic_auth_put_needs_no_csrf_token(adminServer):
    stack = adminServer(password=ADMIN_PASSWORD)
    r = await http("PUT", stack.url + "/api/settings",
                   {"System.SystemId": 7}, stack.basic())
    assert r.code == 200 and r.json()["settings"]["System.SystemId"] == 7


@pytest_twisted.ensureDeferred
async def test_basic_auth_put_from_another_origin_is_refused(adminServer):
    stack = adminServer(password=ADMIN_PASSWORD)
    r = await http("PUT", stack.url + "/api/settings", {"System.SystemId": 7},
                   dict(stack.basic(), Origin="http://evil.example"))
    assert r.code == 403 and "Origin" in r.json()["errors"]
    assert stack.store.current["System.SystemId"] == 1


@pytest_twisted.ensureDeferred
async def test_page_redirects_to_login_and_login_sets_a_strict_cookie(
        adminServer):
    stack = adminServer(password=ADMIN_PASSWORD)
    r = await http("GET", stack.url + "/")
    assert r.code == 303 and r.header("Location") == "/login"
    r = await http("GET", stack.url + "/login")
    assert r.code == 200 and b'type="password"' in r.body
    r, cookie, csrf = await login(stack)
    assert r.code == 303 and r.header("Location") == "/"
    setCookie = r.header("Set-Cookie")
    assert "HttpOnly" in setCookie and "SameSite=strict" in setCookie
    assert cookie.startswith("numberok_session_")
    r = await http("GET", stack.url + "/api/settings",
                   headers={"Cookie": cookie})
    assert r.code == 200


@pytest_twisted.ensureDeferred
async def test_wrong_login_is_401_and_slowed_down(adminServer):
    stack = adminServer(password=ADMIN_PASSWORD)
    r, cookie, _ = await login(stack, "not the password")
    assert r.code == 401 and cookie is None
    assert b"Wrong password." in r.body
    assert stack.admin.metrics.value("numberok_login_failures_total") == 1


@pytest_twisted.ensureDeferred
async def test_cookie_request_without_csrf_token_is_rejected(adminServer):
    stack = adminServer(password=ADMIN_PASSWORD)
    _, cookie, csrf = await login(stack)
    r = await http("PUT", stack.url + "/api/settings", {"System.SystemId": 9},
                   {"Cookie": cookie})
    assert r.code == 403 and "csrf" in r.json()["errors"]
    r = await http("PUT", stack.url + "/api/settings", {"System.SystemId": 9},
                   {"Cookie": cookie, "X-CSRF-Token": "forged"})
    assert r.code == 403
    assert stack.store.current["System.SystemId"] == 1
    r = await http("PUT", stack.url + "/api/settings", {"System.SystemId": 9},
                   {"Cookie": cookie, "X-CSRF-Token": csrf})
    assert r.code == 200


@pytest_twisted.ensureDeferred
async def test_cookie_disconnect_needs_the_csrf_token_too(adminServer):
    stack = adminServer(password=ADMIN_PASSWORD)
    _, cookie, _ = await login(stack)
    r = await http("DELETE", stack.url + "/api/connections/1",
                   headers={"Cookie": cookie})
    assert r.code == 403


@pytest_twisted.ensureDeferred
async def test_logout_ends_the_session(adminServer):
    stack = adminServer(password=ADMIN_PASSWORD)
    _, cookie, csrf = await login(stack)
    from urllib.parse import urlencode
    r = await http("POST", stack.url + "/logout",
                   urlencode({"csrf": csrf}).encode(),
                   {"Cookie": cookie,
                    "Content-Type": "application/x-www-form-urlencoded"})
    assert r.code == 303
    r = await http("GET", stack.url + "/api/settings",
                   headers={"Cookie": cookie})
    assert r.code == 401


@pytest_twisted.ensureDeferred
async def test_no_password_on_loopback_opens_the_page_with_a_warning(adminServer):
    stack = adminServer()
    r = await http("GET", stack.url + "/")
    assert r.code == 200
    assert b"No admin password is set" in r.body
    assert "SameSite=strict" in r.header("Set-Cookie")
    r = await http("GET", stack.url + "/login")
    assert r.code == 303 and r.header("Location") == "/"


@pytest_twisted.ensureDeferred
async def test_no_password_mode_refuses_other_host_names(adminServer):
    stack = adminServer()
    r = await http("GET", stack.url + "/api/settings",
                   headers={"Host": "attacker.example:8080"})
    assert r.code == 403 and "loopback" in r.json()["errors"]["Host"]
    r = await http("GET", stack.url + "/", headers={"Host": "attacker.example"})
    assert r.code == 403 and b"loopback" in r.body
    r = await http("GET", stack.url + "/api/settings",
                   headers={"Host": "localhost:8080"})
    assert r.code == 200


@pytest_twisted.ensureDeferred
async def test_no_password_mode_still_refuses_cross_origin_changes(adminServer):
    stack = adminServer()
    r = await http("PUT", stack.url + "/api/settings", {"System.SystemId": 3},
                   {"Origin": "http://evil.example"})
    assert r.code == 403
    r = await http("PUT", stack.url + "/api/settings", {"System.SystemId": 3},
                   {"Origin": stack.url})
    assert r.code == 200


@pytest_twisted.ensureDeferred
async def test_recent_events_and_live_pictures_need_a_login(adminServer):
    stack = adminServer(password=ADMIN_PASSWORD)
    for path in ("/api/events/recent", "/api/events/live/1/thumbnail",
                 "/api/events?since_id=0"):
        r = await http("GET", stack.url + path)
        assert r.code == 401, path
    r = await http("GET", stack.url + "/api/events/recent",
                   headers=stack.basic())
    assert r.code == 200 and r.json()["events"] == []
    r = await http("GET", stack.url + "/api/events/live/1/thumbnail",
                   headers=stack.basic())
    assert r.code == 404 and "live_id" in r.json()["errors"]


@pytest_twisted.ensureDeferred
async def test_static_files_are_public_and_typed(adminServer):
    stack = adminServer(password=ADMIN_PASSWORD)
    r = await http("GET", stack.url + "/static/admin.js")
    assert r.code == 200 and r.header("Content-Type").startswith(
        "text/javascript")
    r = await http("GET", stack.url + "/static/admin.css")
    assert r.code == 200 and r.header("Content-Type").startswith("text/css")
    r = await http("GET", stack.url + "/static/../auth.py")
    assert r.code in (303, 401, 404)


# -- parallel guesses ----------------------------------------------------------

def guessInParallel(stack, hosts):
    """Start one wrong-password check per entry of C{hosts} at once.
    @return: (the admitted checks' Deferreds, how many were throttled)."""
    admitted, throttled = [], 0
    for host in hosts:
        d = stack.admin.passwords.check("wrong guess", host)
        if d.called and isinstance(d.result, Failure) and d.result.check(
                auth.Throttled):
            d.addErrback(lambda f: None)
            throttled += 1
        else:
            admitted.append(d)
    return admitted, throttled


@pytest_twisted.ensureDeferred
async def test_parallel_guesses_from_one_address_compute_one_hash(adminServer):
    stack = adminServer(password=ADMIN_PASSWORD)
    admitted, throttled = guessInParallel(stack, ["10.0.0.1"] * 150)
    assert (len(admitted), throttled) == (1, 149)
    assert await admitted[0] is False
    assert stack.admin.metrics.value("numberok_password_checks_total") == 1
    assert stack.admin.metrics.value("numberok_admin_refused_total",
                                     reason="login_throttled") == 149


@pytest_twisted.ensureDeferred
async def test_parallel_guesses_from_many_addresses_compute_two_hashes(
        adminServer):
    stack = adminServer(password=ADMIN_PASSWORD)
    hosts = ["10.0.%d.%d" % (i // 100, i % 100) for i in range(150)]
    admitted, throttled = guessInParallel(stack, hosts)
    assert (len(admitted), throttled) == (2, 148)
    for d in admitted:
        assert await d is False
    assert stack.admin.metrics.value("numberok_password_checks_total") == 2
    assert stack.admin.metrics.value("numberok_login_failures_total") == 2


@pytest_twisted.ensureDeferred
async def test_pushed_reads_are_not_queued_behind_password_checks(adminServer):
    import threading
    stack = adminServer(password=ADMIN_PASSWORD)
    r = await http("POST", stack.url + "/api/reads", READ, stack.basic())
    assert r.code == 202
    release = threading.Event()
    busy = stack.admin.passwordThreads.run(release.wait, 30)
    try:
        hosts = ["10.1.0.%d" % (i,) for i in range(150)]
        admitted, throttled = guessInParallel(stack, hosts)
        assert throttled == 148
        r = await http("POST", stack.url + "/api/reads", READ, stack.basic())
        assert r.code == 202 and stack.analytics.reads == 2
        assert not any(d.called for d in admitted)
    finally:
        release.set()
    await busy
    for d in admitted:
        assert await d is False
