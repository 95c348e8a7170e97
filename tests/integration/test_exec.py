"""`ssh web1@gw COMMAND`: a fixed verb list with exit statuses, never a shell."""

import re

import pytest

from conftest import RUNNING, describe

SHUT_OFF = r"^web1: shut off, 512 MiB, 1 vCPU$"


def one_line(text):
    lines = text.strip("\r\n").splitlines()
    return len(lines) == 1 and lines[0].strip() != ""


def assert_ok_one_line(result):
    assert result.returncode == 0, describe(result)
    assert one_line(result.stdout), describe(result)


def assert_refused(result, status, reason):
    assert result.returncode == status, describe(result)
    assert one_line(result.stderr), describe(result)
    assert reason in result.stderr.lower(), describe(result)


def test_status(gw):
    result = gw.ssh("web1", "web1", "status")
    assert result.returncode == 0, describe(result)
    assert one_line(result.stdout), describe(result)
    match = RUNNING.match(result.stdout.strip())
    assert match, describe(result)
    assert match.group("name") == "web1"
    assert match.group("mem") == "512" and match.group("vcpus") == "1"


def test_help_lists_commands(gw):
    result = gw.ssh("web1", "web1", "help")
    assert result.returncode == 0, describe(result)
    for verb in ("status", "console", "start", "shutdown", "reboot", "destroy"):
        assert re.search(rf"\b{verb}\b", result.stdout), (verb, describe(result))


def test_start_while_running_fails(gw):
    before = gw.domid()
    result = gw.ssh("web1", "web1", "start")
    assert result.returncode == 1, describe(result)
    assert one_line(result.stderr), describe(result)
    assert "web1" in result.stderr, describe(result)
    assert gw.domid() == before


def test_shutdown_then_start(gw):
    before = gw.domid()
    assert before is not None
    assert_ok_one_line(gw.ssh("web1", "web1", "shutdown"))
    gw.wait_status(SHUT_OFF)

    # Wrong state: nothing to shut down.
    assert_refused(gw.ssh("web1", "web1", "shutdown"), 1, "not running")

    assert_ok_one_line(gw.ssh("web1", "web1", "start"))
    after = gw.wait_running_after(before)
    assert after > before


def test_reboot_gives_new_domid(gw):
    before = gw.domid()
    assert before is not None
    assert_ok_one_line(gw.ssh("web1", "web1", "reboot"))
    gw.wait_running_after(before)


def test_destroy(gw):
    assert_ok_one_line(gw.ssh("web1", "web1", "destroy"))
    gw.wait_status(SHUT_OFF, timeout=5)
    assert_refused(gw.ssh("web1", "web1", "destroy"), 1, "web1")
    assert_refused(gw.ssh("web1", "web1", "reboot"), 1, "web1")


@pytest.mark.parametrize("verb", ["shutdown", "reboot", "destroy"])
def test_action_not_allowed(gw, verb):
    before = gw.domid("web2")
    assert before is not None
    assert_refused(gw.ssh("web2", "web2", verb), 1, "not allowed")
    assert gw.domid("web2") == before


@pytest.mark.parametrize("command", [
    "foo",
    "status; id",
    "$(reboot)",
    "reboot && id",
    "`reboot`",
    "reboot now",
    "status\nreboot",
])
def test_unknown_command_runs_nothing(gw, command):
    before = gw.domid()
    result = gw.ssh("web1", "web1", command)
    assert result.returncode == 2, describe(result)
    reason = (result.stdout + result.stderr).strip()
    assert one_line(reason), describe(result)
    assert "unknown command" in reason, describe(result)
    assert "running" not in result.stdout, describe(result)  # status did not run either
    assert gw.domid() == before

