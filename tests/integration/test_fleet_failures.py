"""The fleet's failures (docs/fleet.md, "Failures"), each made with real signals: an etcd member
killed or hung, etcd's quorum lost, a node killed, a front killed, and a node cut off from etcd
by a relay the test controls. The topology is built once for the module: a 3-member etcd, two
fronts, node-a (web1), node-b (web2, a short lease) and node-c (web3, whose etcd endpoints are
relays). The tests run in file order: the last two kill node-b and front1 for good."""

import os
import re
import signal
import time

import pexpect
import pytest

from conftest import DETACH, Gateway, children_of, describe, ensure_user, make_key, wait_for
from etcd_cluster import EtcdCluster
from tcp_relay import TcpRelay
from test_fleet import Fleet, import_and_reach, node_settings, start_front
from test_front import reach
from test_keymap import PREFIX, REVOKE_LIMIT, attach

NODES = {"node-a": "web1", "node-b": "web2", "node-c": "web3"}
SHORT_LEASE = "2s"  # node-b's, so that its death shows in the registry quickly
# Each revocation test deletes a key of its own: domain -> the keys that may be revoked.
REVOCABLE = {"web1": ["web1-kill", "web1-stop", "web1-hung", "web1-quorum"], "web3": ["web3-partition"]}
LOST_LINE = rb"\[xcg: the connection to the node was lost\]"
UNREACHABLE = "key map: etcd cannot be reached; the last key map ("  # N keys) stays in use
BACK = "key map: etcd is reachable again"
# A hung member keeps its watch streams open and quiet; each watch's second stream, on another
# member, brings the change. Waiting longer than the promise shows by how much it was missed.
HUNG_LIMIT = 3.0 + 2.0 + 0.5
REGISTERED_AGAIN = "was deleted; registering again under a new lease"
RECOVERY_LIMIT = 10.0  # from etcd (or the link to it) being back to the change having arrived


class FailureFleet(Fleet):
    killed = ()  # the gateways a test killed: their status is -9, not a failed shutdown
    relays = ()

    def stop(self):
        for relay in self.relays:
            relay.stop()
        for gw in self.killed:
            gw.stop()
        self.fronts = [gw for gw in self.fronts if gw not in self.killed]
        self.nodes = {name: gw for name, gw in self.nodes.items() if gw not in self.killed}
        super().stop()


def failure_keys(directory):
    names = list(NODES.values()) + [k for keys in REVOCABLE.values() for k in keys]
    return {name: make_key(directory, name, ["-t", "ed25519"]) for name in names}


def start_node(fleet, directory, node, domain, **cluster):
    directory.mkdir()
    settings = node_settings(fleet, node)
    settings["cluster"].update(cluster)
    gw = Gateway(directory, fleet.keys, {domain: {}}, {"autostart": True, "shutdown_grace_ms": 2000}, settings)
    fleet.nodes[node] = gw
    gw.start()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    base = tmp_path_factory.mktemp("failures")
    if os.geteuid() == 0:
        ensure_user()
    fleet = FailureFleet(EtcdCluster(3, base_dir=base).start(), failure_keys(base))
    fleet.killed = []
    fleet.relays = [TcpRelay(int(url.rsplit(":", 1)[1])).start() for url in fleet.etcd.endpoints]
    try:
        for name in ("front1", "front2"):
            start_front(fleet, base / name, name)
        start_node(fleet, base / "node-a", "node-a", "web1")
        start_node(fleet, base / "node-b", "node-b", "web2", lease_ttl=SHORT_LEASE)
        relayed = [f"http://127.0.0.1:{relay.port}" for relay in fleet.relays]
        start_node(fleet, base / "node-c", "node-c", "web3", endpoints=relayed)
        keys = {d: [fleet.keys[d].public_line] for d in NODES.values()}
        for domain, revocable in REVOCABLE.items():
            keys[domain] += [fleet.keys[k].public_line for k in revocable]
        import_and_reach(fleet, base / "keys.yaml", keys, NODES.values())
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture(autouse=True)
def logs_on_failure(request, fleet):
    request.node._xcg_gateways = fleet.gateways  # conftest's report hook shows their logs


def kill_host(fleet, gw):
    """Every process under the server dies at once, as when its machine dies: each is stopped
    as it is found (a stopped process forks no more), then all are killed. Killed one by one,
    a session could see its broker die first and end its customer's channel cleanly."""
    tree, pending = [], [gw.proc.pid]
    while pending:
        pid = pending.pop()
        signal_if_there(pid, signal.SIGSTOP)
        tree.append(pid)
        pending += [child for child, _ in children_of(pid)]
    for pid in tree:
        signal_if_there(pid, signal.SIGKILL)
    gw.proc.wait(timeout=10)
    fleet.killed.append(gw)


def signal_if_there(pid, number):
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def assert_echoes(child, marker):
    child.send(b"echo " + marker + b"\r")
    child.expect(b"\r\n" + marker + b"\r\n")  # the guest's answer, not the echo of the line


def wait_routed(fleet):
    """Until every front routes every domain again. A hung leader that resumes revokes every
    lease (etcd 3.4.23): each node sees its nodes/ key go and registers again at once, and
    until then its domains route nowhere."""
    for front in fleet.fronts:
        for domain in NODES.values():
            reach(front, domain)


def assert_logins_everywhere(fleet, fronts=None, domains=NODES.values()):
    for front in fronts or fleet.fronts:
        for domain in domains:
            result = front.ssh(domain, domain, "status")
            assert result.returncode == 0 and result.stdout.startswith(f"{domain}: "), describe(result)


def revoke(fleet, domain, key):
    """Deletes the key in etcd; returns the time the deletion that etcd took started. Right after
    a member dies the others may still be electing a leader and refuse writes: that is etcd's
    time, not the fleet's, so the deletion is tried again until it is taken (15 s at most)."""
    path = f"{PREFIX}keys/{domain}/{fleet.keys[key].fingerprint}"
    started = []

    def deleted():
        started.append(time.monotonic())
        return fleet.etcd.etcdctl("del", path, check=False).returncode == 0
    wait_for(deleted, 15, f"etcd to take the deletion of {path}")
    return started[-1]


def until_revoked(child, domain, timeout=5):
    child.expect(rb"\[xcg: access to %s was revoked\]" % domain.encode(), timeout=timeout)
    child.expect(pexpect.EOF, timeout=5)
    return time.monotonic()


def times_said(gateways, line):
    return {gw: gw.read_log().count(line) for gw in gateways}


def wait_said_again(before, line, timeout):
    """Until each gateway of `before` (gateway -> count) has logged `line` once more."""
    for gw, count in before.items():
        wait_for(lambda: gw.read_log().count(line) > count, timeout, f"{gw.dir.name} to log {line!r}")


def member_in_use(fleet, gw):
    """The etcd member `gw` talks to: the first endpoint, or the last its client moved to."""
    moves = re.findall(r"etcd: \S+ failed; trying (\S+)", gw.read_log())
    return fleet.etcd.endpoints.index(moves[-1]) if moves else 0


@pytest.mark.parametrize("fault", ["stop", "kill"])
def test_one_etcd_member_down_customers_see_nothing(fleet, fault):
    key = f"web1-{fault}"
    console = attach(fleet.fronts[1], "web1", "web1")
    victims = [attach(front, "web1", key) for front in fleet.fronts]
    member = member_in_use(fleet, fleet.fronts[0])
    if fault == "kill":
        fleet.etcd.kill(member)
    else:
        fleet.etcd.pause(member)
    try:
        assert_logins_everywhere(fleet)
        assert_echoes(console, b"still-attached")
        start = revoke(fleet, "web1", key)
        figures = [until_revoked(victim, "web1", timeout=HUNG_LIMIT) - start for victim in victims]
        print(f"\nrevocation with member {member} down ({fault}): front1 {figures[0]:.3f} s, "
              f"front2 {figures[1]:.3f} s")
        assert max(figures) < REVOKE_LIMIT, figures
        assert_echoes(console, b"after-the-revocation")
        assert_logins_everywhere(fleet)
    finally:
        if fault == "kill":
            fleet.etcd.restart(member)
        else:
            fleet.etcd.resume(member)
        fleet.etcd.wait_healthy()
    resumed = time.monotonic()
    wait_routed(fleet)
    print(f"every domain routed through both fronts {time.monotonic() - resumed:.3f} s after the member "
          "came back")
    console.send(DETACH)
    console.expect(pexpect.EOF)


def test_a_revocation_with_the_member_in_use_hung_arrives_within_a_second(fleet):
    victim = attach(fleet.fronts[0], "web1", "web1-hung")
    member = member_in_use(fleet, fleet.fronts[0])
    registered = times_said(fleet.nodes.values(), REGISTERED_AGAIN)
    fleet.etcd.pause(member)
    try:
        start = revoke(fleet, "web1", "web1-hung")
        elapsed = until_revoked(victim, "web1", timeout=HUNG_LIMIT) - start
        print(f"\nrevocation written just after member {member} hung: {elapsed:.3f} s")
        assert elapsed < REVOKE_LIMIT
    finally:
        fleet.etcd.resume(member)
        resumed = time.monotonic()
        fleet.etcd.wait_healthy()
        wait_routed(fleet)
    again = sum(gw.read_log().count(REGISTERED_AGAIN) - n for gw, n in registered.items())
    print(f"every domain routed through both fronts {time.monotonic() - resumed:.3f} s after member {member} "
          f"resumed; {again} nodes saw their nodes/ key go and registered again")


def test_quorum_lost_fronts_route_from_their_last_view(fleet):
    victim = attach(fleet.fronts[0], "web1", "web1-quorum")
    unreachable, back = times_said(fleet.gateways, UNREACHABLE), times_said(fleet.gateways, BACK)
    fleet.etcd.kill(1)
    fleet.etcd.pause(2)
    try:
        wait_said_again(unreachable, UNREACHABLE, 15)
        assert_logins_everywhere(fleet)
        written = fleet.etcd.etcdctl("--command-timeout=1s", "del",
                                     f"{PREFIX}keys/web1/{fleet.keys['web1-quorum'].fingerprint}", check=False)
        assert written.returncode != 0, describe(written)  # no quorum: the write waits for one
        assert_echoes(victim, b"no-quorum")
    finally:
        fleet.etcd.restart(1)
        fleet.etcd.resume(2)
        fleet.etcd.wait_healthy()
    wait_said_again(back, BACK, RECOVERY_LIMIT)
    wait_routed(fleet)
    assert_echoes(victim, b"quorum-back")
    start = revoke(fleet, "web1", "web1-quorum")
    elapsed = until_revoked(victim, "web1") - start
    print(f"\nrevocation after the quorum came back: {elapsed:.3f} s")
    assert elapsed < REVOKE_LIMIT
    assert_logins_everywhere(fleet)


def test_a_node_cut_off_from_etcd_serves_from_its_last_key_map(fleet):
    node = fleet.nodes["node-c"]
    victim = attach(node, "web3", "web3-partition")
    for relay in fleet.relays:
        relay.cut()
    unreachable = times_said([node], UNREACHABLE)
    try:
        wait_said_again(unreachable, UNREACHABLE, 15)
        assert_logins_everywhere(fleet, fleet.fronts + [node], ["web3"])
        revoke(fleet, "web3", "web3-partition")
        front = fleet.fronts[0]
        wait_for(lambda: front.ssh("web3", "web3-partition", "status").returncode == 255, 5,
                 "the front, which reads etcd, to refuse the revoked key")
        assert node.ssh("web3", "web3-partition", "status").returncode == 0  # the map it last read
        assert_echoes(victim, b"partitioned")
    finally:
        for relay in fleet.relays:
            relay.restore()
    start = time.monotonic()
    elapsed = until_revoked(victim, "web3", timeout=RECOVERY_LIMIT) - start
    print(f"\nrevocation written during the partition, from the link's return to the session's end: "
          f"{elapsed:.3f} s")
    assert_logins_everywhere(fleet, fleet.fronts + [node], ["web3"])


def test_a_dead_nodes_customers_get_a_line_and_its_domain_expires(fleet):
    front = fleet.fronts[0]
    reach(front, "web2")
    orphan = attach(front, "web2", "web2")
    neighbour = attach(front, "web1", "web1")
    kill_host(fleet, fleet.nodes["node-b"])
    orphan.expect(LOST_LINE, timeout=5)
    orphan.expect(pexpect.EOF, timeout=5)
    assert b"[xcg:" not in orphan.before  # one line, nothing after it
    orphan.close()
    assert orphan.exitstatus == 255, orphan.exitstatus
    assert_echoes(neighbour, b"next-door")
    wait_for(lambda: fleet.etcd.get(f"{PREFIX}nodes/node-b") is None, 10, "node-b's lease to expire")
    for f in fleet.fronts:
        wait_for(lambda: "web2 is not running on any node" in f.ssh("web2", "web2", "status").stderr, 5,
                 f"{f.dir.name} to see node-b gone")
    assert_logins_everywhere(fleet, domains=["web1", "web3"])


def test_a_dead_fronts_customers_reconnect_through_the_other(fleet):
    dying, other = fleet.fronts
    cut_off = attach(dying, "web1", "web1")
    untouched = attach(other, "web3", "web3")
    kill_host(fleet, dying)
    cut_off.expect(pexpect.EOF, timeout=5)
    again = attach(other, "web1", "web1")
    assert_echoes(again, b"through-front2")
    assert_echoes(untouched, b"untouched")
