#!/usr/bin/env python3
"""Where one console transfer's time goes: every process's CPU during `seq` on the guest's pty
through xcg-loadgen, for xcg, xcg without its console log, and the OpenSSH recipe, alternated.
Processes that end during the transfer (the client, the per-connection server processes) are not
counted. Needs root; uses the shared /run/xcg-bench, so not beside `./dev bench`.

  bench/transfer_cpu.py --build build-bench [--rounds 2] [--seq 10000000]
  bench/transfer_cpu.py --build build-bench --variant before=OLD/xcg --sides xcg,before --rounds 8
  bench/transfer_cpu.py --build build-bench --sides xcg,openssh --stages --keystrokes 2000
"""

import argparse
import contextlib
import os
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402
import procs  # noqa: E402
import sched_trace  # noqa: E402
from loadgen_client import LoadGen  # noqa: E402
from servers import Guests, Layout, OpenSshServer, XcgServer  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_pid():
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(pid)] = (comm, int(fields[11]) + int(fields[12]))  # utime + stime
    return out


def busiest(before, after, seconds, top=6):
    by_comm = {}
    for pid, (comm, ticks) in after.items():
        used = ticks - before[pid][1] if pid in before else ticks
        if used > 0:
            by_comm[comm] = by_comm.get(comm, 0) + used / TICK
    ranked = sorted(by_comm.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{comm} {100 * s / seconds:.0f}%" for comm, s in ranked)


def transfer(lg, server, args):
    before, t0 = cpu_by_pid(), time.monotonic()
    with traced(args.stages, server) as trace:
        result = lg.run("throughput", server, 1, 1, 240, seq=args.seq)
    after, seconds = cpu_by_pid(), time.monotonic() - t0
    print(f"{server.name}: {result['mb_per_s']:.1f} MB/s; {busiest(before, after, seconds)}", flush=True)
    if trace:
        print("\n".join(sched_trace.table(trace.usage(), result["bytes"] / 1e6, "MB")), flush=True)
    return result["mb_per_s"]


def keystrokes(lg, server, count):
    with sched_trace.Trace(labeller(server)) as trace:
        result = lg.run("echo", server, 1, 1, timeout=count * 6 + 60, keystrokes=count)
    print(f"{server.name}: echo median {result['rtt_ms']['p50']:.3f} ms over {count} keystrokes", flush=True)
    print("\n".join(sched_trace.table(trace.usage(), count, "keystroke")), flush=True)


def traced(on, server):
    return sched_trace.Trace(labeller(server)) if on else contextlib.nullcontext()


def labeller(server):
    """The broker and the guest are both the xcg binary: tells them apart by the broker's threads."""
    broker = {int(t) for t in os.listdir(f"/proc/{server.proc.pid}/task")} if isinstance(server, XcgServer) else set()

    def label(comm, tid):
        if tid in broker:
            return "xcg (broker)"
        return "the guest" if comm == "xcg" else sched_trace.group(comm)
    return label


def prepare(server):
    if isinstance(server, OpenSshServer):
        return server.setup()
    server.write_config()
    if server.name == "xcg_no_log":
        server.config.write_text(re.sub(r"  log_dir: .*", '  log_dir: ""', server.config.read_text()))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, required=True, help="optimised build with xcg and bench/")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seq", type=int, default=10_000_000, help="lines of the guest's seq, at most 10000000")
    parser.add_argument("--stages", action="store_true",
                        help="trace every process system-wide (perf): CPU, sleeps and system calls per MB")
    parser.add_argument("--keystrokes", type=int, default=0, help="with --stages, also this many echoed keystrokes")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=BINARY",
                        help="another xcg binary, measured as the side NAME (repeatable)")
    parser.add_argument("--sides", default="xcg,xcg_no_log,openssh",
                        help="which sides to run, in this order; variants are added after them unless named here")
    args = parser.parse_args()
    build, work = args.build.resolve(), Path("/run/xcg-bench-transfer")
    work.mkdir(exist_ok=True)
    try:
        return run(args, build, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def make_sides(args, build, layout, domains, work):
    def xcg(name=None, binary=None):
        return XcgServer(build, layout, domains, work, on_guest_pty=True, name=name, binary=binary)
    makers = {"xcg": xcg, "xcg_no_log": lambda: xcg("xcg_no_log"),
              "openssh": lambda: OpenSshServer(layout, domains, work)}
    names = args.sides.split(",")
    for name, binary in (v.split("=", 1) for v in args.variant):
        makers[name] = lambda name=name, binary=binary: xcg(name, Path(binary).resolve())
        names += [] if name in names else [name]
    unknown = [name for name in names if name not in makers]
    if unknown:
        raise SystemExit(f"transfer_cpu: no side called {', '.join(unknown)}")
    return [makers[name]() for name in names]


def run(args, build, work):
    procs.become_subreaper()
    layout = Layout()
    layout.create(build)
    domains = bench.make_keys(build, layout, 1)
    guests = Guests(build, layout, 1, work / "guests.log")
    lg = LoadGen(build / "bench" / "xcg-loadgen", layout.keys, open(work / "loadgen.log", "wb"))
    sides = make_sides(args, build, layout, domains, work)
    try:
        guests.start()
        for server in sides:
            prepare(server)
        rates = {server.name: [] for server in sides}
        for round_ in range(args.rounds):
            for server in sides[::-1] if round_ % 2 else sides:
                server.start()
                try:
                    rates[server.name].append(transfer(lg, server, args))
                    if args.stages and args.keystrokes:
                        keystrokes(lg, server, args.keystrokes)
                finally:
                    server.stop()
        for name, got in rates.items():
            print(f"{name}: median {statistics.median(got):.1f} MB/s over {len(got)} transfers")
    finally:
        guests.stop()
        for problem in bench.cleanup_system():
            print(f"transfer_cpu: cleanup: {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
