"""Fixtures for the xcg integration tests: keys, a config, a running `xcg serve`, and an
OpenSSH client pointed at it.

Every test gets its own gateway (start-up takes well under a second), so a test that reboots
or shuts down a domain cannot disturb the next one.
"""

import json
import os
import pwd
import re
import signal
import subprocess
import time
import tty
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

XCG = os.environ.get("XCG_BINARY", "/work/main/build/xcg")

START_TIMEOUT = 15
STOP_TIMEOUT = 15
STATE_TIMEOUT = 20

LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")
RUNNING = re.compile(
    r"^(?P<name>[\w.-]+): running, domid (?P<domid>\d+), (?P<mem>\d+) MiB, "
    r"(?P<vcpus>\d+) vCPUs?, up (?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d)$")


DETACH = b"\x1d"  # Ctrl-]: leaves the console


def wait_for(predicate, timeout, what, interval=0.05):
    """Polls `predicate` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def describe(result):
    """A CompletedProcess as text, for assertion messages."""
    return (f"argv: {result.args}\nexit: {result.returncode}\n"
            f"stdout: {result.stdout!r}\nstderr: {result.stderr!r}")


def children_of(pid):
    """(pid, argv0) of every direct child of `pid`, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
            if ppid != pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        found.append((int(entry), argv0))
    return found


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:][:1] != b"Z"


@dataclass
class Key:
    name: str
    path: Path
    pub_path: Path
    public_line: str
    fingerprint: str  # "SHA256:..." as `ssh-keygen -lf` prints it


def make_key(directory, name, type_args):
    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", f"{name}@xcg-test", *type_args,
                    "-f", str(path)], check=True, timeout=30, stdin=subprocess.DEVNULL)
    pub_path = Path(f"{path}.pub")
    listing = subprocess.run(["ssh-keygen", "-lf", str(pub_path)], check=True, timeout=30,
                             capture_output=True, text=True).stdout
    fingerprint = listing.split()[1]
    assert fingerprint.startswith("SHA256:"), listing
    return Key(name, path, pub_path, pub_path.read_text().strip(), fingerprint)


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    return {
        "web1": make_key(directory, "web1", ["-t", "ed25519"]),
        "web2": make_key(directory, "web2", ["-t", "ecdsa", "-b", "256"]),
        "web3": make_key(directory, "web3", ["-t", "ed25519"]),
        "stranger": make_key(directory, "stranger", ["-t", "ed25519"]),
    }


def default_domains(keys):
    return {
        "web1": {"keys": [keys["web1"].public_line]},
        "web2": {"on_login": "console", "actions": ["console", "start"],
                 "keys": [keys["web2"].public_line]},
        # A menu domain with some actions hidden.
        "web3": {"actions": ["console", "reboot"], "keys": [keys["web3"].public_line]},
    }


def render_config(directory, domains, sim, extra=None):
    # JSON scalars and flow sequences are valid YAML, so json.dumps quotes safely.
    lines = [
        'listen: ["127.0.0.1:0"]',
        f"host_keys: [{json.dumps(str(directory / 'hostkey'))}]",
        "hypervisor: sim",
        f"audit_log: {json.dumps(str(directory / 'audit.jsonl'))}",
    ]
    # Further top-level settings (run_as, chroot_dir, limits); a dict becomes a block mapping.
    for field, value in (extra or {}).items():
        if isinstance(value, dict):
            lines.append(f"{field}:")
            lines += [f"  {k}: {json.dumps(v)}" for k, v in value.items()]
        else:
            lines.append(f"{field}: {json.dumps(value)}")
    lines.append("domains:")
    for name, settings in domains.items():
        lines.append(f"  {name}:")
        for field, value in settings.items():
            lines.append(f"    {field}: {json.dumps(value)}")
    lines.append("sim:")
    for field, value in sim.items():
        lines.append(f"  {field}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def _raw_stdin():
    # Runs in the ssh child before exec: without a remote pty ssh leaves the local terminal
    # alone, and a cooked pty would echo our input and turn CR into LF.
    tty.setraw(0)


def require_binary():
    if not (os.path.isfile(XCG) and os.access(XCG, os.X_OK)):
        pytest.fail(f"xcg binary not found at {XCG} (set XCG_BINARY)")


SESSION_USER = "xcg"  # the config's default run_as


def require_root():
    if os.geteuid() != 0:
        pytest.skip("needs root: xcg serve must be able to chroot and change user "
                    "to confine its session processes")


def ensure_user(name=SESSION_USER):
    """The passwd entry of `name`, creating it as a system user (as ./dev does) if missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, timeout=30, stdin=subprocess.DEVNULL,
                   capture_output=True)
    return pwd.getpwnam(name)


def proc_status(pid):
    """/proc/PID/status as a dict of field -> value (tabs kept, trailing newline dropped)."""
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


class Gateway:
    """One `xcg serve` process plus an OpenSSH client configured for it."""

    def __init__(self, directory, keys, domains=None, sim=None, extra=None, args=(), env=None,
                 extra_groups=None):
        self.dir = directory
        self.keys = keys
        self.args = list(args)  # more `xcg serve` arguments, e.g. --session-program
        self.env = env  # the server's environment; None: ours
        self.extra_groups = extra_groups  # the server's supplementary groups; None: ours
        self.config_path = directory / "xcg.yaml"
        self.log_path = directory / "serve.log"
        self.audit_path = directory / "audit.jsonl"
        self.host_key_path = directory / "hostkey"
        self.known_hosts = directory / "known_hosts"
        self.port = None
        self.proc = None
        self.terminated = False  # SIGTERM was sent (by a test or by teardown)
        self._descendants = []
        self.children = []  # pexpect.spawn objects to clean up
        self.transcripts = []  # (label, path) of pexpect session logs
        if "--session-program" in self.args:
            # A fake session reads the connection before its hello; a parked spare has none yet.
            extra = dict(extra or {})
            extra["limits"] = {"spare_sessions": 0, **extra.get("limits", {})}
        sim_settings = {"autostart": True, "shutdown_grace_ms": 2000}
        sim_settings.update(sim or {})
        self.config_path.write_text(
            render_config(directory, domains or default_domains(keys), sim_settings, extra))

    # --- server lifetime -------------------------------------------------------------------

    def start(self):
        require_binary()
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([XCG, "serve", "--config", str(self.config_path),
                                      *self.args],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, env=self.env,
                                     extra_groups=self.extra_groups)

        def listening():
            match = LISTENING.search(self.log_path.read_bytes())
            if match:
                return int(match.group(1))
            if self.proc.poll() is not None:
                raise AssertionError(f"xcg serve exited with {self.proc.returncode} before "
                                     f"listening:\n{self.read_log()}")
            return None

        self.port = wait_for(listening, START_TIMEOUT, "'listening on 127.0.0.1:PORT'")
        assert self.port != 0, "the log must show the actual port, not the configured 0"

    def terminate(self):
        """Sends SIGTERM and waits; returns the exit status, or None if it did not exit."""
        self.terminated = True
        self._descendants = [pid for pid, _ in children_of(self.proc.pid)]
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        """Ends the test's clients and the server; returns the server's status after SIGTERM
        (None if it had to be killed)."""
        for child in self.children:
            child.close(force=True)
            if child.logfile_read:
                child.logfile_read.close()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.terminate()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
            status = None
        else:
            status = self.proc.returncode
        self._reap(self._descendants)
        self._log.close()
        return status

    def _reap(self, pids):
        # Our own server's children (guests, sessions) must not outlive the test run.
        for pid in pids:
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def read_log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def processes(self, argv0_prefix):
        """Pids of the server's direct children whose argv[0] starts with the prefix."""
        return sorted(pid for pid, argv0 in children_of(self.proc.pid)
                      if argv0.startswith(argv0_prefix) and pid_alive(pid))

    def sessions(self):
        """The server's xcg-session processes, {pid: "spare" or "connected"}: a spare is parked
        with its IPC socket on descriptor 0, where a session has its connection."""
        found = {}
        for pid in self.processes("xcg-session"):
            try:
                conn, ipc = (os.readlink(f"/proc/{pid}/fd/{n}") for n in (0, 3))
            except OSError:
                continue  # ended meanwhile
            found[pid] = "spare" if conn == ipc else "connected"
        return found

    def spares(self):
        return sorted(pid for pid, what in self.sessions().items() if what == "spare")

    def connected_sessions(self):
        """Pids of the session processes serving a connection (the parked spares left out)."""
        return sorted(pid for pid, what in self.sessions().items() if what == "connected")

    # --- ssh client --------------------------------------------------------------------------

    def key(self, key):
        return self.keys[key] if isinstance(key, str) else key

    def ssh_argv(self, domain, key, cmd, tty=False, extra=()):
        argv = ["ssh", "-F", "/dev/null",
                "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no",
                "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "IdentitiesOnly=yes",
                "-o", "IdentityAgent=none",
                "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=10",
                "-p", str(self.port),
                "-i", str(self.key(key).path)]
        argv += ["-tt", "-e", "none"] if tty else ["-T"]
        argv += list(extra)
        argv.append(f"{domain}@127.0.0.1")
        argv += list(cmd)
        return argv

    def ssh(self, domain, key, *cmd, tty=False, input=None, timeout=20, extra=()):
        """Runs the OpenSSH client to completion; returns a CompletedProcess (text)."""
        argv = self.ssh_argv(domain, key, cmd, tty=tty, extra=extra)
        stdin = None if input is not None else subprocess.DEVNULL
        return subprocess.run(argv, input=input, stdin=stdin, capture_output=True, text=True,
                              errors="replace", timeout=timeout)

    def spawn(self, domain, key, *cmd, tty=False, extra=(), timeout=10):
        """The OpenSSH client on a pty (24x80, raw mode), for interactive tests (bytes)."""
        argv = self.ssh_argv(domain, key, cmd, tty=tty, extra=extra)
        child = pexpect.spawn(argv[0], argv[1:], timeout=timeout, dimensions=(24, 80),
                              preexec_fn=_raw_stdin, encoding=None)
        label = f"{domain} {' '.join(cmd) or '(shell)'} #{len(self.transcripts)}"
        path = self.dir / f"transcript-{len(self.transcripts)}.log"
        child.logfile_read = open(path, "wb")
        self.transcripts.append((label, path))
        self.children.append(child)
        return child

    # --- domain helpers ------------------------------------------------------------------------

    def status(self, domain="web1", key=None):
        result = self.ssh(domain, key or domain, "status")
        assert result.returncode == 0, describe(result)
        return result.stdout.strip()

    def domid(self, domain="web1", key=None):
        match = RUNNING.match(self.status(domain, key))
        return int(match.group("domid")) if match else None

    def wait_status(self, pattern, domain="web1", key=None, timeout=STATE_TIMEOUT):
        """Polls `status` until its line matches `pattern` (a regex); returns the match."""
        seen = []

        def check():
            line = self.status(domain, key)
            seen.append(line)
            return re.search(pattern, line)

        try:
            return wait_for(check, timeout, f"{domain} status matching {pattern!r}", 0.1)
        except AssertionError as e:
            raise AssertionError(f"{e}; last status: {seen[-1:]}") from None

    def wait_running_after(self, old_domid, domain="web1", key=None, timeout=STATE_TIMEOUT):
        """Polls until the domain runs with a domid larger than `old_domid`; returns it."""
        seen = []

        def check():
            line = self.status(domain, key)
            seen.append(line)
            match = RUNNING.match(line)
            return match and int(match.group("domid")) > old_domid and int(match.group("domid"))

        try:
            return wait_for(check, timeout, f"{domain} running with domid > {old_domid}", 0.1)
        except AssertionError as e:
            raise AssertionError(f"{e}; last status: {seen[-1:]}") from None

    def audit_records(self):
        try:
            text = self.audit_path.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def make_gateway(request, tmp_path, keys):
    """Factory: make_gateway(domains=None, sim=None, extra=None, args=(), env=None,
    extra_groups=None) starts a gateway with that config; `extra` adds top-level settings
    (run_as, chroot_dir, limits), `args` more `xcg serve` arguments, `env` and `extra_groups`
    replace the server's environment and supplementary groups."""
    gateways = []
    request.node._xcg_gateways = gateways
    if os.geteuid() == 0:
        ensure_user()  # sessions run as the default run_as user

    def make(domains=None, sim=None, extra=None, args=(), env=None, extra_groups=None):
        directory = tmp_path / f"gw{len(gateways)}"
        directory.mkdir()
        gw = Gateway(directory, keys, domains, sim, extra, args, env, extra_groups)
        gateways.append(gw)
        gw.start()
        return gw

    yield make

    problems = []
    for gw in gateways:
        if gw.proc is None:
            continue
        was_alive = gw.terminated or gw.alive()
        status = gw.stop()
        if not was_alive:
            problems.append(f"xcg serve died during the test (exit {status})")
        elif status is None:
            problems.append(f"xcg serve did not exit within {STOP_TIMEOUT}s of SIGTERM")
        elif status != 0:
            problems.append(f"xcg serve exited with {status} after SIGTERM (want 0)")
    if problems:
        logs = "\n".join(f"--- {gw.log_path}\n{gw.read_log()}" for gw in gateways)
        pytest.fail("; ".join(problems) + "\n" + logs, pytrace=False)


@pytest.fixture
def gw(make_gateway):
    """A gateway with the default config: web1 (menu, all actions), web2 (on_login: console,
    actions console+start), web3 (menu, actions console+reboot); all running."""
    return make_gateway()


@pytest.fixture
def xcg_binary():
    require_binary()
    return XCG


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for gw in getattr(item, "_xcg_gateways", []):
        report.sections.append((f"xcg serve log {gw.log_path}", gw.read_log()))
        for label, path in gw.transcripts:
            try:
                text = path.read_bytes().decode(errors="replace")
            except OSError:
                continue
            report.sections.append((f"ssh transcript: {label}", repr(text)[-3000:]))


def send_until(child, data, pattern, timeout=10, step=1.0):
    """Sends `data` to a pexpect child, again every `step` seconds, until `pattern` shows.

    For the first keystroke after attaching, when nothing tells the client the attach is
    complete yet; `data` must be harmless to repeat (e.g. a bare CR)."""
    deadline = time.monotonic() + timeout
    while True:
        child.send(data)
        try:
            return child.expect(pattern, timeout=step)
        except pexpect.TIMEOUT:
            if time.monotonic() >= deadline:
                raise


def exits_cleanly(child, keys):
    """Sends `keys` and checks that the client then ends with exit status 0."""
    child.send(keys)
    child.expect(pexpect.EOF)
    if child.isalive():  # EOF on the pty can come before the exit: wait, don't SIGHUP it
        child.wait()
    child.close()
    assert child.exitstatus == 0, (child.exitstatus, child.signalstatus)


def detach(child):
    exits_cleanly(child, DETACH)


def exit_menu(child):
    exits_cleanly(child, b"0")
