"""The real guest console through xcg: round trip, Ctrl-], the menu, an operator's
`xl console` while xcg holds the console, and a viewer that stays attached across a reboot."""

import re
import time

import pexpect

from conftest import BANNER, DETACH, RUNNING, describe, detach, send_until

PROMPT = rb"guest1# "
CHOICE = rb"Choice: "


def attach(gw, transcripts, domain="guest1"):
    child = gw.spawn(transcripts, domain, domain, "console")
    send_until(child, b"\r", domain.encode() + b"# ")
    return child


def round_trip(child, word):
    # The guest's shell computes the answer: an echo of our own input cannot match.
    child.send(b"echo %s-$((6*7))\r" % word)
    child.expect(rb"\n%s-42\r*\n" % word)
    child.expect(PROMPT)



def test_console_round_trip_with_the_real_shell(gw, transcripts):
    child = attach(gw, transcripts)
    round_trip(child, b"hello-from-guest")
    child.send(b"cat /etc/guest-name\r")
    child.expect(rb"\nguest1\r*\n")
    detach(child)


def test_detach_leaves_the_guest_running(gw, bed, transcripts):
    domid = bed.domid("guest1")
    detach(attach(gw, transcripts))
    assert RUNNING.match(gw.status("guest1"))
    assert bed.domid("guest1") == domid
    child = attach(gw, transcripts)  # and the console can be had again
    round_trip(child, b"again")
    detach(child)


def test_menu_through_a_pty(gw, bed, transcripts):
    child = gw.spawn(transcripts, "guest1", "guest1", tty=True)
    child.expect(CHOICE)
    screen = child.before
    items = dict(re.findall(rb"^\s*(\d)\) (\w+)", screen, re.M))
    for number, name in ((b"1", b"console"), (b"2", b"start"), (b"3", b"shutdown"),
                         (b"4", b"reboot"), (b"5", b"destroy"), (b"0", b"exit")):
        assert items.get(number) == name, screen
    status = re.search(rb"guest1: running, domid (\d+)", screen)
    assert status and int(status.group(1)) == bed.domid("guest1"), screen
    child.send(b"1")
    send_until(child, b"\r", PROMPT)
    round_trip(child, b"menu")
    child.send(DETACH)
    child.expect(CHOICE)  # back in the menu
    child.send(b"0")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, (child.exitstatus, child.signalstatus)


def test_operator_xl_console_fails_cleanly_while_attached(gw, bed, transcripts):
    child = attach(gw, transcripts)
    domid = bed.domid("guest1")
    started = time.monotonic()
    # `timeout` only bounds a hang; stdin is /dev/null, so a console that did open would sit
    # there until killed (exit 124).
    result = bed.run("timeout", "30", "xl", "console", "guest1", timeout=90)
    elapsed = time.monotonic() - started
    assert result.returncode not in (0, 124), describe(result)
    assert re.search(rf"lock.*xenconsole\.{domid}\b", result.stderr, re.I), describe(result)
    assert elapsed < 20, f"xl console took {elapsed:.1f}s to give up"
    # xcg's viewer lost nothing.
    round_trip(child, b"still-mine")
    detach(child)


def test_viewer_sees_the_reboot_and_the_new_boot(gw, bed, transcripts):
    child = attach(gw, transcripts)
    child.send(b"cat /proc/sys/kernel/random/boot_id\r")
    child.expect(rb"\n([0-9a-f-]{36})\r*\n")
    old_boot = child.match.group(1)
    old_domid = bed.domid("guest1")
    result = gw.ssh("guest1", "guest1", "reboot")
    assert result.returncode == 0, describe(result)
    # xcg's one-line notice, then the new boot's banner and shell, on the same session; no
    # "is shut off" first, though on Xen the old domain goes away before xl builds the new one.
    child.expect(rb"\[xcg: guest1 (is [\w ]+|rebooted, new domid \d+)\]", timeout=180)
    assert child.match.group(1).startswith(b"rebooted"), child.match.group(0)
    child.expect(BANNER, timeout=180)
    assert child.match.group("name") == b"guest1"
    assert child.match.group("boot") != old_boot
    send_until(child, b"\r", PROMPT)
    round_trip(child, b"after-reboot")
    new_domid = gw.wait_running("guest1", not_domid=old_domid)
    assert new_domid == bed.domid("guest1") != old_domid
    detach(child)


def test_reboot_from_inside_the_guest_is_one_notice(gw, bed, transcripts):
    # Here xcg did not ask for the reboot: it learns it from Xen's shutdown reason.
    child = attach(gw, transcripts)
    old_domid = bed.domid("guest1")
    round_trip(child, b"before-guest-reboot")  # past the replay, which holds earlier notices
    child.send(b"reboot\r")
    child.expect(rb"\[xcg: guest1 (is [\w ]+|rebooted, new domid (\d+))\]", timeout=180)
    assert child.match.group(1).startswith(b"rebooted"), child.match.group(0)
    assert int(child.match.group(2)) != old_domid
    child.expect(BANNER, timeout=180)
    assert child.match.group("name") == b"guest1"
    send_until(child, b"\r", PROMPT)
    round_trip(child, b"after-guest-reboot")
    detach(child)
