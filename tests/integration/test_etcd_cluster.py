"""The etcd test cluster itself (etcd_cluster.py), which the fleet's tests stand on."""

from etcd_cluster import EtcdCluster, etcd, etcd3  # noqa: F401 (fixtures)


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
