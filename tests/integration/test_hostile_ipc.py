"""A compromised session process against the broker.

`xcg serve --session-program fake_session.py` runs a fake session that speaks the IPC
directly and misbehaves on cue. Whatever it sends, the broker must cut it off at once (its TCP
connection closes well before the login grace time) without answering, and carry on serving
everyone else: a real `ssh ... status` works and a customer already on a console keeps it.
Real OpenSSH clients still get the real session process: the fake execs it when the
connection starts with an SSH banner.
"""

import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import fake_session
from conftest import describe, pid_alive, send_until, wait_for

FAKE = Path(__file__).resolve().with_name("fake_session.py")
LOGIN_GRACE = 60
CUT_OFF = 5  # seconds from the scenario line to the closed connection; far below LOGIN_GRACE
HOSTILE_TIMEOUT = 15  # how long a run may take before we stop listening

AUTHORIZE_ANS = "authorize_ans"


@pytest.fixture
def fake_gw(make_gateway):
    return make_gateway(extra={"limits": {"login_grace": f"{LOGIN_GRACE}s"}},
                        args=["--session-program", str(FAKE)])


@pytest.fixture
def viewer(fake_gw):
    """A customer logged in on web1's console through a real session process."""
    child = fake_gw.spawn("web1", "web1", "console")
    send_until(child, b"\r", rb"login: ")
    child.send(b"root\r")
    child.expect(rb"web1:~# ")
    return child


@pytest.fixture
def web1_key(keys):
    key_type, key_base64 = keys["web1"].public_line.split()[:2]
    return f"{key_type} {key_base64}"


@dataclass
class Run:
    lines: list
    closed: bool  # the TCP connection closed (EOF or reset)
    elapsed: float  # seconds from the scenario line to the close (or to giving up)

    def __str__(self):
        shown = "\n  ".join(line[:200] for line in self.lines)
        return f"closed={self.closed} after {self.elapsed:.2f}s; fake reported:\n  {shown}"

    def index(self, prefix):
        return next((i for i, line in enumerate(self.lines) if line.startswith(prefix)), None)

    def answers(self, start=0, stop=None):
        return [fake_session.decode(bytes.fromhex(line.split(": ", 1)[1]))
                for line in self.lines[start:stop] if line.startswith("answer: ")]

    def fake_pid(self):
        first = self.lines[0] if self.lines else ""
        assert first.startswith("hello pid "), f"the fake got no hello from the broker; {self}"
        return int(first.split()[-1])


def run_scenario(gw, line, timeout=HOSTILE_TIMEOUT):
    """Connects to the gateway, names a scenario, and collects the fake's report until the
    connection closes or `timeout` passes."""
    data = b""
    closed = False
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(line.encode() + b"\n")
        started = time.monotonic()
        deadline = started + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
        elapsed = time.monotonic() - started
    return Run(data.decode(errors="replace").splitlines(), closed, elapsed)


def assert_cut_off(run):
    attack = run.index("attack")
    assert attack is not None, f"the fake never got to misbehave; {run}"
    assert run.closed, f"the broker did not cut the session off; {run}"
    assert run.elapsed < CUT_OFF, f"cut off only after {run.elapsed:.1f}s (login grace?); {run}"
    assert run.answers(attack) == [], f"the broker answered the misbehaving request; {run}"
    assert run.index("timeout") is None, f"the broker ignored the misbehaviour; {run}"
    assert run.index("error") is None, str(run)
    pid = run.fake_pid()
    wait_for(lambda: not pid_alive(pid), 5, f"the fake session (pid {pid}) to be gone")


def assert_still_serves(gw, viewer, marker):
    assert gw.alive(), gw.read_log()
    result = gw.ssh("web1", "web1", "status")
    assert result.returncode == 0, describe(result)
    assert result.stdout.startswith("web1: running"), describe(result)
    viewer.send(b"echo %s\r" % marker.encode())
    viewer.expect(rb"\n%s\r?\n" % marker.encode())


def test_harness_logs_in_and_asks_status(fake_gw, viewer, web1_key, keys):
    run = run_scenario(fake_gw, f"positive {web1_key}")
    assert run.index("done") is not None and run.closed, str(run)
    probe, signed, status = run.answers()
    assert probe["type"] == AUTHORIZE_ANS and probe["ok"] and probe["domain"] == "web1", run
    assert signed["type"] == AUTHORIZE_ANS and signed["ok"] and signed["domain"] == "web1", run
    assert signed["fingerprint"] == keys["web1"].fingerprint, run
    assert status["type"] == "status_ans" and status["ok"], run
    assert status["text"].startswith("web1: running"), run
    assert_still_serves(fake_gw, viewer, "harness-ok")


# (scenario, needs web1's key, the answers the fake must get before it misbehaves)
HOSTILE = [
    ("garbage", False, []),
    ("unknown_type", False, []),
    ("high_type", False, []),
    ("truncated", False, []),
    ("trailing", False, []),
    ("oversized", False, []),
    ("empty", False, []),
    ("early_status", False, []),
    ("early_attach", False, []),
    ("early_action", False, []),
    ("after_probe_status", True, [True]),
    ("reauthorize", True, [True, True]),
    ("answer_type", False, []),
    ("hello", False, []),
    ("with_fd", True, [True, True]),
    ("denied_then_status", True, [False]),
    ("ssh_metrics", False, []),
    ("logged_in_metrics", True, [True, True]),
]


@pytest.mark.parametrize("scenario,with_key,before", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_misbehaving_session_is_cut_off(fake_gw, viewer, web1_key, scenario, with_key, before):
    domid = fake_gw.domid()
    run = run_scenario(fake_gw, f"{scenario} {web1_key}" if with_key else scenario)
    # The lead-up went as planned, so only the misbehaviour itself can explain the cut-off.
    lead_up = run.answers(0, run.index("attack"))
    assert [a["type"] for a in lead_up] == [AUTHORIZE_ANS] * len(before), run
    assert [a["ok"] for a in lead_up] == before, run
    assert_cut_off(run)
    assert_still_serves(fake_gw, viewer, f"after-{scenario}")
    assert fake_gw.domid() == domid, "the domain was touched"


def test_authorize_flood_is_cut_off(fake_gw, viewer, keys):
    key_type, key_base64 = keys["stranger"].public_line.split()[:2]
    run = run_scenario(fake_gw, f"auth_flood {key_type} {key_base64} 100")
    answers = run.answers()
    assert run.closed and run.elapsed < CUT_OFF, str(run)
    assert 0 < len(answers) < 100, f"{len(answers)} of 100 probes answered; {run}"
    assert not any(a["ok"] for a in answers), run
    assert run.index("done") is None, f"the fake finished its flood; {run}"
    assert_still_serves(fake_gw, viewer, "after-flood")


def test_session_can_only_reach_its_own_domain(fake_gw, viewer, web1_key):
    run = run_scenario(fake_gw, f"cross_domain {web1_key}")
    assert run.index("done") is not None, str(run)
    answers = run.answers()
    assert len(answers) == 6, run
    web2_probe, web2_signed, probe, signed, status, attach = answers
    # web1's key (public, so an attacker has it) is no key to web2, probe or signature alike.
    for denied in (web2_probe, web2_signed):
        assert denied["type"] == AUTHORIZE_ANS and not denied["ok"], run
        assert denied["domain"] == "", run
    assert probe["ok"] and signed["ok"] and signed["domain"] == "web1", run
    # No request names a domain: everything after the login concerns web1 alone.
    assert status["type"] == "status_ans" and status["ok"], run
    assert status["text"].startswith("web1: running") and "web2" not in status["text"], run
    assert attach["type"] == "attach_ans" and attach["ok"], run
    console_line = run.lines[run.index("console: ")]
    console = bytes.fromhex(console_line.split(": ", 1)[1])
    assert b"web1" in console and b"web2" not in console, console
    records = fake_gw.audit_records()
    assert not [r for r in records if r.get("event") == "auth_success"
                and r.get("domain") != "web1"], records
    assert_still_serves(fake_gw, viewer, "after-cross-domain")
