"""The operator's commands: `xcg ctl` over the control socket (sessions, status, kick,
reload), `xcg check`'s summary and warnings, and `xcg hostkeys` against the running server."""

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pexpect
import pytest

from conftest import (SESSION_USER, XCG, default_domains, describe, make_key, render_config,
                      send_until, wait_for)

HEADER = ["ID", "PID", "DOMAIN", "REMOTE", "SINCE", "KEY"]
SESSION_LINE = re.compile(
    r"^(?P<id>\d+)\s+(?P<pid>\d+)\s+(?P<domain>\(logging in\)|\S+)\s+(?P<remote>\S+)\s+"
    r"(?P<since>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\s*(?P<key>.*)$")
KICKED = rb"\[xcg: disconnected by the operator\]"


@pytest.fixture
def socket_dir():
    # Not under pytest's 0700 tmp directory: the non-root test must reach the socket itself,
    # so that it is the socket that refuses.
    directory = Path(tempfile.mkdtemp(prefix="xcg-ctl-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def cgw(socket_dir, make_gateway):
    """The default gateway with a control socket."""
    path = socket_dir / "control.sock"
    gw = make_gateway(args=["--control-socket", str(path)])
    gw.control_socket = path
    return gw


def ctl(gw, *words, user=None):
    argv = [XCG, "ctl", "--socket", str(gw.control_socket), *words]
    if user:
        argv = ["runuser", "-u", user, "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=40,
                          stdin=subprocess.DEVNULL)


def ctl_ok(gw, *words):
    result = ctl(gw, *words)
    assert result.returncode == 0, describe(result)
    return result.stdout


def sessions(gw):
    lines = ctl_ok(gw, "sessions").splitlines()
    assert lines and lines[0].split() == HEADER, lines
    rows = []
    for line in lines[1:]:
        match = SESSION_LINE.match(line)
        assert match, line
        rows.append(match.groupdict())
    return rows


def logged_in(gw, count):
    """Waits until `sessions` shows exactly `count` logged-in sessions; returns the rows."""
    def check():
        rows = [r for r in sessions(gw) if r["domain"] != "(logging in)"]
        return len(rows) == count and rows
    return wait_for(check, 10, f"{count} logged-in sessions")


def attach(gw, domain, key=None):
    child = gw.spawn(domain, key or domain, "console")
    prompt = rb"%s:~# " % domain.encode()
    send_until(child, b"\r", rb"login: |" + prompt)
    if child.after.endswith(b"login: "):
        child.send(b"root\r")
        child.expect(prompt)
    return child


def echoes(child, word):
    child.send(b"echo %s\r" % word.encode())
    child.expect(rb"\n%s\r?\n" % word.encode())


# --- the socket -------------------------------------------------------------------------------

def test_socket_is_root_only(cgw):
    info = os.stat(cgw.control_socket)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) & 0o077 == 0, oct(info.st_mode)  # owner only
    assert info.st_uid == 0
    result = ctl(cgw, "status", user=SESSION_USER)
    assert result.returncode != 0, describe(result)
    assert "xcg serving" not in result.stdout, describe(result)
    assert "Permission denied" in result.stderr, describe(result)


def test_socket_mode_is_0600(cgw):
    assert stat.S_IMODE(os.stat(cgw.control_socket).st_mode) == 0o600


def test_server_refuses_non_root_peer(cgw):
    # Second line of defence: with the mode opened up, the server still checks the peer.
    os.chmod(cgw.control_socket, 0o666)
    result = ctl(cgw, "sessions", user=SESSION_USER)
    assert "ID" not in result.stdout and "xcg serving" not in result.stdout, describe(result)
    wait_for(lambda: "refused a client that is not root" in cgw.read_log(), 5,
             "the refusal in the server log")
    assert ctl(cgw, "status").returncode == 0  # root still gets in


def test_ctl_without_an_answer_fails(socket_dir):
    # A server that reads the request and hangs up, as the broker does for a refused peer.
    path = socket_dir / "mute.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        client = subprocess.Popen([XCG, "ctl", "--socket", str(path), "status"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL)
        server.settimeout(10)
        connection, _ = server.accept()
        with connection:
            connection.settimeout(10)
            request = b""
            while not request.endswith(b"\n"):
                chunk = connection.recv(100)
                assert chunk, request
                request += chunk
            assert request == b"status\n"
        out, err = client.communicate(timeout=20)
    assert out == b""
    assert client.returncode != 0, (client.returncode, err)


def test_ctl_without_server_fails(socket_dir):
    result = subprocess.run([XCG, "ctl", "--socket", str(socket_dir / "none.sock"), "status"],
                            capture_output=True, text=True, timeout=20,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and "cannot connect" in result.stderr, describe(result)


def test_socket_removed_on_shutdown(cgw):
    assert cgw.control_socket.exists()
    assert cgw.terminate() == 0
    assert not cgw.control_socket.exists()


# --- status and sessions ----------------------------------------------------------------------

def test_status(cgw):
    text = ctl_ok(cgw, "status")
    assert f"xcg serving {cgw.config_path} since " in text, text
    assert "sessions: 0 logged in, 0 logging in" in text, text
    for domain in ("web1", "web2", "web3"):
        assert re.search(rf"^{domain}: running, domid \d+, .*; 0 viewers$", text, re.M), text
    child = attach(cgw, "web1")
    text = ctl_ok(cgw, "status")
    assert "sessions: 1 logged in, 0 logging in" in text, text
    assert re.search(r"^web1: running, .*; 1 viewers$", text, re.M), text
    assert re.search(r"^web2: running, .*; 0 viewers$", text, re.M), text
    echoes(child, "status-did-not-disturb")


def test_sessions_lists_who_is_connected(cgw, keys):
    assert sessions(cgw) == []
    web1 = attach(cgw, "web1")
    web2 = attach(cgw, "web2")
    rows = logged_in(cgw, 2)
    by_domain = {r["domain"]: r for r in rows}
    assert set(by_domain) == {"web1", "web2"}, rows
    session_pids = set(cgw.connected_sessions())
    for domain, row in by_domain.items():
        assert int(row["pid"]) in session_pids, (row, session_pids)
        assert row["remote"].startswith("127.0.0.1"), row
        assert row["key"] == f"{domain}@xcg-test", row
    assert by_domain["web1"]["id"] != by_domain["web2"]["id"]
    web2.sendcontrol("]")
    web2.expect(pexpect.EOF)
    rows = logged_in(cgw, 1)
    assert rows[0]["domain"] == "web1"
    echoes(web1, "listed")


# --- kick -------------------------------------------------------------------------------------

def test_kick_domain_ends_all_its_sessions(cgw, keys):
    a = attach(cgw, "web1")
    b = attach(cgw, "web1")
    other = attach(cgw, "web2")
    logged_in(cgw, 3)
    assert ctl_ok(cgw, "kick", "web1").strip() == "ended 2 sessions"
    for child in (a, b):
        child.expect(KICKED, timeout=5)
        child.expect(pexpect.EOF, timeout=5)
    rows = logged_in(cgw, 1)
    assert rows[0]["domain"] == "web2", rows
    echoes(other, "web2-untouched")
    assert b"disconnected" not in other.before
    # A kick is not a revocation: the key still logs in.
    assert cgw.ssh("web1", "web1", "status").returncode == 0


def test_kick_one_session(cgw):
    victim = attach(cgw, "web1")
    victim_id = logged_in(cgw, 1)[0]["id"]
    survivor = attach(cgw, "web1")
    ids = {r["id"] for r in logged_in(cgw, 2)}
    assert victim_id in ids
    assert ctl_ok(cgw, "kick", victim_id).strip() == "ended 1 session"
    victim.expect(KICKED, timeout=5)
    victim.expect(pexpect.EOF, timeout=5)
    rows = logged_in(cgw, 1)
    assert rows[0]["id"] != victim_id, rows
    echoes(survivor, "survivor")
    assert b"disconnected" not in survivor.before


@pytest.mark.parametrize("target", ["web9", "99999", "web1"])
def test_kick_unknown_target(cgw, target):
    # web1 exists but has no session: nothing to end is an error too.
    result = ctl(cgw, "kick", target)
    assert result.returncode == 1, describe(result)
    assert result.stdout.startswith("error: ") and target in result.stdout, describe(result)
    assert cgw.alive()


@pytest.mark.parametrize("words", [["frobnicate"], ["sessions", "extra"], ["kick"],
                                   ["reload", "now"], ["status", "web1"]])
def test_unknown_request(cgw, words):
    result = ctl(cgw, *words)
    assert result.returncode == 1, describe(result)
    assert result.stdout.startswith("error: unknown request"), describe(result)
    assert ctl(cgw, "status").returncode == 0


def test_ctl_without_a_request_is_a_usage_error(cgw):
    result = subprocess.run([XCG, "ctl", "--socket", str(cgw.control_socket)],
                            capture_output=True, text=True, timeout=20,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "usage" in result.stderr, describe(result)


def test_oversized_request_is_dropped(cgw):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(cgw.control_socket))
        try:
            s.sendall(b"x" * 4096)  # no newline, more than any request
        except BrokenPipeError:
            pass
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
    assert ctl(cgw, "status").returncode == 0


# --- reload -----------------------------------------------------------------------------------

def rewrite_config(gw, keys, domains):
    """Writes a new main config (same settings) by renaming over the old one."""
    text = render_config(gw.dir, domains, {"autostart": True, "shutdown_grace_ms": 2000})
    temporary = gw.dir / ".xcg.yaml.new"
    temporary.write_text(text)
    os.rename(temporary, gw.config_path)


def test_reload(cgw, keys, tmp_path):
    text = ctl_ok(cgw, "reload")
    assert re.match(rf"^reloaded {re.escape(str(cgw.config_path))} \(xcg ctl reload\): "
                    r"3 domains, 0 sessions ended$", text.strip()), text
    # When `reload` returns, an edit is in force (whichever of it and the watcher came first).
    extra = make_key(tmp_path, "web3b", ["-t", "ed25519"])
    domains = default_domains(keys)
    domains["web3"]["keys"] = [extra.public_line]
    rewrite_config(cgw, keys, domains)
    result = ctl(cgw, "reload")
    assert result.returncode == 0 and "reloaded" in result.stdout, describe(result)
    assert cgw.ssh("web3", extra, "status").returncode == 0
    assert cgw.ssh("web3", "web3", "status").returncode == 255


def test_reload_of_a_broken_config_fails_and_prints_the_problems(cgw, keys):
    live = attach(cgw, "web1")
    domains = default_domains(keys)
    domains["web2"]["on_login"] = "sideways"
    domains["web3"]["keys"] = [keys["web1"].public_line]  # web1's key twice
    rewrite_config(cgw, keys, domains)
    lines = cgw.config_path.read_text().splitlines()
    result = ctl(cgw, "reload")
    assert result.returncode == 1, describe(result)
    assert result.stdout.startswith("error: config not applied"), describe(result)
    printed = re.findall(rf"^{re.escape(str(cgw.config_path))}:(\d+):\d+: .+$", result.stdout,
                         re.M)
    on_login = next(i + 1 for i, line in enumerate(lines) if "sideways" in line)
    twice = [i + 1 for i, line in enumerate(lines) if keys["web1"].public_line in line]
    assert str(on_login) in printed and str(max(twice)) in printed, describe(result)
    # Same lines as `xcg check`.
    check = subprocess.run([XCG, "check", "--config", str(cgw.config_path)],
                           capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert check.returncode == 1
    problems = [line for line in result.stdout.splitlines()
                if line.startswith(f"{cgw.config_path}:")]
    assert problems == [line for line in check.stdout.splitlines()
                        if line.startswith(f"{cgw.config_path}:")], (problems, check.stdout)
    # Nothing changed.
    echoes(live, "still-attached")
    assert cgw.ssh("web3", "web3", "status").returncode == 0
    assert "reload (xcg ctl reload)" in cgw.read_log()


# --- xcg check: summary and warnings ----------------------------------------------------------

def run_check(path):
    return subprocess.run([XCG, "check", "--config", str(path)], capture_output=True,
                          text=True, timeout=20, stdin=subprocess.DEVNULL)


def test_check_summary_counts_included_files(keys, tmp_path):
    include = tmp_path / "domains.d"
    include.mkdir()
    (include / "web1.yaml").write_text(
        "domains:\n  web1:\n    keys:\n"
        f"      - {json.dumps(keys['web1'].public_line)}\n"
        f"      - {{key: {json.dumps(keys['stranger'].public_line)}, readonly: true}}\n")
    (include / "web2.yaml").write_text(
        f"domains:\n  web2:\n    keys: [{json.dumps(keys['web2'].public_line)}]\n")
    (include / "notes.txt").write_text("not included\n")
    path = tmp_path / "xcg.yaml"
    path.write_text(render_config(tmp_path, {"web3": default_domains(keys)["web3"]},
                                  {"autostart": True},
                                  {"include": ["domains.d/*.yaml"]}))
    result = run_check(path)
    assert result.returncode == 0, describe(result)
    assert result.stdout.splitlines() == [
        f"{path}: OK: 3 domains, 4 keys (1 read-only), 3 files"], describe(result)


@pytest.fixture(scope="module")
def rsa_keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("rsa")
    return {bits: make_key(directory, f"rsa{bits}", ["-t", "rsa", "-b", str(bits)])
            for bits in (2048, 3072)}


def test_check_warnings(keys, rsa_keys, tmp_path):
    uncommented = " ".join(keys["stranger"].public_line.split()[:2])
    path = tmp_path / "xcg.yaml"
    path.write_text(
        'listen: ["127.0.0.1:0"]\n'                                          # 1
        f"host_keys: [{json.dumps(str(tmp_path / 'hostkey'))}]\n"            # 2
        "hypervisor: sim\n"                                                  # 3
        "domains:\n"                                                         # 4
        "  web1:\n"                                                          # 5
        "    keys:\n"                                                        # 6
        f"      - {json.dumps(keys['web1'].public_line)}\n"                  # 7
        f"      - {json.dumps(rsa_keys[2048].public_line)}\n"                # 8
        f"      - {json.dumps(rsa_keys[3072].public_line)}\n"                # 9
        f"      - {json.dumps(uncommented)}\n"                               # 10
        "  empty:\n"                                                         # 11
        "    keys: []\n")                                                    # 12
    result = run_check(path)
    assert result.returncode == 0, describe(result)
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path}: OK: 2 domains, 4 keys, 1 file", describe(result)
    warnings = {}
    for line in lines[1:]:
        match = re.match(rf"^{re.escape(str(path))}:(\d+):(\d+): warning: (.+)$", line)
        assert match, line
        warnings[int(match[1])] = match[3]
    assert set(warnings) == {8, 10, 11}, describe(result)
    assert "weak 2048-bit RSA" in warnings[8] and rsa_keys[2048].fingerprint in warnings[8]
    assert "no comment" in warnings[10] and keys["stranger"].fingerprint in warnings[10]
    assert "'empty' has no keys" in warnings[11]


# --- xcg hostkeys -----------------------------------------------------------------------------

def hostkeys(config, host):
    result = subprocess.run([XCG, "hostkeys", "--config", str(config), "--host", host],
                            capture_output=True, text=True, timeout=20,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, describe(result)
    return result.stdout.splitlines()


def config_listening_on(gw, port, name):
    """The gateway's config with a fixed port: hostkeys prints the port customers use."""
    path = gw.dir / name
    text = gw.config_path.read_text().replace('listen: ["127.0.0.1:0"]',
                                              f'listen: ["127.0.0.1:{port}"]')
    assert f":{port}" in text
    path.write_text(text)
    return path


def test_hostkeys_match_the_running_server(gw):
    config = config_listening_on(gw, gw.port, "fixed-port.yaml")
    lines = hostkeys(config, "gw.example.net")
    assert len(lines) == 2, lines
    known = re.match(rf"^\[gw\.example\.net\]:{gw.port} (ssh-ed25519) (AAAA\S+)$", lines[0])
    sshfp = re.match(r"^gw\.example\.net IN SSHFP 4 2 ([0-9a-f]{64})$", lines[1])
    assert known and sshfp, lines
    blob = known[2]

    scan = subprocess.run(["ssh-keyscan", "-T", "10", "-t", "ed25519", "-p", str(gw.port),
                           "127.0.0.1"], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)
    scanned = [line.split() for line in scan.stdout.splitlines()
               if line and not line.startswith("#")]
    assert scanned, describe(scan)
    assert [(words[1], words[2]) for words in scanned] == [("ssh-ed25519", blob)], describe(scan)
    assert sshfp[1] == hashlib.sha256(base64.b64decode(blob)).hexdigest()

    # The known_hosts line works as is for a strict client.
    port22 = config_listening_on(gw, 22, "port-22.yaml")
    assert hostkeys(port22, "gw.example.net")[0] == f"gw.example.net ssh-ed25519 {blob}"
    strict = gw.dir / "strict_known_hosts"
    strict.write_text(hostkeys(config, "127.0.0.1")[0] + "\n")
    argv = gw.ssh_argv("web1", "web1", ["status"])
    argv = [a.replace("StrictHostKeyChecking=no", "StrictHostKeyChecking=yes")
             .replace(f"UserKnownHostsFile={gw.known_hosts}", f"UserKnownHostsFile={strict}")
            for a in argv]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, describe(result)
