"""Load and no loss (issue 8): 200 viewers attached across 20 domains whose guests print
numbered lines, while 20 logins a second come and go and one domain reboots.

The work is done by tests/load's xcg_load (libssh clients, many per thread); it checks every
byte each viewer receives (tests/load/console_check.h says exactly what "every line, exactly
once, in order" means, across the replay seam and across the reboot) and exits non-zero on
any failed session. This wrapper starts the gateway with raised limits, runs it, samples the
broker's memory all along and asserts a bound on it.

`./dev test --quick` sets XCG_QUICK=1, which skips this test. XCG_LOAD_SECONDS shortens or
lengthens the run (default 60)."""

import os
import resource
import subprocess
import time
from pathlib import Path

import pytest

from conftest import XCG, make_key, proc_status, wait_for

LOAD = os.environ.get("XCG_LOAD", str(Path(XCG).parent / "tests" / "load" / "xcg_load"))
DOMAINS = [f"load{i:02d}" for i in range(1, 21)]
VIEWERS = 200
CHURN_PER_SECOND = 20
LINES_PER_SECOND = 50  # per domain
DURATION = float(os.environ.get("XCG_LOAD_SECONDS", "60"))
REBOOTED = "load07"
# The broker's memory: 20 hubs with a 256 KiB scrollback ring each (up to 1.25x before a
# trim), 220 viewers whose backlogs stay near empty while they read, and the base program.
# The bound is generous for that and far below what unbounded backlogs would take.
RSS_BOUND_MIB = 64
# Sanitizer builds keep freed memory in quarantine and shadow every byte; the bound there only
# catches runaway growth.
SANITIZED_RSS_BOUND_MIB = 768
SLACK = 180  # seconds beyond the run for start-up, the drain and the end of every session

pytestmark = pytest.mark.skipif(os.environ.get("XCG_QUICK") == "1",
                                reason="slow: skipped by ./dev test --quick (XCG_QUICK=1)")


def require_load_binary():
    if not (os.path.isfile(LOAD) and os.access(LOAD, os.X_OK)):
        pytest.fail(f"xcg_load not found at {LOAD} (build it, or set XCG_LOAD)")


def raise_fd_limit():
    # The gateway inherits this: 220 sessions hold several descriptors each in the broker.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def sanitized(pid):
    with open(f"/proc/{pid}/maps") as f:
        return any("libasan" in line or "libubsan" in line for line in f)


def rss_mib(pid):
    return int(proc_status(pid)["VmRSS"].split()[0]) / 1024


@pytest.fixture(scope="module")
def load_keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("load-keys")
    return directory, {d: make_key(directory, d, ["-t", "ed25519"]) for d in DOMAINS}


def test_load_loses_nothing(make_gateway, load_keys, tmp_path):
    require_load_binary()
    raise_fd_limit()
    key_dir, keys = load_keys
    log_dir = tmp_path / "console-logs"
    log_dir.mkdir()
    gw = make_gateway(
        domains={d: {"keys": [keys[d].public_line]} for d in DOMAINS},
        sim={"guest_command": [LOAD, "guest", "--rate", str(LINES_PER_SECOND)]},
        extra={"console": {"log_dir": str(log_dir)},
               # Every login comes from 127.0.0.1: the pre-auth limits must not drop them.
               "limits": {"max_startups": "1000:30:2000", "max_startups_per_source": 1000,
                          "max_sessions_per_domain": 1000}})
    broker = gw.proc.pid
    bound = SANITIZED_RSS_BOUND_MIB if sanitized(broker) else RSS_BOUND_MIB
    wait_for(lambda: len(gw.processes(LOAD)) == len(DOMAINS), 30, "every domain's count guest")

    argv = [LOAD, "run", "--port", str(gw.port), "--keys", str(key_dir),
            "--domains", ",".join(DOMAINS), "--viewers", str(VIEWERS),
            "--churn", str(CHURN_PER_SECOND), "--duration", str(DURATION),
            "--ramp", str(DURATION / 6), "--reboot", REBOOTED, "--reboot-at", str(DURATION / 2),
            "--threads", "2"]
    out_path = tmp_path / "xcg_load.out"
    samples = []
    with open(out_path, "wb") as out:
        load = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + DURATION + SLACK
            while load.poll() is None and time.monotonic() < deadline:
                samples.append(rss_mib(broker))
                time.sleep(0.25)  # the sampling rate, not a synchronisation
        finally:
            if load.poll() is None:
                load.kill()
            load.wait()
    report = out_path.read_text(errors="replace")
    assert load.returncode == 0, f"xcg_load exited with {load.returncode}:\n{report}"
    assert gw.alive(), "the broker died under load"
    assert samples, "no memory samples"
    peak = max(samples)
    assert peak < bound, f"broker VmRSS peaked at {peak:.1f} MiB (bound {bound} MiB)"
    # Every session process ends once its client has gone.
    wait_for(lambda: not gw.processes("xcg-session"), 30, "every session process to end")
    print(f"broker VmRSS: start {samples[0]:.1f} MiB, peak {peak:.1f} MiB, "
          f"end {samples[-1]:.1f} MiB\n{report}")
