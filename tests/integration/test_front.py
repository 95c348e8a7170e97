"""A fleet on loopback (docs/fleet.md, "Front to node"): one front and two sim nodes against a
real etcd. Customers reach their domain through the front with a real ssh client and see what
they would see on the node itself: exec commands and their exit status, the console with its
replay, who is attached, a pty; a domain no node runs is refused with a line saying so."""

import json
import subprocess

import pexpect
import pytest

from conftest import Gateway, describe, wait_for
from test_web_session import free_port
from etcd_cluster import etcd  # noqa: F401 (fixture)
from test_keymap import attach, domains_yaml, xcg_keys


def front_config(gw, etcd, name="front1", metrics_port=None):
    return "\n".join([
        'listen: ["127.0.0.1:0"]',
        f"host_keys: [{json.dumps(str(gw.host_key_path))}]",
        f"audit_log: {json.dumps(str(gw.audit_path))}",
        "cluster:",
        f"  endpoints: {json.dumps(etcd.endpoints)}",
        f"  node: {name}",
        "  role: front",
    ] + ([f'metrics: {{listen: ["127.0.0.1:{metrics_port}"]}}'] if metrics_port else [])) + "\n"


def public_line(private_key_path):
    return subprocess.run(["ssh-keygen", "-y", "-f", str(private_key_path)], capture_output=True, text=True,
                          check=True, timeout=10).stdout.strip()


def reach(front, domain):
    """Waits until the front knows the domain's key and its node."""
    tries = []

    def through():
        tries.append(front.ssh(domain, domain, "status"))
        return tries[-1].returncode == 0
    try:
        wait_for(through, 20, f"{domain} through the front")
    except AssertionError:
        raise AssertionError(describe(tries[-1]) + "\n" + front.read_log()) from None


@pytest.fixture
def fleet(make_gateway, etcd, keys, tmp_path):
    """The front (web1 on node-a, web2 on node-b, each with a 30 s lease); the key map has web1's,
    web2's and web3's keys, and no node runs web3."""
    directory = tmp_path / "front"
    directory.mkdir()
    front = Gateway(directory, keys)
    front.metrics_port = free_port()
    front.config_path.write_text(front_config(front, etcd, metrics_port=front.metrics_port))
    front.start()
    try:
        trusted = [public_line(front.host_key_path)]
        nodes = [make_gateway(domains={name: {}},
                              extra={"cluster": {"endpoints": etcd.endpoints, "node": node, "lease_ttl": "30s"},
                                     "fronts": trusted})
                 for node, name in (("node-a", "web1"), ("node-b", "web2"))]
        path = tmp_path / "keys.yaml"
        path.write_text(domains_yaml({d: [keys[d].public_line] for d in ("web1", "web2", "web3")}))
        imported = xcg_keys(nodes[0], "import", str(path))
        assert imported.returncode == 0, imported.stderr
        for domain in ("web1", "web2"):
            reach(front, domain)
        yield front, nodes
    finally:
        front.stop()


def test_exec_commands_reach_the_domains_node(fleet):
    front, nodes = fleet
    for domain, node in (("web1", nodes[0]), ("web2", nodes[1])):
        through = front.ssh(domain, domain, "status")
        direct = node.ssh(domain, domain, "status")
        assert through.returncode == 0 and through.stdout.startswith(f"{domain}: "), describe(through)
        assert through.stdout.split()[:2] == direct.stdout.split()[:2]
    audit = [r for r in nodes[0].audit_records() if r.get("event") == "auth_success" and r.get("front_fp")]
    assert audit and audit[0]["domain"] == "web1", audit


def test_the_exit_status_is_the_nodes(fleet):
    front, nodes = fleet
    through = front.ssh("web1", "web1", "no-such-command")
    direct = nodes[0].ssh("web1", "web1", "no-such-command")
    assert direct.returncode not in (0, 255), describe(direct)
    assert through.returncode == direct.returncode, describe(through)
    assert through.stderr == direct.stderr


def test_a_domain_no_node_runs_is_refused_with_a_line(fleet):
    front, _ = fleet
    result = front.ssh("web3", "web3", "status")
    assert result.returncode == 1, describe(result)
    assert "web3 is not running on any node" in result.stderr


def test_a_stopped_node_is_routed_nowhere_at_once(fleet):
    """A node revokes its lease as it stops, so the front stops routing to it well before the
    lease's 30 s would have run out."""
    front, nodes = fleet
    assert nodes[0].stop() == 0
    tries = []

    def refused():
        tries.append(front.ssh("web1", "web1", "status"))
        return "web1 is not running on any node" in tries[-1].stderr
    wait_for(refused, 5, "the front to route web1 nowhere")
    assert front.ssh("web2", "web2", "status").returncode == 0  # the other node still serves


def test_console_with_replay_and_who_through_the_front(fleet):
    front, _ = fleet
    child = attach(front, "web1", "web1")
    child.send(b"echo through-the-front\r")
    child.expect(b"\r\nthrough-the-front\r\n")  # the guest's answer, not the echo of the line
    who = front.ssh("web1", "web1", "who")
    assert who.returncode == 0 and "web1@xcg-test" in who.stdout, describe(who)  # the node's hub
    child.send(b"\x1d")  # Ctrl-] detaches: the exec console ends
    child.expect(pexpect.EOF)
    again = front.spawn("web1", "web1", "console")
    again.expect(b"\r\nthrough-the-front\r\n")  # the scrollback's replay, from the node's hub


def test_the_menu_through_the_front_on_a_pty(fleet):
    front, _ = fleet
    child = front.spawn("web2", "web2", tty=True)
    child.expect(b"web2")
    child.expect(b"running")
    child.send(b"q")
    child.expect(pexpect.EOF)


def test_deleting_the_key_ends_a_relayed_console(fleet, etcd, keys):
    front, _ = fleet
    victim = attach(front, "web1", "web1")
    survivor = attach(front, "web2", "web2")
    etcd.delete(f"/xcg/keys/web1/{keys['web1'].fingerprint}")
    victim.expect(rb"\[xcg: access to web1 was revoked\]", timeout=5)
    victim.expect(pexpect.EOF, timeout=5)
    survivor.send(b"echo still-here\r")
    survivor.expect(rb"\nstill-here\r?\n")

