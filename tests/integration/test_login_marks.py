"""A test build's session logs the CPU it has used at each step of a login, in the order the
login passes them (gateway/session/login_marks.h, read by bench/login_steps.py). Packages are
built without the marks (meson -Dtest_hooks=false)."""

import os
import re

import pytest

from conftest import detach, wait_for

STEPS = ["exec", "libraries", "hello", "sandbox", "key_exchange", "auth", "channel", "console"]
MARKS = re.compile(r"login steps \(CPU us since the clone\):((?: \w+=-?\d+)+)")


def step_lines(gw):
    return MARKS.findall(gw.read_log())


def test_a_console_login_logs_its_steps_in_order(gw):
    child = gw.spawn("web1", "web1", "console")
    child.expect(rb"login: |web1:~# ")
    try:
        wait_for(lambda: step_lines(gw), 10, "the login's step line in the broker's log")
    except AssertionError:
        if os.environ.get("XCG_REQUIRE_TEST_HOOKS") == "1":
            raise
        pytest.skip("xcg built without -Dtest_hooks=true")
    detach(child)
    (line,) = step_lines(gw)
    values = dict(pair.split("=") for pair in line.split())
    assert list(values) == STEPS
    cpu = [int(values[s]) for s in STEPS]
    assert cpu[0] > 0, line  # every step was passed and timed
    assert cpu == sorted(cpu), line  # CPU time only grows: the steps came in this order
    assert cpu[-1] > cpu[0], line

