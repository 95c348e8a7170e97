#!/usr/bin/env python3
"""Spare sessions (docs/performance.md, "Spare sessions"): login until the console answers,
one build, `limits.spare_sessions` 0 against N, alternated in one run (the order swapped each
round). Per round and setting: sequential logins (`xcg-loadgen latency`), their median and
p95, the machine's load average, and with spares the parked spares' PSS. Needs root.

  bench/ab_spares.py --build build [--spares 2] [--rounds 6] [--logins 40] [--dir DIR]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ab  # noqa: E402
import procs  # noqa: E402
from servers import BenchError, XcgServer, run_checked  # noqa: E402

POOL_TIMEOUT = 10


class SpareServer(XcgServer):
    """bench's xcg server with `limits.spare_sessions` set."""

    def __init__(self, *args, spares, **kwargs):
        super().__init__(*args, **kwargs)
        self.spares = spares

    def write_config(self):
        super().write_config()
        text = self.config.read_text().replace("limits:\n", f"limits:\n  spare_sessions: {self.spares}\n", 1)
        self.config.write_text(text)
        run_checked([str(self.binary), "check", "--config", str(self.config)])


def parked(server):
    """The xcg-session children that have no connection yet: descriptor 0 is the IPC socket."""
    table = procs.table()
    found = []
    for pid in procs.descendants(server.main_pid(), table):
        if table[pid].comm != "xcg-session":
            continue
        try:
            if Path(f"/proc/{pid}/fd/0").readlink() == Path(f"/proc/{pid}/fd/3").readlink():
                found.append(pid)
        except OSError:
            continue
    return found


def wait_parked(server):
    deadline = time.monotonic() + POOL_TIMEOUT
    while len(parked(server)) < server.spares:
        if time.monotonic() >= deadline:
            raise BenchError(f"{server.spares} spares not parked after {POOL_TIMEOUT}s")
        time.sleep(0.05)
    return parked(server)


def one(rig, spares, logins):
    with rig.serving(f"spares{spares}", server_class=SpareServer, spares=spares) as server:
        pss = [procs.memory_kb(p)["pss"] for p in wait_parked(server)] if spares else []
        result = rig.loadgen.run("latency", server, 1, 1, timeout=logins * 25 + 30, logins=logins)
    if result["ok"] != logins:
        raise BenchError(f"spares {spares}: {result['ok']} of {logins} logins: {result.get('failures')}")
    return {"login_p50": result["attached_ms"]["p50"], "login_p95": result["attached_ms"]["p95"],
            "spare_pss_kb": pss, "load_average": procs.load_average()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, required=True, help="a build with xcg and bench/")
    parser.add_argument("--spares", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--logins", type=int, default=40)
    ab.add_dir_argument(parser)
    args = parser.parse_args()
    results = {0: [], args.spares: []}
    with ab.Rig(args.build.resolve(), args.dir) as rig:
        for round_, spares in ab.alternated(args.rounds, list(results)):
            got = one(rig, spares, args.logins)
            results[spares].append(got)
            print(f"round {round_ + 1} spares {spares}: login p50 {got['login_p50']:.2f} ms, "
                  f"p95 {got['login_p95']:.2f} ms, spare PSS {got['spare_pss_kb']} kB, "
                  f"load {got['load_average']}", flush=True)
    for n, rounds in results.items():
        print(json.dumps({"spares": n,
                          "login_p50_ms": statistics.median(r["login_p50"] for r in rounds),
                          "login_p95_ms": statistics.median(r["login_p95"] for r in rounds),
                          "spare_pss_kb": [p for r in rounds for p in r["spare_pss_kb"]]}))


if __name__ == "__main__":
    main()
