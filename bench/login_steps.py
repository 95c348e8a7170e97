#!/usr/bin/env python3
"""One login, step by step (docs/performance.md): the CPU a session has used at each step of a
login, from the marks a test-hook build logs (gateway/session/login_marks.h), with the bare exec
of /bin/true measured in the same run. With --before, two builds alternated round by round.
CPU time, not wall time: the machine may be loaded. Needs root; the builds need
-Dtest_hooks=true.

  bench/login_steps.py --build build [--before OLD/xcg] [--rounds 3] [--logins 40] [--dir DIR]
"""

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ab  # noqa: E402
from ab_login import bare_exec_ms  # noqa: E402

STEPS = ["exec", "libraries", "hello", "sandbox", "key_exchange", "auth", "channel", "console"]
MARKS = re.compile(r"login steps \(CPU us since the clone\):((?: \w+=-?\d+)+)")


def marks_in(text):
    """Each login's cumulative CPU per step, in µs, from a server log."""
    logins = []
    for match in MARKS.finditer(text):
        values = dict(pair.split("=") for pair in match.group(1).split())
        logins.append([int(values[s]) for s in STEPS])
    return logins


def step_costs(cumulative):
    """Per step, the CPU since the step before (ms); the first step counts from the clone."""
    return [(v - (cumulative[i - 1] if i else 0)) / 1000 for i, v in enumerate(cumulative)]


def one(rig, label, binary, logins):
    log_path = rig.work / f"{label}.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    with rig.serving(label, binary) as server:
        result = rig.loadgen.run("latency", server, 1, 1, timeout=logins * 25 + 30, logins=logins)
    with open(log_path, "rb") as f:
        f.seek(offset)
        got = marks_in(f.read().decode(errors="replace"))
    if len(got) != result["ok"]:
        raise RuntimeError(f"{label}: {result['ok']} logins but {len(got)} step lines; is it a test-hook build?")
    return {"steps_ms": [step_costs(m) for m in got], "bare_true_ms": bare_exec_ms(["/bin/true"]),
            "failed": logins - result["ok"]}


def summary(rounds):
    per_login = [s for r in rounds for s in r["steps_ms"]]
    medians = {name: statistics.median(s[i] for s in per_login) for i, name in enumerate(STEPS)}
    medians["total"] = statistics.median(sum(s) for s in per_login)
    medians["bare_exec_true"] = statistics.median(r["bare_true_ms"] for r in rounds)
    medians["logins"] = len(per_login)
    medians["failed"] = sum(r["failed"] for r in rounds)
    return medians


def print_table(sums):
    labels = list(sums)
    print("| step (ms of session CPU) | " + " | ".join(labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for key in [*STEPS, "total", "bare_exec_true"]:
        print(f"| {key} | " + " | ".join(f"{sums[label][key]:.2f}" for label in labels) + " |")
    for key in ("logins", "failed"):
        print(f"| {key} | " + " | ".join(str(sums[label][key]) for label in labels) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, required=True, help="test-hook build with xcg and bench/")
    ab.add_before_argument(parser)
    ab.add_dir_argument(parser)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--logins", type=int, default=40)
    args = parser.parse_args()
    builds = ab.builds(args.before)
    results = {label: [] for label, _ in builds}
    with ab.Rig(args.build.resolve(), args.dir) as rig:
        for round_, (label, binary) in ab.alternated(args.rounds, builds):
            got = one(rig, label, binary, args.logins)
            results[label].append(got)
            total = statistics.median(sum(s) for s in got["steps_ms"])
            print(f"round {round_ + 1} {label}: {total:.2f} ms to the console, "
                  f"/bin/true {got['bare_true_ms']:.3f} ms", flush=True)
    sums = {label: summary(rounds) for label, rounds in results.items()}
    print_table(sums)
    print(json.dumps(results), file=open(rig.work / "login_steps.json", "w"))


if __name__ == "__main__":
    main()
