"""Lifecycle commands through xcg, carried out by the real toolstack and checked with `xl`."""

from conftest import describe

NAME = "guest2"
SHUT_OFF = rf"^{NAME}: shut off\b"


def assert_ok_one_line(result):
    assert result.returncode == 0, describe(result)
    assert len(result.stdout.strip().splitlines()) == 1, describe(result)


def assert_refused(result, reason):
    assert result.returncode == 1, describe(result)
    assert len(result.stderr.strip().splitlines()) == 1, describe(result)
    assert reason in result.stderr.lower(), describe(result)


def test_start_while_running_is_refused(gw, bed):
    domid = bed.domid(NAME)
    assert_refused(gw.ssh(NAME, NAME, "start"), NAME)
    assert bed.domid(NAME) == domid


def test_shutdown_then_start(gw, bed):
    before = bed.domid(NAME)
    boots = len(bed.boots(NAME))
    assert_ok_one_line(gw.ssh(NAME, NAME, "shutdown"))
    gw.wait_status(NAME, SHUT_OFF)
    assert bed.domid(NAME) is None  # xl agrees: the domain is gone
    assert_refused(gw.ssh(NAME, NAME, "shutdown"), "not running")
    # Nothing to send a SysRq key or an NMI to: refused at once, in one line.
    assert_refused(gw.ssh(NAME, NAME, "sysrq", "h"), "not running")
    assert_refused(gw.ssh(NAME, NAME, "nmi"), "not running")

    assert_ok_one_line(gw.ssh(NAME, NAME, "start"))
    after = gw.wait_running(NAME, not_domid=before)
    assert after == bed.domid(NAME)
    bed.wait_boots(NAME, boots + 1)  # it really booted: a new banner


def test_reboot_gives_a_new_domain(gw, bed):
    before = bed.domid(NAME)
    boots = bed.boots(NAME)
    assert_ok_one_line(gw.ssh(NAME, NAME, "reboot"))
    after = gw.wait_running(NAME, not_domid=before)
    assert after == bed.domid(NAME) != before
    new_boots = bed.wait_boots(NAME, len(boots) + 1)
    assert new_boots[-1] not in boots


def test_destroy_then_start(gw, bed):
    before = bed.domid(NAME)
    assert_ok_one_line(gw.ssh(NAME, NAME, "destroy"))
    gw.wait_status(NAME, SHUT_OFF, timeout=60)
    assert bed.domid(NAME) is None
    assert_refused(gw.ssh(NAME, NAME, "reboot"), NAME)
    assert_ok_one_line(gw.ssh(NAME, NAME, "start"))
    assert gw.wait_running(NAME, not_domid=before) == bed.domid(NAME)
