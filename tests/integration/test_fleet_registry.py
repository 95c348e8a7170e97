"""A node of a fleet (`cluster:`, role node) keeps its registry records in a real etcd:
nodes/<node> under its lease, domains/<domain> for each of its domains (docs/fleet.md)."""

import json
import subprocess

import pytest

from conftest import wait_for
from etcd_cluster import etcd  # noqa: F401 (fixture)


def cluster_section(etcd, ttl="2s"):
    return {"cluster": {"endpoints": etcd.endpoints, "node": "node1", "lease_ttl": ttl}}


def host_key_fingerprint(gw):
    listing = subprocess.run(["ssh-keygen", "-lf", str(gw.host_key_path)], capture_output=True, text=True,
                             check=True, timeout=10).stdout
    return listing.split()[1]


def test_a_node_registers_itself_and_its_domains(make_gateway, etcd):
    gw = make_gateway(extra=cluster_section(etcd))
    record = wait_for(lambda: etcd.get("/xcg/nodes/node1"), 10, "nodes/node1")
    node = json.loads(record)
    assert node["address"] == f"127.0.0.1:{gw.port}"
    assert node["fingerprint"] == host_key_fingerprint(gw)
    assert node["version"]
    domains = {"/xcg/domains/web1": "node1", "/xcg/domains/web2": "node1", "/xcg/domains/web3": "node1"}
    wait_for(lambda: etcd.get_prefix("/xcg/domains/") == domains, 10, "the three domains' records")


def test_a_stopped_node_revokes_its_lease(make_gateway, etcd):
    gw = make_gateway(extra=cluster_section(etcd, ttl="30s"))
    wait_for(lambda: etcd.get("/xcg/nodes/node1"), 10, "nodes/node1")
    assert gw.stop() == 0
    # Gone as the node stops, not when its 30 s TTL runs out.
    assert etcd.get("/xcg/nodes/node1") is None
    # Its own revocation deleted the key: no cause to register again.
    assert "registering again" not in gw.read_log()
    # The domain records stay: a front routes them nowhere until their node is back.
    assert etcd.get("/xcg/domains/web1") == "node1"


def test_a_domain_another_node_holds_is_not_taken_while_it_does_not_run(make_gateway, etcd):
    etcd.put("/xcg/domains/web1", "node2")
    make_gateway(extra=cluster_section(etcd), sim={"autostart": False})
    wait_for(lambda: etcd.get("/xcg/domains/web2") == "node1", 10, "web2 offered")
    assert etcd.get("/xcg/domains/web1") == "node2"


def use_host_keys(gw, paths):
    text = gw.config_path.read_text()
    own = f"host_keys: [{json.dumps(str(gw.host_key_path))}]"
    gw.config_path.write_text(text.replace(own, f"host_keys: {json.dumps([str(p) for p in paths])}"))


def test_a_node_registers_its_ed25519_host_key_wherever_it_is_listed(make_gateway, etcd):
    gw = make_gateway(extra=cluster_section(etcd, ttl="30s"))
    assert gw.stop() == 0
    ecdsa = gw.dir / "hostkey-ecdsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(ecdsa)], check=True, timeout=30)
    use_host_keys(gw, [ecdsa, gw.host_key_path])
    gw.start()
    # The record of the first run was revoked with its lease as it stopped.
    record = wait_for(lambda: etcd.get("/xcg/nodes/node1"), 10, "nodes/node1")
    assert json.loads(record)["fingerprint"] == host_key_fingerprint(gw)


def test_a_node_without_an_ed25519_host_key_does_not_start(make_gateway, etcd):
    gw = make_gateway(extra=cluster_section(etcd, ttl="30s"))
    assert gw.stop() == 0
    ecdsa = gw.dir / "hostkey-ecdsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(ecdsa)], check=True, timeout=30)
    use_host_keys(gw, [ecdsa])
    with pytest.raises(AssertionError, match="exited with 1 before listening"):
        gw.start()
    assert "a fleet node needs an Ed25519 host key" in gw.read_log()
    assert etcd.get("/xcg/nodes/node1") is None
    gw.proc = None  # it exited as it should: nothing for the teardown to stop
