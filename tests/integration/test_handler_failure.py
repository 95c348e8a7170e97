"""A callback that throws inside a real `xcg serve` ends only its own session.

The failure is made by a test hook that exists only when xcg is built with
`meson -Dtest_hooks=true` (./dev's test builds; never the package): XCG_TEST_THROW_IN=NAME
makes the event-loop callbacks of the registration named NAME throw.
"""

import os

import pytest

from conftest import RUNNING, detach, wait_for


def gateway_with_hook(make_gateway, target):
    gw = make_gateway(env={**os.environ, "XCG_TEST_THROW_IN": target})
    if "test hook:" not in gw.read_log():
        if os.environ.get("XCG_REQUIRE_TEST_HOOKS") == "1":
            pytest.fail("xcg was built without -Dtest_hooks=true, which ./dev test needs")
        pytest.skip("xcg built without -Dtest_hooks=true")
    return gw


def log_in(child):
    child.send(b"\r")
    child.expect(rb"login: ")
    child.send(b"root\r")
    child.expect(rb"web1:~# ")


def test_a_throwing_session_handler_ends_only_that_session(make_gateway):
    gw = gateway_with_hook(make_gateway, "session 2 ipc")
    first = gw.spawn("web1", "web1", "console")  # session 1
    log_in(first)

    second = gw.ssh("web1", "web1", "status")  # session 2: its first message meets the throw
    assert second.returncode != 0, second
    wait_for(lambda: "session 2 ipc failed: thrown by the test hook" in gw.read_log(), 10,
             "the failure, with the handler's name, in the broker's log")
    assert gw.alive()

    first.send(b"echo still-here\r")  # the session before goes on
    first.expect(rb"\nstill-here\r?\n")
    third = gw.ssh("web1", "web1", "status")  # and the broker takes new ones
    assert RUNNING.match(third.stdout.strip()), third
    detach(first)
    # The failed session was dropped: no xcg-session of it is left behind.
    wait_for(lambda: len(gw.connected_sessions()) == 0, 10, "no session processes left")
