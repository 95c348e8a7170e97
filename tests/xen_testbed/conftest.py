"""Fixtures for the real-Xen test bed: the booted QEMU (dom0 + guest1 + guest2), an operator
channel into dom0 (its sshd, root, the run's own key), and `xcg serve` running in dom0 with
`hypervisor: xen`, reached by the host's OpenSSH client through QEMU's hostfwd port (and its
browser console, with a self-signed pair, by the host's Chromium through another).

The test bed must already be running (tests/xen_testbed/run.sh does build, boot, these tests
and stop). One `xcg serve` serves the whole session (test_xcg_fleet.py stops it for a while and
starts it again): starting it per test would cost little, but every test must then also wait
for the hub to find both guests again. Tests that change a
guest's state restore it (or the next test's `gw` fixture does, with `xl create`).
"""

import os
import re
import shlex
import subprocess
import time
import tty
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

RUN = Path(os.environ.get("XCG_TESTBED_RUN", "/tmp/xcg-testbed"))
GUESTS = ("guest1", "guest2")
GUEST_MEMORY_MIB = 128  # /etc/xen/guestN.cfg
GUEST_VCPUS = 1

SSH_TIMEOUT = 180       # one ssh command: the handshake with emulated dom0, an `xl create`
SERVE_TIMEOUT = 90      # xcg serve in dom0: start -> listening
STATE_TIMEOUT = 120     # a lifecycle action -> the state it leads to
BOOT_TIMEOUT = 180      # a guest's start -> its banner

DOM0_CONFIG = "/etc/xcg/xcg.yaml"
DOM0_LOG = "/var/log/xcg/serve.log"
DOM0_PID = "/run/xcg-testbed-serve.pid"
DOM0_EXIT = "/run/xcg-testbed-serve.exit"  # its exit status, once it has exited
DETACH = b"\x1d"
READ_ONLY_DOMAIN = "guest1"  # keys["viewer"] is a read-only key for it
DOM0_WEB_PORT = 8443  # testbed.sh forwards the host's WEB_PORT here

RUNNING = re.compile(
    r"^(?P<name>[\w.-]+): running, domid (?P<domid>\d+), (?P<mem>\d+) MiB, "
    r"(?P<vcpus>\d+) vCPUs?, up (?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d)(?:, [^\n]*)?$")
BANNER = re.compile(rb"XCG-TESTBED-GUEST name=(?P<name>[\w-]+) boot=(?P<boot>[0-9a-f-]{36})")


def wait_for(predicate, timeout, what, interval=0.5):
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
    return (f"argv: {result.args}\nexit: {result.returncode}\n"
            f"stdout: {result.stdout!r}\nstderr: {result.stderr!r}")


def send_until(child, data, pattern, timeout=60, step=3.0):
    """Sends `data` (harmless to repeat, e.g. a bare CR) again every `step` seconds until
    `pattern` shows; for the first keystroke after attaching."""
    deadline = time.monotonic() + timeout
    while True:
        child.send(data)
        try:
            return child.expect(pattern, timeout=step)
        except pexpect.TIMEOUT:
            if time.monotonic() >= deadline:
                raise


def detach(child):
    """Ctrl-], then the client must end with exit status 0."""
    child.send(DETACH)
    child.expect(pexpect.EOF)
    if child.isalive():  # EOF on the pty can come before the exit: wait, don't SIGHUP it
        child.wait()
    child.close()
    assert child.exitstatus == 0, (child.exitstatus, child.signalstatus)


def read_state():
    try:
        text = (RUN / "state").read_text()
    except OSError:
        return None
    return dict(line.split("=", 1) for line in text.split() if "=" in line)


def ssh_base(port, key, known_hosts="/dev/null"):
    return ["ssh", "-F", "/dev/null",
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no",
            "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none",
            "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=60",
            "-p", str(port), "-i", str(key)]


def _raw_stdin():
    # In the ssh child before exec: without a remote pty (-T) ssh leaves the local terminal
    # alone, and a cooked pty would hold input back until Enter (Ctrl-] too), echo it, and
    # turn CR into LF.
    tty.setraw(0)


class Capture:
    """A client whose whole output goes to a file, read back whenever a test looks: for
    streams too long to expect() on piece by piece. Its stdin is a pipe that stays open, so
    the session does not see an end of input."""

    def __init__(self, argv, path):
        self.path = path
        with open(path, "wb") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out,
                                         stderr=subprocess.STDOUT)

    def data(self):
        return self.path.read_bytes()

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait_for(self, pattern, what, timeout=60):
        """Waits until `pattern` is in the output; returns the match. Fails at once if the
        client has ended without it."""
        def found():
            match = re.search(pattern, self.data())
            return match or (self.proc.poll() is not None and "ended")

        match = wait_for(found, timeout, what, interval=0.2)
        assert match != "ended", f"{what}: the client ended (exit {self.proc.returncode})"
        return match

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()


class Transcripts:
    """pexpect children and captures of one test, with their logs for the failure report."""

    def __init__(self, directory):
        self.dir = directory
        self.items = []  # (label, path, child or Capture)

    def spawn(self, argv, label, timeout):
        child = pexpect.spawn(argv[0], argv[1:], timeout=timeout, dimensions=(24, 80),
                              preexec_fn=_raw_stdin, encoding=None)
        path = self._next_path()
        child.logfile_read = open(path, "wb")
        self.items.append((label, path, child))
        return child

    def capture(self, argv, label):
        capture = Capture(argv, self._next_path())
        self.items.append((label, capture.path, capture))
        return capture

    def _next_path(self):
        return self.dir / f"transcript-{len(self.items)}.log"

    def close(self):
        for _, _, child in self.items:
            if isinstance(child, Capture):
                child.close()
                continue
            child.close(force=True)
            child.logfile_read.close()


class Bed:
    """The running test bed, seen by an operator: root in dom0 over its sshd."""

    def __init__(self, state):
        self.ssh_port = int(state["SSH_PORT"])
        self.xcg_port = int(state["XCG_PORT"])
        self.web_port = int(state["WEB_PORT"])
        self.key = RUN / "operator_key"

    def argv(self, command, tty=False):
        # A channel of the connection testbed.sh keeps open, if it is there (a new handshake
        # with emulated dom0 costs seconds); else ssh connects on its own.
        argv = ssh_base(self.ssh_port, self.key) + [
            "-o", "ControlMaster=no", "-o", f"ControlPath={RUN / 'dom0.ctl'}"]
        argv += ["-tt", "-e", "none"] if tty else ["-T"]
        return argv + ["root@127.0.0.1", shlex.join(command)]

    def run(self, *command, input=None, timeout=SSH_TIMEOUT):
        """Runs one command (an argv, quoted for dom0's shell) in dom0; a CompletedProcess."""
        return subprocess.run(self.argv(command), input=input, capture_output=True, text=True,
                              errors="replace", timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def check(self, *command, input=None, timeout=SSH_TIMEOUT):
        result = self.run(*command, input=input, timeout=timeout)
        assert result.returncode == 0, describe(result)
        return result.stdout

    def domid(self, name):
        """The domid `xl` reports for `name`, or None if there is no such domain."""
        result = self.run("xl", "domid", name)
        return int(result.stdout) if result.returncode == 0 else None

    def console_log(self, name):
        """Everything guest `name` printed on its console (xenconsoled's log)."""
        result = self.run("cat", f"/var/log/xen/console/guest-{name}.log")
        return result.stdout.encode() if result.returncode == 0 else b""

    def boots(self, name):
        """Boot ids from the banners in the guest's console log, oldest first."""
        return [m.group("boot").decode() for m in BANNER.finditer(self.console_log(name))
                if m.group("name").decode() == name]

    def wait_boots(self, name, count, timeout=BOOT_TIMEOUT):
        """Waits until the guest has printed `count` banners; returns the boot ids."""
        def enough():
            boots = self.boots(name)
            return len(boots) >= count and boots

        return wait_for(enough, timeout, f"banner #{count} of {name}", interval=1.0)

    def domains(self):
        """{name: domid} of every domain `xl list` shows."""
        rows = self.check("xl", "list").splitlines()[1:]
        return {row.split()[0]: int(row.split()[1]) for row in rows if len(row.split()) > 1}

    def ensure_running(self, *names):
        """Starts each of `names` with `xl create` unless it runs; waits for their banners."""
        running = self.domains()
        for name in names:
            if name in running:
                continue
            before = len(self.boots(name))
            self.check("xl", "create", "-q", f"/etc/xen/{name}.cfg")
            self.wait_boots(name, before + 1)


@pytest.fixture(scope="session")
def bed():
    state = read_state()
    if state is None:
        pytest.fail(f"the test bed is not running (no {RUN}/state): use tests/xen_testbed/run.sh, "
                    "or tests/xen_testbed/testbed.sh build && tests/xen_testbed/testbed.sh boot")
    bed = Bed(state)
    result = bed.run("true", timeout=60)
    if result.returncode != 0:
        pytest.fail(f"dom0 does not answer on 127.0.0.1:{bed.ssh_port}: {describe(result)}")
    return bed


@pytest.fixture
def transcripts(request, tmp_path):
    t = Transcripts(tmp_path)
    request.node._xcg_transcripts = t
    yield t
    t.close()


@dataclass
class Key:
    name: str
    path: Path
    public_line: str


def make_key(directory, name, type_args):
    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", f"{name}@xcg-testbed", *type_args,
                    "-f", str(path)], check=True, timeout=30, stdin=subprocess.DEVNULL)
    return Key(name, path, Path(f"{path}.pub").read_text().strip())


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    return {
        "guest1": make_key(directory, "guest1", ["-t", "ed25519"]),
        "guest2": make_key(directory, "guest2", ["-t", "ecdsa", "-b", "256"]),
        "stranger": make_key(directory, "stranger", ["-t", "ed25519"]),
        "viewer": make_key(directory, "viewer", ["-t", "ed25519"]),  # guest1's, read-only
    }


def common_config_lines():
    """The settings every xcg serve in dom0 has, whatever else it serves."""
    return ['listen: ["0.0.0.0:2222"]',  # dom0's side of the hostfwd
            'host_keys: ["/var/lib/xcg/ssh_host_ed25519_key"]',
            "hypervisor: xen",
            'audit_log: "/var/log/xcg/audit.jsonl"',
            # xl runs emulated here: `xl create` takes 3 s on an idle host, but more than
            # the default 30 s when other work shares the two cores.
            "xen:",
            "  timeout: 120s"]


def render_config(keys, web_port):
    lines = common_config_lines() + [
        # The browser reaches dom0 through the hostfwd: Host and Origin name the host's
        # end. Neither file exists at first, so xcg makes a self-signed pair there.
        "web:",
        f'  listen: ["0.0.0.0:{DOM0_WEB_PORT}"]',
        f'  public_url: "https://127.0.0.1:{web_port}"',
        '  tls_cert: "/var/lib/xcg/web.crt"',
        '  tls_key: "/var/lib/xcg/web.key"',
        "domains:"]
    for name in GUESTS:
        lines += [f"  {name}:", "    keys:", f'      - "{keys[name].public_line}"']
        if name == READ_ONLY_DOMAIN:
            lines += [f'      - key: "{keys["viewer"].public_line}"', "        readonly: true"]
    return "\n".join(lines) + "\n"


class Client:
    """The customer's OpenSSH client pointed at an xcg listener on the host's 127.0.0.1:`port`,
    with the session's `keys` by name."""

    port: int
    keys: dict
    known_hosts: Path

    def ssh_argv(self, domain, key, cmd, tty=False):
        key = self.keys[key] if isinstance(key, str) else key
        argv = ssh_base(self.port, key.path, self.known_hosts)
        argv += ["-tt", "-e", "none"] if tty else ["-T"]
        return argv + [f"{domain}@127.0.0.1", *cmd]

    def ssh(self, domain, key, *cmd, timeout=SSH_TIMEOUT):
        return subprocess.run(self.ssh_argv(domain, key, cmd), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, errors="replace", timeout=timeout)

    def spawn(self, transcripts, domain, key, *cmd, tty=False, timeout=60):
        label = f"{domain} {' '.join(cmd) or '(menu)'}"
        return transcripts.spawn(self.ssh_argv(domain, key, cmd, tty=tty), label, timeout)

    def capture(self, transcripts, domain, key, *cmd):
        """The client without a pty, its output to a file (see Capture)."""
        return transcripts.capture(self.ssh_argv(domain, key, cmd),
                                   f"{domain} {' '.join(cmd)} (capture)")

    def status(self, domain):
        result = self.ssh(domain, domain, "status")
        assert result.returncode == 0, describe(result)
        return result.stdout.strip()

    def wait_status(self, domain, pattern, timeout=STATE_TIMEOUT):
        """Polls `status` until it matches `pattern`; returns the match."""
        seen = []

        def check():
            seen.append(self.status(domain))
            return re.search(pattern, seen[-1])

        try:
            return wait_for(check, timeout, f"{domain} status matching {pattern!r}", 1.0)
        except AssertionError as e:
            raise AssertionError(f"{e}; last status: {seen[-1:]}") from None

    def wait_running(self, domain, not_domid=None, timeout=STATE_TIMEOUT):
        """Polls until `domain` runs (with a domid other than `not_domid`); returns the domid."""
        match = self.wait_status(domain, r"^%s: running, domid (?!%s\b)\d+" % (
            re.escape(domain), not_domid if not_domid is not None else "x"), timeout)
        return int(RUNNING.match(match.string).group("domid"))


class Gateway(Client):
    """`xcg serve` in dom0, and the host's OpenSSH client pointed at it."""

    def __init__(self, bed, keys, directory):
        self.bed = bed
        self.keys = keys
        self.known_hosts = directory / "known_hosts"
        self.port = bed.xcg_port
        self.pid = None

    def start(self, config=None):
        """Writes `config` (the test bed's usual one when None) to dom0 and starts xcg serve."""
        bed = self.bed
        if bed.run("test", "-x", "/usr/local/bin/xcg").returncode != 0:
            pytest.fail("no xcg binary in dom0: set XCG_BINARY and run "
                        "tests/xen_testbed/testbed.sh deploy (run.sh does it)")
        bed.check("sh", "-c", f"mkdir -p /etc/xcg /var/log/xcg && cat >{DOM0_CONFIG}",
                  input=config or render_config(self.keys, bed.web_port))
        check = bed.run("/usr/local/bin/xcg", "check", "--config", DOM0_CONFIG)
        assert check.returncode == 0, describe(check)
        # setsid + all descriptors redirected: the ssh session ends, xcg serve stays. A shell
        # waits for it to record its exit status.
        bed.check("sh", "-c",
                  f"rm -f {DOM0_LOG} {DOM0_EXIT} {DOM0_PID}; setsid sh -c '/usr/local/bin/xcg serve "
                  f"--config {DOM0_CONFIG} & echo $! >{DOM0_PID}; wait $!; echo $? >{DOM0_EXIT}' "
                  f"</dev/null >{DOM0_LOG} 2>&1 &")
        wait_for(lambda: bed.run("test", "-s", DOM0_PID).returncode == 0, SSH_TIMEOUT,
                 f"{DOM0_PID}", 0.5)

        def listening_or_exited():
            out = bed.check("sh", "-c", f"cat {DOM0_LOG}; kill -0 $(cat {DOM0_PID}) 2>/dev/null "
                                        "&& echo XCG-ALIVE; true")
            if "XCG-ALIVE" not in out:
                return "exited"
            return "listening on 0.0.0.0:2222" in out and "listening"

        outcome = wait_for(listening_or_exited, SERVE_TIMEOUT, "xcg serve: 'listening on'", 1.0)
        if outcome == "listening":
            # It binds before it opens the hypervisor. Up means a whole login goes through the
            # broker: a key it does not know is turned away.
            probe = self.ssh("guest1", "stranger", "status")
            if "Permission denied (publickey)" not in probe.stderr:
                outcome = "exited" if listening_or_exited() == "exited" else "silent"
        self.pid = int(bed.check("cat", DOM0_PID))
        if outcome == "exited":
            log = self.log()
            self.pid = None
            said = re.search(r"^(?:\S+ \w+ )?(.*hypervisor 'xen' is (?:not supported|unsupported).*)$",
                             log, re.M)
            if said:
                pytest.skip(f"xcg serve in dom0 says: {said.group(1)}")
            pytest.fail(f"xcg serve in dom0 exited at start:\n{log}")
        if outcome == "silent":
            pytest.fail(f"xcg serve in dom0 listens but does not turn away an unknown key:\n"
                        f"{describe(probe)}\n{self.log()}")

    def stop(self):
        """SIGTERM, then waits; returns a problem as text, or None."""
        if self.pid is None:
            return None
        pid, self.pid = self.pid, None
        self.bed.run("kill", "-TERM", str(pid))
        try:
            status = wait_for(lambda: self.bed.run("cat", DOM0_EXIT).stdout.strip(), 30,
                              "xcg serve to exit after SIGTERM", 1.0)
        except AssertionError as e:
            self.bed.run("kill", "-KILL", str(pid))
            return str(e)
        return None if status == "0" else f"xcg serve exited with {status} after SIGTERM (want 0)"

    def log(self):
        return self.bed.run("cat", DOM0_LOG).stdout

@pytest.fixture(scope="session")
def gateway_session(bed, keys, tmp_path_factory):
    gw = Gateway(bed, keys, tmp_path_factory.mktemp("xcg"))
    try:
        gw.start()
    except BaseException:
        gw.stop()
        raise
    yield gw
    problem = gw.stop()
    try:
        (RUN / "dom0-serve.log").write_text(gw.log())
    except OSError:
        pass
    if problem:
        pytest.fail(f"xcg serve in dom0: {problem}", pytrace=False)


@pytest.fixture
def gw(request, gateway_session, bed):
    """xcg serve (shared by the session), with both guests running when the test starts."""
    request.node._xcg_gateway = gateway_session
    bed.ensure_running(*GUESTS)
    return gateway_session


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    gw = getattr(item, "_xcg_gateway", None)
    if gw is not None:
        try:
            report.sections.append(("xcg serve log (dom0, last 60 lines)",
                                    "\n".join(gw.log().splitlines()[-60:])))
            for name in GUESTS:
                text = gw.bed.console_log(name).decode(errors="replace")
                report.sections.append((f"{name} console (xenconsoled log, tail)", text[-1500:]))
        except Exception as e:  # the report must not hide the failure itself
            report.sections.append(("dom0 logs", f"could not fetch: {e}"))
    for label, read in getattr(item, "_xcg_logs", ()):  # more processes' logs, (label, reader)
        try:
            report.sections.append((f"{label} (last 60 lines)", "\n".join(read().splitlines()[-60:])))
        except Exception as e:
            report.sections.append((label, f"could not fetch: {e}"))
    transcripts = getattr(item, "_xcg_transcripts", None)
    for label, path, _ in (transcripts.items if transcripts else []):
        try:
            text = path.read_bytes().decode(errors="replace")
        except OSError:
            continue
        report.sections.append((f"ssh transcript: {label}", repr(text)[-3000:]))
