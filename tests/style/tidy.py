#!/usr/bin/env python3
"""Runs clang-tidy (the checks of .clang-tidy) over the build's translation units and fails on
any finding.

A run over every unit takes over ten minutes on two cores, so by default only the units that a
change can affect are checked: those whose source, or any project header they include (from the
build's dependency files), differs from the base, and only the findings in changed files count
(the rest is older code's, for a run with --all). The base is the merge-base with main, or, on
main itself, the previous commit; uncommitted and untracked files count as changed.

usage: tests/style/tidy.py [--all | --since REF] [--build DIR] [--jobs N] [FILE.cc ...]
(FILEs: check just those units, every finding counting)
"""
import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLANG_TIDY = os.environ.get("CLANG_TIDY", "clang-tidy")
FINDING = re.compile(r"^(\S+?):(\d+):(\d+): (warning|error): (.*)$")


def git(*args):
    return subprocess.run(["git", "-C", ROOT, *args], check=True, capture_output=True, text=True).stdout


def default_base():
    head = git("rev-parse", "HEAD").strip()
    main = os.environ.get("XCG_TIDY_BASE", "main")
    try:
        base = git("merge-base", "HEAD", main).strip()
    except subprocess.CalledProcessError:
        base = head
    if base == head:  # on main: what the last commit (a merge, say) brought in
        try:
            base = git("rev-parse", "HEAD~1").strip()
        except subprocess.CalledProcessError:
            return None  # a single commit: check everything
    return base


def changed_files(base):
    names = git("diff", "--name-only", base).split() + git("ls-files", "--others", "--exclude-standard").split()
    return {os.path.join(ROOT, n) for n in names}


def dependencies(build):
    """The files each object's unit includes, as ninja recorded them from the compiler (the
    objects not built yet have none)."""
    text = subprocess.run(["ninja", "-C", build, "-t", "deps"], check=True, capture_output=True,
                          text=True).stdout
    deps, current = {}, None
    for line in text.splitlines():
        if line and not line[0].isspace():
            current = deps.setdefault(line.split(":")[0], set())
        elif line.strip() and current is not None:
            current.add(os.path.realpath(os.path.join(build, line.strip())))
    return deps


def affected(entry, changed, all_deps):
    source = os.path.realpath(os.path.join(entry["directory"], entry["file"]))
    if source in changed:
        return True
    deps = all_deps.get(entry.get("output", ""))
    headers = {c for c in changed if c.endswith(".h")}
    return bool(headers & deps) if deps is not None else bool(headers)


def run_one(build, entry):
    source = os.path.realpath(os.path.join(entry["directory"], entry["file"]))
    done = subprocess.run([CLANG_TIDY, "-p", build, "--quiet", "--extra-arg=-fno-color-diagnostics", source],
                          capture_output=True, text=True)
    return source, done.returncode, done.stdout + done.stderr


def findings(output):
    """The diagnostics (with their notes and code lines) of one unit's output, by first line."""
    found, current = {}, None
    for line in output.splitlines():
        m = FINDING.match(line)
        if m:
            key = (os.path.realpath(m.group(1)), m.group(2), m.group(3), m.group(5))
            current = found.setdefault(key, [])
        elif current is not None and not re.match(r"^\d+ warnings? (and \d+ errors? )?generated", line):
            current.append(line)
    return found


def counts(finding, changed):
    """Whether a finding fails the run: any in a full run; else those in changed files, and code
    that clang cannot compile wherever it is (nothing in that unit was checked)."""
    path, _, _, message = finding
    return changed is None or path in changed or "[clang-diagnostic-error" in message


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="check every unit")
    parser.add_argument("--since", metavar="REF", help="check the units affected by changes since REF")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("files", nargs="*", help="check just these units")
    args = parser.parse_args()
    build = os.path.realpath(args.build)
    with open(os.path.join(build, "compile_commands.json")) as f:
        entries = json.load(f)
    base = None if args.all or args.files else (args.since or default_base())
    changed = None
    if args.files:
        wanted = {os.path.realpath(f) for f in args.files}
        entries = [e for e in entries if os.path.realpath(os.path.join(e["directory"], e["file"])) in wanted]
    elif base is not None:
        changed = changed_files(base)
        all_deps = dependencies(build)
        entries = [e for e in entries if affected(e, changed, all_deps)]
    scope = f"units affected by changes since {base[:12]}" if base else "units"
    print(f"tidy: checking {len(entries)} {scope}", flush=True)
    started = time.monotonic()
    all_found, failed = {}, []
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for source, rc, output in pool.map(lambda e: run_one(build, e), entries):
            found = findings(output)
            new = {k: v for k, v in found.items() if k not in all_found and counts(k, changed)}
            for (path, line, col, message), detail in new.items():
                print(f"{os.path.relpath(path, ROOT)}:{line}:{col}: {message}", flush=True)
                print("\n".join(detail), flush=True)
            all_found.update(new)
            if rc != 0 and not found:  # a crash, say
                failed.append(source)
                print(output)
    print(f"tidy: {len(entries)} units in {time.monotonic() - started:.0f} s: {len(all_found)} findings"
          + (f", clang-tidy failed on {len(failed)}" if failed else ""))
    return 1 if all_found or failed else 0


if __name__ == "__main__":
    sys.exit(main())
