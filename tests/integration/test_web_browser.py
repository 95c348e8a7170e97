"""The browser console in a real browser: headless Chromium (Selenium) against a gateway with a
web listener (TLS, a self-signed pair made on first start), links from `xcg ctl weblink`.

Set XCG_WEB_SCREENSHOT=PATH to save a screenshot of a logged-in console (docs/web-console.png).
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (LISTENING, STATE_TIMEOUT, XCG, default_domains, describe, render_config,
                      send_until)

from browser_page import (browser, buttons, closed_reason, element,  # noqa: F401 (a fixture)
                          open_console as open_page, rows, severe_logs, text, type_keys, wait)
from etcd_cluster import etcd  # noqa: F401 (a fixture)
from test_web_front import ctl_token, socket_dir, web_fleet  # noqa: F401 (fixtures)

REVOKE_LIMIT = 1.5  # "within a second", plus the reload's debounce and some grace
NOT_VALID = "not valid"


def free_port():
    """A loopback port nobody listens on now: public_url must name the port before start."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def wgw(make_gateway, tmp_path):
    """The default gateway with a TLS web listener on a free port and a control socket."""
    port = free_port()
    socket_dir = Path(tempfile.mkdtemp(prefix="xcg-web-"))  # a socket path must stay short
    web = {"listen": [f"127.0.0.1:{port}"], "public_url": f"https://127.0.0.1:{port}",
           "tls_cert": str(tmp_path / "web.crt"), "tls_key": str(tmp_path / "web.key")}
    gw = make_gateway(extra={"web": web}, args=["--control-socket", str(socket_dir / "control.sock")])
    gw.control_socket = socket_dir / "control.sock"
    gw.web = web
    # The SSH listener's port: the web listener may log a "listening on" line too.
    gw.port = next(int(p) for p in LISTENING.findall(gw.log_path.read_bytes()) if int(p) != port)
    yield gw
    shutil.rmtree(socket_dir, ignore_errors=True)


def weblink(gw, domain, *flags):
    """A one-time link from the operator's `xcg ctl weblink DOMAIN [--readonly]`."""
    result = subprocess.run([XCG, "ctl", "--socket", str(gw.control_socket), "weblink", domain,
                             *flags], capture_output=True, text=True, timeout=20,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, describe(result)
    match = re.search(r"https://\S+/#\S+", result.stdout)
    assert match, describe(result)
    assert match.group(0).startswith(gw.web["public_url"] + "/#"), result.stdout
    return match.group(0)


def open_console(driver, link, domain="web1"):
    open_page(driver, link, domain)


def log_in(driver, domain="web1"):
    type_keys(driver, "\n")
    wait(driver, lambda: f"{domain} login:" in rows(driver), "the login prompt")
    type_keys(driver, "root\n")
    wait(driver, lambda: f"{domain}:~# " in rows(driver), "the guest's shell prompt")


def ssh_viewer(gw, domain="web1"):
    child = gw.spawn(domain, domain, "console")
    send_until(child, b"\r", rb"login: |%s:~# " % domain.encode())
    return child


def test_page_loads_with_the_replay_and_no_console_errors(wgw, browser):
    open_console(browser, weblink(wgw, "web1"))
    wait(browser, lambda: "Booting fake guest web1" in rows(browser), "the boot banner (replay)")
    wait(browser, lambda: re.search(r"running, domid \d+", text(browser, "status")), "the status line")
    assert "#" not in browser.current_url, "the token stays in the address bar"
    assert buttons(browser) == ["start", "shutdown", "reboot", "destroy", "sysrq", "nmi"]
    assert not element(browser, "#closed").is_displayed()
    assert severe_logs(browser) == []


def test_typing_reaches_the_guest(wgw, browser):
    open_console(browser, weblink(wgw, "web1"))
    log_in(browser)
    type_keys(browser, "echo typed-in-browser\n")
    wait(browser, lambda: rows(browser).count("typed-in-browser") == 2, "the guest's answer")
    if os.environ.get("XCG_WEB_SCREENSHOT"):
        element(browser, "#log-button").click()
        wait(browser, lambda: text(browser, "log"), "the recent log")
        browser.save_screenshot(os.environ["XCG_WEB_SCREENSHOT"])
    assert severe_logs(browser) == []


def test_reboot_asks_first_then_shows_the_new_boot(wgw, browser):
    open_console(browser, weblink(wgw, "web1"))
    wait(browser, lambda: "web1 login:" in rows(browser), "the login prompt")
    domid = wgw.domid("web1")

    element(browser, "button[data-action=reboot]").click()
    wait(browser, lambda: element(browser, "#confirm").is_displayed(), "the confirmation dialog")
    assert "Reboot web1" in text(browser, "confirm-text")
    element(browser, "#confirm-no").click()
    wait(browser, lambda: not element(browser, "#confirm").is_displayed(), "the dialog to close")
    assert wgw.domid("web1") == domid  # cancelled: nothing was sent

    element(browser, "button[data-action=reboot]").click()
    wait(browser, lambda: element(browser, "#confirm").is_displayed(), "the confirmation dialog")
    element(browser, "#confirm-yes").click()
    wait(browser, lambda: text(browser, "result"), "the action's result", STATE_TIMEOUT)
    notice = re.compile(r"\[xcg: web1 rebooted, new domid (\d+)\]")
    match = wait(browser, lambda: notice.search(rows(browser)), "the reboot notice", STATE_TIMEOUT)
    new_domid = int(match.group(1))
    assert new_domid > domid
    banner = f"Booting fake guest web1 (domid {new_domid})"
    wait(browser, lambda: banner in rows(browser), "the new boot", STATE_TIMEOUT)


def test_browser_and_ssh_viewers_see_each_other(wgw, browser):
    viewer = ssh_viewer(wgw)
    open_console(browser, weblink(wgw, "web1"))
    log_in(browser)
    viewer.expect(rb"web1:~# ")
    type_keys(browser, "echo from-the-browser\n")
    viewer.expect(rb"\nfrom-the-browser\r?\n")
    viewer.send(b"echo from-ssh\r")
    wait(browser, lambda: rows(browser).count("from-ssh") == 2, "the SSH viewer's command")
    wait(browser, lambda: len(text(browser, "who").splitlines()) == 2, "two viewers in the list")


def test_readonly_link_has_no_buttons_and_ignores_typing(wgw, browser):
    viewer = ssh_viewer(wgw)
    open_console(browser, weblink(wgw, "web1", "--readonly"))
    assert buttons(browser) == []
    type_keys(browser, "echo typed-readonly\n")
    # A marker sent after the typing: once the browser shows it, the typing had its chance.
    viewer.send(b"marker-after-typing\r")
    wait(browser, lambda: "marker-after-typing" in rows(browser), "the SSH viewer's input")
    assert "typed-readonly" not in rows(browser)
    assert severe_logs(browser) == []


def test_revoked_domain_ends_the_page_within_a_second(wgw, browser, keys):
    open_console(browser, weblink(wgw, "web1"))
    domains = default_domains(keys)
    del domains["web1"]
    staging = wgw.dir / "xcg.yaml.new"
    staging.write_text(render_config(wgw.dir, domains, {"autostart": True, "shutdown_grace_ms": 2000},
                                     {"web": wgw.web}))
    start = time.monotonic()
    os.rename(staging, wgw.config_path)  # the reload sees the whole file at once
    reason = closed_reason(browser, timeout=5)
    elapsed = time.monotonic() - start
    assert "revoked" in reason, reason
    assert elapsed < REVOKE_LIMIT, f"the page ended after {elapsed:.3f} s"
    assert buttons(browser) == []


def test_used_link_shows_not_valid(wgw, browser):
    link = weblink(wgw, "web1")
    open_console(browser, link)
    browser.get("about:blank")
    browser.get(link)
    assert NOT_VALID in closed_reason(browser)
    assert buttons(browser) == [] and "login:" not in rows(browser)


def test_page_without_a_token_says_so(wgw, browser):
    browser.get(wgw.web["public_url"] + "/")
    assert NOT_VALID in closed_reason(browser)
    assert severe_logs(browser) == []


def test_through_a_front_the_nodes_console_takes_typing_and_its_buttons_work(web_fleet, browser):
    front, node = web_fleet
    open_console(browser, f"{front.origin}/#{ctl_token(front)}")
    wait(browser, lambda: "Booting fake guest web1" in rows(browser), "the node's replay")
    wait(browser, lambda: re.search(r"running, domid \d+", text(browser, "status")), "the node's status line")
    assert buttons(browser) == ["start", "shutdown", "reboot", "destroy", "sysrq", "nmi"]
    log_in(browser)
    type_keys(browser, "echo typed-through-the-front\n")
    wait(browser, lambda: rows(browser).count("typed-through-the-front") == 2, "the guest's answer")
    domid = node.domid("web1")
    element(browser, "button[data-action=reboot]").click()
    wait(browser, lambda: element(browser, "#confirm").is_displayed(), "the confirmation dialog")
    element(browser, "#confirm-yes").click()
    wait(browser, lambda: text(browser, "result"), "the action's result", STATE_TIMEOUT)
    wait(browser, lambda: "web1 rebooted, new domid" in rows(browser), "the reboot notice", STATE_TIMEOUT)
    assert node.domid("web1") > domid
    assert severe_logs(browser) == []
