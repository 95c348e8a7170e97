"""Replay without gap or duplicate, reboots followed, slow viewers isolated.

Most tests run web1 on tests/load's count guest (`xcg_load guest`: "web1 1", "web1 2", ... at a
steady rate, "web1 halt K" on shutdown) and capture real OpenSSH `console` clients to files;
`xcg_load check` then checks each capture line by line (tests/load/console_check.h: every
number exactly once and in order from where the replay began, across reboots)."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pexpect
import pytest

from conftest import XCG, describe, proc_status, wait_for

LOAD = os.environ.get("XCG_LOAD", str(Path(XCG).parent / "tests" / "load" / "xcg_load"))
REPLAY_BYTES = 64 * 1024  # the default console.replay
RSS_BOUND_MIB = 64
SANITIZED_RSS_BOUND_MIB = 768  # sanitizers quarantine freed memory; this only catches runaways
# Multiline "^" so that consecutive lines all match (a consumed "\n" would hide every other one).
LAST_NUMBER = re.compile(rb"^web1 (\d+)\r\n", re.MULTILINE)
SKIPPED = re.compile(rb"\r\n\[xcg: (\d+) bytes skipped\]\r\n")


def require_load_binary():
    if not (os.path.isfile(LOAD) and os.access(LOAD, os.X_OK)):
        pytest.fail(f"xcg_load not found at {LOAD} (build it, or set XCG_LOAD)")


def rss_bound_mib(pid):
    with open(f"/proc/{pid}/maps") as f:
        sanitized = any("libasan" in line or "libubsan" in line for line in f)
    return SANITIZED_RSS_BOUND_MIB if sanitized else RSS_BOUND_MIB


def rss_mib(pid):
    return int(proc_status(pid)["VmRSS"].split()[0]) / 1024


class Viewer:
    """`ssh web1@gw console` (OpenSSH, no pty) with its output going to a file. Its stdin stays
    open (a pipe) so that the session does not see an end of input."""

    def __init__(self, gw, name):
        self.path = gw.dir / f"{name}.out"
        self.file = open(self.path, "wb")
        self.proc = subprocess.Popen(gw.ssh_argv("web1", "web1", ["console"]),
                                     stdin=subprocess.PIPE, stdout=self.file,
                                     stderr=subprocess.PIPE)

    def data(self):
        return self.path.read_bytes()

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def last_number(self):
        numbers = LAST_NUMBER.findall(self.data()[-4096:])
        return int(numbers[-1]) if numbers else 0

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stderr, self.file):
            f.close()


@pytest.fixture
def viewers():
    """viewers(gw, name) starts a Viewer; all are ended after the test."""
    started = []

    def start(gw, name):
        v = Viewer(gw, name)
        started.append(v)
        return v

    yield start
    for v in started:
        v.close()


def count_gateway(make_gateway, keys, tmp_path, *guest_args):
    require_load_binary()
    log_dir = tmp_path / "console-logs"
    log_dir.mkdir(exist_ok=True)
    return make_gateway(domains={"web1": {"keys": [keys["web1"].public_line]}},
                        sim={"guest_command": [LOAD, "guest", *guest_args]},
                        extra={"console": {"log_dir": str(log_dir)}})


def check(path):
    """`xcg_load check` on a capture: a dict of first, last, numbers, reboots."""
    result = subprocess.run([LOAD, "check", "--domain", "web1", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, f"{path.name}: {result.stdout}{result.stderr}"
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", result.stdout)}


def test_viewers_attaching_at_different_moments_see_every_number_once(make_gateway, keys,
                                                                      tmp_path, viewers):
    rate = 1000  # lines a second: the boot passes the 64 KiB replay limit after about 6 s
    gw = count_gateway(make_gateway, keys, tmp_path, "--rate", str(rate))
    clock = viewers(gw, "v0")  # attached at once: the whole boot is replayed
    attached = [(clock, 0)]
    # Later viewers attach once the guest has printed this far (the head, as the first viewer
    # sees it): 500 lines (5.5 KB) are well within the replay limit, the others well past it.
    whole_boot = 500
    for i, head in enumerate([whole_boot, 8000, 12000, 16000], start=1):
        wait_for(lambda: clock.last_number() >= head, 60, f"web1 to count to {head}")
        attached.append((viewers(gw, f"v{i}"), clock.last_number()))
    # The live head now; every viewer must get past it.
    target = max(v.last_number() for v, _ in attached) + rate
    for v, _ in attached:
        wait_for(lambda: v.last_number() >= target or v.proc.poll() is not None, 60,
                 f"{v.path.name} to reach the live head {target}")
        assert v.proc.poll() is None, f"{v.path.name} ended: {v.proc.stderr.read()!r}"
    for v, _ in attached:
        v.close()

    for v, head_before in attached:
        got = check(v.path)  # every number once and in order, from the first to the last
        data = v.data()
        assert got["last"] >= target, (v.path.name, got)
        if head_before <= 2 * whole_boot:
            # The boot was younger than the replay limit: all of it, from its banner.
            assert got["first"] == 1, (v.path.name, got)
            assert b"Booting count guest web1 (domid " in data.split(b"web1 1\r\n", 1)[0]
        else:
            # Cut by the limit at a line start (the check rejects half a line), keeping at
            # most 64 KiB before the head at attach, which was at least head_before.
            assert got["first"] > 1, (v.path.name, got)
            assert got["first"] >= head_before - REPLAY_BYTES // len(b"web1 1234\r\n"), \
                (v.path.name, head_before, got)


def test_reboot_while_attached_loses_nothing_of_either_boot(make_gateway, keys, tmp_path,
                                                           viewers):
    # On shutdown the guest prints 2000 more lines at once before its halt line, as a kernel
    # does its last messages: all of them must reach the viewer before the reboot notice.
    gw = count_gateway(make_gateway, keys, tmp_path, "--rate", "500", "--halt-burst", "2000")
    viewer = viewers(gw, "viewer")
    wait_for(lambda: viewer.last_number() >= 200, 30, "web1 to count to 200")
    before = gw.domid()
    result = gw.ssh("web1", "web1", "reboot")
    assert result.returncode == 0, describe(result)
    domid = gw.wait_running_after(before)

    def rebooted_and_counting():
        got = check(viewer.path)
        return got["reboots"] == 1 and got["last"] >= 100 and got

    got = wait_for(rebooted_and_counting, 60, "the new boot's numbers on the viewer")
    assert got["reboots"] == 1, got
    data = viewer.data()
    notice = re.search(rb"\r\n\[xcg: web1 rebooted, new domid (\d+)\]\r\n", data)
    assert notice and int(notice.group(1)) == domid, data[-2000:]
    assert f"Booting count guest web1 (domid {domid})".encode() in data[notice.end():]
    assert viewer.proc.poll() is None


def test_reboot_notice_and_the_new_boots_banner(gw):
    # The same with the built-in fake guest, on a client pty.
    child = gw.spawn("web1", "web1", "console")
    child.expect(rb"Ctrl-\] detaches")
    before = gw.domid()
    result = gw.ssh("web1", "web1", "reboot")
    assert result.returncode == 0, describe(result)
    domid = gw.wait_running_after(before)
    child.expect(rb"\[xcg: web1 rebooted, new domid (\d+)\]", timeout=20)
    assert int(child.match.group(1)) == domid
    child.expect(rb"Booting fake guest web1 \(domid (\d+)\)", timeout=20)
    assert int(child.match.group(1)) == domid
    child.expect(rb"web1 login: ")


def boot_output(domid, numbers):
    """What the count guest prints in a boot, through line `numbers`."""
    return (b"\r\nBooting count guest web1 (domid %d)\r\n" % domid
            + b"".join(b"web1 %d\r\n" % n for n in range(1, numbers + 1)))


def test_stalled_viewer_hurts_nobody_and_skips_ahead(make_gateway, keys, tmp_path, viewers):
    # A fast stream, paced so that a reading viewer can follow it even on a busy machine. The
    # guest waits for its fastest viewer, not for one that frees no room: the stalled viewer
    # holds nobody, falls behind and skips.
    rate = 100_000  # lines a second, about 1.3 MB/s
    gw = count_gateway(make_gateway, keys, tmp_path, "--rate", str(rate))
    broker = gw.proc.pid
    bound = rss_bound_mib(broker)
    # The stalled client: attached, then stopped, so that it reads nothing from its connection
    # until it is continued.
    stalled = viewers(gw, "stalled")
    fast = viewers(gw, "fast")
    for v in (stalled, fast):
        wait_for(lambda: b"Ctrl-] detaches" in v.data(), 20, f"{v.path.name}'s attach")
    os.kill(stalled.proc.pid, signal.SIGSTOP)

    # 10 MB: several times what the stalled viewer's SSH window and every buffer on its way
    # can hold, so that it must skip.
    target = 800_000
    samples = []

    def fast_reached():
        samples.append(rss_mib(broker))
        return fast.last_number() >= target or fast.proc.poll() is not None

    wait_for(fast_reached, 300, f"the fast viewer to reach {target}", interval=0.25)
    peak = max(samples)
    assert peak < bound, f"broker VmRSS peaked at {peak:.1f} MiB (bound {bound} MiB)"
    assert fast.proc.poll() is None
    got = check(fast.path)  # every number once and in order, no skip marker
    assert got["last"] >= target, got

    # The stalled viewer reads again: what fitted before it fell behind, a marker counting the
    # bytes it missed, then live output.
    os.kill(stalled.proc.pid, signal.SIGCONT)
    wait_for(lambda: SKIPPED.search(stalled.data()), 60, "the skip marker on the stalled viewer")
    head = fast.last_number()
    wait_for(lambda: stalled.last_number() > head, 60, f"the stalled viewer to get past {head}")
    stalled.close()

    data = stalled.data()
    hint = b"detaches]\r\n"
    # [output, count, output, count, ..., output]: the stall's marker first; a viewer catching
    # up on a loaded machine may fall behind again, and each time says so with a marker of its own.
    pieces = SKIPPED.split(data[data.index(hint) + len(hint):])
    outputs, counts = pieces[0::2], [int(c) for c in pieces[1::2]]
    assert counts and counts[0] > 0, f"no skip marker for the stall ({stalled.path})"
    assert all(outputs[:-1]), f"two markers in a row: one stall, one marker ({stalled.path})"
    # The guest never prints "[": one here is a marker the viewer's end cut short.
    cut = outputs[-1].find(b"\r\n[")
    if cut >= 0:
        outputs[-1] = outputs[-1][:cut]
    assert_guest_output_with_skips(gw.domid(), stalled, outputs, counts)


def test_a_viewer_slower_than_the_guest_gets_every_byte(make_gateway, keys, tmp_path, viewers):
    # The guest prints as fast as its console takes it, far faster than a viewer that keeps
    # stopping for a moment (each stop well under the one second a guest waits for a viewer
    # that frees no room). The guest waits for the viewer, which gets every number and no skip
    # marker; with a guest that never waited, each stop would cost the viewer megabytes.
    gw = count_gateway(make_gateway, keys, tmp_path, "--rate", "1000000000")
    viewer = viewers(gw, "viewer")
    wait_for(lambda: viewer.last_number() > 0, 20, "the viewer's first number")
    for _ in range(3):
        os.kill(viewer.proc.pid, signal.SIGSTOP)
        time.sleep(0.4)  # the stop under test, not a wait for anything
        os.kill(viewer.proc.pid, signal.SIGCONT)
        head = viewer.last_number()
        wait_for(lambda: viewer.last_number() > head + 10_000, 30, f"the viewer to get past {head}")
    viewer.close()
    data = viewer.data()
    assert not SKIPPED.search(data), f"the viewer skipped ({viewer.path})"
    got = check(viewer.path)  # every number once and in order
    assert got["last"] > 30_000, got


def assert_guest_output_with_skips(domid, viewer, outputs, counts):
    """Byte for byte, the viewer's output between markers is the guest's output, in order, and
    each marker counts exactly the bytes missing between the outputs around it."""
    boot = boot_output(domid, viewer.last_number() + 1)
    first = outputs[0]
    if first.startswith(b"\r\nBooting"):
        at = 0
    else:
        at = len(boot_output(domid, int(re.match(rb"web1 (\d+)\r\n", first).group(1)) - 1))
    for i, piece in enumerate(outputs):
        assert boot[at:at + len(piece)] == piece, \
            f"output {i} (of {len(outputs)}, skips {counts}) differs from the guest's at byte " \
            f"{first_difference(piece, boot[at:])}; capture: {viewer.path}"
        at += len(piece) + (counts[i] if i < len(counts) else 0)


def first_difference(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def wait_for_bytes(viewer, expect, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if viewer.data().endswith(expect):
            return True
        time.sleep(0.05)  # polling a file with a deadline
    return False

