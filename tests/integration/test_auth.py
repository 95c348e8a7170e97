"""Public-key login: a key opens exactly its own domain, and every refusal looks the same on
the wire: the same answer, in the same time."""

import os
import stat
import statistics
import subprocess
import time

import paramiko
import pytest
from paramiko.common import MSG_USERAUTH_FAILURE

from conftest import RUNNING, describe

DENIED = "Permission denied (publickey)"


def assert_denied(result):
    assert result.returncode == 255, describe(result)
    assert DENIED in result.stderr, describe(result)
    assert result.stdout == "", describe(result)


def test_own_key_logs_in(gw):
    result = gw.ssh("web1", "web1", "status")
    assert result.returncode == 0, describe(result)
    assert RUNNING.match(result.stdout.strip()), describe(result)


def test_ecdsa_key_logs_in(gw):
    result = gw.ssh("web2", "web2", "status")
    assert result.returncode == 0, describe(result)
    assert result.stdout.startswith("web2: running"), describe(result)


def test_key_of_another_domain_is_denied(gw):
    assert_denied(gw.ssh("web2", "web1", "status"))
    assert_denied(gw.ssh("web1", "web2", "status"))


def test_unknown_key_is_denied(gw):
    assert_denied(gw.ssh("web1", "stranger", "status"))


def test_unknown_domain_is_denied(gw):
    assert_denied(gw.ssh("nosuchdomain", "web1", "status"))


# Unknown key, a key of another domain, a user that names no domain: all with ed25519 keys,
# so that the server's work up to its answer is the same apart from what it must not reveal.
REFUSALS = [("web1", "stranger"), ("web2", "web1"), ("nosuchdomain", "web1")]
ATTEMPTS = 7
# The medians of the refusals' answer times may differ by this much (a loaded machine); a
# lookup that answers one kind of refusal early or late shows as a larger gap.
TIMING_TOLERANCE = 0.030


def refusal(gw, user, key, monkeypatch):
    """The server's answer to a signed public-key request it refuses, as paramiko reads it
    off the wire: (methods that can continue, partial success) of its USERAUTH_FAILURE, and
    the seconds from the request to that answer."""
    answers = []
    table = paramiko.auth_handler.AuthHandler._client_handler_table
    original = table[MSG_USERAUTH_FAILURE]

    def record(handler, m):
        at = m.packet.tell()
        answers.append((tuple(m.get_list()), m.get_boolean()))
        m.packet.seek(at)
        return original(handler, m)

    monkeypatch.setitem(table, MSG_USERAUTH_FAILURE, record)
    pkey = paramiko.Ed25519Key.from_private_key_file(str(gw.key(key).path))
    transport = paramiko.Transport(("127.0.0.1", gw.port))
    try:
        transport.start_client(timeout=10)
        started = time.monotonic()
        with pytest.raises(paramiko.AuthenticationException):
            transport.auth_publickey(user, pkey)
        elapsed = time.monotonic() - started
        assert transport.is_active(), "the server must answer, not hang up"
    finally:
        transport.close()
    assert len(answers) == 1, answers
    return answers[0], elapsed


def test_refusals_are_indistinguishable(gw, monkeypatch):
    answers = {case: set() for case in REFUSALS}
    times = {case: [] for case in REFUSALS}
    for _ in range(ATTEMPTS):
        for user, key in REFUSALS:  # interleaved: the machine's load falls on every case alike
            answer, elapsed = refusal(gw, user, key, monkeypatch)
            answers[(user, key)].add(answer)
            times[(user, key)].append(elapsed)
    for case in REFUSALS:
        assert answers[case] == {(("publickey",), False)}, (case, answers)
    medians = {case: statistics.median(t) for case, t in times.items()}
    assert max(medians.values()) - min(medians.values()) < TIMING_TOLERANCE, medians


def test_none_method_answers_the_same_for_any_user(gw):
    # Before any key: which methods a user may try does not tell a domain from no domain.
    allowed = []
    for user in ("web1", "nosuchdomain"):
        transport = paramiko.Transport(("127.0.0.1", gw.port))
        try:
            transport.start_client(timeout=10)
            with pytest.raises(paramiko.BadAuthenticationType) as refused:
                transport.auth_none(user)
            allowed.append(refused.value.allowed_types)
        finally:
            transport.close()
    assert allowed == [["publickey"], ["publickey"]], allowed


def test_denied_login_runs_nothing(gw):
    before = gw.domid("web1")
    assert_denied(gw.ssh("web1", "stranger", "reboot"))
    assert_denied(gw.ssh("web1", "web2", "destroy"))
    assert gw.domid("web1") == before


def test_host_key_is_generated_private(gw):
    # The config names a host key file that did not exist before `serve` started.
    mode = os.stat(gw.host_key_path).st_mode
    assert stat.S_IMODE(mode) == 0o600, oct(mode)
    scan = subprocess.run(["ssh-keyscan", "-T", "10", "-t", "ed25519", "-p", str(gw.port),
                           "127.0.0.1"], capture_output=True, text=True, timeout=20)
    assert "ssh-ed25519 " in scan.stdout, describe(scan)
    # The server presents the key stored in the file.
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(gw.host_key_path)],
                             capture_output=True, text=True, timeout=20)
    assert derived.returncode == 0, describe(derived)
    assert derived.stdout.split()[1] in scan.stdout, (describe(derived), describe(scan))
