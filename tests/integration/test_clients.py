"""Real SSH clients against `xcg serve`: OpenSSH, PuTTY's plink, Dropbear's dbclient and
paramiko, each with Ed25519, ECDSA (P-256, P-384, P-521) and RSA-3072 keys: `status`, the
console round trip, refused keys. And ssh-agent holding 20 keys."""

import os
import shutil
import subprocess
import time
import tty
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pexpect
import pytest

from conftest import DETACH, RUNNING, default_domains, describe, detach, make_key, send_until, wait_for

KEY_TYPES = {
    "ed25519": ["-t", "ed25519"],
    "ecdsa256": ["-t", "ecdsa", "-b", "256"],
    "ecdsa384": ["-t", "ecdsa", "-b", "384"],
    "ecdsa521": ["-t", "ecdsa", "-b", "521"],
    "rsa3072": ["-t", "rsa", "-b", "3072"],
}
PARAMIKO_KEY_CLASSES = {"ed25519": paramiko.Ed25519Key, "ecdsa": paramiko.ECDSAKey,
                        "rsa": paramiko.RSAKey}  # by ssh-keygen -t


def require_tool(name, package):
    if shutil.which(name) is None:
        pytest.fail(f"{name} is not installed (Debian package {package}; ./dev test installs it)")


@dataclass
class ClientKey:
    name: str
    kind: str        # ssh-keygen -t
    openssh: object  # conftest.Key
    ppk: Path        # PuTTY's format
    dropbear: Path   # Dropbear's format

    @property
    def paramiko(self):
        return PARAMIKO_KEY_CLASSES[self.kind].from_private_key_file(str(self.openssh.path))


def convert(key):
    require_tool("puttygen", "putty-tools")
    require_tool("dropbearconvert", "dropbear-bin")
    ppk = Path(f"{key.path}.ppk")
    dropbear = Path(f"{key.path}.dropbear")
    subprocess.run(["puttygen", str(key.path), "-O", "private", "-o", str(ppk)], check=True,
                   timeout=60, capture_output=True, stdin=subprocess.DEVNULL)
    subprocess.run(["dropbearconvert", "openssh", "dropbear", str(key.path), str(dropbear)],
                   check=True, timeout=60, capture_output=True, stdin=subprocess.DEVNULL)
    return ppk, dropbear


@pytest.fixture(scope="module")
def client_keys(tmp_path_factory):
    """web1's keys of every type, a key of web2's, and a stranger's, in every client's format."""
    directory = tmp_path_factory.mktemp("client-keys")
    found = {}
    for name, args in [*KEY_TYPES.items(), ("web2", ["-t", "ed25519"]),
                       ("stranger", ["-t", "ed25519"])]:
        key = make_key(directory, name, args)
        found[name] = ClientKey(name, args[1], key, *convert(key))
    return found


@pytest.fixture
def cgw(make_gateway, keys, client_keys):
    domains = default_domains(keys)
    domains["web1"]["keys"] = domains["web1"]["keys"] + [client_keys[n].openssh.public_line
                                                         for n in KEY_TYPES]
    domains["web2"]["keys"] = domains["web2"]["keys"] + [client_keys["web2"].openssh.public_line]
    return make_gateway(domains=domains)


def host_fingerprint(gw):
    listing = subprocess.run(["ssh-keygen", "-lf", str(gw.host_key_path)], check=True,
                             capture_output=True, text=True, timeout=30).stdout
    return listing.split()[1]


# --- the command-line clients ----------------------------------------------------------------------

def openssh_argv(gw, key, domain, command):
    return gw.ssh_argv(domain, key.openssh, [command])


def plink_argv(gw, key, domain, command):
    require_tool("plink", "putty-tools")
    # -hostkey pins the gateway's key, so -batch never has to ask about it.
    return ["plink", "-ssh", "-batch", "-noagent", "-P", str(gw.port),
            "-hostkey", host_fingerprint(gw), "-i", str(key.ppk), "-l", domain, "127.0.0.1",
            command]


def dbclient_argv(gw, key, domain, command):
    require_tool("dbclient", "dropbear-bin")
    # -y -y: accept any host key without asking or recording it.
    return ["dbclient", "-y", "-y", "-p", str(gw.port), "-i", str(key.dropbear),
            f"{domain}@127.0.0.1", command]


COMMAND_LINE = {"openssh": openssh_argv, "plink": plink_argv, "dbclient": dbclient_argv}
CLIENTS = [*COMMAND_LINE, "paramiko"]


def run(argv, timeout=30):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=timeout)


def _raw_stdin():
    tty.setraw(0)  # in the child: the client sees a raw terminal, as a customer's would


def spawn(gw, argv, label):
    child = pexpect.spawn(argv[0], argv[1:], timeout=15, dimensions=(24, 80),
                          preexec_fn=_raw_stdin, encoding=None)
    path = gw.dir / f"transcript-{len(gw.transcripts)}.log"
    child.logfile_read = open(path, "wb")
    gw.transcripts.append((label, path))
    gw.children.append(child)  # the gateway fixture closes it
    return child


# --- paramiko -------------------------------------------------------------------------------------

def paramiko_transport(gw, key, domain):
    transport = paramiko.Transport(("127.0.0.1", gw.port))
    transport.start_client(timeout=10)
    transport.auth_publickey(domain, key.paramiko)
    return transport


def paramiko_status(gw, key, domain="web1"):
    transport = paramiko_transport(gw, key, domain)
    try:
        channel = transport.open_session(timeout=10)
        channel.exec_command("status")
        out = channel.makefile("rb").read().decode()
        return channel.recv_exit_status(), out
    finally:
        transport.close()


class ChannelReader:
    """expect() for a paramiko channel: waits for a pattern with a deadline."""

    def __init__(self, channel):
        self.channel = channel
        self.seen = b""

    def expect(self, needle, timeout=15):
        deadline = time.monotonic() + timeout
        while needle not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{needle!r} not seen; got {self.seen[-500:]!r}"
            self.channel.settimeout(left)
            chunk = self.channel.recv(4096)
            assert chunk, f"channel closed before {needle!r}; got {self.seen[-500:]!r}"
            self.seen += chunk
        self.seen = self.seen[self.seen.index(needle) + len(needle):]


# --- every client, every key type ----------------------------------------------------------------

@pytest.mark.parametrize("key_type", list(KEY_TYPES))
@pytest.mark.parametrize("client", CLIENTS)
def test_status(cgw, client_keys, client, key_type):
    key = client_keys[key_type]
    if client == "paramiko":
        status, out = paramiko_status(cgw, key)
        assert status == 0, out
    else:
        result = run(COMMAND_LINE[client](cgw, key, "web1", "status"))
        assert result.returncode == 0, describe(result)
        out = result.stdout
    assert RUNNING.match(out.strip()), out
    assert out.startswith("web1: running"), out


@pytest.mark.parametrize("client", list(COMMAND_LINE))
def test_console_round_trip(cgw, client_keys, client):
    argv = COMMAND_LINE[client](cgw, client_keys["ed25519"], "web1", "console")
    child = spawn(cgw, argv, f"{client} console")
    send_until(child, b"\r", rb"login: ")
    child.send(b"root\r")
    child.expect(rb"web1:~# ")
    marker = f"hello-from-{client}".encode()
    child.send(b"echo " + marker + b"\r")
    child.expect(rb"\n" + marker + rb"\r?\n")
    child.expect(rb"web1:~# ")
    detach(child)


def test_console_round_trip_paramiko(cgw, client_keys):
    transport = paramiko_transport(cgw, client_keys["ed25519"], "web1")
    try:
        channel = transport.open_session(timeout=10)
        channel.exec_command("console")
        reader = ChannelReader(channel)
        reader.expect(b"Ctrl-] detaches")
        channel.sendall(b"\r")
        reader.expect(b"login: ")
        channel.sendall(b"root\r")
        reader.expect(b"web1:~# ")
        channel.sendall(b"echo hello-from-paramiko\r")
        reader.expect(b"\nhello-from-paramiko")
        channel.sendall(DETACH)
        assert channel.recv_exit_status() == 0
    finally:
        transport.close()


@pytest.mark.parametrize("wrong", ["stranger", "web2"])
@pytest.mark.parametrize("client", CLIENTS)
def test_wrong_key_is_refused(cgw, client_keys, client, wrong):
    key = client_keys[wrong]
    if client == "paramiko":
        with pytest.raises(paramiko.AuthenticationException):
            paramiko_status(cgw, key)
        return
    result = run(COMMAND_LINE[client](cgw, key, "web1", "status"))
    assert result.returncode != 0, describe(result)
    assert result.stdout == "", describe(result)
    # The same key does log in where it belongs (for web2's key): the refusal is the mapping.
    if wrong == "web2":
        own = run(COMMAND_LINE[client](cgw, key, "web2", "status"))
        assert own.returncode == 0, describe(own)


# --- ssh-agent with many keys --------------------------------------------------------------------

AGENT_KEYS = 20


@pytest.fixture(scope="module")
def agent_strangers(tmp_path_factory):
    directory = tmp_path_factory.mktemp("agent-keys")
    return [make_key(directory, f"stranger{i:02}", ["-t", "ed25519"])
            for i in range(AGENT_KEYS - 1)]


@pytest.fixture
def agent(tmp_path, keys, agent_strangers):
    """An ssh-agent holding 19 strangers' keys, then web1's, in that order; its socket path."""
    socket_path = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(socket_path.exists, 10, "the ssh-agent socket")
        env = dict(os.environ, SSH_AUTH_SOCK=str(socket_path))
        for key in [*agent_strangers, keys["web1"]]:
            subprocess.run(["ssh-add", "-q", str(key.path)], env=env, check=True, timeout=30,
                           capture_output=True, stdin=subprocess.DEVNULL)
        listed = subprocess.run(["ssh-add", "-l"], env=env, check=True, timeout=30,
                                capture_output=True, text=True).stdout.splitlines()
        assert len(listed) == AGENT_KEYS, listed
        assert keys["web1"].fingerprint in listed[-1], listed
        yield socket_path
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def agent_ssh(gw, socket_path, *options):
    # IdentityFile names a file that does not exist, so ~/.ssh/id_* is never offered.
    argv = ["ssh", "-F", "/dev/null", *options,
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", f"UserKnownHostsFile={gw.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", f"IdentityAgent={socket_path}", "-o", f"IdentityFile={gw.dir}/no-such-key",
            "-o", "ConnectTimeout=10", "-p", str(gw.port), "web1@127.0.0.1", "status"]
    return run(argv)


def auth_failures(gw):
    return [r for r in gw.audit_records() if r["event"] == "auth_failure"]


def test_agent_with_20_keys_logs_in(make_gateway, keys, agent):
    # OpenSSH offers the agent's keys in turn, unsigned; 19 refused offers stay within
    # max_key_offers (default 32) and do not count against max_auth_tries (6), which would
    # have cut the client off after the sixth, as OpenSSH's sshd does.
    gw = make_gateway()
    result = agent_ssh(gw, agent)
    assert result.returncode == 0, describe(result)
    assert result.stdout.startswith("web1: running"), describe(result)
    # One record for the refused offers, written when the login succeeded.
    failures = auth_failures(gw)
    assert [(r["stage"], r["offers"]) for r in failures] == [("key", str(AGENT_KEYS - 1))], failures


def test_agent_with_20_keys_is_cut_off_at_max_key_offers(make_gateway, agent):
    offers = 6
    gw = make_gateway(extra={"limits": {"max_key_offers": offers}})
    result = agent_ssh(gw, agent)
    assert result.returncode == 255, describe(result)
    assert result.stdout == "", describe(result)
    # One record for the connection's refused offers, written when the session ended.
    failures = wait_for(lambda: auth_failures(gw), 10, "the refused offers' auth_failure record")
    assert [(r["stage"], r["offers"]) for r in failures] == [("key", str(offers))], failures
    assert not [r for r in gw.audit_records() if r["event"] == "auth_success"]


def test_agent_with_identities_only_logs_in(make_gateway, keys, agent):
    # What customers with big agents should do: name the key; the agent still signs.
    gw = make_gateway()
    result = agent_ssh(gw, agent, "-o", "IdentitiesOnly=yes",
                       "-o", f"IdentityFile={keys['web1'].pub_path}")
    assert result.returncode == 0, describe(result)
    assert result.stdout.startswith("web1: running"), describe(result)
    assert auth_failures(gw) == []


def test_agent_offers_do_not_count_as_failed_logins(make_gateway, keys, agent):
    # max_auth_tries at its minimum: any refused offer counted as a failed login would end it.
    gw = make_gateway(extra={"limits": {"max_auth_tries": 1}})
    result = agent_ssh(gw, agent)
    assert result.returncode == 0, describe(result)
    assert result.stdout.startswith("web1: running"), describe(result)
