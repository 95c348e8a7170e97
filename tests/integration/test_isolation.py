"""One process per session: losing one costs only that customer's connection."""

import os
import signal

import pexpect

from conftest import DETACH, children_of, describe, pid_alive, send_until, wait_for



def test_guests_are_children_named_xcg_guest(gw):
    guests = wait_for(lambda: len(gw.processes("xcg-guest")) == 3 and gw.processes("xcg-guest"),
                      10, "three xcg-guest children (web1, web2, web3)")
    assert len(guests) == 3


def test_session_process_per_connection(gw):
    assert gw.connected_sessions() == []
    a = gw.spawn("web1", "web1", "console")
    send_until(a, b"\r", rb"login: ")
    first = wait_for(lambda: gw.connected_sessions(), 10, "an xcg-session child")
    assert len(first) == 1
    b = gw.spawn("web2", "web2", "console")
    send_until(b, b"\r", rb"login: ")
    both = wait_for(lambda: len(gw.connected_sessions()) == 2 and gw.connected_sessions(),
                    10, "two xcg-session children")
    assert set(first) < set(both)
    for child in (a, b):
        child.send(DETACH)
        child.expect(pexpect.EOF)
    wait_for(lambda: gw.connected_sessions() == [], 10, "session processes to exit")


def test_killing_one_session_spares_the_others(gw):
    victim = gw.spawn("web1", "web1", "console")
    send_until(victim, b"\r", rb"login: ")
    victim_pids = wait_for(lambda: gw.connected_sessions(), 10, "the victim's session")
    assert len(victim_pids) == 1

    survivor = gw.spawn("web1", "web1", "console")
    send_until(survivor, b"\r", rb"login: ")
    survivor.send(b"root\r")
    survivor.expect(rb"web1:~# ")
    all_pids = gw.connected_sessions()
    assert len(all_pids) == 2 and victim_pids[0] in all_pids, all_pids

    os.kill(victim_pids[0], signal.SIGKILL)
    victim.expect(pexpect.EOF, timeout=10)
    victim.close()
    assert victim.exitstatus != 0 or victim.signalstatus is not None

    # The other customer's console carries on.
    survivor.send(b"echo still-here\r")
    survivor.expect(rb"\nstill-here\r?\n")
    # New logins work, and the broker noticed the death (the pid is gone, not a zombie).
    result = gw.ssh("web1", "web1", "status")
    assert result.returncode == 0, describe(result)
    wait_for(lambda: not os.path.exists(f"/proc/{victim_pids[0]}"), 10,
             "the killed session to be reaped (not left a zombie)")
    fresh = gw.spawn("web1", "web1", "console")
    send_until(fresh, b"\r", rb"web1:~# ")
    fresh.send(b"echo fresh\r")
    fresh.expect(rb"\nfresh\r?\n")
    survivor.expect(rb"\nfresh\r?\n")
    assert gw.alive()


def test_reboot_replaces_only_that_guest(gw):
    # A guest just forked is not yet named xcg-guest: wait until all three have exec'd.
    wait_for(lambda: len(gw.processes("xcg-guest")) == 3, 10, "three guest processes")
    guests_before = set(gw.processes("xcg-guest"))
    before = gw.domid("web3")
    result = gw.ssh("web3", "web3", "reboot")
    assert result.returncode == 0, describe(result)
    gw.wait_running_after(before, "web3")
    # The other domains' guest processes are untouched by web3's reboot.
    guests_after = set(gw.processes("xcg-guest"))
    assert len(guests_after) == 3
    assert len(guests_before & guests_after) >= 2
    assert gw.status("web1").startswith("web1: running")


def test_sigterm_stops_guests_and_sessions(make_gateway):
    gw = make_gateway()
    viewer = gw.spawn("web1", "web1", "console")
    send_until(viewer, b"\r", rb"login: ")
    children = [pid for pid, _ in children_of(gw.proc.pid)]
    assert len(gw.processes("xcg-guest")) == 3
    assert len(gw.connected_sessions()) == 1
    assert gw.terminate() == 0, gw.read_log()
    viewer.expect(pexpect.EOF, timeout=10)
    wait_for(lambda: not any(pid_alive(p) for p in children), 10,
             "guest and session processes to exit with the server")
