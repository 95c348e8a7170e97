"""The whole fleet on loopback (docs/fleet.md): a 3-member etcd, three sim nodes each running its
own domain, and two fronts, built once for the module. Customers reach every node through either
front, a key reaches only its own domain, the key map round-trips through `xcg keys`, a key
deleted in etcd ends its consoles on both fronts within a second, and a domain a node starts
serving is reached through every front without a restart."""

import os
import re
import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import pexpect
import pytest

from conftest import DETACH, Gateway, describe, ensure_user, make_key, render_config, wait_for
from etcd_cluster import EtcdCluster
from test_fleet_registry import host_key_fingerprint
from test_front import front_config, public_line, reach
from test_keymap import PREFIX, REVOKE_LIMIT, assert_refused, attach, domains_yaml, xcg_keys

NODES = {"node-a": "web1", "node-b": "web2", "node-c": "web3"}
SIM = {"autostart": True, "shutdown_grace_ms": 2000}
ADDED = "web4"  # no node serves it until a test adds it to node-c's YAML
REVOKED = "web1-revoked"  # a second key of web1, deleted by the revocation test


@dataclass
class Fleet:
    etcd: EtcdCluster
    keys: dict
    fronts: list = field(default_factory=list)
    nodes: dict = field(default_factory=dict)  # node name -> Gateway

    @property
    def gateways(self):
        return self.fronts + list(self.nodes.values())

    def stop(self):
        """Stops everything; says which server did not exit with 0 on SIGTERM."""
        statuses = [(gw, gw.stop()) for gw in self.gateways]
        self.etcd.stop()
        failed = [f"{gw.dir.name} exited with {status}\n{gw.read_log()}" for gw, status in statuses if status != 0]
        assert not failed, "\n".join(failed)


def fleet_keys(directory):
    names = list(NODES.values()) + [ADDED, REVOKED]
    return {name: make_key(directory, name, ["-t", "ed25519"]) for name in names}


def start_front(fleet, directory, name):
    directory.mkdir()
    front = Gateway(directory, fleet.keys)
    front.config_path.write_text(front_config(front, fleet.etcd, name))
    fleet.fronts.append(front)
    front.start()


def node_settings(fleet, node):
    trusted = [public_line(front.host_key_path) for front in fleet.fronts]
    return {"cluster": {"endpoints": fleet.etcd.endpoints, "node": node}, "fronts": trusted}


def start_node(fleet, directory, node, domain):
    directory.mkdir()
    gw = Gateway(directory, fleet.keys, {domain: {}}, SIM, node_settings(fleet, node))
    fleet.nodes[node] = gw
    gw.start()


def import_keys(fleet, path, domains):
    path.write_text(domains_yaml(domains))
    return xcg_keys(fleet.fronts[0], "import", str(path))


def import_and_reach(fleet, path, keys, domains):
    """Puts the key lines of `keys` ({domain: [line]}) into etcd, then waits until every front
    relays each of `domains` to its node."""
    imported = import_keys(fleet, path, keys)
    assert imported.returncode == 0, describe(imported)
    for front in fleet.fronts:
        for domain in domains:
            reach(front, domain)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    base = tmp_path_factory.mktemp("fleet")
    if os.geteuid() == 0:
        ensure_user()
    fleet = Fleet(EtcdCluster(3, base_dir=base).start(), fleet_keys(base))
    try:
        for name in ("front1", "front2"):
            start_front(fleet, base / name, name)
        for node, domain in NODES.items():
            start_node(fleet, base / node, node, domain)
        keys = {d: [fleet.keys[d].public_line] for d in NODES.values()}
        keys["web1"].append(fleet.keys[REVOKED].public_line)
        import_and_reach(fleet, base / "keys.yaml", keys, NODES.values())
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture(autouse=True)
def logs_on_failure(request, fleet):
    request.node._xcg_gateways = fleet.gateways  # conftest's report hook shows their logs


def fronted_logins(node):
    """The fingerprints of the fronts that logged in to `node` for a customer."""
    records = node.audit_records()
    return {r["front_fp"] for r in records if r.get("event") == "auth_success" and r.get("front_fp")}


def test_either_front_reaches_every_node(fleet):
    for front in fleet.fronts:
        for node, domain in NODES.items():
            through = front.ssh(domain, domain, "status")
            direct = fleet.nodes[node].ssh(domain, domain, "status")
            assert through.returncode == 0 and through.stdout.startswith(f"{domain}: "), describe(through)
            assert through.stdout.split()[:4] == direct.stdout.split()[:4]  # name, state, the domid
    front_fps = {host_key_fingerprint(front) for front in fleet.fronts}
    for node in fleet.nodes.values():
        assert fronted_logins(node) == front_fps, node.audit_records()  # both fronts logged in here


def test_the_console_and_its_replay_through_both_fronts_on_every_node(fleet):
    for i, domain in enumerate(NODES.values()):
        first, second = fleet.fronts[i % 2], fleet.fronts[1 - i % 2]
        child = attach(first, domain, domain)
        marker = f"console-of-{domain}".encode()
        child.send(b"echo " + marker + b"\r")
        child.expect(b"\r\n" + marker + b"\r\n")  # the guest's answer, not the echo of the line
        child.send(DETACH)
        child.expect(pexpect.EOF)
        again = second.spawn(domain, domain, "console")
        again.expect(b"\r\n" + marker + b"\r\n")  # the node's scrollback, replayed
        again.send(DETACH)
        again.expect(pexpect.EOF)


def test_a_key_reaches_only_its_own_domain_through_either_front(fleet):
    for front in fleet.fronts:
        assert_refused(front, "web2", "web1")
        assert_refused(front, "web1", "web3")
        assert_refused(front, ADDED, "web1")


def test_keys_export_then_import_round_trips(fleet, tmp_path):
    """Exported from the fleet's prefix, imported into another one of the same cluster."""
    exported = xcg_keys(fleet.fronts[0], "export")
    assert exported.returncode == 0, describe(exported)
    path = tmp_path / "exported.yaml"
    path.write_text(exported.stdout)
    copy = tmp_path / "copy.yaml"
    copy.write_text(fleet.fronts[0].config_path.read_text() + "  prefix: /copy/\n")
    imported = xcg_keys(SimpleNamespace(config_path=copy), "import", str(path))
    assert imported.returncode == 0, describe(imported)
    original = fleet.etcd.get_prefix(f"{PREFIX}keys/")
    domains = {k.split("/")[3] for k in original}
    assert imported.stdout == f"{len(original)} keys of {len(domains)} domains: {len(original)} written, " \
                              "0 already in etcd\n", describe(imported)
    copied = fleet.etcd.get_prefix("/copy/keys/")
    assert {k.replace(PREFIX, "/copy/", 1): v for k, v in original.items()} == copied


def until_revoked(child, ends, index):
    child.expect(rb"\[xcg: access to web1 was revoked\]", timeout=5)
    child.expect(pexpect.EOF, timeout=5)
    ends[index] = time.monotonic()


def test_a_key_deleted_in_etcd_ends_its_consoles_on_both_fronts_within_a_second(fleet):
    victims = [attach(front, "web1", REVOKED) for front in fleet.fronts]
    survivor = attach(fleet.fronts[1], "web1", "web1")
    ends = [None] * len(victims)
    waiters = [threading.Thread(target=until_revoked, args=(v, ends, i)) for i, v in enumerate(victims)]
    start = time.monotonic()
    fleet.etcd.delete(f"{PREFIX}keys/web1/{fleet.keys[REVOKED].fingerprint}")
    written = time.monotonic()
    for waiter in waiters:
        waiter.start()
    for waiter in waiters:
        waiter.join()
    assert None not in ends, ends
    figures = [end - start for end in ends]
    print(f"\nrevocation through etcd, from the etcdctl call to each session's end: front1 {figures[0]:.3f} s, "
          f"front2 {figures[1]:.3f} s (etcdctl returned after {written - start:.3f} s)")
    assert max(figures) < REVOKE_LIMIT, figures
    survivor.send(b"echo still-here\r")
    survivor.expect(rb"\nstill-here\r?\n")
    for front in fleet.fronts:
        assert_refused(front, "web1", REVOKED)


def test_a_domain_a_node_starts_serving_is_reached_through_every_front(fleet, tmp_path):
    for front in fleet.fronts:
        assert_refused(front, ADDED, ADDED)
    node = fleet.nodes["node-c"]
    settings = node_settings(fleet, "node-c")
    node.config_path.write_text(render_config(node.dir, {"web3": {}, ADDED: {}}, SIM, settings))
    reloaded = re.compile(r"reloaded \S+ \(config file changed\): 2 domains")
    wait_for(lambda: reloaded.search(node.read_log()), 10, "node-c's reload")
    wait_for(lambda: fleet.etcd.get(f"{PREFIX}domains/{ADDED}") == "node-c", 10, f"domains/{ADDED}")
    imported = import_keys(fleet, tmp_path / "added.yaml", {ADDED: [fleet.keys[ADDED].public_line]})
    assert imported.stdout == "1 keys of 1 domains: 1 written, 0 already in etcd\n", describe(imported)
    for front in fleet.fronts:
        reach(front, ADDED)
    direct = node.ssh(ADDED, ADDED, "status")
    through = fleet.fronts[1].ssh(ADDED, ADDED, "status")
    assert through.stdout.split()[:2] == direct.stdout.split()[:2], describe(through)
    assert fleet.fronts[0].ssh("web3", "web3", "status").returncode == 0  # node-c's first domain still
