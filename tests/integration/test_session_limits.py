"""What the broker bounds per session: requests, log records, a revoked session's reach, and
the audit records of refused key offers. A fake session (fake_session.py) plays the hostile
session process; real OpenSSH clients on other domains must not notice."""

import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import fake_session
from conftest import XCG, describe, send_until, wait_for
from test_hostile_ipc import (FAKE, HOSTILE_TIMEOUT, LOGIN_GRACE, CUT_OFF, assert_still_serves,
                              fake_gw, run_scenario, viewer, web1_key)  # noqa: F401 -- fixtures

REVOKED = "this session has been revoked"
LOG_FLOOD = 2000


@pytest.fixture
def web2_viewer(fake_gw):
    """A customer on web2's console (on_login: console), through a real session process."""
    child = fake_gw.spawn("web2", "web2")
    send_until(child, b"\r", rb"login: ")
    child.send(b"root\r")
    child.expect(rb"web2:~# ")
    return child


def log_lines(gw, pattern):
    return [line for line in gw.read_log().splitlines() if re.search(pattern, line)]


def test_request_flood_is_cut_off_and_others_carry_on(fake_gw, viewer, web2_viewer, web1_key):
    run = run_scenario(fake_gw, f"status_flood {web1_key} 10000")
    assert run.index("attack") is not None, f"the fake never logged in; {run}"
    assert run.closed and run.elapsed < CUT_OFF, str(run)
    assert run.index("answered") is None, f"the flood was answered to its end; {run}"
    pid = run.fake_pid()
    wait_for(lambda: log_lines(fake_gw, rf"session {pid} .*request budget exceeded"), 5,
             "the reason in the broker's log")
    assert_still_serves(fake_gw, viewer, "after-status-flood")
    web2_viewer.send(b"echo web2-still-here\r")
    web2_viewer.expect(rb"\nweb2-still-here\r?\n")


def test_log_flood_is_rate_limited_and_never_a_warning(fake_gw, viewer):
    run = run_scenario(fake_gw, f"log_flood {LOG_FLOOD} 3")  # 3: error
    assert run.index("done") is not None and run.closed, str(run)
    pid = run.fake_pid()
    dropped = wait_for(lambda: log_lines(fake_gw, rf"session {pid} .*: \d+ log records dropped"), 10,
                       "the count of dropped log records")
    written = log_lines(fake_gw, r"log-flood-\d+")
    assert written, "no session log record was written at all"
    assert all(line.split()[1] == "info" for line in written + dropped), written[:5] + dropped
    # The fake sent them within a few seconds: a burst and a few a second get through.
    assert len(written) < 200, f"{len(written)} of {LOG_FLOOD} records written"
    dropped_count = sum(int(re.search(r": (\d+) log records dropped", line).group(1)) for line in dropped)
    assert len(written) + dropped_count == LOG_FLOOD, (len(written), dropped)
    assert_still_serves(fake_gw, viewer, "after-log-flood")


@pytest.fixture
def ctl_gw(make_gateway):
    # Not under pytest's tmp directory: a unix socket's path must stay short.
    directory = Path(tempfile.mkdtemp(prefix="xcg-limits-"))
    gw = make_gateway(extra={"limits": {"login_grace": f"{LOGIN_GRACE}s"}},
                      args=["--session-program", str(FAKE), "--control-socket",
                            str(directory / "control.sock")])
    gw.control_socket = directory / "control.sock"
    yield gw
    shutil.rmtree(directory, ignore_errors=True)


def read_lines_until(sock, data, done, deadline):
    """Reads the fake's report until done(lines) or the connection closes; (data, closed)."""
    while not done(data.decode(errors="replace").splitlines()):
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def test_revoked_session_cannot_act(ctl_gw, web1_key):
    domid = ctl_gw.domid()
    with socket.create_connection(("127.0.0.1", ctl_gw.port), timeout=5) as s:
        s.sendall(f"revoked_action {web1_key} destroy\n".encode())
        deadline = time.monotonic() + HOSTILE_TIMEOUT
        data, _ = read_lines_until(s, b"", lambda lines: "logged in" in lines, deadline)
        assert b"logged in" in data, data
        kicked = subprocess.run([XCG, "ctl", "--socket", str(ctl_gw.control_socket), "kick", "web1"],
                                capture_output=True, text=True, timeout=40, stdin=subprocess.DEVNULL)
        assert kicked.returncode == 0, describe(kicked)
        data, closed = read_lines_until(s, data, lambda lines: False, deadline)
    lines = data.decode(errors="replace").splitlines()
    after = lines[lines.index("logged in") + 1:]
    answers = [fake_session.decode(bytes.fromhex(line.split(": ", 1)[1]))
               for line in after if line.startswith("answer: ")]
    assert closed, lines
    assert [a["type"] for a in answers] == ["revoke", "action_ans", "status_ans"], lines
    action, status = answers[1], answers[2]
    assert not action["ok"] and action["text"] == REVOKED, action
    assert not status["ok"] and status["text"] == REVOKED, status
    assert ctl_gw.domid() == domid, "the revoked session's destroy went through"


def refused_offer_records(gw):
    return [r for r in gw.audit_records() if r["event"] == "auth_failure"]


@pytest.mark.parametrize("then", ["exit", "login"])
def test_refused_key_offers_make_one_audit_record(fake_gw, web1_key, then):
    run = run_scenario(fake_gw, "offer_flood 30" + (f" {web1_key}" if then == "login" else ""))
    assert run.index("done") is not None and run.closed, str(run)
    answers = run.answers()
    assert len(answers) == (30 if then == "exit" else 32), run
    assert not any(a["ok"] for a in answers[:30]), run
    # Written when the session ends, or when it logs in.
    records = wait_for(lambda: refused_offer_records(fake_gw), 10, "the refused offers' record")
    if then == "exit":
        pid = run.fake_pid()
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), 5, "the fake to be gone")
        records = refused_offer_records(fake_gw)
    assert len(records) == 1, records
    record = records[0]
    assert record["stage"] == "key" and record["offers"] == "30", record
    assert record["key_types"] == "ssh-ed25519", record
    fingerprints = record["fingerprints"].split(",")
    assert len(fingerprints) == 5 and all(f.startswith("SHA256:") for f in fingerprints), record
    assert record["fingerprint"] == fingerprints[0] and record["domain"] == "web1", record
    if then == "login":
        events = [r["event"] for r in fake_gw.audit_records()]
        assert events.index("auth_failure") < events.index("auth_success"), events
