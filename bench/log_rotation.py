#!/usr/bin/env python3
"""What rotating the console log costs on a file system: 89 MB appended in 64 KiB writes to
DIR/dom.log, rotated to dom.log.1 at every MAX bytes, with the old .1 either replaced by the
rename or removed before it. On ext4 a rename over an existing file writes the renamed file's
data out at once (auto_da_alloc); removing the old file first avoids that. Run it on the file
system of the gateway's log_dir.

  bench/log_rotation.py [--dir /var/log/xcg/console] [--max 1048576] [--rounds 3]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

CHUNK = b"x" * 65536
TOTAL = 89 * 1024 * 1024


def open_log(path):
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)


def remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def rotate(fd, path, remove_first):
    os.close(fd)
    if remove_first:
        remove(path + ".1")
    os.rename(path, path + ".1")
    return open_log(path)


def one_run(path, max_bytes, remove_first):
    """Returns (seconds in all, seconds rotating, rotations)."""
    remove(path)
    remove(path + ".1")
    fd, size, rotating, rotations = open_log(path), 0, 0.0, 0
    start = time.perf_counter()
    for _ in range(TOTAL // len(CHUNK)):
        if size + len(CHUNK) > max_bytes:
            t = time.perf_counter()
            fd, size = rotate(fd, path, remove_first), 0
            rotating += time.perf_counter() - t
            rotations += 1
        os.write(fd, CHUNK)
        size += len(CHUNK)
    os.close(fd)
    return time.perf_counter() - start, rotating, rotations


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", help="a directory on the file system to measure (default: a new one in /var/tmp)")
    parser.add_argument("--max", type=int, default=1024 * 1024, help="log_max in bytes")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xcg-log-rotation-", dir=args.dir or "/var/tmp") as work:
        path = os.path.join(work, "dom.log")
        results = {"rename over .1": [], "remove .1, then rename": []}
        for _ in range(args.rounds):
            for label, remove_first in (("rename over .1", False), ("remove .1, then rename", True)):
                results[label].append(one_run(path, args.max, remove_first))
        for label, runs in results.items():
            total = statistics.median(r[0] for r in runs)
            per_rotation = statistics.median(r[1] / r[2] for r in runs if r[2])
            print(f"{label}: {TOTAL / 1e6:.1f} MB in {total * 1e3:.1f} ms, "
                  f"{per_rotation * 1e3:.3f} ms per rotation ({runs[0][2]} rotations), median of {len(runs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
