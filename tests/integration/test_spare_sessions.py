"""Spare sessions (limits.spare_sessions): xcg-session processes exec'd ahead of time and
parked until the broker hands one a connection with its hello. Each spare serves one
connection and is replaced; one that dies while parked is replaced; the pool follows reloads;
a parked spare holds no connection and counts against no connection limit."""

import os
import re
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import (RUNNING, XCG, default_domains, describe, exit_menu, pid_alive, render_config,
                      wait_for)

POOL_TIMEOUT = 10
SIM = {"autostart": True, "shutdown_grace_ms": 2000}


def spare_gateway(make_gateway, spares=None, args=(), **limits):
    if spares is not None:
        limits["spare_sessions"] = spares
    return make_gateway(extra={"limits": limits} if limits else None, args=args)


def wait_pool(gw, n, what=None):
    """The parked spares once there are exactly `n`."""
    wait_for(lambda: len(gw.spares()) == n, POOL_TIMEOUT, what or f"{n} parked spare sessions")
    return gw.spares()


def open_menu(gw, domain="web1"):
    child = gw.spawn(domain, domain, tty=True)
    child.expect(rb"Choice: ")
    return child


def rewrite_limits(gw, keys, **limits):
    """Replaces the config (by rename, as an editor does) with these limits."""
    text = render_config(gw.dir, default_domains(keys), SIM, {"limits": limits})
    fresh = gw.config_path.with_suffix(".new")
    fresh.write_text(text)
    os.replace(fresh, gw.config_path)


def log_count(gw, text):
    return gw.read_log().count(text)


def test_pool_holds_the_configured_spares_after_start(make_gateway):
    gw = spare_gateway(make_gateway, spares=3)
    spares = wait_pool(gw, 3)
    assert all(pid_alive(p) for p in spares)


def test_default_is_two_spares(gw):
    spares = wait_pool(gw, 2)
    assert all(pid_alive(p) for p in spares)


def test_login_takes_a_spare_and_the_pool_refills(make_gateway):
    gw = spare_gateway(make_gateway, spares=2)
    before = set(wait_pool(gw, 2))
    child = open_menu(gw)
    connected = wait_for(gw.connected_sessions, POOL_TIMEOUT, "the login's session")
    assert len(connected) == 1 and connected[0] in before, (connected, before)
    # Refilled with new processes: the taken one is not parked again.
    after = wait_for(lambda: (lambda s: len(s) == 2 and not (set(s) & {connected[0]}) and s)(gw.spares()),
                     POOL_TIMEOUT, "the pool refilled to 2")
    assert set(after) != before
    exit_menu(child)
    wait_for(lambda: not pid_alive(connected[0]), POOL_TIMEOUT, "the used session to end")


def test_each_login_gets_its_own_process(make_gateway):
    gw = spare_gateway(make_gateway, spares=2)
    wait_pool(gw, 2)
    used = []
    for _ in range(4):
        child = open_menu(gw)
        pid = wait_for(gw.connected_sessions, POOL_TIMEOUT, "the login's session")[0]
        assert pid not in used, (pid, used)
        used.append(pid)
        exit_menu(child)
        wait_for(lambda: not pid_alive(pid) and not gw.connected_sessions(), POOL_TIMEOUT,
                 "the session to end")
        assert pid not in gw.spares()
    assert len(set(used)) == 4


def test_spare_killed_while_parked_is_replaced(make_gateway):
    gw = spare_gateway(make_gateway, spares=2)
    victim, other = wait_pool(gw, 2)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: (lambda s: len(s) == 2 and victim not in s and other in s)(gw.spares()),
             POOL_TIMEOUT, "the killed spare replaced")
    assert "ended while parked (signal 9)" in gw.read_log()
    status = gw.ssh("web1", "web1", "status")
    assert status.returncode == 0 and RUNNING.match(status.stdout.strip()), describe(status)


def test_spare_sessions_0_starts_none(make_gateway):
    assert_none_parked(spare_gateway(make_gateway, spares=0))


def assert_none_parked(gw):
    status = gw.ssh("web1", "web1", "status")
    assert status.returncode == 0 and RUNNING.match(status.stdout.strip()), describe(status)
    # The loop has turned many times by now: a spare would have been started long ago.
    wait_for(lambda: not gw.connected_sessions(), POOL_TIMEOUT, "the session to end")
    assert gw.processes("xcg-session") == []


def test_spares_are_stopped_at_shutdown(make_gateway):
    gw = spare_gateway(make_gateway, spares=3)
    spares = wait_pool(gw, 3)
    assert gw.terminate() == 0
    assert not [p for p in spares if pid_alive(p)]


def test_out_of_range_is_a_config_error(tmp_path, keys):
    config = tmp_path / "xcg.yaml"
    config.write_text(render_config(tmp_path, default_domains(keys), SIM, {"limits": {"spare_sessions": 65}}))
    result = subprocess.run([XCG, "check", "--config", str(config)], capture_output=True, text=True,
                            timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode != 0, describe(result)
    assert "spare_sessions: expected an integer from 0 to 64, got '65'" in result.stdout + result.stderr, \
        describe(result)


def test_reload_adjusts_the_pool_and_refuses_out_of_range(make_gateway, keys):
    gw = spare_gateway(make_gateway, spares=2)
    parked = wait_pool(gw, 2)
    rejected = log_count(gw, "is not valid; still running the previous config")
    rewrite_limits(gw, keys, spare_sessions=65)
    wait_for(lambda: log_count(gw, "is not valid; still running the previous config") > rejected,
             POOL_TIMEOUT, "the reload to be refused")
    assert "spare_sessions: expected an integer from 0 to 64" in gw.read_log()
    assert gw.spares() == parked
    rewrite_limits(gw, keys, spare_sessions=4)
    grown = wait_pool(gw, 4, "the pool grown to 4")
    assert set(parked) <= set(grown)
    rewrite_limits(gw, keys, spare_sessions=1)
    wait_pool(gw, 1, "the pool shrunk to 1")
    rewrite_limits(gw, keys, spare_sessions=0)
    wait_pool(gw, 0, "the pool emptied")


def test_spares_count_against_no_connection_limit(make_gateway):
    # One connection logging in at a time, from anywhere: three parked spares must not use it up.
    gw = spare_gateway(make_gateway, spares=3, max_startups=1, max_startups_per_source=1)
    wait_pool(gw, 3)
    status = gw.ssh("web1", "web1", "status")
    assert status.returncode == 0 and RUNNING.match(status.stdout.strip()), describe(status)
    wait_for(lambda: not gw.connected_sessions(), POOL_TIMEOUT, "the session to end")
    # A spare given a connection does count: a silent connection holds the one place.
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as silent:
        assert silent.recv(4, socket.MSG_PEEK) == b"SSH-"
        refused = gw.ssh("web1", "web1", "status")
        assert refused.returncode != 0, describe(refused)


def test_metrics_and_status_count_the_spares(make_gateway, tmp_path):
    directory = Path(tempfile.mkdtemp(prefix="xcg-spares-"))
    path = directory / "control.sock"
    gw = spare_gateway(make_gateway, spares=3, args=["--control-socket", str(path)])
    parked = wait_pool(gw, 3)

    def ctl(*words):
        result = subprocess.run([XCG, "ctl", "--socket", str(path), *words], capture_output=True,
                                text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, describe(result)
        return result.stdout

    assert re.search(r"^xcg_sessions_spare 3$", ctl("metrics"), re.M), ctl("metrics")
    line = re.search(r"^sessions: 0 logged in, 0 logging in, 3 spare \(parked: ([\d ]+)\)$",
                     ctl("status"), re.M)
    assert line and sorted(map(int, line.group(1).split())) == parked, ctl("status")
