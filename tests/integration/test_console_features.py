"""Console features beyond the round trip: the console log (`log`), who is attached (`who`),
SysRq and NMI, the menu's sysrq and log items, and read-only keys."""

import re

import pytest

from conftest import DETACH, describe, detach, exit_menu, make_key, send_until, wait_for

CHOICE = rb"Choice: "
ITEM = re.compile(rb"^\s*(\d)\) (\w+)", re.M)
VIEW_ONLY_HINT = rb"console of web1, view only; Ctrl-\] detaches"
SYSRQ_PROMPT = rb"SysRq key for web1 \(h for help, Enter cancels\): "
LIFECYCLE = ("start", "shutdown", "reboot", "destroy")


@pytest.fixture(scope="module")
def viewer_key(tmp_path_factory):
    """A second key for web1, configured read-only where a test says so."""
    return make_key(tmp_path_factory.mktemp("viewer-key"), "viewer", ["-t", "ed25519"])


def web1(keys, viewer_key, actions=None):
    """web1 with its own (writable) key and the viewer key as a read-only key."""
    settings = {"keys": [keys["web1"].public_line,
                         {"key": viewer_key.public_line, "readonly": True}]}
    if actions is not None:
        settings["actions"] = actions
    return settings


@pytest.fixture
def start(make_gateway, tmp_path, keys, viewer_key):
    """start(actions=None): a gateway with web1 (plus the read-only viewer key) and web3
    (console and reboot only), writing console logs to a fresh directory."""
    counter = [0]

    def make(actions=None):
        log_dir = tmp_path / f"console-log-{counter[0]}"
        counter[0] += 1
        log_dir.mkdir()
        domains = {
            "web1": web1(keys, viewer_key, actions),
            "web3": {"actions": ["console", "reboot"], "keys": [keys["web3"].public_line]},
        }
        return make_gateway(domains=domains, extra={"console": {"log_dir": str(log_dir)}})

    return make


def log_in(child, domain="web1"):
    send_until(child, b"\r", rb"login: ")
    child.send(b"root\r")
    child.expect(rb"%s:~# " % domain.encode())


def attach_read_only(gw, viewer_key, *extra):
    """The read-only key on `console`, attached once its hint shows."""
    child = gw.spawn("web1", viewer_key, "console", extra=extra)
    child.expect(VIEW_ONLY_HINT)
    return child


def open_menu(gw, key, domain="web1"):
    child = gw.spawn(domain, key, tty=True)
    child.expect(CHOICE)
    return child


def items(screen):
    return [(int(n), name.decode()) for n, name in ITEM.findall(screen)]




# --- log ----------------------------------------------------------------------------------------

def test_log_shows_what_the_console_printed(start):
    gw = start()
    child = gw.spawn("web1", "web1", "console")
    log_in(child)
    child.send(b"echo marker-4711\r")
    child.expect(rb"\nmarker-4711\r?\n")
    child.expect(rb"web1:~# ")
    detach(child)

    result = gw.ssh("web1", "web1", "log", "--lines", "20")
    assert result.returncode == 0, describe(result)
    assert "marker-4711" in result.stdout, describe(result)

    short = gw.ssh("web1", "web1", "log", "-n", "3")
    assert short.returncode == 0, describe(short)
    assert 1 <= len(short.stdout.splitlines()) <= 3, describe(short)
    assert "marker-4711" in short.stdout, describe(short)  # the echo is among the last lines

    default = gw.ssh("web1", "web1", "log")
    assert default.returncode == 0, describe(default)
    assert "Booting fake guest web1" in default.stdout, describe(default)


def test_log_records_while_nobody_is_attached(start):
    gw = start()
    before = gw.domid()
    result = gw.ssh("web1", "web1", "reboot")
    assert result.returncode == 0, describe(result)
    new = gw.wait_running_after(before)
    banner = f"Booting fake guest web1 (domid {new})"

    def banner_logged():
        r = gw.ssh("web1", "web1", "log", "--lines", "50")
        assert r.returncode == 0, describe(r)
        return banner in r.stdout

    wait_for(banner_logged, 10, f"{banner!r} in the log")


def test_no_notice_for_domains_already_running_when_the_gateway_starts(start):
    # "started" would read as a boot of the guest; the guest did not boot, the gateway did.
    gw = start()

    def log_with_banner():
        r = gw.ssh("web1", "web1", "log", "--lines", "200")
        assert r.returncode == 0, describe(r)
        return r if "Booting fake guest web1" in r.stdout else None

    # The guest may still be booting when the gateway answers its first login.
    result = wait_for(log_with_banner, 10, "the boot banner in web1's log")
    assert "[xcg:" not in result.stdout, describe(result)


def test_log_usage_errors_exit_2(start):
    gw = start()
    for args in (("log", "-n", "0"), ("log", "-n", "10001"), ("log", "--lines"),
                 ("log", "-x", "3"), ("log", "-n", "many")):
        result = gw.ssh("web1", "web1", *args)
        assert result.returncode == 2, describe(result)
        assert result.stdout == "", describe(result)
        assert len(result.stderr.strip().splitlines()) == 1, describe(result)
        assert "log" in result.stderr, describe(result)


# --- who ----------------------------------------------------------------------------------------

def test_who_lists_every_viewer_with_the_read_only_flag(start, viewer_key):
    gw = start()
    assert gw.ssh("web1", "web1", "who").stdout == ""  # nobody yet

    writer = gw.spawn("web1", "web1", "console")
    log_in(writer)
    reader = attach_read_only(gw, viewer_key)

    result = gw.ssh("web1", "web1", "who")
    assert result.returncode == 0, describe(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 2, describe(result)
    mine = [line for line in lines if line.startswith("web1@xcg-test")]
    theirs = [line for line in lines if line.startswith("viewer@xcg-test")]
    assert len(mine) == 1 and "read-only" not in mine[0], describe(result)
    assert len(theirs) == 1 and "(read-only)" in theirs[0], describe(result)
    for line in lines:
        assert re.search(r"since \d\d:\d\d:\d\d UTC$", line), describe(result)

    # The read-only key may ask too.
    also = gw.ssh("web1", viewer_key, "who")
    assert also.returncode == 0, describe(also)
    assert sorted(also.stdout.splitlines()) == sorted(lines), describe(also)

    detach(reader)
    detach(writer)


def test_menu_shows_the_viewers_line(start, viewer_key):
    gw = start()
    reader = attach_read_only(gw, viewer_key)
    child = open_menu(gw, "web1")
    assert re.search(rb"\nviewers: viewer@xcg-test \(read-only\), since \d\d:\d\d:\d\d UTC\r\n",
                     child.before), child.before
    detach(reader)

    # A fresh screen (Enter) asks again; with nobody attached the line is gone.
    def line_gone():
        child.send(b"\r")
        child.expect(CHOICE)
        return b"viewers:" not in child.before

    wait_for(line_gone, 10, "the viewers line to disappear")
    exit_menu(child)


# --- sysrq and nmi ------------------------------------------------------------------------------

def test_sysrq_reaches_the_guest(start):
    gw = start()
    child = gw.spawn("web1", "web1", "console")
    log_in(child)
    result = gw.ssh("web1", "web1", "sysrq", "h")
    assert result.returncode == 0, describe(result)
    assert "sysrq h" in result.stdout, describe(result)
    child.expect(rb"sysrq: HELP")
    detach(child)


def test_nmi_reaches_the_guest(start):
    gw = start()
    child = gw.spawn("web1", "web1", "console")
    log_in(child)
    result = gw.ssh("web1", "web1", "nmi")
    assert result.returncode == 0, describe(result)
    child.expect(rb"NMI received")
    detach(child)


def test_sysrq_usage_errors_exit_2(start):
    gw = start()
    for args in (("sysrq",), ("sysrq", "H"), ("sysrq", "hh"), ("sysrq", "h", "x"),
                 ("nmi", "now")):
        result = gw.ssh("web1", "web1", *args)
        assert result.returncode == 2, describe(result)
        assert len(result.stderr.strip().splitlines()) == 1, describe(result)


def test_sysrq_not_allowed_exits_1(start):
    gw = start(actions=["console", "start", "shutdown", "reboot", "destroy"])
    child = gw.spawn("web1", "web1", "console")
    log_in(child)
    for args in (("sysrq", "h"), ("nmi",)):
        result = gw.ssh("web1", "web1", *args)
        assert result.returncode == 1, describe(result)
        assert "not allowed" in result.stderr, describe(result)
    # Nothing reached the guest: the next thing it prints is our probe.
    child.send(b"echo probe\r")
    child.expect(rb"\nprobe\r?\n")
    assert b"sysrq:" not in child.before and b"NMI" not in child.before, child.before
    detach(child)

    help_text = gw.ssh("web1", "web1", "help").stdout
    assert "sysrq" not in help_text and "nmi" not in help_text, help_text
    menu = open_menu(gw, "web1")
    assert "sysrq" not in [name for _, name in items(menu.before)], menu.before
    exit_menu(menu)


# --- the menu's sysrq and log items -------------------------------------------------------------

def test_menu_sysrq_and_log_items(start):
    gw = start()
    child = open_menu(gw, "web1")
    assert items(child.before) == [(1, "console"), (2, "start"), (3, "shutdown"), (4, "reboot"),
                                   (5, "destroy"), (6, "sysrq"), (7, "log"), (8, "weblink"), (0, "exit")], \
        child.before

    # Enter cancels the prompt.
    child.send(b"6")
    child.expect(SYSRQ_PROMPT)
    child.send(b"\r")
    child.expect(rb"cancelled")
    child.expect(CHOICE)

    child.send(b"6")
    child.expect(SYSRQ_PROMPT)
    child.send(b"h")
    child.expect(rb"sysrq h sent")
    child.expect(CHOICE)

    # The guest's answer is in the console log, which the log item shows.
    def help_in_log():
        child.send(b"7")
        child.expect(CHOICE)
        return b"sysrq: HELP" in child.before

    wait_for(help_in_log, 10, "'sysrq: HELP' in the menu's log")
    assert b"Booting fake guest web1" in child.before or b"login:" in child.before, child.before
    assert b"\x1b" not in child.before, child.before
    exit_menu(child)


# --- read-only keys -----------------------------------------------------------------------------

def test_read_only_input_never_reaches_the_guest(start, viewer_key):
    gw = start()
    writer = gw.spawn("web1", "web1", "console")
    log_in(writer)
    reader = attach_read_only(gw, viewer_key)
    reader.send(b"echo ro-typed-1234\r")
    reader.send(b"\x03\x0f")
    # The writable viewer's probe comes back; the reader's line never did.
    writer.send(b"echo probe-5678\r")
    writer.expect(rb"\nprobe-5678\r?\n")
    assert b"ro-typed" not in writer.before, writer.before
    reader.expect(rb"\nprobe-5678\r?\n")  # the reader does see the console
    assert b"ro-typed" not in reader.before, reader.before
    result = gw.ssh("web1", "web1", "log", "-n", "50")
    assert "probe-5678" in result.stdout and "ro-typed" not in result.stdout, describe(result)
    detach(reader)  # Ctrl-] still works
    detach(writer)


def test_read_only_key_cannot_act(start, viewer_key):
    gw = start()
    before = gw.domid()
    for args in (("reboot",), ("start",), ("shutdown",), ("destroy",), ("sysrq", "h"), ("nmi",)):
        result = gw.ssh("web1", viewer_key, *args)
        assert result.returncode == 1, describe(result)
        assert "read-only" in result.stderr, describe(result)
        assert len(result.stderr.strip().splitlines()) == 1, describe(result)
    assert gw.domid() == before

    for args in (("status",), ("log",), ("who",)):
        result = gw.ssh("web1", viewer_key, *args)
        assert result.returncode == 0, describe(result)
    help_text = gw.ssh("web1", viewer_key, "help")
    assert help_text.returncode == 0, describe(help_text)
    assert "read-only" in help_text.stdout, describe(help_text)
    for verb in LIFECYCLE + ("sysrq", "nmi"):
        assert f"\n  {verb} " not in help_text.stdout, describe(help_text)


def test_read_only_menu_offers_no_lifecycle_items(start, viewer_key):
    gw = start()
    writer = gw.spawn("web1", "web1", "console")
    log_in(writer)
    child = open_menu(gw, viewer_key)
    assert items(child.before) == [(1, "console"), (2, "log"), (3, "weblink"), (0, "exit")], child.before
    assert b"view only" in child.before, child.before
    for key in (b"3", b"4", b"5", b"6", b"7"):
        child.send(key)
    child.send(b"1")
    child.expect(rb"console of web1, view only; Ctrl-\] returns to this menu")
    child.send(b"echo menu-ro-typed\r")
    writer.send(b"echo probe-9\r")
    writer.expect(rb"\nprobe-9\r?\n")
    assert b"menu-ro-typed" not in writer.before, writer.before
    child.expect(rb"\nprobe-9\r?\n")
    child.send(DETACH)
    child.expect(CHOICE)
    assert items(child.before) == [(1, "console"), (2, "log"), (3, "weblink"), (0, "exit")], child.before
    exit_menu(child)
    detach(writer)


# --- control keys -------------------------------------------------------------------------------

@pytest.mark.parametrize("tty", [False, True])
def test_ctrl_o_reaches_the_guest(start, tty):
    gw = start()
    child = gw.spawn("web1", "web1", "console", tty=tty)
    log_in(child)
    child.send(b"echo x\x0fy\r")
    child.expect(rb"\nx\^Oy\r?\n")
    detach(child)


# --- reboot notices -------------------------------------------------------------------------------

# A guest that ignores SIGTERM: with a 30 s grace before SIGKILL, a reboot stays under way
# while the test acts.
STUBBORN_GUEST = ["/bin/sh", "-c", "trap '' TERM; echo booted; while :; do sleep 1; done"]
NOTICE = rb"\[xcg: web1 [^\]\r\n]*\]"


def stubborn(make_gateway):
    gw = make_gateway(sim={"guest_command": STUBBORN_GUEST, "shutdown_grace_ms": 30000})
    viewer = gw.spawn("web1", "web1", "console", timeout=30)
    viewer.expect(rb"booted")
    return gw, viewer


def test_destroy_during_a_reboot_is_told_at_once(make_gateway):
    # The reboot's 60 s wait for the new domain must not swallow what the destroy did.
    gw, viewer = stubborn(make_gateway)
    for action in ("reboot", "destroy"):
        result = gw.ssh("web1", "web1", action)
        assert result.returncode == 0, describe(result)
    viewer.expect(NOTICE, timeout=10)
    assert viewer.after == b"[xcg: web1 is shut off]"


def test_start_after_a_destroyed_reboot_is_a_start(make_gateway):
    gw, viewer = stubborn(make_gateway)
    for action in ("reboot", "destroy"):
        result = gw.ssh("web1", "web1", action)
        assert result.returncode == 0, describe(result)
    viewer.expect(NOTICE, timeout=10)
    result = gw.ssh("web1", "web1", "start")
    assert result.returncode == 0, describe(result)
    viewer.expect(NOTICE, timeout=10)
    assert re.fullmatch(rb"\[xcg: web1 started, domid \d+\]", viewer.after), viewer.after
