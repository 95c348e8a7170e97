"""Load and no loss: 200 viewers attached across 20 domains whose guests print
numbered lines, while 20 logins a second come and go and one domain reboots.

The work is done by tests/load's xcg_load (libssh clients, many per thread). It checks every
byte each viewer receives (tests/load/console_check.h says exactly what "every line, exactly
once, in order" means, across the replay seam and across the reboot) and exits non-zero on any
failed session. This wrapper starts the gateway with raised limits, runs xcg_load, samples the
broker's memory all along and asserts a bound on it.

`./dev test --quick` is meant to set XCG_QUICK=1, which skips this test. XCG_LOAD_SECONDS
sets the length of the run (default 60). A sanitizer build of the gateway gets a smaller load
(its session processes are several times slower and bigger): the point there is memory errors
under concurrency, not capacity."""

import os
import re
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import XCG, make_key, proc_status, wait_for

LOAD = os.environ.get("XCG_LOAD", str(Path(XCG).parent / "tests" / "load" / "xcg_load"))
DOMAINS = [f"load{i:02d}" for i in range(1, 21)]
REBOOTED = "load07"
LINES_PER_SECOND = 50  # per domain
# A small replay limit, so that attaches after the first few seconds get a replay cut short
# (at a line start) as well as whole boots: both kinds of seam are checked.
REPLAY = "4KiB"
DURATION = float(os.environ.get("XCG_LOAD_SECONDS", "60"))
SLACK = 180  # seconds beyond the run for start-up, the drain and the end of every session


@dataclass
class Scale:
    viewers: int
    churn_per_second: float
    duration: float
    rss_bound_mib: int


# The broker's memory: 20 hubs with a 256 KiB scrollback ring each (up to 1.25x before a
# trim), 220 viewers whose backlogs stay near empty while they read, and the program itself
# (about 10 MiB). The bound is generous for that and far below what unbounded backlogs (up to
# 320 KiB per viewer, 70 MiB for 220) or a leak per login would take.
FULL = Scale(viewers=200, churn_per_second=20, duration=DURATION, rss_bound_mib=64)
# Sanitizers quarantine freed memory and shadow every byte: the bound only catches runaways.
SANITIZED = Scale(viewers=60, churn_per_second=5, duration=min(DURATION, 30), rss_bound_mib=768)

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


def start_gateway(make_gateway, keys, log_dir):
    return make_gateway(
        domains={d: {"keys": [keys[d].public_line]} for d in DOMAINS},
        # On shutdown each guest prints 500 lines at once before its halt line: the rebooted
        # domain's viewers must get all of them before the reboot notice.
        sim={"guest_command": [LOAD, "guest", "--rate", str(LINES_PER_SECOND),
                               "--halt-burst", "500"]},
        extra={"console": {"log_dir": str(log_dir), "replay": REPLAY},
               # Every login comes from 127.0.0.1: the pre-auth limits must not drop them.
               "limits": {"max_startups": "1000:30:2000", "max_startups_per_source": 1000,
                          "max_sessions_per_domain": 1000, "login_grace": "120s"}})


def test_load_loses_nothing(make_gateway, load_keys, tmp_path):
    require_load_binary()
    raise_fd_limit()
    key_dir, keys = load_keys
    log_dir = tmp_path / "console-logs"
    log_dir.mkdir()
    gw = start_gateway(make_gateway, keys, log_dir)
    broker = gw.proc.pid
    scale = SANITIZED if sanitized(broker) else FULL
    wait_for(lambda: len(gw.processes(LOAD)) == len(DOMAINS), 30, "every domain's count guest")

    argv = [LOAD, "run", "--port", str(gw.port), "--keys", str(key_dir),
            "--domains", ",".join(DOMAINS), "--viewers", str(scale.viewers),
            "--churn", str(scale.churn_per_second), "--duration", str(scale.duration),
            "--ramp", str(scale.duration / 6), "--reboot", REBOOTED,
            "--reboot-at", str(scale.duration / 2), "--threads", "2",
            "--login-timeout", "90", "--drain-timeout", "60"]
    out_path = tmp_path / "xcg_load.out"
    samples = []
    with open(out_path, "wb") as out:
        load = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + scale.duration + SLACK
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

    # The load was really applied: both kinds of replay seam, and most of the logins planned
    # (xcg_load holds back new logins while 40 are still in their handshake).
    replays = re.search(r"^replays: (\d+) began at a boot's start, (\d+) mid-boot$", report, re.M)
    assert replays and int(replays.group(1)) > 0 and int(replays.group(2)) > 0, report
    churn = re.search(r"^churn: (\d+) of (\d+) planned logins started$", report, re.M)
    assert churn and int(churn.group(1)) >= int(churn.group(2)) / 2, report

    peak = max(samples)
    assert peak < scale.rss_bound_mib, \
        f"broker VmRSS peaked at {peak:.1f} MiB (bound {scale.rss_bound_mib} MiB)"
    # Every session process ends once its client has gone.
    wait_for(lambda: not gw.connected_sessions(), 30, "every session process to end")
    print(f"broker VmRSS: start {samples[0]:.1f} MiB, peak {peak:.1f} MiB, "
          f"end {samples[-1]:.1f} MiB\n{report}")
