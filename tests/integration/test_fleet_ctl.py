"""`xcg ctl cluster`: what a node and a front of a fleet know of their cluster, read against a
real etcd (docs/fleet.md, "Watching a fleet"), and the one line of a broker without `cluster:`."""

import json
import re

import pytest

from conftest import Gateway, wait_for
from etcd_cluster import etcd, free_port  # noqa: F401 (etcd: a fixture)
from test_ctl import ctl, ctl_ok, socket_dir  # noqa: F401 (socket_dir: a fixture)
from test_front import public_line
from test_keymap import domains_yaml, xcg_keys


def stored(etcd, key):
    """The key's record as etcd keeps it: mod_revision, lease (both ints)."""
    kvs = json.loads(etcd.etcdctl("get", key, "-w", "json").stdout).get("kvs") or [None]
    return kvs[0]


def controlled(make_gateway, socket_dir, name, **settings):
    path = socket_dir / f"{name}.sock"
    gw = make_gateway(args=["--control-socket", str(path)], **settings)
    gw.control_socket = path
    return gw


def cluster_view(gw, *wanted):
    """`xcg ctl cluster`'s answer, once it holds every pattern in `wanted`."""
    def check():
        out = ctl_ok(gw, "cluster")
        return all(re.search(p, out, re.MULTILINE) for p in wanted) and out
    try:
        return wait_for(check, 15, f"ctl cluster showing {wanted}")
    except AssertionError:
        raise AssertionError(ctl_ok(gw, "cluster")) from None


@pytest.fixture
def fleet(make_gateway, socket_dir, etcd, keys, tmp_path):
    """A front whose first etcd endpoint answers nothing; node-a runs web1, node-b has web2
    but does not run it; the key map has web1's, web2's and web3's keys."""
    directory = tmp_path / "front"
    directory.mkdir()
    front = Gateway(directory, keys, args=["--control-socket", str(socket_dir / "front.sock")])
    front.control_socket = socket_dir / "front.sock"
    dead = f"http://127.0.0.1:{free_port()}"
    front.config_path.write_text("\n".join([
        'listen: ["127.0.0.1:0"]',
        f"host_keys: [{json.dumps(str(front.host_key_path))}]",
        f"audit_log: {json.dumps(str(front.audit_path))}",
        "cluster:",
        f"  endpoints: {json.dumps([dead, *etcd.endpoints])}",
        "  node: front1",
        "  role: front",
    ]) + "\n")
    front.start()
    try:
        trusted = [public_line(front.host_key_path)]
        section = {"endpoints": etcd.endpoints, "lease_ttl": "30s"}
        node_a = controlled(make_gateway, socket_dir, "a", domains={"web1": {}},
                            extra={"cluster": {**section, "node": "node-a"}, "fronts": trusted})
        node_b = controlled(make_gateway, socket_dir, "b", domains={"web2": {}}, sim={"autostart": False},
                            extra={"cluster": {**section, "node": "node-b"}, "fronts": trusted})
        path = tmp_path / "keys.yaml"
        path.write_text(domains_yaml({d: [keys[d].public_line] for d in ("web1", "web2", "web3")}))
        assert xcg_keys(node_a, "import", str(path)).returncode == 0
        yield front, node_a, node_b, dead
    finally:
        front.stop()


def test_a_node_shows_its_etcd_lease_records_and_key_map(fleet, etcd):
    _, node_a, node_b, _ = fleet
    wait_for(lambda: stored(etcd, "/xcg/domains/web1"), 10, "domains/web1")
    out = cluster_view(node_a, r"registered$", r"^key map: 3 domains")
    lines = out.splitlines()
    assert lines[0] == "cluster: node 'node-a', prefix /xcg/"
    assert lines[1] == "etcd endpoints:"
    assert lines[2].split() == [etcd.endpoints[0], "in", "use", "answering"]
    lease = stored(etcd, "/xcg/nodes/node-a")["lease"]
    assert f"lease: {lease:x}, ttl 30 s; nodes/node-a registered" in lines
    revision = stored(etcd, "/xcg/domains/web1")["mod_revision"]
    assert re.search(rf"^  web1  claimed \(running here\)  recorded for this node at revision {revision}$",
                     out, re.MULTILINE), out
    key_map = re.search(r"^key map: 3 domains, 3 keys, revision (\d+)$", out, re.MULTILINE)
    assert int(key_map.group(1)) >= stored(etcd, f"/xcg/keys/web3/{node_a.keys['web3'].fingerprint}")["mod_revision"]
    assert "registry:" not in out  # a front's only

    offered = cluster_view(node_b, r"web2  offered \(not running\)  recorded for this node at revision \d+$")
    assert "cluster: node 'node-b'" in offered


def test_a_front_shows_the_registry_it_routes_by_and_a_failing_endpoint(fleet, etcd):
    front, node_a, node_b, dead = fleet
    etcd.put("/xcg/domains/web3", "node-gone")
    out = cluster_view(front, r"^registry: 2 nodes, 3 domains$", r"^key map: 3 domains")
    lines = out.splitlines()
    assert lines[0] == "cluster: front 'front1', prefix /xcg/"
    failing = re.search(rf"^  {re.escape(dead)} +failing since \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ: \S.*$",
                        out, re.MULTILINE)
    assert failing, out
    assert re.search(rf"^  {re.escape(etcd.endpoints[0])} +in use +answering$", out, re.MULTILINE), out
    assert re.search(r"^  NODE +ADDRESS +DOMAINS$", out, re.MULTILINE), out
    assert re.search(rf"^  node-a +127\.0\.0\.1:{node_a.port} +web1$", out, re.MULTILINE), out
    assert re.search(rf"^  node-b +127\.0\.0\.1:{node_b.port} +web2$", out, re.MULTILINE), out
    assert "routed nowhere, their node is not registered: web3 (on node-gone)" in lines
    assert "lease:" not in out  # a node's only


def test_a_broker_without_cluster_says_so_in_one_line(make_gateway, socket_dir):
    gw = controlled(make_gateway, socket_dir, "single")
    result = ctl(gw, "cluster")
    assert result.returncode == 0
    assert result.stdout == "no cluster: section; this broker serves its own domains alone\n"
