"""The browser console through a fleet's front (docs/web.md, "Through a front"): a real etcd, one
sim node and one front with `web:`. Links are the front's (`xcg ctl weblink` there, `ssh
web1@front weblink`); the front's xcg-web reaches the node as the front's SSH sessions do and
shows the node's console with its replay; typing reaches the guest unless the link is
read-only; deleting the key that minted a link ends its browser session; the node's menu
sends the customer to the front for a link."""

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import XCG, Gateway, describe, wait_for
from etcd_cluster import etcd  # noqa: F401 (fixture)
from test_front import front_config, public_line, reach
from test_hostile_ipc import run_scenario
from test_keymap import domains_yaml, xcg_keys
from test_web_session import free_port, output_until
from test_weblink import make_tls_pair, menu_weblink
from web_client import BINARY, CLOSE, TEXT, close_reason, log_in

BANNER = b"Booting fake guest web1"


@pytest.fixture
def socket_dir():
    directory = Path(tempfile.mkdtemp(prefix="xcg-webfront-"))  # a socket path must stay short
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def web_front_config(gw, etcd, port, tls_dir):
    cert, key = make_tls_pair(tls_dir)
    web = {"listen": [f"127.0.0.1:{port}"], "public_url": f"https://127.0.0.1:{port}",
           "tls_cert": str(cert), "tls_key": str(key)}
    return front_config(gw, etcd) + "web: " + json.dumps(web) + "\n"


@pytest.fixture
def web_fleet(make_gateway, etcd, keys, tmp_path, socket_dir):
    """The front with a web listener, and node-a running web1, whose key is in etcd."""
    front = start_front(etcd, keys, tmp_path, socket_dir)
    try:
        node = make_gateway(domains={"web1": {}},
                            extra={"cluster": {"endpoints": etcd.endpoints, "node": "node-a"},
                                   "fronts": [public_line(front.host_key_path)]})
        path = tmp_path / "keys.yaml"
        path.write_text(domains_yaml({"web1": [keys["web1"].public_line]}))
        imported = xcg_keys(node, "import", str(path))
        assert imported.returncode == 0, imported.stderr
        reach(front, "web1")
        yield front, node
    finally:
        front.stop()


def start_front(etcd, keys, tmp_path, socket_dir, args=()):
    directory = tmp_path / "front"
    directory.mkdir()
    front = Gateway(directory, keys, args=["--control-socket", str(socket_dir / "control.sock"), *args])
    port = free_port()
    front.config_path.write_text(web_front_config(front, etcd, port, directory))
    front.control_socket = socket_dir / "control.sock"
    front.web_port, front.host, front.origin = port, f"127.0.0.1:{port}", f"https://127.0.0.1:{port}"
    front.start()
    return front


def ctl_token(front, *flags):
    result = subprocess.run([XCG, "ctl", "--socket", str(front.control_socket), "weblink", "web1", *flags],
                            capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, describe(result)
    match = re.search(rf"^{re.escape(front.origin)}/#(\S+)$", result.stdout, re.M)
    assert match, describe(result)
    return match.group(1)


def ctl_ok(front):
    return subprocess.run([XCG, "ctl", "--socket", str(front.control_socket), "weblink", "web1"],
                          capture_output=True, timeout=20, stdin=subprocess.DEVNULL).returncode == 0


def browser(front, token):
    return log_in("127.0.0.1", front.web_port, front.host, front.origin, token)


def hello_and_replay(client):
    frames = output_until(client, BANNER)  # the node's replay, from its hub
    texts = [p.decode() for op, p in frames if op == TEXT]
    return texts[0] if texts else None


EVERY_ACTION = "hello web1 w console start shutdown reboot destroy sysrq"


def answer(client, command, prefix):
    client.send_text(command)
    frames = client.read_until(lambda op, p: op == TEXT and p.startswith(prefix))
    return frames[-1][1].decode()


def test_a_front_link_shows_the_nodes_console_and_typing_reaches_the_guest(web_fleet):
    front, node = web_fleet
    with browser(front, ctl_token(front)) as c:
        assert hello_and_replay(c) == EVERY_ACTION  # what the node offers
        c.send_binary(b"typed-through-the-front")  # the guest echoes what it is sent
        output_until(c, b"typed-through-the-front")
    audit = [r for r in node.audit_records() if r.get("event") == "auth_success"]
    assert any(r.get("fingerprint") == "browser" and r.get("front_fp") for r in audit), audit
    connects = [r for r in front.audit_records() if r.get("event") == "node_connect"]
    assert connects and connects[-1]["node"] == "node-a" and connects[-1]["result"] == "ok", connects


def test_a_read_only_front_link_cannot_type(web_fleet):
    front, _ = web_fleet
    with browser(front, ctl_token(front, "--readonly")) as watcher:
        assert hello_and_replay(watcher) == "hello web1 r"
        assert answer(watcher, "action reboot", b"result ") == "result this session is read-only"
        assert answer(watcher, "status", b"status ").startswith("status web1: running")
        watcher.send_binary(b"watcher-typed")
        with browser(front, ctl_token(front)) as typist:
            hello_and_replay(typist)
            typist.send_binary(b"typist-typed")
            frames = output_until(watcher, b"typist-typed")  # the watcher sees the guest live
        seen = b"".join(p for op, p in frames if op == BINARY)
        assert b"watcher-typed" not in seen


def test_ssh_weblink_through_the_front_is_the_fronts_and_ends_with_its_key(web_fleet, etcd, keys):
    front, _ = web_fleet
    minted = front.ssh("web1", "web1", "weblink")
    assert minted.returncode == 0, describe(minted)
    match = re.search(rf"^{re.escape(front.origin)}/#(\S+)$", minted.stdout, re.M)
    assert match, describe(minted)
    with browser(front, match.group(1)) as c:
        assert hello_and_replay(c) == EVERY_ACTION
        etcd.delete(f"/xcg/keys/web1/{keys['web1'].fingerprint}")
        frames = c.read_until(lambda op, p: op == CLOSE, timeout=5)
        # The front and the node both read the key map: whichever ends it first says why.
        code, reason = close_reason(frames[-1][1])
        said = reason.encode() + b"".join(p for op, p in frames if op == BINARY)
        assert code == 1008 and b"access to web1 was revoked" in said, (code, said)


def test_the_nodes_menu_sends_the_customer_to_the_front_for_a_link(web_fleet):
    front, _ = web_fleet
    assert "a link comes from the front: ssh DOMAIN@FRONT weblink" in menu_weblink(front)


def test_status_who_and_log_are_the_nodes(web_fleet, keys):
    front, node = web_fleet
    with browser(front, ctl_token(front)) as c:
        hello_and_replay(c)
        direct = node.ssh("web1", "web1", "status")
        assert answer(c, "status", b"status ").split()[:3] == ["status"] + direct.stdout.split()[:2]
        viewers = node.ssh("web1", "web1", "who").stdout.splitlines()
        assert viewers  # this browser, attached through the front
        assert answer(c, "who", b"who") == "who " + "\n".join(viewers)
        log = answer(c, "log 50", b"log ")
        assert "Booting fake guest web1" in log, log


def test_a_button_through_the_front_reboots_the_domain_on_its_node(web_fleet):
    front, node = web_fleet
    with browser(front, ctl_token(front)) as c:
        hello_and_replay(c)
        domid = node.domid("web1")
        result = answer(c, "action reboot", b"result ")
        assert "not allowed" not in result and "read-only" not in result, result
        output_until(c, b"web1 rebooted, new domid")  # the node's hub says so
        assert node.domid("web1") > domid
    actions = [r for r in node.audit_records() if r.get("event") == "action" and r.get("action") == "reboot"]
    assert actions and actions[-1].get("front_fp") and actions[-1].get("fingerprint") == "browser", actions


def test_a_node_that_does_not_allow_an_action_is_not_offered_it(make_gateway, etcd, keys, tmp_path, socket_dir):
    """The front's key map gives every action; the page offers only what the node allows."""
    front = start_front(etcd, keys, tmp_path, socket_dir)
    try:
        node = make_gateway(domains={"web1": {"actions": ["console", "reboot"]}},
                            extra={"cluster": {"endpoints": etcd.endpoints, "node": "node-a"},
                                   "fronts": [public_line(front.host_key_path)]})
        path = tmp_path / "keys.yaml"
        path.write_text(domains_yaml({"web1": [keys["web1"].public_line]}))
        assert xcg_keys(node, "import", str(path)).returncode == 0
        reach(front, "web1")
        with browser(front, ctl_token(front)) as c:
            assert hello_and_replay(c) == "hello web1 w console reboot"
            assert answer(c, "action destroy", b"result ") == "result not allowed for this link"
    finally:
        front.stop()


def test_the_fronts_key_comes_only_with_an_accepted_token(etcd, keys, tmp_path, socket_dir):
    """A front's xcg-web logs in to nodes with the front's host key; a process taken over before
    its token was accepted must never hold it (played here by fake_session.py)."""
    fake = Path(__file__).resolve().with_name("fake_session.py")
    front = start_front(etcd, keys, tmp_path, socket_dir, args=["--web-program", str(fake)])
    path = tmp_path / "keys.yaml"
    path.write_text(domains_yaml({"web1": [keys["web1"].public_line]}))
    assert xcg_keys(front, "import", str(path)).returncode == 0
    front.port = front.web_port  # the fake speaks in clear on the TLS listener: the broker never looks

    def answers(line):
        run = run_scenario(front, line)
        return run.answers(run.index("hello pid") + 1)
    try:
        [hello] = answers("show_hello")
        assert hello["front"] and hello["host_keys"] == [], hello
        refused = answers("web_login not-a-token 1")
        assert [a["type"] for a in refused] == ["authorize_ans"] and not refused[0]["ok"], refused
        wait_for(lambda: ctl_ok(front), 10, "the front's key map to name web1")
        accepted = answers(f"web_login {ctl_token(front)} 1")
        assert [a["type"] for a in accepted] == ["authorize_ans", "front_key"], accepted
        assert accepted[0]["ok"] and "OPENSSH PRIVATE KEY" in accepted[1]["host_keys"][0]
    finally:
        front.stop()
