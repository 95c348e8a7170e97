"""The guest console over `ssh web1@gw console`: raw bytes both ways, Ctrl-] leaves."""

import time

import pexpect

from conftest import DETACH, describe, detach, send_until



def log_in(child, domain="web1"):
    send_until(child, b"\r", rb"login: ")
    child.send(b"root\r")
    child.expect(rb"%s:~# " % domain.encode())


def test_console_round_trip(gw):
    child = gw.spawn("web1", "web1", "console")
    log_in(child)
    child.send(b"echo hello\r")
    child.expect(rb"\nhello\r?\n")
    child.expect(rb"web1:~# ")
    child.send(b"seq 3\r")
    child.expect(rb"\n1\r?\n2\r?\n3\r?\n")
    detach(child)
    assert gw.alive()


def test_console_with_client_pty(gw):
    # `ssh -t web1@gw console` asks for a pty and sends the exec request: same console.
    child = gw.spawn("web1", "web1", "console", tty=True)
    log_in(child)
    child.send(b"echo tty-ok\r")
    child.expect(rb"\ntty-ok\r?\n")
    detach(child)


def test_bytes_after_detach_key_do_not_reach_guest(gw):
    observer = gw.spawn("web1", "web1", "console")
    log_in(observer)
    child = gw.spawn("web1", "web1", "console")
    send_until(child, b"\r", rb"web1:~# ")  # attached: its own input produced a prompt it saw
    child.send(b"echo before\r" + DETACH + b"echo after\r")
    child.expect(pexpect.EOF)
    child.close()
    observer.expect(rb"\nbefore\r?\n")
    observer.send(b"echo probe\r")
    observer.expect(rb"\nprobe\r?\n")
    assert b"after" not in observer.before


def test_two_viewers_see_the_same_output(gw):
    a = gw.spawn("web1", "web1", "console")
    b = gw.spawn("web1", "web1", "console")
    # Each sees the prompt its own input produced, so both are attached from here on.
    send_until(a, b"\r", rb"login: ")
    send_until(b, b"\r", rb"login: ")
    a.send(b"root\r")
    a.expect(rb"web1:~# ")
    b.expect(rb"web1:~# ")
    a.send(b"echo marker123\r")
    a.expect(rb"\nmarker123\r?\n")
    b.expect(rb"\nmarker123\r?\n")
    # And the other way round.
    b.send(b"echo from-b\r")
    b.expect(rb"\nfrom-b\r?\n")
    a.expect(rb"\nfrom-b\r?\n")
    for child in (a, b):
        child.send(DETACH)
        child.expect(pexpect.EOF)


def test_console_of_stopped_domain_fails_promptly(make_gateway):
    gw = make_gateway(sim={"autostart": False})
    assert gw.status() == "web1: shut off, 512 MiB, 1 vCPU"
    started = time.monotonic()
    result = gw.ssh("web1", "web1", "console", timeout=15)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, describe(result)
    assert "not running" in result.stderr, describe(result)
    assert len(result.stderr.strip().splitlines()) == 1, describe(result)
    assert elapsed < 5, f"took {elapsed:.1f}s"


def test_panic_shows_as_crashed(gw):
    child = gw.spawn("web1", "web1", "console")
    log_in(child)
    child.send(b"panic\r")
    gw.wait_status(r"^web1: crashed\b")
    child.close(force=True)
    # A crashed domain can be started again.
    result = gw.ssh("web1", "web1", "start")
    assert result.returncode == 0, describe(result)
    gw.wait_status(r"^web1: running, ")


def test_viewer_follows_reboot(gw):
    # A domain that reboots keeps its viewers.
    child = gw.spawn("web1", "web1", "console")
    log_in(child)
    before = gw.domid()
    result = gw.ssh("web1", "web1", "reboot")
    assert result.returncode == 0, describe(result)
    gw.wait_running_after(before)
    child.expect(rb"web1 login: ", timeout=20)  # the new boot's prompt, on the same session
    child.send(b"root\r")
    child.expect(rb"web1:~# ")
    child.send(b"echo again\r")
    child.expect(rb"\nagain\r?\n")
