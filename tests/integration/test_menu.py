"""The interactive menu (`ssh -t web1@gw`): status line, numbered items, confirmations."""

import re


from conftest import DETACH, RUNNING, exit_menu, send_until

CHOICE = rb"Choice: "
ITEM = re.compile(rb"^\s*(\d)\) (\w+)", re.M)
STATUS_LINE = re.compile(rb"(web\d): (running|shut off|shutting down|crashed)\b[^\r\n]*")


def open_menu(gw, domain="web1"):
    child = gw.spawn(domain, domain, tty=True)
    child.expect(CHOICE)
    return child


def items(screen):
    return [(int(n), name.decode()) for n, name in ITEM.findall(screen)]


def status_lines(screen):
    return [m.group(0).decode().strip() for m in STATUS_LINE.finditer(screen)]



def test_menu_shows_status_and_all_items(gw):
    child = open_menu(gw)
    screen = child.before
    assert items(screen) == [(1, "console"), (2, "start"), (3, "shutdown"), (4, "reboot"),
                             (5, "destroy"), (6, "sysrq"), (7, "log"), (8, "weblink"), (0, "exit")], screen
    lines = status_lines(screen)
    assert lines and RUNNING.match(lines[-1]), screen
    exit_menu(child)
    assert gw.alive()


def test_menu_hides_items_not_allowed(gw):
    before = gw.domid("web3")
    child = open_menu(gw, "web3")
    assert items(child.before) == [(1, "console"), (2, "reboot"), (3, "log"), (4, "weblink"), (0, "exit")], child.before
    # "4" is not an item here: no confirmation, nothing happens; the menu still answers.
    child.send(b"4")
    child.send(b"2")
    child.expect(rb"Really (\w+) web3\? \[y/N\] ")
    assert child.match.group(1) == b"reboot"
    assert b"Really" not in child.before  # "4" asked nothing
    child.send(b"n")
    child.expect(CHOICE)
    exit_menu(child)
    assert gw.domid("web3") == before


def test_confirmation_declined(gw):
    before = gw.domid()
    child = open_menu(gw)
    for key in (b"n", b"x", b"\r"):
        child.send(b"4")
        child.expect(rb"Really reboot web1\? \[y/N\] ")
        child.send(key)
        child.expect(CHOICE)
    child.send(b"5")
    child.expect(rb"Really destroy web1\? \[y/N\] ")
    child.send(b"N")
    child.expect(CHOICE)
    exit_menu(child)
    assert gw.domid() == before


def test_reboot_confirmed(gw):
    before = gw.domid()
    child = open_menu(gw)
    child.send(b"4")
    child.expect(rb"Really reboot web1\? \[y/N\] ")
    child.send(b"y")
    child.expect(CHOICE)
    screen = child.before
    assert status_lines(screen), screen  # a fresh status line
    other = [line for line in screen.decode(errors="replace").splitlines()
             if len(line.strip()) > 1 and not ITEM.match(line.encode())
             and not STATUS_LINE.search(line.encode())]
    assert other, f"no message line in {screen!r}"
    gw.wait_running_after(before)
    exit_menu(child)


def test_shutdown_confirmed_then_start(gw):
    child = open_menu(gw)
    child.send(b"3")
    child.expect(rb"Really shutdown web1\? \[y/N\] ")
    child.send(b"y")
    child.expect(CHOICE)
    gw.wait_status(r"^web1: shut off")
    child.send(b"2")  # start asks no question
    child.expect(CHOICE)
    gw.wait_status(r"^web1: running, ")
    exit_menu(child)


def test_destroy_confirmed(gw):
    child = open_menu(gw)
    child.send(b"5")
    child.expect(rb"Really destroy web1\? \[y/N\] ")
    child.send(b"y")
    child.expect(CHOICE)
    gw.wait_status(r"^web1: shut off", timeout=5)
    # The menu re-renders with a fresh status when asked again (the "exit" path still works).
    exit_menu(child)


def test_console_from_menu_and_back(gw):
    child = open_menu(gw)
    child.send(b"1")
    send_until(child, b"\r", rb"web1 login: ")
    child.send(b"root\r")
    child.expect(rb"web1:~# ")
    child.send(b"echo via-menu\r")
    child.expect(rb"\nvia-menu\r?\n")
    child.send(DETACH)
    child.expect(CHOICE)
    assert status_lines(child.before), child.before  # the menu is re-rendered
    assert items(child.before)[0] == (1, "console"), child.before
    # The console can be entered again after detaching.
    child.send(b"1")
    send_until(child, b"\r", rb"web1:~# ")
    child.send(b"echo second\r")
    child.expect(rb"\nsecond\r?\n")
    child.send(DETACH)
    child.expect(CHOICE)
    exit_menu(child)


def test_console_from_menu_when_shut_off(make_gateway):
    gw = make_gateway(sim={"autostart": False})
    child = open_menu(gw)
    assert any(line.startswith("web1: shut off") for line in status_lines(child.before))
    child.send(b"1")
    child.expect(CHOICE)
    assert b"not running" in child.before, child.before
    exit_menu(child)


def test_on_login_console(gw):
    child = gw.spawn("web2", "web2", tty=True)
    send_until(child, b"\r", rb"web2 login: ")
    assert b"Choice:" not in child.before
    child.send(b"root\r")
    child.expect(rb"web2:~# ")
    child.send(b"echo straight\r")
    child.expect(rb"\nstraight\r?\n")
    assert b"Choice:" not in child.before
