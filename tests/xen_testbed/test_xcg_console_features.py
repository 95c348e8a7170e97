"""Console features on the real Xen console path: replay on attach without gap or
duplicate, the console log (`log`, `log --lines N`, the menu's log item), `who`, a read-only
key, SysRq through control/sysrq, Ctrl-O reaching the guest's hvc driver, and `nmi` on a PV
guest. What the guest really printed is checked in xenconsoled's own log of its console."""

import re
import time
import uuid

import pexpect

from conftest import DETACH, describe, detach, send_until, wait_for

DOMAIN = "guest1"  # keys["viewer"] is its read-only key (conftest.READ_ONLY_DOMAIN)
PROMPT = rb"guest1# "
CHOICE = rb"Choice: "
HINT = rb"\[xcg: console of guest1; Ctrl-\] detaches\]"
VIEW_ONLY_HINT = rb"\[xcg: console of guest1, view only; Ctrl-\] detaches\]"
SYSRQ_PROMPT = rb"SysRq key for guest1 \(h for help, Enter cancels\): "
ITEM = re.compile(rb"^\s*(\d)\) (\w+)", re.M)
# The guest kernel's answer to SysRq h, and its printk timestamp, which tells one from the next.
HELP = re.compile(rb"\[ *(\d+\.\d+)\] sysrq: HELP : loglevel\(0-9\)")
NMI = rb"\[ *\d+\.\d+\] Uhhuh\. NMI received for unknown reason"
WHO_LINE = re.compile(r"^(?P<label>\S+)(?P<ro> \(read-only\))?, since \d\d:\d\d:\d\d UTC$")
LIFECYCLE = ("start", "shutdown", "reboot", "destroy")
REPLAY_BYTES = 64 * 1024  # the default console.replay
LIVE_TIMEOUT = 120        # guest output under emulation on a busy host


def new_tag():
    """A word no earlier output holds: replays and logs carry other tests' output."""
    return b"x" + uuid.uuid4().hex[:8].encode()


def attach(gw, transcripts, key=DOMAIN):
    """A read-write viewer of guest1, once a command it typed has run in the guest's shell."""
    child = gw.spawn(transcripts, DOMAIN, key, "console")
    child.expect(HINT)
    tag = new_tag()
    # Typed again while the shell is not reading yet; running it twice does no harm.
    send_until(child, b"echo ready-%s-$((6*7))\r" % tag, rb"\nready-%s-42\r?\n" % tag, step=5)
    return child


def say(child, tag):
    """The guest's shell prints `tag`-42; it computes the 42, so our echoed input cannot match."""
    child.send(b"echo %s-$((6*7))\r" % tag)
    child.expect(rb"\n%s-42\r?\n" % tag)



def help_stamps(data):
    return set(HELP.findall(data))


def who(gw, key=DOMAIN):
    result = gw.ssh(DOMAIN, key, "who")
    assert result.returncode == 0, describe(result)
    return result.stdout.splitlines()


def wait_nobody_attached(gw):
    # A viewer that just detached leaves the hub a moment later.
    wait_for(lambda: who(gw) == [], 60, "no viewers of guest1 in `who`", 1.0)


def menu_items(screen):
    return {name: number for number, name in ITEM.findall(screen)}


# --- replay on attach -------------------------------------------------------------------------

def numbers(capture, tag):
    # One number a line; Ctrl-C's echo may end the last one.
    return [int(n) for n in re.findall(rb"^%s-(\d+)(?:\^C)?\r?$" % tag, capture.data(), re.M)]


def head(capture, tag):
    found = numbers(capture, tag)
    return found[-1] if found else 0


def type_until(capture, data, pattern, what, timeout=LIVE_TIMEOUT, step=5):
    """send_until for a Capture: types `data` (harmless to repeat) until `pattern` shows."""
    deadline = time.monotonic() + timeout
    while True:
        capture.send(data)
        try:
            return capture.wait_for(pattern, what, timeout=step)
        except AssertionError:
            if time.monotonic() >= deadline or capture.proc.poll() is not None:
                raise


def gaps_and_repeats(got):
    seen, repeats = set(), []
    for n in got:
        if n in seen:
            repeats.append(n)
        seen.add(n)
    missing = sorted(set(range(min(got), max(got) + 1)) - seen)
    return f"{len(got)} numbers {got[0]}..{got[-1]}, missing {missing[:10]}, repeated {repeats[:10]}"


def test_replay_then_live_without_gap_or_duplicate(gw, transcripts):
    tag = new_tag()
    writer = gw.capture(transcripts, DOMAIN, DOMAIN, "console")
    writer.wait_for(HINT, "the console hint")
    ready = new_tag()
    type_until(writer, b"echo %s-$((6*7))\r" % ready, rb"\n%s-42\r?\n" % ready, "the shell")
    # At most 25 lines a second, so that viewers attach while it counts (Ctrl-C ends it once
    # they have), and at most 3000 lines (47 KB), so that a replay can hold all of it.
    writer.send(b"i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo %s-$i; usleep 40000; done\r"
                % tag)
    viewers = [("writer", writer, 0)]  # (name, capture, the head before it connected)
    for name, at in (("early", 30), ("middle", 120)):
        wait_for(lambda: head(writer, tag) >= at, LIVE_TIMEOUT, f"the guest to count to {at}")
        before = head(writer, tag)
        viewer = gw.capture(transcripts, DOMAIN, DOMAIN, "console")
        viewer.wait_for(HINT, f"{name}: the console hint")
        attached = head(writer, tag)
        # Numbers printed after it was attached reach it: it is live, not only replayed.
        wait_for(lambda: head(viewer, tag) > attached, LIVE_TIMEOUT,
                 f"{name}: a number past {attached}", 0.2)
        viewers.append((name, viewer, before))
    last_live = head(writer, tag)
    assert last_live < 3000, "the loop ended before every viewer was live: slow it down"
    # Ctrl-C goes again with each try of the end mark: once in many runs the guest's shell went
    # on counting after a single one, and the loop would take minutes to end by itself. At the
    # shell's prompt a Ctrl-C only clears the line.
    end = rb"\n%s-end-42\r?\n" % tag
    type_until(writer, b"\x03echo %s-end-$((6*7))\r" % tag, end, "the end mark")
    for name, viewer, _ in viewers[1:]:
        viewer.wait_for(end, f"{name}: the end mark", LIVE_TIMEOUT)
    last = head(writer, tag)
    # One more, after the count: it gets all of it from the replay alone.
    late = gw.capture(transcripts, DOMAIN, DOMAIN, "console")
    late.wait_for(HINT + rb"(?s:.*)" + end, "late: the replay up to the end mark")
    viewers.append(("late", late, last))
    for _, viewer, _ in viewers:
        viewer.send(DETACH)
    for name, viewer, _ in viewers:
        assert viewer.proc.wait(timeout=60) == 0, f"{name}: exit {viewer.proc.returncode}"

    # The count from its start to the end mark is within the replay limit, so every replay
    # reaches back to its first number (the replay is the current boot's output).
    data = writer.data()
    span = len(data) - data.index(b"\n%s-1\r" % tag)
    assert span < REPLAY_BYTES - 4096, f"{span} bytes counted: more than the test assumes"
    for name, viewer, before in viewers:
        got = numbers(viewer, tag)
        assert got, f"{name}: no numbers"
        assert got == list(range(1, last + 1)), f"{name}: {gaps_and_repeats(got)}, want 1..{last}"
        # Its attach hint, then the replay, then live output.
        assert viewer.data().index(b"[xcg: console of guest1") < \
            viewer.data().index(b"\n%s-1\r" % tag), name
    assert last >= last_live > viewers[2][2] > viewers[1][2] > 0


# --- the console log --------------------------------------------------------------------------

def test_log_shows_what_the_guest_printed(gw, bed, transcripts):
    child = attach(gw, transcripts)
    tag = new_tag()
    say(child, tag)
    child.expect(PROMPT)
    detach(child)
    mark = f"{tag.decode()}-42"
    assert mark.encode() in bed.console_log(DOMAIN)  # xenconsoled saw it too

    result = gw.ssh(DOMAIN, DOMAIN, "log", "--lines", "20")
    assert result.returncode == 0, describe(result)
    assert mark in result.stdout.splitlines(), describe(result)
    assert "\x1b" not in result.stdout, describe(result)  # the shell's "\e[6n", made printable

    short = gw.ssh(DOMAIN, DOMAIN, "log", "--lines", "3")
    assert short.returncode == 0, describe(short)
    assert 1 <= len(short.stdout.splitlines()) <= 3, describe(short)
    assert mark in short.stdout.splitlines(), describe(short)  # the echo is among the last lines
    one = gw.ssh(DOMAIN, DOMAIN, "log", "-n", "1")
    assert one.returncode == 0 and len(one.stdout.splitlines()) == 1, describe(one)


def test_log_keeps_what_the_guest_printed_while_nobody_watched(gw, bed):
    name = "guest2"  # nobody attaches to it in these tests
    assert gw.ssh(name, name, "who").stdout == ""
    old_domid = bed.domid(name)
    boots = bed.boots(name)
    result = gw.ssh(name, name, "reboot")
    assert result.returncode == 0, describe(result)
    new_boot = bed.wait_boots(name, len(boots) + 1)[-1]
    new_domid = gw.wait_running(name, not_domid=old_domid)
    # The old boot's last line, xcg's one notice (though the old domain goes away before xl
    # makes the new one) and the new boot's banner, all printed while no viewer was attached.
    wanted = [rf"XCG-TESTBED-GUEST {name} going down",
              rf"\[xcg: {name} rebooted, new domid {new_domid}\]",
              rf"XCG-TESTBED-GUEST name={name} boot={new_boot}"]
    seen = [""]

    def logged():
        r = gw.ssh(name, name, "log", "--lines", "200")
        assert r.returncode == 0, describe(r)
        seen[0] = r.stdout
        return all(re.search(w, r.stdout) for w in wanted)

    try:
        wait_for(logged, 60, "the reboot in guest2's log", 1.0)
    except AssertionError as e:
        raise AssertionError(f"{e}\nwanted, in order: {wanted}\nlog: {seen[0][-3000:]}") from None
    positions = [[m.start() for m in re.finditer(w, seen[0])][-1] for w in wanted]
    assert positions == sorted(positions), (wanted, seen[0][-3000:])
    between = seen[0][positions[0]:positions[-1]]
    assert not re.search(rf"\[xcg: {name} is ", between), between  # one line, not "is shut off" too


def test_menu_sysrq_then_the_log_item_shows_the_answer(gw, bed, transcripts):
    known = help_stamps(bed.console_log(DOMAIN))
    child = gw.spawn(transcripts, DOMAIN, DOMAIN, tty=True)
    child.expect(CHOICE)
    items = menu_items(child.before)
    assert b"sysrq" in items and b"log" in items, child.before
    child.send(items[b"sysrq"])
    child.expect(SYSRQ_PROMPT)
    child.send(b"h")
    child.expect(rb"guest1: sysrq h sent")
    child.expect(CHOICE)

    def new_help_in_log():
        child.send(items[b"log"])
        child.expect(CHOICE)
        return help_stamps(child.before) - known

    wait_for(new_help_in_log, 60, "the guest's new SysRq help in the menu's log", 1.0)
    assert b"\x1b[6n" not in child.before, child.before
    child.send(b"0")
    child.expect(pexpect.EOF)


# --- who ---------------------------------------------------------------------------------------

def test_who_lists_every_viewer_with_the_read_only_flag(gw, transcripts):
    wait_nobody_attached(gw)
    writer = attach(gw, transcripts)
    reader = gw.spawn(transcripts, DOMAIN, "viewer", "console")
    reader.expect(VIEW_ONLY_HINT)

    lines = who(gw)
    assert len(lines) == 2, lines
    parsed = {m.group("label"): m for m in map(WHO_LINE.match, lines) if m}
    assert set(parsed) == {"guest1@xcg-testbed", "viewer@xcg-testbed"}, lines
    assert parsed["guest1@xcg-testbed"].group("ro") is None, lines
    assert parsed["viewer@xcg-testbed"].group("ro"), lines
    assert sorted(who(gw, "viewer")) == sorted(lines)  # the read-only key may ask too

    menu = gw.spawn(transcripts, DOMAIN, DOMAIN, tty=True)
    menu.expect(CHOICE)
    viewers = re.search(rb"\nviewers: ([^\r\n]*)\r\n", menu.before)
    assert viewers, menu.before
    assert sorted(viewers.group(1).decode().split("; ")) == sorted(lines), menu.before
    menu.send(b"0")
    menu.expect(pexpect.EOF)

    detach(reader)
    wait_for(lambda: who(gw) == [lines[0] if "guest1@" in lines[0] else lines[1]], 60,
             "only the writer in `who`", 1.0)
    detach(writer)
    wait_nobody_attached(gw)


# --- read-only keys ----------------------------------------------------------------------------

def test_read_only_viewer_sees_the_console_but_cannot_type(gw, bed, transcripts):
    wait_nobody_attached(gw)
    writer = attach(gw, transcripts)
    reader = gw.spawn(transcripts, DOMAIN, "viewer", "console")
    reader.expect(VIEW_ONLY_HINT)
    tag = new_tag()
    say(writer, b"seen-" + tag)
    reader.expect(rb"\nseen-%s-42\r?\n" % tag)  # it sees what the guest prints
    known = help_stamps(bed.console_log(DOMAIN))

    # A command with a mark, Ctrl-C, and Ctrl-O h (SysRq help by the guest's hvc driver).
    reader.send(b"touch /tmp/ro-%s; echo ro-typed-%s\r" % (tag, tag))
    reader.send(b"\x03\x0fh\r")
    detach(reader)  # Ctrl-] still detaches
    # Once it is gone from `who`, the hub has read everything it sent.
    wait_for(lambda: len(who(gw)) == 1, 60, "the read-only viewer gone from `who`", 1.0)

    writer.send(b"[ -e /tmp/ro-%s ] && echo ro-ran-%s || echo ro-clean-%s-$((6*7))\r"
                % (tag, tag, tag))
    writer.expect(rb"\nro-clean-%s-42\r?\n" % tag)
    assert b"ro-typed" not in writer.before, writer.before
    console = bed.console_log(DOMAIN)  # xenconsoled's: everything the guest printed
    assert b"ro-typed-" + tag not in console
    assert help_stamps(console) == known, "the read-only viewer's Ctrl-O h reached the guest"
    detach(writer)


def test_read_only_key_cannot_act(gw, bed):
    domid = bed.domid(DOMAIN)
    boots = bed.boots(DOMAIN)
    printed = len(bed.console_log(DOMAIN))
    for args in [(verb,) for verb in LIFECYCLE] + [("sysrq", "h"), ("nmi",)]:
        result = gw.ssh(DOMAIN, "viewer", *args)
        assert result.returncode == 1, describe(result)
        assert len(result.stderr.strip().splitlines()) == 1, describe(result)
        assert "read-only" in result.stderr, describe(result)
    assert bed.domid(DOMAIN) == domid
    for args in (("status",), ("log", "-n", "5"), ("who",)):
        result = gw.ssh(DOMAIN, "viewer", *args)
        assert result.returncode == 0, describe(result)
    assert bed.boots(DOMAIN) == boots
    since = bed.console_log(DOMAIN)[printed:]
    assert not HELP.search(since) and not re.search(NMI, since), since


# --- SysRq, Ctrl-O, NMI ------------------------------------------------------------------------

def test_sysrq_reaches_the_guest_kernel(gw, transcripts):
    child = attach(gw, transcripts)
    # Three keys the guest's kernel answers differently (its kernel.sysrq mask, 438, allows
    # these; "m" would only say "This sysrq operation is disabled.").
    for key, answer in ((b"h", HELP.pattern),
                        (b"s", rb"\[ *\d+\.\d+\] sysrq: Emergency Sync"),
                        (b"4", rb"\[ *\d+\.\d+\] sysrq: Loglevel set to 4")):
        result = gw.ssh(DOMAIN, DOMAIN, "sysrq", key.decode())
        assert result.returncode == 0, describe(result)
        assert result.stdout == f"guest1: sysrq {key.decode()} sent\n", describe(result)
        child.expect(answer)
    say(child, new_tag())
    detach(child)


def test_ctrl_o_reaches_the_guests_hvc_driver(gw, transcripts):
    child = attach(gw, transcripts)
    # Linux's hvc console takes Ctrl-O and a key as SysRq...
    child.send(b"\x0fh")
    child.expect(HELP)
    # ... and Ctrl-O twice as one Ctrl-O for the program reading the terminal.
    tag = new_tag()
    child.send(b"echo od-%s-$((6*7)); od -c\r" % tag)
    child.expect(rb"\nod-%s-42\r?\n" % tag)  # the shell has handed the terminal to od
    child.send(b"a\x0f\x0fb\r\x04")
    child.expect(rb"0000000 +a +017 +b +\\n")
    child.expect(PROMPT)
    detach(child)


def test_nmi_reaches_a_pv_guest(gw, bed, transcripts):
    # `xl trigger <domid> nmi` (XEN_DOMCTL_sendtrigger) sets the vCPU's pending NMI for PV
    # guests too; Linux answers on its console.
    child = attach(gw, transcripts)
    domid = bed.domid(DOMAIN)
    result = gw.ssh(DOMAIN, DOMAIN, "nmi")
    assert result.returncode == 0, describe(result)
    assert result.stdout == "guest1: nmi sent\n", describe(result)
    child.expect(NMI)
    say(child, new_tag())  # and carries on
    assert bed.domid(DOMAIN) == domid
    detach(child)
