"""A real etcd cluster for the integration tests: N members of /usr/bin/etcd on loopback, on
free ports, in a temporary directory; killed and reaped at the end. The same features as the
unit tests' fixture (tests/gateway/cluster/etcd_fixture.h): kill, pause (SIGSTOP) and resume
a member, start a killed member again on its data, wait until healthy, and etcdctl with an argv. With tls=True clients speak https and
must show a certificate of the test CA (`ca_file`, `cert_file`, `key_file`).

    from etcd_cluster import etcd, etcd3   # pytest fixtures: 1 and 3 members
    def test_x(etcd):
        etcd.put("/xcg/keys/web1/SHA256:...", "ssh-ed25519 AAAA...")
        config = {"cluster": {"endpoints": etcd.endpoints, ...}}
"""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

ETCD = "/usr/bin/etcd"
ETCDCTL = "/usr/bin/etcdctl"
OPENSSL = "/usr/bin/openssl"
START_TIMEOUT = 20


def free_port():
    """A port nobody listens on now; etcd binds it a moment later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def certificate(directory, name, cn, ca=None, extensions=()):
    """A P-256 certificate and key for `cn`, signed by `ca` (self-signed without one)."""
    argv = [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-days", "1", "-subj", f"/CN={cn}", "-keyout", os.path.join(directory, f"{name}.key"),
            "-out", os.path.join(directory, f"{name}.crt")]
    if ca:
        argv += ["-CA", os.path.join(directory, f"{ca}.crt"), "-CAkey", os.path.join(directory, f"{ca}.key")]
    for e in extensions:
        argv += ["-addext", e]
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


class EtcdCluster:
    def __init__(self, members=1, base_dir=None, tls=False):
        self.dir = tempfile.mkdtemp(prefix="xcg-etcd-", dir=base_dir)
        self.tls = tls
        self.names = [f"m{i}" for i in range(members)]
        scheme = "https" if tls else "http"
        self.client_urls = [f"{scheme}://127.0.0.1:{free_port()}" for _ in self.names]
        self.peer_urls = [f"http://127.0.0.1:{free_port()}" for _ in self.names]
        self.procs = [None] * members
        self.paused = set()
        self.initial = ",".join(f"{n}={u}" for n, u in zip(self.names, self.peer_urls))

    @property
    def endpoints(self):
        return list(self.client_urls)

    ca_file = property(lambda self: os.path.join(self.dir, "ca.crt"))
    cert_file = property(lambda self: os.path.join(self.dir, "client.crt"))
    key_file = property(lambda self: os.path.join(self.dir, "client.key"))

    def _make_certificates(self):
        leaf = "basicConstraints=CA:FALSE"
        certificate(self.dir, "ca", "xcg-test-ca")
        certificate(self.dir, "server", "etcd", "ca", [leaf, "subjectAltName=IP:127.0.0.1"])
        certificate(self.dir, "client", "xcg", "ca", [leaf, "extendedKeyUsage=clientAuth"])

    def start(self, deadline=START_TIMEOUT):
        try:
            if self.tls:
                self._make_certificates()
            for i in range(len(self.names)):
                self._start_member(i)
            self.wait_healthy(deadline=deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _argv(self, i):
        name = self.names[i]
        argv = [ETCD, "--name", name, "--data-dir", os.path.join(self.dir, name),
                "--listen-client-urls", self.client_urls[i], "--advertise-client-urls", self.client_urls[i],
                "--listen-peer-urls", self.peer_urls[i], "--initial-advertise-peer-urls", self.peer_urls[i],
                "--initial-cluster", self.initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", "xcg-test", "--heartbeat-interval", "50",
                "--election-timeout", "500", "--auto-compaction-mode", "revision",
                "--auto-compaction-retention", "1000", "--log-level", "warn",
                # As docs/metrics.md asks of a fleet that alerts on xcg_etcd_watch_lag_seconds.
                "--experimental-watch-progress-notify-interval", "1s"]
        if self.tls:
            argv += ["--cert-file", os.path.join(self.dir, "server.crt"),
                     "--key-file", os.path.join(self.dir, "server.key"),
                     "--client-cert-auth", "--trusted-ca-file", self.ca_file]
        return argv

    def _start_member(self, i, mode="wb"):
        with open(self.log_path(i), mode) as log:
            self.procs[i] = subprocess.Popen(self._argv(i), stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def log_path(self, i):
        return os.path.join(self.dir, f"{self.names[i]}.log")

    def read_logs(self):
        text = ""
        for i in range(len(self.names)):
            if os.path.exists(self.log_path(i)):
                with open(self.log_path(i), errors="replace") as f:
                    text += f"--- {self.names[i]}\n{f.read()}"
        return text

    def healthy(self, i):
        context = None
        if self.tls:
            context = ssl.create_default_context(cafile=self.ca_file)
            context.load_cert_chain(self.cert_file, self.key_file)
        try:
            with urllib.request.urlopen(self.client_urls[i] + "/health", timeout=0.5, context=context) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_healthy(self, member=None, deadline=START_TIMEOUT):
        """Until `member` (every member when None) is healthy; raises at the deadline."""
        wanted = range(len(self.names)) if member is None else [member]
        until = time.monotonic() + deadline
        while not all(self.healthy(i) for i in wanted):
            if time.monotonic() > until:
                raise AssertionError(f"etcd not healthy after {deadline}s:\n{self.read_logs()}")
            time.sleep(0.05)

    def kill(self, i):
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self.procs[i] = None
        self.paused.discard(i)

    def restart(self, i):
        """Starts a killed member again; it rejoins with its data directory's state."""
        self._start_member(i, "ab")

    def pause(self, i):
        self.procs[i].send_signal(signal.SIGSTOP)
        self.paused.add(i)

    def resume(self, i):
        self.procs[i].send_signal(signal.SIGCONT)
        self.paused.discard(i)

    def stop(self):
        for i in range(len(self.procs)):
            self.kill(i)
        shutil.rmtree(self.dir, ignore_errors=True)

    def etcdctl(self, *args, check=True):
        live = [u for i, (u, p) in enumerate(zip(self.client_urls, self.procs))
                if p is not None and i not in self.paused]
        env = dict(os.environ, ETCDCTL_API="3")
        tls = ["--cacert", self.ca_file, "--cert", self.cert_file, "--key", self.key_file] if self.tls else []
        return subprocess.run([ETCDCTL, "--endpoints", ",".join(live), "--dial-timeout", "2s", *tls, *args],
                              env=env, capture_output=True, text=True, timeout=15, check=check)

    def put(self, key, value):
        self.etcdctl("put", key, value)

    def get(self, key):
        """The value of `key`, or None."""
        out = self.etcdctl("get", "--print-value-only", key).stdout
        return out[:-1] if out.endswith("\n") else (out or None)

    def get_prefix(self, prefix):
        """{key: value} of every key under `prefix`."""
        lines = self.etcdctl("get", "--prefix", prefix).stdout.split("\n")
        return dict(zip(lines[0:-1:2], lines[1:-1:2]))

    def delete(self, key):
        self.etcdctl("del", key)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@pytest.fixture
def etcd(tmp_path):
    with EtcdCluster(1, base_dir=tmp_path) as cluster:
        yield cluster


@pytest.fixture
def etcd3(tmp_path):
    with EtcdCluster(3, base_dir=tmp_path) as cluster:
        yield cluster
