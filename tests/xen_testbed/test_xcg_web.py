"""The browser console on real Xen: the host's headless Chromium opens a link from the
operator's `xcg ctl weblink` (run in dom0) and reaches xcg's web listener in dom0 through
QEMU's hostfwd port; the console is a real PV guest's, the reboot the real toolstack's."""

import re
import sys
from pathlib import Path

from conftest import BANNER, BOOT_TIMEOUT, STATE_TIMEOUT

sys.path.append(str(Path(__file__).resolve().parents[1] / "integration"))
from browser_page import (browser, buttons, confirm_action, open_console, rows,  # noqa: E402,F401
                          severe_logs, text, type_keys, wait)

NAME = "guest2"
PROMPT = f"{NAME}# "     # the guest's shell (recipe/guest/init), after Enter activates it
HELLO_TIMEOUT = 60       # TLS, HTTP and the token, all through emulated dom0
ANSWER_TIMEOUT = 30      # a keystroke there and back: xcg-web, the hub, the guest's shell


def weblink(bed, domain):
    """A one-time link, the operator's way: `xcg ctl weblink` as root in dom0."""
    out = bed.check("/usr/local/bin/xcg", "ctl", "weblink", domain)
    match = re.search(r"https://\S+/#\S+", out)
    assert match, out
    assert match.group(0).startswith(f"https://127.0.0.1:{bed.web_port}/#"), out
    return match.group(0)


def flat_rows(driver):
    """The terminal's rows as one string: a long line wraps onto the next row."""
    return rows(driver).replace("\n", "")


def test_console_in_the_browser_takes_typing(gw, bed, browser):
    open_console(browser, weblink(bed, NAME), NAME, HELLO_TIMEOUT)
    wait(browser, lambda: re.search(r"running, domid \d+", text(browser, "status")), "the status line")
    assert buttons(browser) == ["start", "shutdown", "reboot", "destroy", "sysrq", "nmi"]
    type_keys(browser, "\n")
    wait(browser, lambda: PROMPT in rows(browser), "the guest's shell prompt", ANSWER_TIMEOUT)
    # The answer differs from what was typed: only the guest's shell can have printed it.
    type_keys(browser, "echo $((6*7))-from-browser\n")
    wait(browser, lambda: "42-from-browser" in rows(browser), "the guest's answer", ANSWER_TIMEOUT)
    assert severe_logs(browser) == []


def test_reboot_from_the_page_shows_the_new_boot(gw, bed, browser):
    open_console(browser, weblink(bed, NAME), NAME, HELLO_TIMEOUT)
    domid = bed.domid(NAME)
    boots = bed.boots(NAME)

    question = confirm_action(browser, "reboot")
    assert f"Reboot {NAME}" in question
    notice = re.compile(rf"\[xcg: {NAME} rebooted, new domid (\d+)\]")

    def new_notice():  # the replay can show an earlier reboot's: Xen's domids only grow
        return [int(d) for d in notice.findall(flat_rows(browser)) if int(d) > domid]

    new_domid = wait(browser, new_notice, "the reboot notice", STATE_TIMEOUT)[-1]
    assert new_domid == bed.domid(NAME)

    def new_banner():  # a boot id xenconsoled had not logged before the click
        found = [m.group("boot").decode() for m in BANNER.finditer(flat_rows(browser).encode())
                 if m.group("name").decode() == NAME and m.group("boot").decode() not in boots]
        return found and found[-1]

    boot = wait(browser, new_banner, "the new boot's banner", BOOT_TIMEOUT)
    assert bed.wait_boots(NAME, len(boots) + 1)[-1] == boot  # xenconsoled saw the same boot
