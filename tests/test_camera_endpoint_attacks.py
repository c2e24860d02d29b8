"""
Issue 21, "Camera endpoint and HTTP reads", over real HTTP on loopback
(the real server from conftest's C{adminServer}): what one sender's bodies
may not take from others, and how camera tokens are checked, throttled and
kept out of the logs.
"""

from __future__ import annotations

import threading

import pytest_twisted

from conftest import bounded, http


@pytest_twisted.ensureDeferred
async def test_a_settings_save_does_not_wait_for_busy_read_parsers(
        adminServer):
    stack = adminServer()
    admin = stack.admin
    gate = threading.Event()
    busy = [admin.readThreads.run(gate.wait, 10) for _ in range(4)]
    try:
        r = await http("PUT", stack.url + "/api/settings",
                       {"Analytics.SkipFirstResults": 2})
        assert r.code == 200, r.body
    finally:
        gate.set()
        for d in busy:
            await bounded(d, 10)
