"""The fleet on real Xen (docs/fleet.md): a one-member etcd and a front (`xcg serve`, role:
front) on the host, xcg in dom0 as the node that runs guest1 and guest2. The customer's
OpenSSH client logs in at the front; the front's session relays to the node through QEMU's
hostfwd port, the address the node advertises in etcd.

dom0 cannot open a connection to the host: QEMU's user network has restrict=on, and xcg
speaks plain http to an etcd on loopback only. So the operator's ssh connection carries a
remote forward, and dom0's 127.0.0.1:2379 is the host's etcd.

The module stops the session's xcg serve in dom0, runs the node in its place, and starts the
usual one again at the end, so the other modules see dom0 as they always do."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from conftest import (BANNER, GUESTS, RUN, RUNNING, Client, Gateway, common_config_lines, describe,
                      detach, send_until, ssh_base, wait_for)

sys.path.append(str(Path(__file__).resolve().parents[1] / "integration"))
from etcd_cluster import EtcdCluster  # noqa: E402

XCG = os.environ.get("XCG_BINARY", str(Path(__file__).resolve().parents[2] / "build" / "xcg"))
DOM0_ETCD_PORT = 2379      # dom0's end of the remote forward
DOM0_AUDIT = "/var/log/xcg/audit.jsonl"
NODE = "xcg-testbed"       # the node's name in etcd
REACH_TIMEOUT = 120        # the node registered and its key map read, seen through the front
REVOKE_TIMEOUT = 3         # a key deleted in etcd -> the relayed session's end


def fingerprint(path):
    """SHA256:... of the key in `path` (private or public), as etcd's key map names it."""
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(path)], capture_output=True, text=True,
                         check=True, timeout=10).stdout
    return out.split()[1]


class Front(Client):
    """`xcg serve` with `role: front` on the host's loopback, and the customer's client for it."""

    def __init__(self, directory, keys, endpoints):
        self.keys = keys
        self.dir = directory
        self.known_hosts = directory / "known_hosts"
        self.config_path = directory / "front.yaml"
        self.log_path = directory / "front.log"
        self.host_key = directory / "hostkey"
        self.port = None
        self.proc = None
        self.config_path.write_text("\n".join([
            'listen: ["127.0.0.1:0"]',
            f"host_keys: [{json.dumps(str(self.host_key))}]",
            f"audit_log: {json.dumps(str(directory / 'audit.jsonl'))}",
            "cluster:",
            f"  endpoints: {json.dumps(endpoints)}",
            "  node: front1",
            "  role: front"]) + "\n")

    def start(self):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([XCG, "serve", "--config", str(self.config_path)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)

        def listening():
            match = re.search(rb"listening on 127\.0\.0\.1:(\d+)", self.log_path.read_bytes())
            assert match or self.proc.poll() is None, f"the front exited:\n{self.log()}"
            return match and int(match.group(1))

        self.port = wait_for(listening, 30, "the front's 'listening on'", 0.1)

    def public_key(self):
        return subprocess.run(["ssh-keygen", "-y", "-f", str(self.host_key)], capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()

    def keys_command(self, *args):
        """`xcg keys` with the front's cluster settings."""
        return subprocess.run([XCG, "keys", "--config", str(self.config_path), *args], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Tunnel:
    """The operator's ssh to dom0 with `-R`: dom0's 127.0.0.1:2379 leads to the host's etcd."""

    def __init__(self, bed, host_port, log_path):
        self.log_path = log_path
        argv = ssh_base(bed.ssh_port, bed.key) + [
            "-N", "-o", "ExitOnForwardFailure=yes", "-o", "ControlPath=none",
            "-o", "ServerAliveInterval=10",
            "-R", f"127.0.0.1:{DOM0_ETCD_PORT}:127.0.0.1:{host_port}", "root@127.0.0.1"]
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def wait_open(self, bed):
        """Until etcd answers its health check from inside dom0."""
        probe = (f"exec 3<>/dev/tcp/127.0.0.1/{DOM0_ETCD_PORT} && "
                 "printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3")

        def healthy():
            assert self.proc.poll() is None, f"ssh -R ended: {self.log_path.read_text()}"
            return '"health":"true"' in bed.run("bash", "-c", probe, timeout=60).stdout

        wait_for(healthy, 120, "etcd's health from dom0 through the forward", 1.0)

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=15)


def node_config(bed, front_key):
    lines = common_config_lines() + [
        "cluster:",
        f'  endpoints: ["http://127.0.0.1:{DOM0_ETCD_PORT}"]',
        f"  node: {NODE}",
        f'  advertise: "127.0.0.1:{bed.xcg_port}"',  # the host's end of dom0's hostfwd
        "fronts:",
        f"  - {json.dumps(front_key)}",
        "domains:"]
    return "\n".join(lines + [f"  {name}:" for name in GUESTS]) + "\n"


def keys_file(directory, keys):
    path = directory / "keys.yaml"
    lines = ["domains:"]
    for name in GUESTS:
        lines += [f"  {name}:", "    keys:", f"      - {json.dumps(keys[name].public_line)}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def reach(front, domain):
    """Waits until the front routes `domain` to the node and the node lets its key in."""
    tries = []

    def through():
        tries.append(front.ssh(domain, domain, "status", timeout=120))
        return tries[-1].returncode == 0

    try:
        wait_for(through, REACH_TIMEOUT, f"{domain} through the front", 2.0)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{describe(tries[-1])}") from None


class Fleet:
    def __init__(self, etcd, front, node, keys_path):
        self.etcd, self.front, self.node, self.keys_path = etcd, front, node, keys_path


@pytest.fixture(scope="module")
def running_fleet(bed, keys, gateway_session, tmp_path_factory):
    directory = tmp_path_factory.mktemp("fleet")
    etcd = EtcdCluster(1, base_dir=directory).start()
    tunnel = front = node = None
    problems = []
    try:
        tunnel = Tunnel(bed, etcd.client_urls[0].rsplit(":", 1)[1], directory / "tunnel.log")
        tunnel.wait_open(bed)
        front = Front(directory, keys, etcd.endpoints)
        front.start()
        problems.append(gateway_session.stop())
        node = Gateway(bed, keys, directory)
        node.start(node_config(bed, front.public_key()))
        keys_path = keys_file(directory, keys)
        imported = front.keys_command("import", str(keys_path))
        assert imported.returncode == 0, describe(imported)
        bed.ensure_running(*GUESTS)
        for name in GUESTS:
            reach(front, name)
        yield Fleet(etcd, front, node, keys_path)
    finally:
        if node is not None:
            problems.append(node.stop())
            (RUN / "dom0-fleet-node.log").write_text(node.log())
        if front is not None:
            front.stop()
        if tunnel is not None:
            tunnel.close()
        etcd.stop()
        if gateway_session.pid is None:
            gateway_session.start()  # dom0's usual xcg serve again, for the modules after this
    problems = [p for p in problems if p]
    if problems:
        pytest.fail(f"xcg serve in dom0: {'; '.join(problems)}", pytrace=False)


@pytest.fixture
def fleet(request, running_fleet):
    """The running fleet; a failing test's report shows the node's, the front's and etcd's logs."""
    request.node._xcg_gateway = running_fleet.node
    request.node._xcg_logs = [("the front's log (host)", running_fleet.front.log),
                              ("etcd's log (host)", running_fleet.etcd.read_logs)]
    return running_fleet


def attach(front, transcripts, domain):
    child = front.spawn(transcripts, domain, domain, "console")
    send_until(child, b"\r", domain.encode() + b"# ")
    return child


def round_trip(child, domain, word):
    # The guest's shell computes the answer: an echo of the typed line cannot match.
    child.send(b"echo %s-$((6*7))\r" % word)
    child.expect(rb"\n%s-42\r*\n" % word)
    child.expect(domain.encode() + b"# ")


def front_logins(bed, front):
    """The node's audit records of logins that came through the front."""
    records = [json.loads(line) for line in bed.check("cat", DOM0_AUDIT).splitlines() if line.strip()]
    front_fp = fingerprint(front.host_key)
    return [r for r in records if r.get("event") == "auth_success" and r.get("front_fp") == front_fp]


@pytest.mark.parametrize("name", GUESTS)
def test_status_through_the_front_is_the_real_domain(fleet, bed, keys, name):
    result = fleet.front.ssh(name, name, "status")
    assert result.returncode == 0, describe(result)
    match = RUNNING.match(result.stdout.strip())
    assert match and match.group("name") == name, describe(result)
    assert int(match.group("domid")) == bed.domid(name)
    logins = [r for r in front_logins(bed, fleet.front) if r.get("domain") == name]
    assert logins and logins[-1].get("fingerprint") == fingerprint(keys[name].path), logins


def test_console_through_the_front_takes_typing_and_replays(fleet, transcripts):
    front = fleet.front
    child = attach(front, transcripts, "guest1")
    round_trip(child, "guest1", b"through-the-front")
    child.send(b"cat /etc/guest-name\r")
    child.expect(rb"\nguest1\r*\n")
    detach(child)
    again = front.spawn(transcripts, "guest1", "guest1", "console")
    again.expect(rb"\nthrough-the-front-42\r*\n")  # the node's replay, before anything is typed
    detach(again)


def test_reboot_through_the_front_shows_the_new_boots_banner(fleet, bed, transcripts):
    front = fleet.front
    child = attach(front, transcripts, "guest2")
    old_domid = bed.domid("guest2")
    old_boots = bed.boots("guest2")
    result = front.ssh("guest2", "guest2", "reboot")
    assert result.returncode == 0, describe(result)
    child.expect(rb"\[xcg: guest2 rebooted, new domid (\d+)\]", timeout=180)
    new_domid = int(child.match.group(1))
    child.expect(BANNER, timeout=180)
    boot = child.match.group("boot").decode()
    assert child.match.group("name") == b"guest2" and boot not in old_boots
    assert bed.wait_boots("guest2", len(old_boots) + 1)[-1] == boot  # the one xenconsoled logged
    assert new_domid == bed.domid("guest2") != old_domid
    detach(child)
    again = front.spawn(transcripts, "guest2", "guest2", "console")
    again.expect(BANNER)  # the replay is the current boot's output
    assert again.match.group("boot").decode() == boot
    send_until(again, b"\r", b"guest2# ")
    round_trip(again, "guest2", b"after-reboot")
    detach(again)


def test_a_key_deleted_in_etcd_ends_the_relayed_session(fleet, keys, transcripts):
    front, etcd = fleet.front, fleet.etcd
    victim = attach(front, transcripts, "guest1")
    survivor = attach(front, transcripts, "guest2")
    try:
        started = time.monotonic()
        etcd.delete(f"/xcg/keys/guest1/{fingerprint(keys['guest1'].path)}")
        victim.expect(rb"\[xcg: access to guest1 was revoked\]", timeout=REVOKE_TIMEOUT)
        victim.expect(pexpect.EOF, timeout=REVOKE_TIMEOUT)
        print(f"revoked session ended {time.monotonic() - started:.2f}s after the delete")
        round_trip(survivor, "guest2", b"still-here")
        refused = front.ssh("guest1", "guest1", "status")
        assert refused.returncode == 255 and "Permission denied" in refused.stderr, describe(refused)
    finally:
        again = front.keys_command("import", str(fleet.keys_path))  # for whatever runs next
        assert again.returncode == 0, describe(again)
    detach(survivor)


SAVED = "/var/tmp/guest2.save"  # dom0's disk: the save image of 128 MiB would crowd its memory
SAVE_TIMEOUT = 600               # an emulated xl save or xl restore
MOVE_WAIT = 10                   # NodeLinks::kMoveTimeout: how long a front waits for a new node


def settled(fleet, bed, transcripts, name):
    """A direct console on `name` once it runs under one domid and its shell answers: an
    earlier test may have just rebooted it, and a domid seen before the reboot ended would be
    gone by the time xl save looks."""
    bed.ensure_running(name)
    domid = fleet.node.wait_running(name)
    child = attach(fleet.node, transcripts, name)
    round_trip(child, name, b"settled")
    wait_for(lambda: bed.domid(name) == domid, 60, f"{name} to keep domid {domid}", 1.0)
    assert fleet.node.wait_running(name) == domid
    return child, domid


def test_a_saved_guest_ends_its_sessions_with_one_line(fleet, bed, transcripts):
    front = fleet.front
    direct, old_domid = settled(fleet, bed, transcripts, "guest2")
    relayed = attach(front, transcripts, "guest2")
    round_trip(relayed, "guest2", b"before-save")
    started = time.monotonic()
    saver = subprocess.Popen(bed.argv(["xl", "save", "guest2", SAVED]), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # The first notice must be the one: a stop notice would come first without it.
        direct.expect(rb"\[xcg: [^\]]*\]", timeout=SAVE_TIMEOUT)
        left = time.monotonic()
        said = direct.before + direct.after
        assert direct.after == b"[xcg: guest2 left this host]", said
        direct.expect(pexpect.EOF, timeout=30)
        said += direct.before
        assert said.count(b"[xcg:") == 1 and b"shut off" not in said, said
        relayed.expect(rb"guest2 left %s and did not appear on any node within %d s" % (
            NODE.encode(), MOVE_WAIT), timeout=MOVE_WAIT + 60)
        gave_up = time.monotonic()
        assert b"shut off" not in relayed.before, relayed.before
        relayed.expect(pexpect.EOF, timeout=30)
        out, _ = saver.communicate(timeout=SAVE_TIMEOUT)
        assert saver.returncode == 0, out
        saved = time.monotonic()
        assert bed.domid("guest2") is None

        bed.check("xl", "restore", SAVED, timeout=SAVE_TIMEOUT)
        restored = time.monotonic()
        new_domid = bed.domid("guest2")
        assert new_domid is not None and new_domid != old_domid
        assert fleet.node.wait_running("guest2") == new_domid
        again = attach(front, transcripts, "guest2")
        round_trip(again, "guest2", b"after-restore")  # the same shell, resumed
        detach(again)
        print(f"xl save: the direct line {left - started:.1f}s after it began, the front's "
              f"{gave_up - left:.1f}s after that, xl save done at {saved - started:.1f}s; "
              f"xl restore {restored - saved:.1f}s; console through the front again "
              f"{time.monotonic() - restored:.1f}s later")
    finally:
        if saver.poll() is None:
            saver.kill()
        saver.wait()
        bed.run("rm", "-f", SAVED)
