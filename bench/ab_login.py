#!/usr/bin/env python3
"""Login start-up, two xcg builds alternated in one run (docs/performance.md, "Login
start-up"). Per round and build: the CPU a session has used when its SSH banner arrives (exec,
libraries, hello, sandbox), with the broker's share of the spawn; then logins in flight for a
few seconds and the server CPU per login; and beside them the bare exec of /bin/true and of
each build's xcg-session (perf stat). CPU time, not wall time: the machine may be loaded. Needs
root.

  bench/ab_login.py --build build-rel --before OLD/xcg [--rounds 6] [--banners 40] [--seconds 10]
      [--dir DIR]
"""

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ab  # noqa: E402
import procs  # noqa: E402
from measure import server_cpu_mark, server_cpu_since  # noqa: E402


def runtime_ms(pid):
    """On-CPU time of one task so far, in ns resolution (schedstat), as ms."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e6


def sessions(server):
    table = procs.table()
    return {p for p in procs.descendants(server.main_pid(), table) if table[p].comm == "xcg-session"}


def banner_once(server):
    """(session CPU ms when the banner arrives, broker CPU ms from connect to banner)."""
    before = sessions(server)
    broker0 = runtime_ms(server.main_pid())
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        got = b""
        while b"\n" not in got:
            chunk = s.recv(256)
            if not chunk:
                raise RuntimeError("the server closed before its banner")
            got += chunk
        broker = runtime_ms(server.main_pid()) - broker0
        new = sessions(server) - before
        if len(new) != 1:
            raise RuntimeError(f"expected one new session process, found {len(new)}")
        return runtime_ms(new.pop()), broker


def banners(server, count):
    results = []
    for _ in range(count):
        results.append(banner_once(server))
        time.sleep(0.05)  # the session sees the close and exits: not in the next one's count
    return results


def logins(loadgen, server, seconds):
    time.sleep(1)
    cpu_before = server_cpu_mark(server)
    result = loadgen.run("rate", server, 1, 1, timeout=seconds + 90, duration=seconds, concurrency=4)
    cpu = server_cpu_since(server, cpu_before)
    done = result["ok"] + result["late"]
    return {"logins": done, "failed": result.get("failed", 0), "cpu_ms_per_login": 1000 * cpu / done if done else None}


def bare_exec_ms(argv, runs=200):
    """task-clock per run from perf stat -r, in ms."""
    r = subprocess.run(["perf", "stat", "-r", str(runs), "-x", ",", "-e", "task-clock", *argv],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    for line in r.stderr.splitlines():
        if "task-clock" in line:
            return float(line.split(",")[0])
    raise RuntimeError(f"perf stat {argv}: {r.stderr.strip()}")


def one(rig, label, binary, args):
    with rig.serving(label, binary) as server:
        got = banners(server, args.banners)
        rate = logins(rig.loadgen, server, args.seconds)
    session_program = Path(binary or rig.build / "xcg").parent / "xcg-session"
    return {"banner_session_ms": [g[0] for g in got], "banner_broker_ms": [g[1] for g in got], **rate,
            "bare_true_ms": bare_exec_ms(["/bin/true"]),
            "bare_session_ms": bare_exec_ms([str(session_program), "by-hand"])}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def summary(label, rounds):
    flat = (lambda k: [v for r in rounds for v in r[k]])
    per = (lambda k: [r[k] for r in rounds])
    return {"label": label,
            "session_cpu_to_banner_ms": median(flat("banner_session_ms")),
            "broker_cpu_per_spawn_ms": median(flat("banner_broker_ms")),
            "server_cpu_per_login_ms": median(per("cpu_ms_per_login")),
            "bare_exec_true_ms": median(per("bare_true_ms")),
            "bare_exec_session_ms": median(per("bare_session_ms")),
            "failed_logins": sum(r["failed"] for r in rounds)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, required=True, help="optimised build with xcg and bench/")
    parser.add_argument("--before", required=True, help="the other xcg binary (its xcg-session beside it)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--banners", type=int, default=40)
    parser.add_argument("--seconds", type=int, default=10)
    ab.add_dir_argument(parser)
    args = parser.parse_args()
    results = {"before": [], "after": []}
    with ab.Rig(args.build.resolve(), args.dir) as rig:
        for round_, (label, binary) in ab.alternated(args.rounds, [("before", args.before), ("after", None)]):
            got = one(rig, label, binary, args)
            results[label].append(got)
            print(f"round {round_ + 1} {label}: banner {median(got['banner_session_ms']):.2f} ms, "
                  f"spawn {median(got['banner_broker_ms']):.2f} ms, login {got['cpu_ms_per_login']:.2f} ms "
                  f"({got['logins']}), true {got['bare_true_ms']:.3f} ms, "
                  f"xcg-session {got['bare_session_ms']:.3f} ms", flush=True)
    sums = [summary(label, rounds) for label, rounds in results.items()]
    for s in sums:
        print(json.dumps(s))
    print(json.dumps(results), file=open(rig.work / "ab_login.json", "w"))


if __name__ == "__main__":
    main()
