"""The shared guests and the two servers under test: xcg, and OpenSSH with the classic
forced-command recipe. Everything listens on 127.0.0.1 only."""

import grp
import json
import os
import pwd
import re
import select
import shutil
import socket
import subprocess
import time
from pathlib import Path

import procs

RUN = Path("/run/xcg-bench")  # root-owned, 0755: the baseline user must reach some of it
BENCH_USER = "xcgbench"
BENCH_USER_COMMENT = "xcg benchmark baseline (temporary)"
SUDOERS = Path("/etc/sudoers.d/xcg-bench")
SSHD = "/usr/sbin/sshd"  # sshd re-execs itself, so it needs its absolute path
SSHD_PRIVSEP_DIR = Path("/run/sshd")
SSHD_PRIVSEP_MARK = RUN / "created-run-sshd"
XCG_SESSION_USER = "xcg"
START_TIMEOUT = 60
# OpenSSH's MaxStartups, and the same numbers for xcg: neither side may drop bench logins.
MAX_STARTUPS = "1000:30:2000"


class BenchError(Exception):
    pass


def run_checked(argv, **kwargs):
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=60, **kwargs)
    if result.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def wait_for_log(path, pattern, proc, what, offset=0, timeout=START_TIMEOUT):
    """Waits until the log, from byte `offset` on, matches `pattern`; returns the match."""
    deadline = time.monotonic() + timeout
    regex = re.compile(pattern)
    while True:
        with open(path, "rb") as f:
            f.seek(offset)
            match = regex.search(f.read().decode(errors="replace"))
        if match:
            return match
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode} before it was ready; see {path}")
        if time.monotonic() >= deadline:
            raise BenchError(f"{what} not ready after {timeout}s; see {path}")
        time.sleep(0.05)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def domain_name(i):
    return f"vm{i:04d}"


def make_domains(build, layout, n):
    """Creates N customer keys under `layout` and returns the domains they open, as
    [(name, public key line)]: one session each."""
    run_checked([str(build / "bench" / "xcg-loadgen"), "keygen", "--keys", str(layout.keys), "--first", "1",
                 "--count", str(n)])
    return [(domain_name(i), (layout.keys / f"{domain_name(i)}.pub").read_text().strip()) for i in range(1, n + 1)]


def one_domain(build, layout):
    """The one domain of the benches that compare two builds on one console."""
    return make_domains(build, layout, 1)


class Layout:
    """/run/xcg-bench: binaries both servers run, the consoles, keys, server files."""

    def __init__(self):
        self.bin = RUN / "bin"
        self.consoles = RUN / "consoles"
        self.keys = RUN / "keys"
        self.xcg = RUN / "xcg"
        self.sshd = RUN / "sshd"
        self.empty = RUN / "empty"  # xcg's chroot_dir for session processes
        self.home = RUN / "home"    # the baseline user's home (sshd changes into it)
        self.pty_attach = self.bin / "pty_attach"

    def create(self, build):
        if RUN.exists():
            shutil.rmtree(RUN)
        for d in (RUN, self.bin, self.consoles, self.xcg, self.sshd, self.empty, self.home):
            d.mkdir(mode=0o755)
            os.chmod(d, 0o755)
        self.keys.mkdir(mode=0o700)
        # Root-owned copies: sudo runs this one as root for the baseline.
        shutil.copy(build / "bench" / "pty_attach", self.pty_attach)
        os.chmod(self.pty_attach, 0o755)


class Guests:
    """guest_host: N fake guests on ptys, published as consoles/vmNNNN."""

    def __init__(self, build, layout, count, log_path):
        self.argv = [str(build / "bench" / "guest_host"), "--guest", str(build / "xcg"),
                     "--dir", str(layout.consoles), "--count", str(count)]
        self.count = count
        self.log_path = log_path
        self.proc = None

    def start(self):
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._log)
        procs.started.add(self.proc.pid)
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
        line = self.proc.stdout.readline().decode() if ready else ""
        if line.strip() != f"ready {self.count}":
            raise BenchError(f"guest_host did not start {self.count} guests; see {self.log_path}")

    def pids(self):
        return [self.proc.pid] + procs.descendants(self.proc.pid) if self.proc else []

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            procs.stop_tree(self.proc.pid)
        self.proc.wait(timeout=10)
        self._log.close()
        self.proc = None


class Server:
    """What the measurements need from either side."""
    name = ""
    label = ""
    user = None  # the SSH user; None: the domain name
    web = False  # a browser-console listener (xcg only)
    port = 0
    proc = None

    def main_pid(self):
        return self.proc.pid

    def plumbing(self, table):
        """Pids in the server's tree that belong to the guest side and count for neither."""
        return set()

    def stop(self):
        if self.proc is None:
            return
        left = procs.stop_tree(self.proc.pid)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
        self.proc = None
        if left:
            raise BenchError(f"{self.label}: processes {left} would not stop")


class XcgServer(Server):
    name = "xcg"
    label = "xcg"

    def __init__(self, build, layout, domains, work, on_guest_pty=False, binary=None, name=None, web=False,
                 extra=()):
        """on_guest_pty: the production-like topology. The hub opens the shared guests' ptys
        itself (`sim.console_dir`, opened as the Xen backend opens xenconsoled's pty), as
        OpenSSH's forced command opens them; without it, a console client per domain (the
        stand-in) sits between the hub and each guest. binary, name: another xcg build to
        measure in the same run (before/after a change). extra: more top-level YAML lines (a
        fleet's `cluster:` and `fronts:`)."""
        self.binary = Path(binary) if binary else build / "xcg"
        self.layout = layout
        self.domains = domains  # [(name, public key line)]
        self.work = work
        self.on_guest_pty = on_guest_pty
        if on_guest_pty:
            self.name, self.label = "xcg_pty", "xcg (on the guest's pty)"
        if name:
            self.name, self.label = name, f"xcg ({name})"
        self.config = layout.xcg / f"{self.name}.yaml"
        self.log_path = work / f"{self.name}.log"
        self.control_socket = layout.xcg / f"{self.name}.sock"
        self.web = web
        self.web_port = 0
        self.extra = list(extra)

    def write_config(self):
        q = json.dumps  # JSON strings are valid YAML scalars
        lines = [
            'listen: ["127.0.0.1:0"]',
            f"host_keys: [{q(str(self.layout.xcg / 'hostkey'))}]",
            "hypervisor: sim",
            f"audit_log: {q(str(self.work / f'{self.name}-audit.jsonl'))}",
            f"run_as: {XCG_SESSION_USER}",
            f"chroot_dir: {q(str(self.layout.empty))}",
            "limits:",
            f"  max_startups: {q(MAX_STARTUPS)}",
            "  max_startups_per_source: 2000",
            "  max_sessions_per_domain: 100",
            "console:",
            f"  log_dir: {q(str(self.work / f'{self.name}-console'))}",
            "sim:",
            *([f"  console_dir: {q(str(self.layout.consoles))}"] if self.on_guest_pty else
              [f"  guest_command: [{q(str(self.layout.pty_attach))}, {q(str(self.layout.consoles))}]"]),
            "  autostart: true",
            "  shutdown_grace_ms: 2000",
            *self.web_config(),
            *self.extra,
            "domains:",
        ]
        for name, key in self.domains:
            lines += [f"  {name}:", "    on_login: console", f"    keys: [{q(key)}]"]
        self.config.write_text("\n".join(lines) + "\n")
        (self.work / f"{self.name}-console").mkdir(exist_ok=True)
        ensure_system_user(XCG_SESSION_USER, "/usr/sbin/nologin", "xcg session processes")
        run_checked([str(self.binary), "check", "--config", str(self.config)])

    def web_config(self):
        if not self.web:
            return []
        # public_url names the port, so the port is chosen before start (a free one now).
        self.web_port = self.web_port or free_port()
        q = json.dumps
        return ["web:", f'  listen: ["127.0.0.1:{self.web_port}"]',
                f"  public_url: https://127.0.0.1:{self.web_port}",
                f"  tls_cert: {q(str(self.layout.xcg / 'web.crt'))}",
                f"  tls_key: {q(str(self.layout.xcg / 'web.key'))}"]

    def start(self):
        self._log = open(self.log_path, "ab")
        offset = self._log.tell()
        self.proc = subprocess.Popen(
            [str(self.binary), "serve", "--config", str(self.config),
             "--control-socket", str(self.control_socket)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        procs.started.add(self.proc.pid)
        match = wait_for_log(self.log_path, r"listening on 127\.0\.0\.1:(\d+)", self.proc, "xcg serve", offset)
        self.port = int(match.group(1))
        # Every domain's console must be open (its console client up) before the first login.
        deadline = time.monotonic() + START_TIMEOUT
        while self.consoles_open() < len(self.domains):
            if time.monotonic() >= deadline or self.proc.poll() is not None:
                raise BenchError(f"xcg serve did not open its {len(self.domains)} consoles; see {self.log_path}")
            time.sleep(0.05)

    def consoles_open(self):
        if not self.on_guest_pty:
            return len(self.plumbing(procs.table()))
        return sum(1 for target in _fd_targets(self.proc.pid) if target.startswith("/dev/pts/"))

    def plumbing(self, table):
        # The simulated hypervisor's children: our console client per domain (with Xen, or on
        # the guest's pty, the hub reads the pty itself and these do not exist).
        if self.on_guest_pty:
            return set()
        return {p.pid for p in table.values() if p.ppid == self.proc.pid and p.comm == "pty_attach"}


def _fd_targets(pid):
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    targets = []
    for name in names:
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{name}"))
        except OSError:
            pass  # closed meanwhile
    return targets


class OpenSshServer(Server):
    """sshd with authorized_keys forced commands through sudo, as operators run it today."""
    name = "openssh"
    label = "OpenSSH + sudo"
    user = BENCH_USER

    def __init__(self, layout, domains, work):
        self.layout = layout
        self.domains = domains
        self.work = work
        self.config = layout.sshd / "sshd_config"
        self.host_key = layout.sshd / "ssh_host_ed25519_key"
        self.authorized_keys = layout.sshd / "authorized_keys"
        self.log_path = work / "sshd.log"

    def forced_command(self, domain):
        return f"sudo {self.layout.pty_attach} {self.layout.consoles} {domain}"

    def setup(self):
        ensure_bench_user(self.layout.home)
        install_sudoers(
            f"# xcg benchmark baseline: removed when the benchmark ends.\n"
            f"{BENCH_USER} ALL=(root) NOPASSWD: {self.layout.pty_attach} {self.layout.consoles} *\n")
        lines = [f'command="{self.forced_command(name)}",no-port-forwarding,no-X11-forwarding,'
                 f"no-agent-forwarding {key}" for name, key in self.domains]
        self.authorized_keys.write_text("\n".join(lines) + "\n")
        os.chmod(self.authorized_keys, 0o644)
        for old in (self.host_key, Path(f"{self.host_key}.pub")):
            old.unlink(missing_ok=True)
        run_checked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "xcg-bench-baseline",
                     "-f", str(self.host_key)])
        if not SSHD_PRIVSEP_DIR.exists():
            SSHD_PRIVSEP_DIR.mkdir(mode=0o755)
            SSHD_PRIVSEP_MARK.touch()

    def write_config(self, port):
        self.config.write_text("\n".join([
            f"Port {port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            "PidFile none",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "AuthenticationMethods publickey",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin no",
            f"AllowUsers {BENCH_USER}",
            # In the baseline's favour: no PAM stack (Debian's runs pam_motd, pam_env,
            # pam_limits, ... on every login), no DNS, no motd or lastlog.
            "UsePAM no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "AllowAgentForwarding no",
            "PermitTunnel no",
            f"MaxStartups {MAX_STARTUPS}",
            "LoginGraceTime 30",
            "LogLevel INFO",
        ]) + "\n")

    def start(self):
        self._log = open(self.log_path, "ab")
        for attempt in range(5):
            port = free_port()
            self.write_config(port)
            run_checked([SSHD, "-t", "-f", str(self.config)])
            offset = self._log.tell()
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)],
                                         stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
            procs.started.add(self.proc.pid)
            try:
                wait_for_log(self.log_path, rf"Server listening on 127\.0\.0\.1 port {port}", self.proc, "sshd",
                             offset)
                self.port = port
                return
            except BenchError:
                if self.proc.poll() is None or attempt == 4:
                    raise
                # sshd exited: most likely the port was taken meanwhile; try another.

    def teardown(self):
        remove_baseline_system_files()


# --- system files the baseline needs (and that must go away again) ------------------------------

def ensure_system_user(name, shell, comment, home="/nonexistent"):
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    run_checked(["useradd", "--system", "--no-create-home", "--home-dir", str(home),
                 "--shell", shell, "--comment", comment, name])


def ensure_bench_user(home):
    try:
        entry = pwd.getpwnam(BENCH_USER)
        if entry.pw_gecos != BENCH_USER_COMMENT:
            raise BenchError(f"a user '{BENCH_USER}' exists that this benchmark did not create; "
                             "refusing to use or remove it")
    except KeyError:
        # A login shell: sshd runs forced commands with `$SHELL -c`.
        ensure_system_user(BENCH_USER, "/bin/sh", BENCH_USER_COMMENT, home)
    # Unlocked (no password at all, '*'): with UsePAM no, sshd refuses locked ('!') accounts.
    # An existing home: sshd changes into it (root-owned and empty, like a locked-down home).
    run_checked(["usermod", "-p", "*", "-d", str(home), BENCH_USER])


def install_sudoers(text):
    tmp = SUDOERS.parent / ".xcg-bench.tmp"  # sudo skips names with a dot in includedir
    tmp.write_text(text)
    os.chmod(tmp, 0o440)
    try:
        run_checked(["visudo", "-cqf", str(tmp)])
    except BenchError:
        tmp.unlink()
        raise
    os.replace(tmp, SUDOERS)


def remove_baseline_system_files():
    """Idempotent; also used by `bench.py cleanup` after a crash."""
    problems = []
    for path in (SUDOERS, SUDOERS.parent / ".xcg-bench.tmp"):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    try:
        entry = pwd.getpwnam(BENCH_USER)
    except KeyError:
        entry = None
    if entry is not None and entry.pw_gecos == BENCH_USER_COMMENT:
        # Its processes must be gone first, or userdel refuses.
        table = procs.table()
        mine = [p.pid for p in table.values() if p.uid == entry.pw_uid]
        procs.kill_pids(mine)
        procs.wait_gone(mine, 10)
        result = subprocess.run(["userdel", BENCH_USER], stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            problems.append(f"userdel {BENCH_USER}: {result.stderr.strip()}")
        try:
            grp.getgrnam(BENCH_USER)
            subprocess.run(["groupdel", BENCH_USER], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60)
        except KeyError:
            pass
    if SSHD_PRIVSEP_MARK.exists():
        try:
            SSHD_PRIVSEP_DIR.rmdir()
        except OSError as e:
            problems.append(f"rmdir {SSHD_PRIVSEP_DIR}: {e}")
    return problems
