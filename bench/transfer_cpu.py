#!/usr/bin/env python3
"""Where one console transfer's time goes: every process's CPU during `seq` on the guest's pty
through xcg-loadgen, for xcg, xcg without its console log, and the OpenSSH recipe, alternated.
Processes that end during the transfer (the client, the per-connection server processes) are not
counted. Needs root; uses the shared /run/xcg-bench, so not beside `./dev bench`.

  bench/transfer_cpu.py --build build-bench [--rounds 2] [--seq 10000000]
"""

import argparse
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402
import procs  # noqa: E402
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


def transfer(lg, server, seq, domain):
    before, t0 = cpu_by_pid(), time.monotonic()
    result = lg.run("throughput", server, domain, 1, 240, seq=seq)
    after, seconds = cpu_by_pid(), time.monotonic() - t0
    print(f"{server.name}: {result['mb_per_s']:.1f} MB/s; {busiest(before, after, seconds)}", flush=True)


def without_console_log(server):
    server.config.write_text(re.sub(r"  log_dir: .*", '  log_dir: ""', server.config.read_text()))
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, required=True, help="optimised build with xcg and bench/")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seq", type=int, default=10_000_000, help="lines of the guest's seq, at most 10000000")
    args = parser.parse_args()
    build, work = args.build.resolve(), Path("/run/xcg-bench-transfer")
    work.mkdir(exist_ok=True)
    procs.become_subreaper()
    layout = Layout()
    layout.create(build)
    domains = bench.make_keys(build, layout, 1)
    guests = Guests(build, layout, 1, work / "guests.log")
    lg = LoadGen(build / "bench" / "xcg-loadgen", layout.keys, open(work / "loadgen.log", "wb"))
    sides = [XcgServer(build, layout, domains, work, on_guest_pty=True),
             XcgServer(build, layout, domains, work, on_guest_pty=True, name="xcg_no_log"),
             OpenSshServer(layout, domains, work)]
    try:
        guests.start()
        for server in sides[:2]:
            server.write_config()
        without_console_log(sides[1])
        sides[2].setup()
        for round_ in range(args.rounds):
            for server in sides[::-1] if round_ % 2 else sides:
                server.start()
                try:
                    transfer(lg, server, args.seq, 1)
                finally:
                    server.stop()
    finally:
        guests.stop()
        for problem in bench.cleanup_system():
            print(f"transfer_cpu: cleanup: {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
