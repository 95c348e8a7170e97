"""Hostile clients (tests/badinput, the xcg_badinput program) against one long-running
`xcg serve` while a customer stays attached to web1's console.

Each case does one bad thing and checks, from its own connection, what the gateway must do
about it (see `xcg_badinput --list`). After every case this file checks what must survive:
the broker is the same process, the attached viewer still round-trips through the guest, a
fresh `ssh status` works, web1 was not rebooted by anything the case sent, the case's
session process is gone, and the kernel logged no crash or seccomp kill of a session."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import XCG, Gateway, describe, ensure_user, send_until, wait_for

BADINPUT = os.environ.get("XCG_BADINPUT",
                          str(Path(XCG).parent / "tests" / "badinput" / "xcg_badinput"))
LOGIN_GRACE = 8
MAX_AUTH_TRIES = 6
MAX_KEY_OFFERS = 10
CASE_TIMEOUT = 120

# Cases the gateway fails today; each names the bug. The case still runs and everything else
# is still checked; only its own verdict is expected to fail. Remove an entry when fixed (the
# test then fails on purpose if the case passes, so the list cannot go stale), except for
# those in SOMETIMES: there the bug shows only when nothing else writes to the connection.
KNOWN_FAILURES = {}
SOMETIMES = set()


def list_cases():
    try:
        out = subprocess.run([BADINPUT, "--list"], capture_output=True, text=True, timeout=30,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split("\t", 1)[0] for line in out.splitlines() if line.strip()]


CASES = list_cases()


def kernel_log():
    """The kernel log's lines, or None where it cannot be read."""
    try:
        result = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=30,
                                errors="replace")
    except OSError:
        return None
    return result.stdout.splitlines() if result.returncode == 0 else None


class Target:
    def __init__(self, gw, viewer, comm):
        self.gw = gw
        self.viewer = viewer
        self.comm = comm  # the session processes' name in the kernel log
        self.pid = gw.proc.pid
        self.domid = gw.domid()
        self.rounds = 0

    def viewer_round_trip(self):
        self.rounds += 1
        marker = f"still-here-{self.rounds}".encode()
        self.viewer.send(b"echo " + marker + b"\r")
        self.viewer.expect(rb"\n" + marker + rb"\r?\n", timeout=30)


@pytest.fixture(scope="module")
def target(tmp_path_factory, keys):
    if os.geteuid() == 0:
        ensure_user()
    directory = tmp_path_factory.mktemp("badinput")
    # Sessions run under a name of their own, so the kernel log's lines about them are ours.
    session_program = directory / f"xcgbad{os.getpid() % 100000}"
    session_program.symlink_to(Path(XCG).parent / "xcg-session")
    gw = Gateway(directory, keys, extra={"limits": {"login_grace": f"{LOGIN_GRACE}s",
                                                    "max_auth_tries": MAX_AUTH_TRIES,
                                                    "max_key_offers": MAX_KEY_OFFERS}},
                 args=["--session-program", str(session_program)])
    gw.start()
    try:
        viewer = gw.spawn("web1", "web1", "console", timeout=30)
        send_until(viewer, b"\r", rb"login: ")
        viewer.send(b"root\r")
        viewer.expect(rb"web1:~# ")
        yield Target(gw, viewer, session_program.name)
    finally:
        alive = gw.alive()
        status = gw.stop()
    assert alive, f"xcg serve died during the bad-input tests:\n{gw.read_log()}"
    assert status == 0, f"xcg serve exited with {status} after SIGTERM:\n{gw.read_log()}"


def session_count(target):
    """Session processes run under the program's file name: here the renamed link's."""
    return len(target.gw.processes(target.comm))


def test_the_program_lists_its_cases():
    assert CASES, f"{BADINPUT} is missing or lists no cases (is the build complete?)"
    assert len(CASES) == len(set(CASES)), CASES


@pytest.mark.parametrize("case", CASES)
def test_bad_input(target, keys, case):
    gw = target.gw
    kernel_before = kernel_log()
    argv = [BADINPUT, "--port", str(gw.port), "--user", "web1", "--key", str(keys["web1"].path),
            "--max-auth-tries", str(MAX_AUTH_TRIES), "--max-key-offers", str(MAX_KEY_OFFERS),
            "--login-grace", str(LOGIN_GRACE), case]
    result = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                            timeout=CASE_TIMEOUT, stdin=subprocess.DEVNULL)
    verdict = result.stdout.strip() or result.stderr.strip()
    print(verdict)  # shown by pytest -rA: what the gateway did

    # What must survive any case.
    assert gw.alive() and gw.proc.pid == target.pid, f"{verdict}\n{gw.read_log()}"
    target.viewer_round_trip()
    status = gw.ssh("web1", "web1", "status")
    assert status.returncode == 0, describe(status)
    assert status.stdout.startswith(f"web1: running, domid {target.domid},"), \
        f"web1 was restarted or stopped: {status.stdout!r} ({verdict})"
    # Only the viewer's session is left; a case's session may wait out the login grace time.
    wait_for(lambda: session_count(target) == 1, LOGIN_GRACE + 10,
             f"the case's session to end ({verdict})")
    kernel_after = kernel_log()
    if kernel_before is not None and kernel_after is not None:
        fresh = kernel_after[len(kernel_before):] if len(kernel_after) >= len(kernel_before) \
            else kernel_after
        crashes = [line for line in fresh if re.search(rf"\b{target.comm}\b", line)]
        assert not crashes, "\n".join(crashes)

    # The case's own verdict on how the gateway treated its connection.
    if case in KNOWN_FAILURES:
        if case not in SOMETIMES:
            assert result.returncode != 0, \
                f"{case} passes now: remove it from KNOWN_FAILURES ({verdict})"
        if result.returncode == 1:
            pytest.xfail(f"{KNOWN_FAILURES[case]}: {verdict}")
    assert result.returncode == 0, f"{verdict}\n{result.stderr}"
    assert result.stdout.startswith(f"{case}: ok: "), result.stdout
