#!/usr/bin/env python3
"""Console throughput through the console-client stand-in, two xcg builds alternated on one
guest: ROUNDS rounds of (before: RUNS runs, after: RUNS runs). On a loaded machine this
compares two builds more fairly than one run of each (docs/performance.md). Needs root.

  bench/ab_throughput.py --build build-bench --before OLD/xcg [--rounds 6] [--runs 3] [--dir DIR]
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ab  # noqa: E402

SEQ = 10_000_000  # lines of the numbered guest: 88 MB a run


def measure(rig, label, binary, runs):
    with rig.serving(label, binary) as server:
        return [rig.loadgen.run("throughput", server, 1, 1, 120, seq=SEQ) for _ in range(runs)]


def summary(label, results):
    speeds = [r["mb_per_s"] for r in results]
    failed = sum(1 for r in results if not r["ok"])
    dropped = sum(1 for r in results if r["skipped_bytes"])
    return (f"{label}: median {statistics.median(speeds):.1f} MB/s, fastest {max(speeds):.1f}, "
            f"slowest {min(speeds):.1f}, {failed} of {len(results)} failed, {dropped} with bytes "
            "dropped for a slow viewer")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, required=True, help="optimised build with xcg and bench/")
    parser.add_argument("--before", required=True, help="the other xcg binary (its xcg-session beside it)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3)
    ab.add_dir_argument(parser)
    args = parser.parse_args()
    results = {"before": [], "after": []}
    with ab.Rig(args.build.resolve(), args.dir) as rig:
        for round_ in range(args.rounds):
            for label, binary in (("before", args.before), ("after", None)):
                got = measure(rig, label, binary, args.runs)
                results[label] += got
                print(f"round {round_ + 1} {label}: " + ", ".join(f"{r['mb_per_s']:.1f}" for r in got), flush=True)
    for label, got in results.items():
        print(summary(label, got))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
