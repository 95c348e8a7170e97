#!/usr/bin/env python3
"""Keystroke echo through the browser console (xcg-web) beside the SSH viewer (xcg-session),
two xcg builds alternated (docs/web.md, "Measurements"). Needs root.

  bench/ab_web_echo.py ab --build build-bench --before OLD/xcg [--rounds 8] [--keystrokes 1000]
      ROUNDS rounds of (before, after): each starts that build's gateway and measures the SSH
      echo and then the web echo on the same domain; medians of the per-run figures at the end.
  bench/ab_web_echo.py cpu --build build-bench --before OLD/xcg [--rounds 5] [--keystrokes 3000]
      the same rounds, but each run under perf's sched_switch events: microseconds on a CPU
      and sleeps per keystroke of xcg-session and xcg-web (login and replay included).
  bench/ab_web_echo.py syscalls --build build-bench [--binary OTHER/xcg]
      the system calls per keystroke of one xcg-session and one xcg-web process, by strace,
      and how often each process, and the load generator's client, went to sleep per
      keystroke (perf's sched_switch with the task sleeping: each is a wake-up to come): two
      runs of each, 100 and 1100 keystrokes, and the difference divided by 1000, so that login
      and replay cancel out.
  Each takes --dir DIR: the run's files, away from the other benches'.
"""

import argparse
import collections
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ab  # noqa: E402
import measure  # noqa: E402
import procs  # noqa: E402
from servers import XcgServer  # noqa: E402
from web_figures import mint_link  # noqa: E402

SHORT, LONG = 100, 1100
CALL = re.compile(r"^(\w+)\(.*\)\s+= -?\d+")
SWITCH = re.compile(r"\[(\d+)\]\s+([\d.]+):\s+prev_comm=(\S+) prev_pid=(\d+) .*prev_state=(\S+) ==> "
                    r"next_comm=(\S+) next_pid=(\d+)")


class Bench(ab.Rig):
    """The rig, for one domain, with the browser console on."""

    def server(self, label, binary=None, server_class=XcgServer, **kwargs):
        return super().server(label, binary, server_class, web=True, **kwargs)

    def ssh_echo(self, server, keystrokes):
        return self.loadgen.run("echo", server, 1, 1, timeout=keystrokes * 6 + 60, keystrokes=keystrokes)

    def web_echo(self, server, keystrokes):
        link = mint_link(server, self.domains[0][0])
        return self.loadgen.run("webecho", server, 1, 1, timeout=keystrokes * 6 + 60, stdin=link + "\n",
                                keystrokes=keystrokes)


def one_run(bench, label, binary, keystrokes):
    with bench.serving(label, binary) as server:
        ssh = bench.ssh_echo(server, keystrokes)["rtt_ms"]
        web = bench.web_echo(server, keystrokes)["rtt_ms"]
    return {"ssh_p50": ssh["p50"], "ssh_p99": ssh["p99"], "web_p50": web["p50"], "web_p99": web["p99"],
            "ratio_p50": web["p50"] / ssh["p50"], "ratio_p99": web["p99"] / ssh["p99"]}


def alternate(bench, args):
    results = {"before": [], "after": []}
    for round_ in range(args.rounds):
        for label, binary in (("before", args.before), ("after", None)):
            got = one_run(bench, label, binary, args.keystrokes)
            results[label].append(got)
            print(f"round {round_ + 1} {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in got.items()), flush=True)
    for label, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{label} (medians of {len(runs)} runs): " + ", ".join(f"{k} {v:.3f}" for k, v in med.items()))
    print(json.dumps(results))


def cpu(bench, args):
    results = collections.defaultdict(list)
    for round_ in range(args.rounds):
        for label, binary in (("before", args.before), ("after", None)):
            with bench.serving(label, binary) as server:
                for program, fn in (("xcg-session", bench.ssh_echo), ("xcg-web", bench.web_echo)):
                    counts = scheduling(server, fn, args.keystrokes)
                    got = (counts["cpu_us " + program] / args.keystrokes, counts["sleeps " + program] / args.keystrokes)
                    results[label, program].append(got)
                    print(f"round {round_ + 1} {label} {program}: {got[0]:.1f} us on a CPU, {got[1]:.2f} sleeps",
                          flush=True)
    for (label, program), runs in results.items():
        print(f"{label} {program} (medians of {len(runs)} runs): "
              f"{statistics.median(r[0] for r in runs):.1f} us on a CPU, "
              f"{statistics.median(r[1] for r in runs):.2f} sleeps per keystroke")


def trace_of(trace_dir, program):
    """The lines of the one traced process that executed `program`, or None."""
    for path in Path(trace_dir).glob("t.*"):
        lines = path.read_text(errors="replace").splitlines()
        if any(line.startswith("execve(") and f"/{program}\"" in line for line in lines):
            return lines
    return None


def wait_until(what, condition, timeout=30):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{what}: not within {timeout}s")
        time.sleep(0.05)


def traced(server, program, measure_fn, keystrokes):
    """Counts by system call of the session process that ran `program` during one run."""
    with tempfile.TemporaryDirectory(prefix="xcg-strace-") as trace_dir:
        log = Path(trace_dir) / "strace.log"
        with open(log, "wb") as stderr:
            strace = subprocess.Popen(["strace", "-f", "-ff", "-o", f"{trace_dir}/t", "-p", str(server.main_pid())],
                                      stdin=subprocess.DEVNULL, stderr=stderr)
        procs.started.add(strace.pid)
        try:
            wait_until("strace attaching", lambda: b"attached" in log.read_bytes())
            measure_fn(server, keystrokes)
            wait_until(f"{program} exiting",
                       lambda: (trace_of(trace_dir, program) or [""])[-1].startswith("+++ exited"))
        finally:
            strace.terminate()
            strace.wait(timeout=30)
        return collections.Counter(m.group(1) for m in map(CALL.match, trace_of(trace_dir, program)) if m)


def scheduling(server, measure_fn, keystrokes):
    """From perf's sched_switch events during one run, by command: how often it went to sleep
    (switched away from in state S: each is a wake-up to come), and its microseconds on a CPU."""
    with tempfile.TemporaryDirectory(prefix="xcg-perf-") as tmp:
        data = f"{tmp}/perf.data"
        perf = subprocess.Popen(["perf", "record", "-q", "-a", "-e", "sched:sched_switch", "-o", data],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.started.add(perf.pid)
        # perf writes its file's header once its events are open
        wait_until("perf starting", lambda: Path(data).exists() and Path(data).stat().st_size > 0)
        measure_fn(server, keystrokes)
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=60)
        script = subprocess.run(["perf", "script", "-i", data, "-F", "cpu,time,trace"], stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=300).stdout
    counts = collections.Counter()
    running = {}  # cpu: (pid, command, since)
    for match in SWITCH.finditer(script):
        cpu, at, prev_comm, prev_pid, state, next_comm, next_pid = match.groups()
        at = float(at)
        if state == "S":
            counts["sleeps " + prev_comm] += 1
        pid, comm, since = running.get(cpu, (None, None, None))
        if pid == prev_pid:
            counts["cpu_us " + comm] += (at - since) * 1e6
        running[cpu] = (next_pid, next_comm, at)
    return counts


def per_keystroke(count_fn):
    short, long = count_fn(SHORT), count_fn(LONG)
    return {k: (long[k] - short[k]) / (LONG - SHORT) for k in long}


def syscalls(bench, args):
    with bench.serving("traced", args.binary) as server:
        for program, fn in (("xcg-session", bench.ssh_echo), ("xcg-web", bench.web_echo)):
            per = per_keystroke(lambda n: traced(server, program, fn, n))
            shown = sorted(((v, k) for k, v in per.items() if v >= 0.05), reverse=True)
            total = sum(per.values())
            print(f"{program}: {total:.2f} system calls per keystroke: "
                  + ", ".join(f"{k} {v:.2f}" for v, k in shown), flush=True)
            sched = per_keystroke(lambda n: scheduling(server, fn, n))
            for what in ("sleeps", "cpu_us"):
                print(f"{program}: {what} per keystroke: " + ", ".join(
                    f"{k} {sched.get(what + ' ' + k, 0):.2f}" for k in (program, "xcg-loadgen", "xcg", "pty_attach")),
                      flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["ab", "cpu", "syscalls"])
    parser.add_argument("--build", type=Path, required=True, help="optimised build with xcg and bench/")
    parser.add_argument("--before", help="ab, cpu: the other xcg binary (its xcg-session and xcg-web beside it)")
    parser.add_argument("--binary", help="syscalls: another xcg binary than the build's")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--keystrokes", type=int, default=measure.FULL.keystrokes)
    ab.add_dir_argument(parser)
    args = parser.parse_args()
    if args.mode in ("ab", "cpu") and not args.before:
        parser.error(f"{args.mode} needs --before")
    with Bench(args.build.resolve(), args.dir) as bench:
        {"ab": alternate, "cpu": cpu, "syscalls": syscalls}[args.mode](bench, args)


if __name__ == "__main__":
    main()
