"""xcg-web itself, spoken to as a browser would with web_client.py: the page over TLS with its
headers, the HTTP refusals, a good token (hello, the console's replay, commands, keystrokes),
a bad one (close 1008), and the process's confinement."""

import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import XCG, default_domains, describe, ensure_user, proc_status, render_config, wait_for
from test_weblink import panel_token
from web_client import BINARY, CLOSE, TEXT, HandshakeError, WebClient, close_reason, log_in

NOT_VALID = "this link is not valid (any more)"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LOGIN_GRACE = 2


def web_gateway(make_gateway, tmp_path, socket_dir, web_extra=None, **extra):
    """A gateway with a TLS web listener (self-signed pair made at start) and a control socket;
    sessions confined as run_as in an empty chroot."""
    port = free_port()
    chroot = tmp_path / "empty"
    web = {"listen": [f"127.0.0.1:{port}"], "public_url": f"https://127.0.0.1:{port}",
           "tls_cert": str(tmp_path / "web.crt"), "tls_key": str(tmp_path / "web.key"), **(web_extra or {})}
    gw = make_gateway(extra={"web": web, "run_as": "xcg", "chroot_dir": str(chroot), **extra},
                      args=["--control-socket", str(socket_dir / "control.sock")])
    gw.control_socket = socket_dir / "control.sock"
    gw.web_port = port
    gw.host = f"127.0.0.1:{port}"
    gw.origin = f"https://127.0.0.1:{port}"
    gw.chroot = chroot
    return gw


@pytest.fixture
def socket_dir():
    directory = Path(tempfile.mkdtemp(prefix="xcg-web-"))  # a socket path must stay short
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def wgw(make_gateway, tmp_path, socket_dir):
    return web_gateway(make_gateway, tmp_path, socket_dir)


def token(gw, domain="web1", *flags):
    result = subprocess.run([XCG, "ctl", "--socket", str(gw.control_socket), "weblink", domain, *flags],
                            capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, describe(result)
    match = re.search(r"https://\S+/#(\S+)", result.stdout)
    assert match, describe(result)
    return match.group(1)


def client(gw):
    return WebClient("127.0.0.1", gw.web_port)


def raw_status(c, data):
    """Sends `data` as it is and gives the status of the response."""
    c.send_raw(data)
    deadline = time.monotonic() + 10
    while b"\r\n" not in c.buffer:
        c._fill(deadline)
    return int(c.buffer.split(b" ", 2)[1])


def output_until(c, needle, timeout=15):
    """Every frame until the console output so far holds `needle`."""
    seen = bytearray()

    def found(op, payload):
        if op == BINARY:
            seen.extend(payload)
        return needle in seen
    return c.read_until(found, timeout=timeout)


def texts_and_output(frames):
    texts = [p.decode() for op, p in frames if op == TEXT]
    output = b"".join(p for op, p in frames if op == BINARY)
    return texts, output


def test_the_page_over_tls_with_the_security_headers(wgw):
    with client(wgw) as c:
        status, headers, body = c.get("/", wgw.host)
        assert status == 200
        assert b"<html" in body.lower()
        assert headers["content-type"].startswith("text/html")
        csp = headers["content-security-policy"]
        assert f"connect-src wss://{wgw.host};" in csp
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert headers["strict-transport-security"] == "max-age=31536000"
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
        # Keep-alive: the same connection serves the next requests.
        assert c.get("/nothing-here", wgw.host)[0] == 404
        assert c.get("/?x=1", wgw.host)[0] == 404
        assert c.get("/", "evil.example")[0] == 421
        assert c.get("/", wgw.host)[0] == 200


def test_a_connection_serves_at_most_32_requests(wgw):
    with client(wgw) as c:
        for _ in range(31):
            status, headers, _ = c.get("/", wgw.host)
            assert status == 200 and headers.get("connection", "").lower() != "close"
        status, headers, _ = c.get("/", wgw.host)
        assert status == 200 and headers["connection"].lower() == "close"
        with pytest.raises((ConnectionError, OSError)):
            c.get("/", wgw.host)


def test_other_methods_bodies_and_big_headers_are_refused(wgw):
    with client(wgw) as c:
        assert raw_status(c, f"POST / HTTP/1.1\r\nHost: {wgw.host}\r\n\r\n".encode()) == 405
    with client(wgw) as c:
        assert raw_status(c, b"GARBAGE\r\n\r\n") == 400
    with client(wgw) as c:
        status, headers, _ = c.get("/", wgw.host, {"X-Big": "a" * 9000})
        assert status == 431
        assert "content-security-policy" in headers
    with client(wgw) as c:
        status, _, _ = c.get("/", wgw.host, {"Content-Length": "5"})
        assert status == 413


def test_the_upgrade_needs_our_origin_and_subprotocol(wgw):
    with client(wgw) as c, pytest.raises(HandshakeError) as refused:
        c.upgrade(wgw.host, "https://evil.example")
    assert refused.value.status == 403
    with client(wgw) as c, pytest.raises(HandshakeError) as refused:
        c.upgrade(wgw.host, wgw.origin, protocol="chat")
    assert refused.value.status == 400


def test_a_good_token_gets_hello_the_replay_and_answers(wgw):
    with log_in("127.0.0.1", wgw.web_port, wgw.host, wgw.origin, token(wgw)) as c:
        frames = output_until(c, b"Booting fake guest web1")  # the replay
        texts, _ = texts_and_output(frames)
        assert texts and texts[0].startswith("hello web1 w "), texts
        assert "reboot" in texts[0].split()
        c.send_text("status")
        frames = c.read_until(lambda op, p: op == TEXT and p.startswith(b"status "))
        assert b"web1" in frames[-1][1]
        c.send_text("bogus")
        frames = c.read_until(lambda op, p: op == TEXT and p.startswith(b"result "))
        assert b"unknown command" in frames[-1][1]
        c.send_binary(b"\r")  # keystrokes reach the guest: it answers with a new prompt
        output_until(c, b"login:")


def test_the_console_is_watched_again_after_each_detach(wgw):
    """xcg-web keeps the console socket in its epoll set between steps; each attach from the
    menu brings a new socket (often under the old one's number) that must be watched too."""
    with log_in("127.0.0.1", wgw.web_port, wgw.host, wgw.origin, token(wgw)) as c:
        output_until(c, b"Booting fake guest web1")
        for word in (b"first", b"second", b"third"):
            c.send_binary(b"\x1d")  # Ctrl-]: back to the menu
            output_until(c, b"Choice: ")
            c.send_binary(b"1")
            output_until(c, b"[console of web1")
            c.send_binary(word)  # the guest echoes what it is sent
            output_until(c, word)


def test_a_readonly_token_says_r_and_refuses_actions(wgw):
    with log_in("127.0.0.1", wgw.web_port, wgw.host, wgw.origin, token(wgw, "web1", "--readonly")) as c:
        frames = c.read_until(lambda op, p: op == TEXT and p.startswith(b"hello "))
        assert frames[-1][1] == b"hello web1 r"
        output_until(c, b"Booting fake guest web1")  # in the console, as a read-write link
        c.send_text("action reboot")
        frames = c.read_until(lambda op, p: op == TEXT and p.startswith(b"result "))
        assert frames[-1][1] == b"result this session is read-only"


def test_a_bad_token_is_closed_with_1008(wgw):
    with log_in("127.0.0.1", wgw.web_port, wgw.host, wgw.origin, "x" * 43) as c:
        frames = c.read_until(lambda op, p: op == CLOSE)
        assert close_reason(frames[-1][1]) == (1008, NOT_VALID)


def test_a_used_token_is_closed_with_1008(wgw):
    link = token(wgw)
    with log_in("127.0.0.1", wgw.web_port, wgw.host, wgw.origin, link) as c:
        c.read_until(lambda op, p: op == TEXT and p.startswith(b"hello "))
    with log_in("127.0.0.1", wgw.web_port, wgw.host, wgw.origin, link) as c:
        frames = c.read_until(lambda op, p: op == CLOSE)
        assert close_reason(frames[-1][1]) == (1008, NOT_VALID)


def test_every_bad_token_gets_the_same_answer_and_none_is_logged(make_gateway, tmp_path, socket_dir):
    secret = secrets.token_bytes(32)
    secret_file = tmp_path / "panel.secret"
    secret_file.write_bytes(secret)
    secret_file.chmod(0o600)
    gw = web_gateway(make_gateway, tmp_path, socket_dir, {"panel_secret_file": str(secret_file)})
    used = panel_token(secret, "web1", readonly=False)
    with log_in("127.0.0.1", gw.web_port, gw.host, gw.origin, used) as c:
        c.read_until(lambda op, p: op == TEXT and p.startswith(b"hello "))
    fields = panel_token(secret, "web2", readonly=False).split("~")
    bad = {
        "reused": used,
        "expired": panel_token(secret, "web1", readonly=False, ttl=-1),
        "forged": panel_token(b"y" * 32, "web1", readonly=False),
        "another domain's, renamed": "~".join([fields[0], "web1", *fields[2:]]),
        "truncated": panel_token(secret, "web1", readonly=False)[:-5],
        "a link never minted": "A" * 43,
        "a link, truncated": token(gw)[:20],
    }
    for what, value in bad.items():
        with log_in("127.0.0.1", gw.web_port, gw.host, gw.origin, value) as c:
            frames = c.read_until(lambda op, p: op == CLOSE)
            assert close_reason(frames[-1][1]) == (1008, NOT_VALID), what
    wait_for(lambda: not gw.processes("xcg-web"), 10, "the refused sessions to end")
    logs = b"".join(p.read_bytes() for p in gw.dir.rglob("*") if p.is_file() and p.suffix != ".secret")
    for what, value in bad.items():
        assert value.encode() not in logs, f"the {what} token is in a file under {gw.dir}"
        assert value.split("~")[-1].encode() not in logs, f"the {what} token's MAC is logged"


def test_xcg_web_runs_confined(wgw):
    user = ensure_user()
    with log_in("127.0.0.1", wgw.web_port, wgw.host, wgw.origin, token(wgw)) as c:
        c.read_until(lambda op, p: op == TEXT and p.startswith(b"hello "))
        pids = wait_for(lambda: wgw.processes("xcg-web"), 10, "an xcg-web child")
        assert len(pids) == 1, pids
        status = proc_status(pids[0])
        assert status["Seccomp"] == "2", status["Seccomp"]
        assert status["NoNewPrivs"] == "1"
        assert status["Uid"].split() == [str(user.pw_uid)] * 4, status["Uid"]
        assert os.readlink(f"/proc/{pids[0]}/root") == str(wgw.chroot)
        # Still serving after the filter: a command round trip.
        c.send_text("who")
        c.read_until(lambda op, p: op == TEXT and p.startswith(b"who"))


def test_no_token_within_the_login_grace_ends_the_connection(make_gateway, tmp_path, socket_dir):
    gw = web_gateway(make_gateway, tmp_path, socket_dir, limits={"login_grace": f"{LOGIN_GRACE}s"})
    with client(gw) as c:
        c.upgrade(gw.host, gw.origin)
        start = time.monotonic()
        with pytest.raises(ConnectionError):
            c.read_frame(timeout=LOGIN_GRACE + 8)
        assert time.monotonic() - start < LOGIN_GRACE + 5


def test_a_plain_listener_behind_a_proxy_serves_without_tls_and_hsts(make_gateway, tmp_path, socket_dir):
    port = free_port()
    web = {"listen": [f"http://127.0.0.1:{port}"], "public_url": "https://console.test",
           "trusted_proxies": ["127.0.0.1/32"]}
    gw = make_gateway(extra={"web": web}, args=["--control-socket", str(socket_dir / "control.sock")])
    gw.control_socket = socket_dir / "control.sock"
    with WebClient("127.0.0.1", port, tls=False) as c:
        status, headers, _ = c.get("/", "console.test")
        assert status == 200
        assert "strict-transport-security" not in headers
        assert "connect-src wss://console.test;" in headers["content-security-policy"]
    with log_in("127.0.0.1", port, "console.test", "https://console.test", token(gw), tls=False) as c:
        frames = c.read_until(lambda op, p: op == TEXT and p.startswith(b"hello "))
        assert frames[-1][1].startswith(b"hello web1 w")


def unix_web(tmp_path, path):
    return {"listen": [f"unix:{path}"], "public_url": "https://console.test"}


def test_a_unix_listener_serves_a_proxy_and_takes_its_forwarded_for(make_gateway, tmp_path, socket_dir):
    directory = tmp_path / "run"
    directory.mkdir(mode=0o750)
    os.chown(directory, -1, 65534)  # the proxy's group, given by the directory
    path = directory / "web.sock"
    gw = make_gateway(extra={"web": unix_web(tmp_path, path)},
                      args=["--control-socket", str(socket_dir / "control.sock")])
    gw.control_socket = socket_dir / "control.sock"
    st = path.stat()
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == 65534
    with WebClient(str(path), None, tls=False) as c:
        status, headers, _ = c.get("/", "console.test")
        assert status == 200 and "strict-transport-security" not in headers
    c = WebClient(str(path), None, tls=False)
    with c:
        c.upgrade("console.test", "https://console.test", extra={"X-Forwarded-For": "203.0.113.9"})
        c.send_text(token(gw))
        frames = c.read_until(lambda op, p: op == TEXT and p.startswith(b"hello "))
        assert frames[-1][1].startswith(b"hello web1 w")
    [login] = [r for r in gw.audit_records() if r.get("via") == "web" and r["event"] == "auth_success"]
    assert login["remote"] == f"203.0.113.9 (via unix:{path})", login


def test_a_unix_listener_replaces_a_stale_socket_and_refuses_a_file(make_gateway, tmp_path, keys):
    stale = tmp_path / "stale.sock"
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(str(stale))
    left.close()  # the file stays and nobody listens: what a killed broker leaves
    make_gateway(extra={"web": unix_web(tmp_path, stale)})
    with WebClient(str(stale), None, tls=False) as c:
        assert c.get("/", "console.test")[0] == 200
    occupied = tmp_path / "file"
    occupied.write_text("an operator's file\n")
    config = tmp_path / "occupied.yaml"
    config.write_text(render_config(tmp_path, default_domains(keys), {"autostart": False},
                                    {"web": unix_web(tmp_path, occupied)}))
    result = subprocess.run([XCG, "serve", "--config", str(config)], capture_output=True, text=True,
                            timeout=20, stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and f"not a socket: unix:{occupied}" in result.stderr, describe(result)
    assert occupied.read_text() == "an operator's file\n"
