"""Limits on what strangers can make the gateway do before (and after) they log in:
MaxStartups-style early drop, per-source limits, login grace, auth tries, sessions per domain
and the idle timeout. Connections are opened in parallel with non-blocking connects."""

import errno
import os
import random
import select
import socket
import subprocess
import time

import pexpect
import pytest

from conftest import DETACH, describe, make_key, proc_status, send_until, wait_for

RSS_LIMIT_KIB = 100 * 1024
PROMPTLY = 3  # seconds for the server to close a connection it refuses


def limited_gateway(make_gateway, **limits):
    return make_gateway(extra={"limits": limits})


def session_count(gw):
    return len(gw.connected_sessions())


def broker_rss_kib(gw):
    return int(proc_status(gw.proc.pid)["VmRSS"].split()[0])


class Connections:
    """TCP connections to the gateway, opened in parallel; all closed on exit."""

    def __init__(self, port):
        self.port = port
        self.socks = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for s in self.socks:
            s.close()

    def open(self, count, source="127.0.0.1", timeout=10):
        fresh = []
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.socks.append(s)
            s.setblocking(False)
            s.bind((source, 0))
            code = s.connect_ex(("127.0.0.1", self.port))
            assert code in (0, errno.EINPROGRESS), os.strerror(code)
            fresh.append(s)
        poller = select.poll()
        for s in fresh:
            poller.register(s, select.POLLOUT)
        pending = {s.fileno() for s in fresh}
        deadline = time.monotonic() + timeout
        while pending:
            left = deadline - time.monotonic()
            assert left > 0, f"{len(pending)} of {count} connects still pending"
            for fd, _ in poller.poll(left * 1000):
                poller.unregister(fd)
                pending.discard(fd)
        return fresh

    @staticmethod
    def fates(socks, timeout=PROMPTLY):
        """How the server treated each socket within `timeout`: "served" (an SSH banner came),
        "closed" (EOF or reset, nothing sent), or "open" (neither)."""
        fate = {s: "open" for s in socks}
        by_fd = {s.fileno(): s for s in socks}
        poller = select.poll()
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while by_fd:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for fd, _ in poller.poll(left * 1000):
                s = by_fd.pop(fd)
                poller.unregister(fd)
                try:
                    data = s.recv(256, socket.MSG_PEEK)
                except (ConnectionResetError, BrokenPipeError):
                    data = b""
                fate[s] = "served" if data.startswith(b"SSH-") else "closed"
        return fate


def tally(fate):
    return {kind: sum(1 for v in fate.values() if v == kind) for kind in ("served", "closed",
                                                                          "open")}


def test_flood_from_one_source_spares_others(make_gateway):
    gw = limited_gateway(make_gateway, max_startups="10:50:20", max_startups_per_source=5,
                         login_grace="5s")
    rng = random.Random(7)
    limit = 5 + 1 + 2  # the flooder's share + the legitimate login + slack
    with Connections(gw.port) as conns:
        flood = conns.open(130)
        # The first connections are the ones that get session processes: make some of them
        # noisy, so garbage reaches real sessions too.
        noisy = flood[:2] + rng.sample(flood[2:], 28)
        for s in noisy:
            try:
                s.send(rng.randbytes(300))
            except (BlockingIOError, ConnectionResetError, BrokenPipeError):
                pass
        # While the flood is open, a customer from another address logs in.
        argv = gw.ssh_argv("web1", "web1", ["status"], extra=["-o", "BindAddress=127.0.0.2"])
        ssh = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        samples = []
        try:
            deadline = time.monotonic() + 20
            while ssh.poll() is None and time.monotonic() < deadline:
                samples.append((session_count(gw), broker_rss_kib(gw)))
                time.sleep(0.05)  # sampling rate, not synchronisation
            out, err = ssh.communicate(timeout=5)
        finally:
            if ssh.poll() is None:
                ssh.kill()
                ssh.wait()
        result = subprocess.CompletedProcess(argv, ssh.returncode, out, err)
        assert result.returncode == 0, describe(result)
        assert result.stdout.startswith("web1: running"), describe(result)
        fate = Connections.fates(flood)
        samples.append((session_count(gw), broker_rss_kib(gw)))
    assert samples and max(n for n, _ in samples) <= limit, samples
    assert max(rss for _, rss in samples) < RSS_LIMIT_KIB, samples
    counts = tally(fate)
    assert counts["served"] <= 5 and counts["open"] == 0, counts
    assert gw.alive()


def test_per_source_limit(make_gateway):
    gw = limited_gateway(make_gateway, max_startups="10:50:30", max_startups_per_source=5,
                         login_grace="30s")
    with Connections(gw.port) as conns:
        socks = conns.open(20)
        fate = Connections.fates(socks)
        counts = tally(fate)
        assert counts == {"served": 5, "closed": 15, "open": 0}, counts
        assert session_count(gw) == 5
        # Another address is not affected by this one's limit.
        result = gw.ssh("web1", "web1", "status", extra=["-o", "BindAddress=127.0.0.2"])
        assert result.returncode == 0, describe(result)
        wait_for(lambda: session_count(gw) <= 5, 5, "the legitimate session to end")


def test_per_source_limit_counts_a_network(make_gateway):
    # One connection from each of eight addresses of 127.0.0.0/24: one source at /24.
    gw = limited_gateway(make_gateway, max_startups="50:50:100", max_startups_per_source=4,
                         source_prefix_v4=24, login_grace="30s")
    with Connections(gw.port) as conns:
        socks = []
        for last in range(1, 9):
            socks += conns.open(1, source=f"127.0.0.{last}")
        counts = tally(Connections.fates(socks))
        assert counts == {"served": 4, "closed": 4, "open": 0}, counts
        # Another /24 is another source.
        elsewhere = tally(Connections.fates(conns.open(1, source="127.0.1.1")))
        assert elsewhere == {"served": 1, "closed": 0, "open": 0}, elsewhere


def test_total_unauthenticated_limit(make_gateway):
    full = 20
    gw = limited_gateway(make_gateway, max_startups=f"5:50:{full}", max_startups_per_source=5,
                         login_grace="30s")
    with Connections(gw.port) as conns:
        socks = []
        counts = []
        for last in range(10, 40):
            socks += conns.open(1, source=f"127.0.0.{last}")
            counts.append(session_count(gw))
        fate = Connections.fates(socks)
        counts.append(session_count(gw))
        tally_ = tally(fate)
        assert max(counts) <= full, counts
        assert tally_["open"] == 0, tally_
        assert 5 <= tally_["served"] <= full, tally_
        assert tally_["closed"] >= 30 - full, tally_


def test_login_grace(make_gateway):
    grace = 3
    gw = limited_gateway(make_gateway, login_grace=grace)  # a plain number: seconds
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        connected = time.monotonic()
        s.setblocking(False)
        received = b""
        closed_at = None
        deadline = connected + grace + 4
        while closed_at is None and time.monotonic() < deadline:
            ready, _, _ = select.select([s], [], [], deadline - time.monotonic())
            if not ready:
                continue
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                received += chunk  # the server's banner; we never answer
            else:
                closed_at = time.monotonic()
    assert received.startswith(b"SSH-2.0-"), received
    assert closed_at is not None, f"still open {grace + 4}s after connecting"
    elapsed = closed_at - connected
    assert elapsed >= max(1.0, grace - 0.5), f"closed after only {elapsed:.1f}s"
    wait_for(lambda: session_count(gw) == 0, 5, "the session process to exit")


@pytest.fixture(scope="module")
def wrong_keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wrong-keys")
    return [make_key(directory, f"wrong{i}", ["-t", "ed25519"]) for i in range(8)]


@pytest.mark.parametrize("wrong,logs_in", [(5, True), (6, False), (8, False)])
def test_max_key_offers(make_gateway, keys, wrong_keys, wrong, logs_in):
    # Failed signed logins (max_auth_tries) need a client that signs for keys the server
    # refused; tests/badinput has those. OpenSSH's ssh offers first, so here it is the offers.
    gw = limited_gateway(make_gateway, max_key_offers=6)
    # ssh offers its -i keys in order: `wrong` strangers' keys, then web1's own.
    offered = wrong_keys[:wrong]
    extra = [arg for key in offered[1:] for arg in ("-i", str(key.path))]
    extra += ["-i", str(keys["web1"].path)]
    result = gw.ssh("web1", offered[0], "status", extra=extra)
    if logs_in:
        assert result.returncode == 0, describe(result)
    else:
        assert result.returncode == 255, describe(result)
        assert "web1" not in result.stdout, describe(result)


def test_max_sessions_per_domain(make_gateway):
    gw = limited_gateway(make_gateway, max_sessions_per_domain=2)
    first = gw.spawn("web1", "web1", "console")
    second = gw.spawn("web1", "web1", "console")
    for child in (first, second):
        send_until(child, b"\r", rb"login: ")
    third = gw.ssh("web1", "web1", "status")
    assert third.returncode == 255, describe(third)
    other = gw.ssh("web2", "web2", "status")
    assert other.returncode == 0, describe(other)
    first.send(DETACH)
    first.expect(pexpect.EOF)
    wait_for(lambda: gw.ssh("web1", "web1", "status").returncode == 0, 10,
             "web1 to accept a login again after one of its sessions ended")
    second.send(b"\r")
    second.expect(rb"login: ")


IDLE = 2


def test_idle_session_is_closed(make_gateway):
    gw = limited_gateway(make_gateway, idle_timeout=f"{IDLE}s")
    started = time.monotonic()
    child = gw.spawn("web1", "web1", "console")
    child.expect(rb"(?i)idle", timeout=IDLE + 6)
    elapsed = time.monotonic() - started
    child.expect(pexpect.EOF, timeout=5)
    assert elapsed >= IDLE - 0.5, f"closed after only {elapsed:.1f}s"
    wait_for(lambda: session_count(gw) == 0, 5, "the session process to exit")


def test_typing_session_stays(make_gateway):
    gw = limited_gateway(make_gateway, idle_timeout=f"{IDLE}s")
    child = gw.spawn("web1", "web1", "console")
    send_until(child, b"\r", rb"login: ")
    until = time.monotonic() + 2 * IDLE + 1
    while time.monotonic() < until:
        child.send(b"\r")
        child.expect(rb"login: ")
        # Pause between keystrokes; an EOF here means the server closed us.
        index = child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=0.5)
        assert index == 1, f"closed while typing: {child.before!r}"
    child.send(b"root\r")
    child.expect(rb"web1:~# ")
    child.send(b"echo still-typing\r")
    child.expect(rb"\nstill-typing\r?\n")
