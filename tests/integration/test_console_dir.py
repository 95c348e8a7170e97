"""sim.console_dir: a domain whose console is a tty someone else holds (here the test, as
xenconsoled holds a guest's pty master), opened as the Xen backend opens xenconsoled's pty:
bytes both ways, raw; lifecycle actions refused; a reload that names a missing tty is refused
and the running config stays."""

import os
import select
import time

from conftest import describe, detach, render_config, wait_for

NOT_VALID = "is not valid; still running the previous config:"


class GuestPty:
    """The guest's side of a console: the test writes the guest's output to the master and
    reads what the customer typed from it. The slave stays open, as xenconsoled keeps it."""

    def __init__(self, directory, name):
        self.master, self.slave = os.openpty()
        os.set_blocking(self.master, False)
        (directory / name).symlink_to(os.ttyname(self.slave))

    def read_until(self, text, timeout=10):
        got = b""
        deadline = time.monotonic() + timeout
        while text not in got and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
            if ready:
                got += os.read(self.master, 4096)
        return got

    def close(self):
        os.close(self.master)
        os.close(self.slave)


def sim_settings(consoles):
    return {"autostart": True, "shutdown_grace_ms": 2000, "console_dir": str(consoles)}


def test_a_console_dir_domain_is_its_tty_and_refuses_lifecycle(make_gateway, tmp_path, keys):
    consoles = tmp_path / "consoles"
    consoles.mkdir()
    guest = GuestPty(consoles, "web1")
    try:
        domains = {"web1": {"keys": [keys["web1"].public_line]}}
        gw = make_gateway(domains=domains, sim={"console_dir": str(consoles)})
        assert gw.domid() is not None  # running, as long as it is served

        child = gw.spawn("web1", "web1", "console")
        os.write(guest.master, b"guest output 41\r\n")
        child.expect(rb"guest output 41\r\n")
        # Raw, as xcg opens xenconsoled's ptys: "\n" arrives as it was typed, not as "\r\n".
        child.send(b"typed by the customer\n")
        got = guest.read_until(b"customer\n")
        assert got == b"typed by the customer\n", got
        detach(child)

        for verb in ("reboot", "shutdown", "destroy", "start"):
            result = gw.ssh("web1", "web1", verb)
            assert result.returncode == 1, describe(result)
            assert f"cannot {verb} web1: its console is a tty in {consoles} (sim.console_dir)" in result.stderr, \
                describe(result)
        assert gw.domid() is not None

        # A domain added without its tty: the reload is refused, web1 stays served.
        more = dict(domains, web2={"keys": [keys["web2"].public_line]})
        gw.config_path.write_text(render_config(gw.dir, more, sim_settings(consoles)))
        wait_for(lambda: NOT_VALID in gw.read_log(), 10, "the reload refused")
        assert f"domain 'web2': its console {consoles}/web2 (sim.console_dir): No such file or directory" \
            in gw.read_log()
        assert gw.domid() is not None
        # With its tty there, the same config is taken and web2's console works at once.
        guest2 = GuestPty(consoles, "web2")
        try:
            gw.config_path.write_text(render_config(gw.dir, more, sim_settings(consoles)) + "# web2's tty\n")
            wait_for(lambda: gw.ssh("web2", "web2", "status").returncode == 0, 10, "web2 served")
            child = gw.spawn("web2", "web2", "console")
            os.write(guest2.master, b"second guest\r\n")
            child.expect(rb"second guest\r\n")
            detach(child)
        finally:
            guest2.close()
    finally:
        guest.close()
