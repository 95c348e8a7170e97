"""The test bed itself, before xcg runs: real Xen, real toolstack, both guests up, and an
operator's `xl console` works. (These run first: `xcg serve`, started by the later files,
holds the guests' consoles.)"""

import re

import pexpect

from conftest import DETACH, GUESTS, send_until


def test_real_xen_runs_both_guests(bed):
    info = bed.check("xl", "info")
    assert re.search(r"^xen_version\s+: 4\.17\.", info, re.M), info
    listing = bed.check("xl", "list")
    for name in GUESTS:
        assert re.search(rf"^{name}\s+\d+\s+128\s+1\s", listing, re.M), listing
        domid = bed.domid(name)
        assert domid is not None and domid > 0
        tty = bed.check("xenstore-read", f"/local/domain/{domid}/console/tty").strip()
        assert re.fullmatch(r"/dev/pts/\d+", tty), tty
        assert bed.check("xenstore-read", f"/local/domain/{domid}/name").strip() == name


def test_each_guest_printed_its_banner(bed):
    for name in GUESTS:
        assert bed.boots(name), bed.console_log(name)


def test_operator_xl_console_round_trip(bed, transcripts):
    # Without xcg, the operator's own tool reaches the real guest shell on hvc0.
    child = transcripts.spawn(bed.argv(["xl", "console", "guest1"], tty=True),
                              "dom0: xl console guest1", timeout=60)
    send_until(child, b"\r", rb"guest1# ")
    child.send(b"echo xl-$((6*7))\r")
    child.expect(rb"\nxl-42\r*\n")
    child.send(DETACH)
    child.expect(pexpect.EOF)
