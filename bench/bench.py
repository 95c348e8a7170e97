#!/usr/bin/env python3
"""xcg against the classic OpenSSH forced-command recipe, in one run (docs/performance.md).

  bench.py run --build DIR --out DIR [--quick]   everything; needs root
  bench.py cleanup                               remove what a killed run left behind

This script only orchestrates: the SSH client load comes from xcg-loadgen (C++, libssh,
event-driven), so that the client costs the same on both sides and little overall.
"""

import argparse
import fcntl
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402
import web_figures  # noqa: E402
from loadgen_client import LoadGen  # noqa: E402
from servers import (RUN, BenchError, Guests, Layout, OpenSshServer, XcgServer,  # noqa: E402
                     domain_name, remove_baseline_system_files, run_checked)

LOCK = Path("/run/xcg-bench.lock")
HERE = Path(__file__).resolve().parent

# The production-like topology: xcg's hub opens the guests' ptys itself (sim.console_dir, as it
# opens xenconsoled's), OpenSSH's forced command `sudo pty_attach` opens the same ptys. Echo and
# throughput, the sides alternated round by round (who goes first swaps) so that the machine's
# load, which drifts on a shared host, weighs on both alike.
PTY_FIGURES = [("echo", measure.measure_echo), ("throughput", measure.measure_throughput)]
PTY_ROUNDS = {"quick": 1, "full": 3}


class Interrupted(BaseException):
    """A signal asked us to stop; BaseException so that no figure's handler swallows it."""


def on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


def say(text):
    print(f"\033[1m==> bench: {text}\033[0m", flush=True)


def versions(build):
    def first_line(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None
    return {"openssh": first_line(["/usr/sbin/sshd", "-V"]), "sudo": first_line(["sudo", "-V"]),
            "kernel": platform.release(), "cpus": os.cpu_count(),
            "libssh": first_line(["pkg-config", "--modversion", "libssh"])}


def make_keys(build, layout, count):
    run_checked([str(build / "bench" / "xcg-loadgen"), "keygen", "--keys", str(layout.keys),
                 "--first", "1", "--count", str(count)])
    return [(domain_name(i), (layout.keys / f"{domain_name(i)}.pub").read_text().strip())
            for i in range(1, count + 1)]


def check_limits(domains):
    """Enough ptys (a guest's and xcg's per domain) and descriptors for the largest step."""
    pty_max = int(Path("/proc/sys/kernel/pty/max").read_text())
    pty_used = int(Path("/proc/sys/kernel/pty/nr").read_text())
    needed = 2 * domains + 32
    if pty_max - pty_used < needed:
        raise BenchError(f"need {needed} free ptys, have {pty_max - pty_used} (kernel.pty.max {pty_max})")
    want = 8 * domains + 1024  # the broker holds a few descriptors per session and per domain
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        raise BenchError(f"RLIMIT_NOFILE is {soft}, need {want}: run with ulimit -n {want} or more")


def measure_on_guest_pty(lg, xcg_pty, ssh, prof):
    rounds = []
    for r in range(PTY_ROUNDS.get(prof.name, 1)):
        order = (xcg_pty, ssh) if r % 2 == 0 else (ssh, xcg_pty)
        row = {"order": [side.name for side in order]}
        for server in order:
            say(f"guest's pty, round {r + 1}: starting {server.label}")
            server.start()
            try:
                row[server.name] = measure.measure(lg, server, prof, say, PTY_FIGURES)
            finally:
                server.stop()
        rounds.append(row)
    return rounds


def run(args):
    prof = measure.QUICK if args.quick else measure.FULL
    build, out = Path(args.build).resolve(), Path(args.out).resolve()
    work = out / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    lock = open(LOCK, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise BenchError(f"another benchmark holds {LOCK}") from None
    procs.become_subreaper()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    check_limits(prof.domains)
    load_at_start = procs.load_average()
    say(f"{prof.name} run; load average {load_at_start[0]:.2f} on {os.cpu_count()} cores")
    started = time.monotonic()
    layout = Layout()
    guests = xcg = ssh = xcg_pty = before = None
    loadgen_log = open(work / "loadgen.log", "wb")
    results = {}
    try:
        layout.create(build)
        say(f"{prof.domains} domains: keys, shared guests")
        domains = make_keys(build, layout, prof.domains)
        guests = Guests(build, layout, prof.domains, work / "guests.log")
        guests.start()
        lg = LoadGen(build / "bench" / "xcg-loadgen", layout.keys, loadgen_log)

        xcg = XcgServer(build, layout, domains, work, web=True)
        xcg.write_config()
        ssh = OpenSshServer(layout, domains, work)
        ssh.setup()
        sides = [xcg, ssh]
        if args.before:
            before = XcgServer(build, layout, domains, work, binary=args.before, name="before")
            before.write_config()
            sides.insert(0, before)
        # One side at a time: both attach console clients to the same guests, and two
        # readers of one pty would split its output.
        for server in sides:
            say(f"starting {server.label}")
            server.start()
            figures = measure.FIGURES + (web_figures.FIGURES if server.web else [])
            results[server.name] = measure.measure(lg, server, prof, say, figures)
            server.stop()
        xcg_pty = XcgServer(build, layout, domains, work, on_guest_pty=True)
        xcg_pty.write_config()
        results["pty_rounds"] = measure_on_guest_pty(lg, xcg_pty, ssh, prof)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        for thing in (before, xcg, ssh, xcg_pty, guests):
            try:
                if thing is not None:
                    thing.stop()
            except Exception as e:  # keep cleaning up
                print(f"bench: stopping: {e}", file=sys.stderr)
        problems = cleanup_system()
        loadgen_log.close()
        for p in problems:
            print(f"bench: cleanup: {p}", file=sys.stderr)

    figures = report.compute(results, prof)
    pty = report.pty_figures(results, figures, prof)
    web = report.web_figures(results, prof)
    data = {
        "profile": prof.name,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.monotonic() - started, 1),
        "load_average_start": load_at_start,
        "load_average_end": procs.load_average(),
        "versions": versions(build),
        "parameters": {k: v for k, v in vars(prof).items()},
        "figures": figures,
        "figures_guest_pty": pty,
        "figures_web": web,
        "xcg": results.get("xcg"),
        "openssh": results.get("openssh"),
        "guest_pty_rounds": results.get("pty_rounds"),
        "before": results.get("before"),
        "before_binary": args.before,
    }
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "results.json", data)
    report.write_chart_data(figures + report.pty_chart_rows(pty), results, work / "chart")
    problem = report.draw_chart(HERE / "chart.gp", work / "chart", out / "chart.png")
    print()
    print(report.table(figures, results, pty, web))
    print()
    print(f"load average {load_at_start[0]:.2f} at start, {data['load_average_end'][0]:.2f} at end; "
          f"{data['seconds']:.0f} s")
    print(f"results: {out / 'results.json'}   chart: {out / 'chart.png'}   logs: {work}")
    if problem:
        print(f"bench: {problem}", file=sys.stderr)
    print("load average (1 min) before/after each side: " + ", ".join(
        f"{side} {results[side]['load_average_before'][0]:.2f}/{results[side]['load_average_after'][0]:.2f}"
        for side in ("before", "xcg", "openssh") if results.get(side)))
    sides = [(side, results.get(side)) for side in ("xcg", "openssh", "before")]
    sides += [(f"{name} (guest's pty, round {i + 1})", row[name])
              for i, row in enumerate(results.get("pty_rounds") or []) for name in row["order"]]
    broken = [f"{side}.{name}" for side, figures in sides
              for name, value in (figures or {}).items()
              if isinstance(value, dict) and value.get("error") and "mode" not in value]
    if broken:
        print(f"bench: figures that could not be measured: {', '.join(broken)}", file=sys.stderr)
        return 1
    return 0


def cleanup_system():
    """Stops leftovers of any run and removes the baseline's user, sudoers file, /run files."""
    problems = []
    table = procs.table()
    ours = []
    for p in table.values():
        try:
            exe = os.readlink(f"/proc/{p.pid}/exe")
            cmdline = open(f"/proc/{p.pid}/cmdline", "rb").read()
        except OSError:
            continue
        if p.pid == os.getpid():
            continue
        if exe.startswith(str(RUN)) or str(RUN).encode() in cmdline:
            ours.append(p.pid)  # our sshd, xcg serve, console clients, loadgen, guest_host
    procs.kill_pids(ours)
    left = procs.wait_gone(ours, 10)
    if left:
        problems.append(f"processes still running: {left}")
    problems += remove_baseline_system_files()
    if RUN.exists():
        shutil.rmtree(RUN, ignore_errors=True)
    procs.reap_orphans()
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--build", required=True, help="optimised build directory with xcg and bench/")
    r.add_argument("--out", required=True, help="where results.json and chart.png go")
    r.add_argument("--quick", action="store_true", help="a reduced run (under two minutes)")
    r.add_argument("--before", metavar="XCG_BINARY",
                   help="also measure this xcg binary (e.g. the build before a change), in the same run; "
                        "it runs the xcg-session beside it")
    sub.add_parser("cleanup")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench: must run as root (private sshd, sudoers drop-in, xcg's sandbox)", file=sys.stderr)
        return 2
    if args.command == "cleanup":
        lock = open(LOCK, "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("bench: another run is in progress; leaving its processes alone", file=sys.stderr)
            return 0
        problems = cleanup_system()
        for p in problems:
            print(f"bench: cleanup: {p}", file=sys.stderr)
        return 1 if problems else 0
    try:
        return run(args)
    except (BenchError, Interrupted) as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
