#!/usr/bin/env python3
"""Memory per session, mapping by mapping (docs/performance.md): attaches N idle sessions, one
console each, with `xcg-loadgen hold`, reads /proc/PID/smaps of each xcg-session and prints, per
kind of mapping (heap, stack, anonymous, the binary, each library), the median per session of
Pss, Private_Dirty and Private_Clean. With --before, two builds alternated round by round.
Needs root.

  bench/session_memory.py --build build [--before OLD/xcg] [--rounds 2] [--sessions 20] [--dir DIR]
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

FIELDS = ("Pss", "Private_Dirty", "Private_Clean")
LIBRARIES = ("libcrypto", "libssl", "libssh", "libstdc++", "libc.so", "ld-linux", "libm.so", "libgcc_s",
             "libfmt", "libz", "libgssapi", "libkrb5", "libk5crypto")


def kind(name):
    """The group a mapping counts in, from the name smaps gives it."""
    if not name:
        return "anonymous"
    if name.startswith("["):
        return name if name in ("[heap]", "[stack]") else "[vdso, vvar]"
    if name.startswith("/memfd:"):
        return "memfd"
    base = Path(name.split(" (deleted)")[0]).name
    if base == "xcg-session":
        return "xcg-session"
    for lib in LIBRARIES:
        if base.startswith(lib):
            return lib.removesuffix(".so")
    return "other libraries"


def smaps_by_kind(pid):
    """{kind: {field: kB}} of one process."""
    groups = {}
    current = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head, _, rest = line.partition(" ")
            if "-" in head and not head.endswith(":"):
                parts = line.split(None, 5)
                current = groups.setdefault(kind(parts[5].strip() if len(parts) > 5 else ""),
                                            dict.fromkeys(FIELDS, 0))
            elif head.endswith(":") and head[:-1] in FIELDS:
                current[head[:-1]] += int(rest.split()[0])
    return groups


def session_pids(server):
    table = procs.table()
    return [p for p in procs.descendants(server.main_pid(), table) if table[p].comm == "xcg-session"]


def one(rig, label, binary, n):
    with rig.serving(label, binary) as server:
        hold = rig.loadgen.hold(server, 1, n, 4)
        try:
            opened = hold.open(n, timeout=n * 2 + 60)
            if opened["attached"] != n:
                raise RuntimeError(f"{label}: {opened['attached']} of {n} sessions attached")
            time.sleep(1)  # idle: the attach's own traffic is over
            return [smaps_by_kind(pid) for pid in session_pids(server)]
        finally:
            hold.close()


def summary(sessions):
    kinds = sorted({k for s in sessions for k in s})
    med = {k: {f: statistics.median(s.get(k, {}).get(f, 0) for s in sessions) for f in FIELDS} for k in kinds}
    med["total"] = {f: statistics.median(sum(g[f] for g in s.values()) for s in sessions) for f in FIELDS}
    return med


def print_table(sums):
    labels = list(sums)
    kinds = sorted({k for s in sums.values() for k in s if k != "total"},
                   key=lambda k: -max(s.get(k, {}).get("Pss", 0) for s in sums.values())) + ["total"]
    print("| mapping (kB per session) | " + " | ".join(f"{label} {f}" for label in labels for f in FIELDS) + " |")
    print("|---|" + "---:|" * (len(labels) * len(FIELDS)))
    for k in kinds:
        cells = [sums[label].get(k, {}).get(f, 0) for label in labels for f in FIELDS]
        print(f"| {k} | " + " | ".join(f"{c:g}" for c in cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, required=True, help="build with xcg and bench/")
    ab.add_before_argument(parser)
    ab.add_dir_argument(parser)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sessions", type=int, default=20)
    args = parser.parse_args()
    builds = ab.builds(args.before)
    results = {label: [] for label, _ in builds}
    with ab.Rig(args.build.resolve(), args.dir, domains=args.sessions) as rig:
        for round_, (label, binary) in ab.alternated(args.rounds, builds):
            got = one(rig, label, binary, args.sessions)
            results[label] += got
            print(f"round {round_ + 1} {label}: {len(got)} sessions, "
                  f"Pss {summary(got)['total']['Pss']:g} kB each", flush=True)
    print_table({label: summary(sessions) for label, sessions in results.items()})
    print(json.dumps(results), file=open(rig.work / "session_memory.json", "w"))


if __name__ == "__main__":
    main()
