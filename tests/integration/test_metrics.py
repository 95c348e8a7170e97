"""The Prometheus endpoint (docs/metrics.md), scraped with urllib as Prometheus would: the
counters move by what happened (an SSH login, a refused key, a browser console login), anything
but GET /metrics is refused, a confined xcg-web answers, `xcg ctl metrics` prints the same
families, a node of a fleet shows etcd up and its key map's watch caught up, then etcd down once etcd is
gone, and a front its registry and its relays to nodes."""

import json
import os
import re
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import XCG, describe, ensure_user, proc_status, wait_for
from etcd_cluster import etcd  # noqa: F401 (fixture)
from test_front import fleet  # noqa: F401 (fixture)
from test_web_session import free_port, socket_dir, token, web_gateway  # noqa: F401 (fixture)
from web_client import TEXT, log_in

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE = re.compile(r"^([a-z_]+(?:\{[^}]*\})?) (\d+(?:\.\d+)?)$")


def parse(text):
    """Samples by name with labels ('xcg_logins_total{kind="ssh"}'); every family has HELP and TYPE."""
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("counter", "gauge"), line
            assert name.endswith("_total") == (kind == "counter"), line
            typed.add(name)
            continue
        if line.startswith("# HELP "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        assert match.group(1).split("{")[0] in typed, f"a sample before its TYPE line: {line!r}"
        value = match.group(2)
        samples[match.group(1)] = float(value) if "." in value else int(value)
    return samples


def url(gw, target="/metrics"):
    return f"http://127.0.0.1:{gw.metrics_port}{target}"


def scrape(gw):
    with urllib.request.urlopen(url(gw), timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == CONTENT_TYPE
        return parse(response.read().decode())


def probed_revision(gw):
    """The store's revision at the key map watch's last probe, from `xcg ctl cluster`."""
    result = subprocess.run([XCG, "ctl", "--socket", str(gw.control_socket), "cluster"], capture_output=True,
                            text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, describe(result)
    found = re.search(r"^key map watch: [\d.]+ s behind; the store at revision (\d+) at the last probe$",
                      result.stdout, re.MULTILINE)
    return int(found.group(1)) if found else 0


def refused_status(request):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    return refused.value.code


def with_metrics(gw, port):
    gw.metrics_port = port
    return gw


@pytest.fixture
def mgw(make_gateway, tmp_path, socket_dir):  # noqa: F811 (fixture)
    port = free_port()
    gw = web_gateway(make_gateway, tmp_path, socket_dir, metrics={"listen": [f"127.0.0.1:{port}"]})
    assert f"listening on 127.0.0.1:{port} (metrics)" in gw.read_log()
    return with_metrics(gw, port)


def moved(before, after):
    return {name: after.get(name, 0) - before.get(name, 0) for name in after}


def test_logins_and_failures_move_their_counters(mgw, keys):
    before = scrape(mgw)
    assert before['xcg_sessions{kind="ssh"}'] == 0
    ok = mgw.ssh("web1", "web1", "status")
    assert ok.returncode == 0, describe(ok)
    refused = mgw.ssh("web1", "stranger", "status")
    assert refused.returncode != 0, describe(refused)
    with log_in("127.0.0.1", mgw.web_port, mgw.host, mgw.origin, token(mgw)) as c:
        c.read_until(lambda op, p: op == TEXT and p.startswith(b"hello "))
        during = wait_for(lambda: (s := scrape(mgw))['xcg_sessions{kind="web"}'] == 1 and s, 10,
                          "the browser console session in xcg_sessions")
        assert during["xcg_console_viewers"] == 1
    after = wait_for(lambda: (s := scrape(mgw))['xcg_login_failures_total{kind="ssh",reason="key"}'] == 1
                     and s['xcg_sessions{kind="web"}'] == 0 and s, 10, "the refused connection counted")
    delta = moved(before, after)
    assert delta['xcg_logins_total{kind="ssh"}'] == 1
    assert delta['xcg_logins_total{kind="web"}'] == 1
    assert sum(v for name, v in delta.items() if name.startswith("xcg_login_failures_total")) == 1
    # The web console's replay went to its viewer.
    assert delta['xcg_console_bytes_total{direction="to_viewers"}'] > 0
    assert delta["xcg_metrics_scrapes_total"] >= 2
    assert after['xcg_reloads_total{result="ok"}'] == 0
    assert not any(name.startswith("xcg_etcd") for name in after), "no etcd without cluster:"


def test_only_get_metrics_is_served_and_the_server_goes_on(mgw):
    assert refused_status(urllib.request.Request(url(mgw), data=b"", method="POST")) == 405
    assert refused_status(urllib.request.Request(url(mgw, "/"))) == 404
    assert refused_status(urllib.request.Request(url(mgw, "/metrics/x"))) == 404
    with socket.create_connection(("127.0.0.1", mgw.metrics_port), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4096 + b"\r\n\r\n")
        assert s.recv(64).startswith(b"HTTP/1.1 431 "), "a request over the size cap"
    assert scrape(mgw)["xcg_metrics_scrapes_total"] == 1
    assert mgw.alive()


def test_a_confined_xcg_web_answers_not_the_broker(mgw):
    user = ensure_user()
    with socket.create_connection(("127.0.0.1", mgw.metrics_port), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
        pids = wait_for(lambda: mgw.processes("xcg-web"), 10, "an xcg-web child")
        assert len(pids) == 1, pids
        # It exists from its exec on; the request's first line is read only inside the sandbox.
        status = wait_for(lambda: (st := proc_status(pids[0]))["Seccomp"] == "2" and st, 10,
                          "xcg-web under seccomp")
        assert status["Uid"].split() == [str(user.pw_uid)] * 4, status["Uid"]
        assert os.readlink(f"/proc/{pids[0]}/root") == str(mgw.chroot)
        s.sendall(b"Host: x\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert b"Connection: close" in answer
    assert b"# TYPE xcg_logins_total counter" in answer


def test_ctl_metrics_prints_the_same_families(mgw):
    result = subprocess.run([XCG, "ctl", "--socket", str(mgw.control_socket), "metrics"], capture_output=True,
                            text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, describe(result)
    assert set(parse(result.stdout)) == set(scrape(mgw))


def test_a_node_shows_etcd_up_then_down(make_gateway, etcd, socket_dir):  # noqa: F811 (fixture)
    port = free_port()
    control = socket_dir / "control.sock"
    gw = make_gateway(extra={"cluster": {"endpoints": etcd.endpoints, "node": "node1", "lease_ttl": "2s"},
                             "metrics": {"listen": [f"127.0.0.1:{port}"]}},
                      args=["--control-socket", str(control)])
    gw.control_socket = control
    with_metrics(gw, port)
    up = wait_for(lambda: (s := scrape(gw))["xcg_etcd_up"] == 1 and s["xcg_etcd_lease_held"] == 1 and s, 10,
                  "etcd up and the lease held")
    assert up["xcg_etcd_key_map_revision"] > 0
    assert "xcg_registry_nodes" not in up, "a node has no registry view"
    # A write outside keys/ moves the store past the key map's last change: only etcd's progress
    # notifications (every second in these tests) tell the watch that it is current all the same.
    written = json.loads(etcd.etcdctl("put", "-w", "json", "/xcg/elsewhere", "x").stdout)["header"]["revision"]
    wait_for(lambda: probed_revision(gw) >= written, 10, "a probe that found the store at the write")
    assert up["xcg_etcd_key_map_revision"] < written
    wait_for(lambda: scrape(gw)["xcg_etcd_watch_lag_seconds"] == 0, 10, "the watch caught up")
    etcd.kill(0)
    wait_for(lambda: scrape(gw)["xcg_etcd_up"] == 0, 15, "etcd down")


def test_a_front_counts_the_registry_and_its_relays(fleet):  # noqa: F811 (fixture)
    front, _ = fleet
    before = scrape(front)
    assert before["xcg_etcd_up"] == 1
    assert (before["xcg_registry_nodes"], before["xcg_registry_domains"]) == (2, 2)
    assert "xcg_etcd_lease_held" not in before, "a front holds no lease"
    relayed = front.ssh("web1", "web1", "status")
    assert relayed.returncode == 0, describe(relayed)
    nowhere = front.ssh("web3", "web3", "status")
    assert nowhere.returncode == 1, describe(nowhere)
    delta = moved(before, scrape(front))
    assert delta['xcg_node_relays_total{result="ok"}'] == 1
    assert delta['xcg_node_relays_total{result="failed"}'] == 1
