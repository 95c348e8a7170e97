"""The etcd test cluster itself (etcd_cluster.py), which the fleet's tests stand on."""

import os
import subprocess

from etcd_cluster import ETCDCTL, EtcdCluster, etcd, etcd3  # noqa: F401 (fixtures)


def test_one_member_stores_and_stops(tmp_path):
    cluster = EtcdCluster(1, base_dir=tmp_path).start()
    try:
        cluster.put("/xcg/a", "value with spaces")
        assert cluster.get("/xcg/a") == "value with spaces"
        assert cluster.get("/xcg/missing") is None
        assert cluster.get_prefix("/xcg/") == {"/xcg/a": "value with spaces"}
    finally:
        cluster.stop()
    assert not cluster.healthy(0)
    assert all(p is None for p in cluster.procs)


def test_three_members_survive_a_killed_one(etcd3):
    etcd3.kill(0)
    etcd3.wait_healthy(1)  # a new leader, if m0 was it
    etcd3.put("/xcg/b", "1")
    assert etcd3.get("/xcg/b") == "1"
    assert not etcd3.healthy(0)


def test_a_paused_member_answers_nothing_until_resumed(etcd):
    etcd.pause(0)
    assert not etcd.healthy(0)
    etcd.resume(0)
    etcd.wait_healthy(0)


def test_a_tls_cluster_serves_only_clients_of_its_ca(tmp_path):
    with EtcdCluster(1, base_dir=tmp_path, tls=True) as cluster:
        assert cluster.endpoints[0].startswith("https://")
        cluster.put("/xcg/c", "over tls")
        assert cluster.get("/xcg/c") == "over tls"
        anonymous = subprocess.run([ETCDCTL, "--endpoints", cluster.endpoints[0], "--dial-timeout", "1s",
                                    "--command-timeout", "2s", "--cacert", cluster.ca_file, "get", "/xcg/c"],
                                   env=dict(os.environ, ETCDCTL_API="3"), capture_output=True, text=True,
                                   timeout=15)
        assert anonymous.returncode != 0
