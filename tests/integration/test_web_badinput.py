"""Hostile browsers against one long-running `xcg serve` with a browser console listener,
while a customer stays attached to web1's console over SSH.

Each case does one bad thing on a connection of its own to the web port, before any token
(what anyone on the network can do), and checks what the gateway answered. After every case
this file checks what must survive: the broker is the same process, the attached viewer still
round-trips through the guest, and the case's xcg-web process is gone. The HTTP refusals a
client can get politely (404, 405, 413, 421, 431, a wrong Origin) are in test_web_session.py."""

import os
import socket
import ssl
import struct
import time

import pytest

from conftest import Gateway, ensure_user, send_until, wait_for
from test_web_session import free_port
from web_client import BINARY, CLOSE, PING, TEXT, WebClient, close_reason, frame

LOGIN_GRACE = 4


@pytest.fixture(scope="module")
def target(tmp_path_factory, keys):
    if os.geteuid() == 0:
        ensure_user()
    directory = tmp_path_factory.mktemp("webbad")
    port = free_port()
    web = {"listen": [f"127.0.0.1:{port}"], "public_url": f"https://127.0.0.1:{port}",
           "tls_cert": str(directory / "web.crt"), "tls_key": str(directory / "web.key")}
    gw = Gateway(directory, keys, extra={"limits": {"login_grace": f"{LOGIN_GRACE}s"}, "web": web})
    gw.start()
    gw.web_port = port
    try:
        viewer = gw.spawn("web1", "web1", "console", timeout=30)
        send_until(viewer, b"\r", rb"login: ")
        viewer.send(b"root\r")
        viewer.expect(rb"web1:~# ")
        gw.viewer = viewer
        gw.rounds = 0
        yield gw
    finally:
        alive = gw.alive()
        gw.stop()
    assert alive, f"xcg serve died during the bad-input tests:\n{gw.read_log()}"


def upgraded(gw):
    client = WebClient("127.0.0.1", gw.web_port)
    client.upgrade(f"127.0.0.1:{gw.web_port}", f"https://127.0.0.1:{gw.web_port}")
    return client


def close_code_after(gw, data):
    """Sends `data` on a fresh WebSocket and gives the code of the server's close frame."""
    with upgraded(gw) as client:
        try:
            client.send_raw(data)
        except (ssl.SSLError, ConnectionError):
            pass
        while True:
            opcode, payload, _ = client.read_frame(timeout=15)
            if opcode == CLOSE:
                return close_reason(payload)[0]


def declared_length(n):
    """A masked binary frame's header that announces `n` bytes, without them."""
    return bytes([0x80 | BINARY, 0x80 | 127]) + struct.pack(">Q", n) + os.urandom(4)


def too_big_in_fragments():
    chunk = b"x" * 40_000
    first = frame(BINARY, chunk, fin=False)
    return first + b"".join(frame(0x0, chunk, fin=False) for _ in range(2))


FRAME_CASES = {
    "an unmasked frame": (frame(TEXT, b"token", mask=False), 1002),
    "a frame declaring 2^40 bytes": (declared_length(1 << 40), 1009),
    "a message over 64 KiB in fragments": (too_big_in_fragments(), 1009),
    "a ping over 125 bytes": (frame(PING, b"p" * 126), 1002),
    "a fragmented ping": (frame(PING, b"p", fin=False), 1002),
    "invalid UTF-8 in a text frame": (frame(TEXT, b"\xc3\x28\xff"), 1007),
    "a reserved opcode": (frame(0x3, b"x"), 1002),
    "a reserved bit": (frame(TEXT, b"x", rsv=4), 1002),
    "a continuation with nothing to continue": (frame(0x0, b"x"), 1002),
}


def raw_tls(gw):
    context = ssl._create_unverified_context()
    raw = socket.create_connection(("127.0.0.1", gw.web_port), timeout=15)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def read_to_end(sock):
    """What the server sends until it closes the connection."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ssl.SSLError, ConnectionResetError):
        pass
    return data


def slowloris(gw):
    """Sends a request one byte at a time; returns how long the server kept reading."""
    start = time.monotonic()
    sock = raw_tls(gw)
    sock.settimeout(0.5)
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 10_000
    for byte in request:
        if time.monotonic() - start > LOGIN_GRACE + 6:
            break  # kept reading far too long: the caller's assertion says so
        try:
            sock.sendall(bytes([byte]))
            if sock.recv(1) == b"":
                break
        except socket.timeout:
            continue
        except (ssl.SSLError, ConnectionError):
            break
    return time.monotonic() - start


def test_a_slow_request_is_cut_off_at_the_login_grace(target):
    took = slowloris(target)
    assert took < LOGIN_GRACE + 5, f"a byte-at-a-time request was read for {took:.1f} s"
    survives(target, "slowloris")


def test_a_huge_request_line_is_refused(target):
    sock = raw_tls(target)
    # More than the socket buffers hold: the answer comes while the client is still sending.
    sock.sendall(b"GET /" + b"a" * 4_000_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = read_to_end(sock)
    assert answer.split(b" ", 2)[1] in (b"400", b"414", b"431"), answer[:200]
    survives(target, "a huge request line")


def test_a_tls_handshake_of_garbage_gets_no_http(target):
    raw = socket.create_connection(("127.0.0.1", target.web_port), timeout=15)
    raw.sendall(b"\x16\x03\x01\x00\x05" + os.urandom(2000))
    assert b"HTTP" not in read_to_end(raw)
    survives(target, "a TLS handshake of garbage")


def test_plain_http_on_the_tls_port_gets_no_page(target):
    raw = socket.create_connection(("127.0.0.1", target.web_port), timeout=15)
    raw.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = read_to_end(raw)
    assert b"HTTP/1.1 200" not in answer and b"<html" not in answer.lower(), answer[:200]
    survives(target, "plain HTTP on the TLS port")


@pytest.mark.parametrize("case", list(FRAME_CASES))
def test_a_malformed_frame_ends_only_its_connection(target, case):
    data, code = FRAME_CASES[case]
    assert close_code_after(target, data) == code
    survives(target, case)


def survives(gw, case):
    assert gw.alive(), f"{case}: xcg serve died:\n{gw.read_log()}"
    gw.rounds += 1
    marker = f"still-here-{gw.rounds}".encode()
    gw.viewer.send(b"echo " + marker + b"\r")
    gw.viewer.expect(rb"\n" + marker + rb"\r?\n", timeout=30)
    wait_for(lambda: not gw.processes("xcg-web"), LOGIN_GRACE + 10, f"the xcg-web of '{case}' to end")
