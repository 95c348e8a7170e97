"""Browser console links from the broker's side: `ssh web1@gw weblink`, the menu's item and
`xcg ctl weblink`, with and without `web:`; the token login as xcg-web makes it, played by
fake_session.py on the web listener; and, with the real xcg-web, a browser closed when the key
that minted its link is revoked."""

import base64
import hashlib
import hmac
import json
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import XCG, describe, exit_menu, pid_alive, wait_for
from test_hostile_ipc import assert_cut_off, run_scenario
from web_client import CLOSE, TEXT, close_reason, log_in

FAKE = Path(__file__).resolve().with_name("fake_session.py")
PUBLIC_URL = "https://console.test"
LINK = re.compile(r"^https://console\.test/#([A-Za-z0-9_-]{43})$")
NOT_CONFIGURED = "the browser console is not configured on this gateway"
WEB_LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+) \(browser console, TLS\)")
PLAIN_LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+) \(browser console, plain HTTP")
CHOICE = rb"Choice: "


@pytest.fixture
def socket_dir():
    directory = Path(tempfile.mkdtemp(prefix="xcg-web-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def make_tls_pair(directory):
    cert, key = directory / "web.crt", directory / "web.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=console.test", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=30)
    key.chmod(0o600)
    return cert, key


def web_settings(directory, link_ttl="45s"):
    cert, key = make_tls_pair(directory)
    return {"listen": ["127.0.0.1:0"], "tls_cert": str(cert), "tls_key": str(key),
            "public_url": PUBLIC_URL, "link_ttl": link_ttl}


def start(make_gateway, socket_dir, web=None):
    args = ["--control-socket", str(socket_dir / "control.sock"),
            "--session-program", str(FAKE), "--web-program", str(FAKE)]
    gw = make_gateway(extra={"web": web} if web else None, args=args)
    gw.control_socket = socket_dir / "control.sock"
    if web:
        log = gw.log_path.read_bytes()
        gw.web_port = int(WEB_LISTENING.search(log).group(1))
        plain = PLAIN_LISTENING.search(log)
        gw.plain_port = int(plain.group(1)) if plain else None
    return gw


@pytest.fixture
def plain_gw(make_gateway, socket_dir):
    return start(make_gateway, socket_dir)


@pytest.fixture
def web_gw(make_gateway, socket_dir, tmp_path):
    return start(make_gateway, socket_dir, web_settings(tmp_path))


def ctl(gw, *words):
    return subprocess.run([XCG, "ctl", "--socket", str(gw.control_socket), *words],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


def token_of(text):
    match = LINK.match(text.splitlines()[0])
    assert match, text
    return match.group(1)


def web_run(gw, line, timeout=10, plain=False):
    """The fake xcg-web's report for one scenario on the TLS listener, or the plain one (spoken
    in clear either way: the fake is not TLS; the broker never looks at the bytes)."""
    port, gw.port = gw.port, gw.plain_port if plain else gw.web_port
    try:
        return run_scenario(gw, line, timeout=timeout)
    finally:
        gw.port = port


def menu_weblink(gw):
    child = gw.spawn("web1", "web1", tty=True)
    child.expect(CHOICE)
    child.send(b"8")
    child.expect(CHOICE)
    shown = child.before.decode(errors="replace")
    exit_menu(child)
    return shown


# --- without web: ---------------------------------------------------------------------------

def test_exec_weblink_without_web_says_so(plain_gw):
    result = plain_gw.ssh("web1", "web1", "weblink")
    assert result.returncode == 1, describe(result)
    assert result.stderr.strip() == f"xcg: {NOT_CONFIGURED}", describe(result)


def test_menu_weblink_without_web_says_so(plain_gw):
    assert NOT_CONFIGURED in menu_weblink(plain_gw)


def test_ctl_weblink_without_web_fails(plain_gw):
    result = ctl(plain_gw, "weblink", "web1")
    assert result.returncode != 0, describe(result)
    assert NOT_CONFIGURED in result.stdout + result.stderr, describe(result)


# --- with web: -----------------------------------------------------------------------------

def test_exec_weblink_prints_a_link_and_its_lifetime(web_gw):
    result = web_gw.ssh("web1", "web1", "weblink")
    assert result.returncode == 0, describe(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 2, describe(result)
    token_of(lines[0])
    assert lines[1] == "valid once, for 45 s", describe(result)
    second = token_of(web_gw.ssh("web1", "web1", "weblink").stdout)
    assert second != token_of(lines[0])


def test_menu_weblink_prints_a_link(web_gw):
    shown = menu_weblink(web_gw)
    assert re.search(r"https://console\.test/#[A-Za-z0-9_-]{43}\r\nvalid once, for 45 s", shown), shown


def test_ctl_weblink_prints_a_link(web_gw):
    result = ctl(web_gw, "weblink", "web1", "--readonly", "--ttl", "120")
    assert result.returncode == 0, describe(result)
    token_of(result.stdout)
    assert "valid once, for 120 s" in result.stdout, describe(result)


@pytest.mark.parametrize("words, error", [
    (("weblink", "nosuch"), "no domain 'nosuch'"),
    (("weblink", "web1", "--ttl", "601"), "1 to 600 seconds"),
    (("weblink", "web1", "--ttl", "0"), "1 to 600 seconds"),
    (("weblink", "web1", "--bogus"), "unexpected '--bogus'"),
    (("weblink",), "usage"),
])
def test_ctl_weblink_refuses_clearly(web_gw, words, error):
    result = ctl(web_gw, *words)
    assert result.returncode != 0, describe(result)
    assert error in result.stdout + result.stderr, describe(result)
    assert "#" not in result.stdout, describe(result)


def answers_of(run):
    return run.answers(run.index("hello pid") + 1)


def test_a_link_logs_in_once_and_the_login_is_audited(web_gw):
    token = token_of(ctl(web_gw, "weblink", "web1").stdout)
    first = web_run(web_gw, f"web_login {token}")
    [answer] = answers_of(first)
    assert answer["type"] == "authorize_ans" and answer["ok"], first
    assert answer["domain"] == "web1" and answer["console_on_login"], first
    assert answer["fingerprint"] == "web link" and not answer["readonly"], first
    second = web_run(web_gw, f"web_login {token}")
    [refused] = answers_of(second)
    assert refused["type"] == "authorize_ans" and not refused["ok"], second
    assert refused["domain"] == "", second

    def records():
        return [r for r in web_gw.audit_records() if r.get("via") == "web"]
    logins = wait_for(lambda: [r for r in records() if r["event"] == "auth_success"] or None, 5,
                      "the web login's audit record")
    assert logins[0]["domain"] == "web1" and logins[0]["token"] == "link", logins
    assert logins[0]["user_agent"].startswith("Mozilla/5.0 (X11) ?[31mtest"), logins
    wait_for(lambda: any(r["event"] == "auth_failure" for r in records()), 5, "the refusal's record")
    everything = web_gw.read_log() + (web_gw.config_path.parent / "audit.jsonl").read_text()
    assert token not in everything


def test_a_readonly_link_gives_a_readonly_login_without_actions(web_gw):
    token = token_of(ctl(web_gw, "weblink", "web1", "--readonly").stdout)
    [answer] = answers_of(web_run(web_gw, f"web_login {token}"))
    assert answer["ok"] and answer["readonly"] and answer["actions"] == []


def test_garbage_and_a_second_try_are_handled(web_gw):
    [refused] = answers_of(web_run(web_gw, "web_login not-a-token"))
    assert not refused["ok"]
    run = web_run(web_gw, "web_twice not-a-token")
    assert run.closed, run
    assert run.index("attack second") is not None, run
    assert len(run.answers(run.index("attack"))) == 0, run


def test_an_ssh_session_asking_for_a_token_login_is_cut_off(web_gw):
    assert_cut_off(run_scenario(web_gw, "web_login_on_ssh whatever"))


def test_a_web_session_asking_for_a_key_login_is_cut_off(web_gw, keys):
    key_type, key_base64 = keys["web1"].public_line.split()[:2]
    assert_cut_off(web_run(web_gw, f"key_login_on_web {key_type} {key_base64}"))


def test_the_web_hello_carries_the_tls_pair_and_public_url(web_gw):
    run = web_run(web_gw, "show_hello")
    [hello] = answers_of(run)
    assert hello["type"] == "hello", run
    assert hello["public_url"] == PUBLIC_URL
    assert hello["tls_chain"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in hello["tls_key"]
    assert hello["host_keys"] == [] and not hello["trust_forwarded_for"]


def rewrite_config(gw, web1_keys):
    text = gw.config_path.read_text()
    start = text.index("  web1:")
    end = text.index("  web2:")
    block = "  web1:\n    keys: " + json.dumps(web1_keys) + "\n"
    gw.config_path.write_text(text[:start] + block + text[end:])
    result = ctl(gw, "reload")
    assert result.returncode == 0, describe(result)


def reload_during_a_key_link_login(gw, keys_now, hold, timeout):
    """Logs in with a link minted by web1's key, holding the session `hold` seconds; once the
    login is audited, rewrites web1's keys to `keys_now`. Returns (run, time of the reload)."""
    token = token_of(gw.ssh("web1", "web1", "weblink").stdout)
    box = {}
    watcher = threading.Thread(target=lambda: box.update(run=web_run(gw, f"web_login {token} {hold}",
                                                                     timeout=timeout)))
    watcher.start()
    wait_for(lambda: any(r.get("via") == "web" and r["event"] == "auth_success"
                         for r in gw.audit_records()), 10, "the web login")
    rewrite_config(gw, keys_now)
    reloaded_at = time.monotonic()
    watcher.join(timeout + 5)
    return box["run"], reloaded_at


def test_a_link_from_a_key_ends_with_the_key(web_gw, keys):
    run, revoked_at = reload_during_a_key_link_login(web_gw, [keys["stranger"].public_line], 20, 25)
    kinds = [a["type"] for a in answers_of(run)]
    assert kinds[:2] == ["authorize_ans", "revoke"], run
    assert run.closed and run.elapsed < 20, run
    pid = run.fake_pid()
    wait_for(lambda: not pid_alive(pid), 2, "the web session to be gone")
    assert time.monotonic() - revoked_at < 3


def test_a_link_from_a_key_made_read_only_narrows(web_gw, keys):
    run, _ = reload_during_a_key_link_login(web_gw, [{"key": keys["web1"].public_line, "readonly": True}], 3, 10)
    answers = answers_of(run)
    assert [a["type"] for a in answers[:2]] == ["authorize_ans", "narrowed"], run
    assert answers[1]["readonly"] and "read-only" in answers[1]["text"], answers


def test_an_operator_link_survives_a_key_change_but_not_its_domain_losing_console(web_gw, keys):
    token = token_of(ctl(web_gw, "weblink", "web1").stdout)
    box = {}
    watcher = threading.Thread(target=lambda: box.update(run=web_run(web_gw, f"web_login {token} 20",
                                                                     timeout=25)))
    watcher.start()
    wait_for(lambda: any(r.get("via") == "web" and r["event"] == "auth_success"
                         for r in web_gw.audit_records()), 10, "the web login")
    rewrite_config(web_gw, [keys["stranger"].public_line])  # applied when ctl returns
    assert not [r for r in web_gw.audit_records() if r["event"] == "session_revoked"]
    text = web_gw.config_path.read_text().replace("  web1:\n", "  web1:\n    actions: [reboot]\n", 1)
    web_gw.config_path.write_text(text)
    assert ctl(web_gw, "reload").returncode == 0
    watcher.join(30)
    kinds = [a["type"] for a in answers_of(box["run"])]
    assert kinds[:2] == ["authorize_ans", "revoke"], box["run"]


def test_a_web_session_asking_for_a_link_is_cut_off(web_gw):
    token = token_of(ctl(web_gw, "weblink", "web1").stdout)
    run = web_run(web_gw, f"web_then_weblink {token}")
    assert run.closed and run.index("attack weblink_req") is not None, run
    assert [a["type"] for a in answers_of(run)] == ["authorize_ans"], run


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def panel_token(secret, domain, readonly, ttl=60):
    # The panel-side example of docs/web.md.
    expiry = str(int(time.time()) + ttl)
    nonce = b64url(secrets.token_bytes(16))
    mode = "r" if readonly else "w"
    message = "xcg-weblink-v1\n" + "".join(f + "\n" for f in (domain, mode, expiry, nonce))
    mac = hmac.new(secret, message.encode("ascii"), hashlib.sha256).digest()
    return "~".join(("v1", domain, mode, expiry, nonce, b64url(mac)))


def test_a_panel_token_logs_in_once(make_gateway, socket_dir, tmp_path):
    secret = secrets.token_bytes(32)
    secret_file = tmp_path / "panel.secret"
    secret_file.write_bytes(secret)
    secret_file.chmod(0o600)
    web = web_settings(tmp_path) | {"panel_secret_file": str(secret_file)}
    gw = start(make_gateway, socket_dir, web)
    token = panel_token(secret, "web3", readonly=False)
    [answer] = answers_of(web_run(gw, f"web_login {token}"))
    assert answer["ok"] and answer["domain"] == "web3" and answer["fingerprint"] == "web panel", answer
    [again] = answers_of(web_run(gw, f"web_login {token}"))
    assert not again["ok"]
    [forged] = answers_of(web_run(gw, f"web_login {panel_token(b'x' * 32, 'web3', False)}"))
    assert not forged["ok"]
    logins = [r for r in gw.audit_records() if r.get("via") == "web" and r["event"] == "auth_success"]
    assert [r["token"] for r in logins] == ["panel"], logins


@pytest.fixture
def proxied_gw(make_gateway, socket_dir, tmp_path):
    web = web_settings(tmp_path) | {"listen": ["127.0.0.1:0", "http://127.0.0.1:0"],
                                   "trusted_proxies": ["127.0.0.1/32"]}
    return start(make_gateway, socket_dir, web)


def test_a_trusted_proxy_names_the_client(proxied_gw):
    [hello] = answers_of(web_run(proxied_gw, "show_hello", plain=True))
    assert hello["trust_forwarded_for"] and hello["tls_chain"] == "" and hello["tls_key"] == ""
    token = token_of(ctl(proxied_gw, "weblink", "web1").stdout)
    [answer] = answers_of(web_run(proxied_gw, f"web_login {token} 0 203.0.113.9", plain=True))
    assert answer["ok"], answer
    [login] = [r for r in proxied_gw.audit_records() if r.get("via") == "web" and r["event"] == "auth_success"]
    assert re.fullmatch(r"203\.0\.113\.9 \(via 127\.0\.0\.1:\d+\)", login["remote"]), login


def test_forwarded_for_is_ignored_on_a_tls_listener(proxied_gw):
    [hello] = answers_of(web_run(proxied_gw, "show_hello"))
    assert not hello["trust_forwarded_for"] and hello["tls_chain"]
    token = token_of(ctl(proxied_gw, "weblink", "web1").stdout)
    [answer] = answers_of(web_run(proxied_gw, f"web_login {token} 0 203.0.113.9"))
    assert answer["ok"], answer
    [login] = [r for r in proxied_gw.audit_records() if r.get("via") == "web" and r["event"] == "auth_success"]
    assert login["remote"].startswith("127.0.0.1:"), login


# --- end to end, with xcg-web ------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_browser_on_a_keys_link_is_closed_when_the_key_is_revoked(make_gateway, socket_dir, tmp_path, keys):
    port = free_port()
    web = {"listen": [f"127.0.0.1:{port}"], "public_url": f"https://127.0.0.1:{port}",
           "tls_cert": str(tmp_path / "web.crt"), "tls_key": str(tmp_path / "web.key")}
    gw = make_gateway(extra={"web": web, "run_as": "xcg", "chroot_dir": str(tmp_path / "empty")},
                      args=["--control-socket", str(socket_dir / "control.sock")])
    gw.control_socket = socket_dir / "control.sock"
    result = gw.ssh("web1", "web1", "weblink")
    assert result.returncode == 0, describe(result)
    link = result.stdout.splitlines()[0]
    assert link.startswith(f"https://127.0.0.1:{port}/#"), describe(result)
    token = link.split("#", 1)[1]
    with log_in("127.0.0.1", port, f"127.0.0.1:{port}", f"https://127.0.0.1:{port}", token) as c:
        c.read_until(lambda op, p: op == TEXT and p.startswith(b"hello web1 "))
        rewrite_config(gw, [keys["stranger"].public_line])
        revoked = time.monotonic()
        frames = c.read_until(lambda op, p: op == CLOSE, timeout=5)
        assert time.monotonic() - revoked < 1.5
        assert close_reason(frames[-1][1]) == (1008, "access to web1 was revoked")
