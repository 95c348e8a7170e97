"""Protocol hygiene: the server's banner and KEXINIT (read off the wire and compared with
docs/compatibility.md), legacy algorithms refused one by one, every offered one usable, no
SHA-1 signatures, no compression, strict key exchange."""

import json
import os
import re
import socket
import struct
import subprocess
from pathlib import Path

import paramiko
import pytest

from conftest import Gateway, default_domains, describe, ensure_user, make_key, wait_for

DOC = Path(__file__).resolve().parents[2] / "docs" / "compatibility.md"
KEXINIT_FIELDS = ["kex", "host_key", "cipher_c2s", "cipher_s2c", "mac_c2s", "mac_s2c",
                  "compression_c2s", "compression_s2c", "language_c2s", "language_s2c"]
NO_MATCH = "no match for method"


# --- reading the server's side of the handshake ----------------------------------------------

def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"server closed after {len(data)} of {n} bytes"
        data += chunk
    return data


def server_hello(port):
    """The server's version line (bytes, with its line end) and its KEXINIT as a dict of
    name-lists, read over a raw socket: the KEXINIT is the one packet sent in the clear."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"SSH-2.0-kexinit_probe\r\n")
        line = b""
        while not line.endswith(b"\n"):
            line += recv_exact(sock, 1)
            assert len(line) < 256, line
        length, padding = struct.unpack(">IB", recv_exact(sock, 5))
        assert 12 <= length <= 35000, length
        payload = recv_exact(sock, length - 1)[: length - 1 - padding]
    assert payload[0] == 20, f"first packet is message {payload[0]}, not KEXINIT"
    offset = 1 + 16  # type, cookie
    lists = {}
    for field in KEXINIT_FIELDS:
        (size,) = struct.unpack(">I", payload[offset:offset + 4])
        lists[field] = payload[offset + 4:offset + 4 + size].decode("ascii")
        offset += 4 + size
    first_kex_follows, reserved = payload[offset], payload[offset + 1:offset + 5]
    assert offset + 5 == len(payload), "trailing bytes after the KEXINIT fields"
    return line, lists, first_kex_follows, reserved


def documented():
    """The name-lists of docs/compatibility.md's ```kexinit block."""
    text = DOC.read_text()
    match = re.search(r"^```kexinit\n(.*?)^```", text, re.M | re.S)
    assert match, f"no ```kexinit block in {DOC}"
    return dict(line.split(": ", 1) for line in match.group(1).splitlines() if line.strip())


# --- an OpenSSH client with chosen options ------------------------------------------------------

def ssh(gw, key, *options, verbose="-v", command="status"):
    """OpenSSH with `options` first (first value wins), logging at `verbose` to stderr."""
    argv = ["ssh", "-F", "/dev/null", *options,
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", f"UserKnownHostsFile={gw.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "ConnectTimeout=10",
            "-p", str(gw.port), "-i", str(key.path), verbose, "web1@127.0.0.1", command]
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=30)


def assert_status(result):
    assert result.returncode == 0, describe(result)
    assert result.stdout.startswith("web1: running"), describe(result)


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory):
    return make_key(tmp_path_factory.mktemp("rsa"), "rsa3072", ["-t", "rsa", "-b", "3072"])


@pytest.fixture
def rsa_gw(make_gateway, keys, rsa_key):
    """The default gateway, with an RSA-3072 key added to web1."""
    domains = default_domains(keys)
    domains["web1"]["keys"] = domains["web1"]["keys"] + [rsa_key.public_line]
    return make_gateway(domains=domains)


# --- banner and KEXINIT --------------------------------------------------------------------------

def test_banner_is_exactly_ssh_2_0_xcg(gw):
    banner, _, _, _ = server_hello(gw.port)
    assert banner == b"SSH-2.0-xcg\r\n"


def test_kexinit_matches_this_document(gw):
    doc = documented()
    _, offered, first_kex_follows, reserved = server_hello(gw.port)
    assert offered["kex"] == doc["kex"]
    assert offered["host_key"] == doc["host_key_ed25519_only"]
    for direction in ("c2s", "s2c"):
        assert offered[f"cipher_{direction}"] == doc["cipher"]
        assert offered[f"mac_{direction}"] == doc["mac"]
        assert offered[f"compression_{direction}"] == doc["compression"]
        assert offered[f"language_{direction}"] == ""
    assert first_kex_follows == 0
    assert reserved == b"\0\0\0\0"


def test_host_key_algorithms_follow_the_host_keys(tmp_path, keys):
    if os.geteuid() == 0:
        ensure_user()
    directory = tmp_path / "hostkeys"
    directory.mkdir()
    gw = Gateway(directory, keys)
    paths = []
    for name, args in [("ed25519", ["-t", "ed25519"]), ("ecdsa", ["-t", "ecdsa", "-b", "256"]),
                       ("rsa", ["-t", "rsa", "-b", "3072"])]:
        paths.append(str(make_key(directory, f"host_{name}", args).path))
    configured = f"host_keys: [{json.dumps(str(gw.host_key_path))}]"
    text = gw.config_path.read_text()
    assert configured in text
    gw.config_path.write_text(text.replace(configured, f"host_keys: {json.dumps(paths)}"))
    gw.start()
    try:
        _, offered, _, _ = server_hello(gw.port)
        assert offered["host_key"] == documented()["host_key_ed25519_ecdsa_rsa"]
        for algorithm in offered["host_key"].split(","):
            assert_status(ssh(gw, keys["web1"], "-o", f"HostKeyAlgorithms={algorithm}"))
        refused = ssh(gw, keys["web1"], "-o", "HostKeyAlgorithms=ssh-rsa")
        assert refused.returncode == 255, describe(refused)
        assert "no matching host key type" in refused.stderr, describe(refused)
    finally:
        status = gw.stop()
    assert status == 0, gw.read_log()


def test_server_sig_algs_match_this_document(gw):
    result = ssh(gw, gw.keys["web1"])
    assert_status(result)
    match = re.search(r"server-sig-algs=<([^>]*)>", result.stderr)
    assert match, describe(result)
    assert match.group(1) == documented()["user_key"]


# --- algorithms one by one ------------------------------------------------------------------------

def offered_one_by_one():
    doc = documented()
    cases = [("KexAlgorithms", name) for name in doc["kex"].split(",") if "kex-strict" not in name]
    cases += [("Ciphers", name) for name in doc["cipher"].split(",")]
    cases += [("MACs", name) for name in doc["mac"].split(",")]
    return cases


@pytest.mark.parametrize("option,name", offered_one_by_one())
def test_each_offered_algorithm_works(gw, option, name):
    # A MAC is only negotiated with a cipher that is not an AEAD.
    extra = ["-o", "Ciphers=aes128-ctr"] if option == "MACs" else []
    result = ssh(gw, gw.keys["web1"], "-o", f"{option}={name}", *extra, verbose="-vv")
    assert_status(result)
    negotiated = {"KexAlgorithms": rf"kex: algorithm: {re.escape(name)}\n",
                  "Ciphers": rf"kex: client->server cipher: {re.escape(name)} ",
                  "MACs": rf"kex: client->server cipher: aes128-ctr MAC: {re.escape(name)} "}[option]
    assert re.search(negotiated, result.stderr), describe(result)


LEGACY = [
    ("KexAlgorithms", "diffie-hellman-group1-sha1"),
    ("KexAlgorithms", "diffie-hellman-group14-sha1"),
    ("KexAlgorithms", "diffie-hellman-group14-sha256"),
    ("KexAlgorithms", "diffie-hellman-group16-sha512"),
    ("KexAlgorithms", "diffie-hellman-group-exchange-sha1"),
    ("KexAlgorithms", "diffie-hellman-group-exchange-sha256"),
    ("KexAlgorithms", "sntrup761x25519-sha512@openssh.com"),
    ("Ciphers", "aes128-cbc"),
    ("Ciphers", "aes256-cbc"),
    ("Ciphers", "3des-cbc"),
    ("MACs", "hmac-sha1"),
    ("MACs", "hmac-sha2-256"),
    ("MACs", "hmac-sha2-512"),
    ("MACs", "hmac-md5"),
    ("MACs", "umac-64-etm@openssh.com"),
    ("MACs", "umac-128-etm@openssh.com"),
    ("MACs", "hmac-sha1-etm@openssh.com"),
    ("HostKeyAlgorithms", "ssh-rsa"),
    ("HostKeyAlgorithms", "ssh-dss"),
]


@pytest.mark.parametrize("option,name", LEGACY)
def test_legacy_algorithm_is_refused(gw, option, name):
    extra = ["-o", "Ciphers=aes128-ctr"] if option == "MACs" else []
    log_before = len(gw.read_log())
    result = ssh(gw, gw.keys["web1"], "-o", f"{option}={name}", *extra)
    assert result.returncode == 255, describe(result)
    assert "Unable to negotiate" in result.stderr, describe(result)
    assert result.stdout == "", describe(result)
    # And it is the server that said no (the broker logs each session's reason).
    wait_for(lambda: NO_MATCH in gw.read_log()[log_before:], 10, f"'{NO_MATCH}' in the server log")



def kexinit_packet(kex):
    """A client KEXINIT offering `kex` and otherwise what xcg offers, unencrypted, padded."""
    doc = documented()
    lists = [kex, doc["host_key_ed25519_only"], doc["cipher"], doc["cipher"], doc["mac"], doc["mac"],
             "none", "none", "", ""]
    payload = bytes([20]) + os.urandom(16)
    payload += b"".join(struct.pack(">I", len(x)) + x.encode() for x in lists) + b"\0" + b"\0" * 4
    padding = 8 - (5 + len(payload)) % 8 + 8
    return struct.pack(">IB", 1 + len(payload) + padding, padding) + payload + b"\0" * padding


def test_refusal_when_version_and_kexinit_come_in_one_read(gw):
    # A client that answers the server's version line with its own and its KEXINIT in one
    # write: the session reads both at once, and must still send its KEXINIT, so that the
    # client can tell what did not match, and log the real reason.
    log_before = len(gw.read_log())
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        line = b""
        while not line.endswith(b"\n"):
            line += recv_exact(sock, 1)
        sock.sendall(b"SSH-2.0-one_write_probe\r\n" + kexinit_packet("diffie-hellman-group1-sha1"))
        length, _ = struct.unpack(">IB", recv_exact(sock, 5))
        assert recv_exact(sock, length - 1)[0] == 20, "the server's first packet is not its KEXINIT"
    wait_for(lambda: NO_MATCH in gw.read_log()[log_before:], 10, f"'{NO_MATCH}' in the server log")


# --- user signatures ------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["rsa-sha2-512", "rsa-sha2-256"])
def test_rsa_sha2_signatures_log_in(rsa_gw, rsa_key, algorithm):
    result = ssh(rsa_gw, rsa_key, "-o", f"PubkeyAcceptedAlgorithms={algorithm}")
    assert_status(result)
    assert re.search(r"Server accepts key: .* RSA SHA256:", result.stderr), describe(result)


def test_sha1_rsa_signature_is_refused_openssh(rsa_gw, rsa_key):
    result = ssh(rsa_gw, rsa_key, "-o", "PubkeyAcceptedAlgorithms=ssh-rsa")
    assert result.returncode == 255, describe(result)
    assert "Permission denied (publickey)" in result.stderr, describe(result)
    assert result.stdout == "", describe(result)


def paramiko_login(gw, key, algorithm, monkeypatch):
    """Signs the login with `algorithm`, whatever the server announced in server-sig-algs."""
    handler = paramiko.auth_handler.AuthHandler
    if not hasattr(handler, "_finalize_pubkey_algorithm"):
        pytest.skip("this paramiko does not choose RSA signature algorithms")
    monkeypatch.setattr(handler, "_finalize_pubkey_algorithm", lambda self, key_type: algorithm)
    transport = paramiko.Transport(("127.0.0.1", gw.port))
    try:
        transport.start_client(timeout=10)
        transport.auth_publickey("web1", paramiko.RSAKey.from_private_key_file(str(key.path)))
        channel = transport.open_session(timeout=10)
        channel.exec_command("status")
        return channel.makefile("rb").read().decode(), channel.recv_exit_status()
    finally:
        transport.close()


def test_sha1_rsa_signature_is_refused_paramiko(rsa_gw, rsa_key, monkeypatch):
    # A signed request (not just a query): the signature itself is SHA-1.
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_login(rsa_gw, rsa_key, "ssh-rsa", monkeypatch)
    assert rsa_gw.alive()


def test_forced_sha2_signature_logs_in_paramiko(rsa_gw, rsa_key, monkeypatch):
    # The control for the test above: the same forcing, with a SHA-2 signature.
    out, status = paramiko_login(rsa_gw, rsa_key, "rsa-sha2-256", monkeypatch)
    assert status == 0
    assert out.startswith("web1: running"), out


# --- compression ---------------------------------------------------------------------------------

def test_ssh_C_negotiates_no_compression(gw):
    result = ssh(gw, gw.keys["web1"], "-C", verbose="-vv")
    assert_status(result)
    assert re.search(r"compression ctos: zlib", result.stderr), "the client did ask for zlib"
    for direction in ("server->client", "client->server"):
        assert re.search(rf"kex: {direction} cipher: .* compression: none\n", result.stderr), \
            describe(result)


def test_zlib_only_client_is_refused(gw):
    transport = paramiko.Transport(("127.0.0.1", gw.port))
    try:
        transport.get_security_options().compression = ("zlib@openssh.com", "zlib")
        with pytest.raises(paramiko.SSHException):
            transport.start_client(timeout=10)
    finally:
        transport.close()
    assert gw.alive()


def test_paramiko_asking_for_compression_gets_none(gw):
    transport = paramiko.Transport(("127.0.0.1", gw.port))
    try:
        transport.use_compression(True)
        transport.start_client(timeout=10)
        assert (transport.local_compression, transport.remote_compression) == ("none", "none")
    finally:
        transport.close()


# --- strict key exchange -------------------------------------------------------------------------

def test_strict_kex_is_offered(gw):
    _, offered, _, _ = server_hello(gw.port)
    assert "kex-strict-s-v00@openssh.com" in offered["kex"].split(",")


@pytest.mark.parametrize("cipher", [["-o", "Ciphers=chacha20-poly1305@openssh.com"],
                                    ["-o", "Ciphers=aes128-ctr",
                                     "-o", "MACs=hmac-sha2-256-etm@openssh.com"]],
                         ids=["chacha20-poly1305", "aes128-ctr+etm"])
def test_strict_kex_resets_sequence_numbers(gw, cipher):
    # Both ciphers authenticate each packet with its sequence number. In strict mode OpenSSH
    # restarts the count at NEWKEYS; a server that did not would fail the first packet's MAC.
    result = ssh(gw, gw.keys["web1"], *cipher, verbose="-vvv")
    assert "will use strict KEX ordering" in result.stderr, describe(result)
    assert_status(result)
