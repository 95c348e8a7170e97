"""Public-key login: a key opens exactly its own domain, and every refusal looks the same."""

import os
import stat
import subprocess

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


def test_refusals_are_indistinguishable(gw):
    cases = [("web2", "web1"), ("web1", "stranger"), ("nosuchdomain", "web1")]
    messages = set()
    for user, key in cases:
        result = gw.ssh(user, key, "status")
        assert_denied(result)
        messages.add(result.stderr.replace(user, "USER"))
    assert len(messages) == 1, messages


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
