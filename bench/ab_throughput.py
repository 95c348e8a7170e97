#!/usr/bin/env python3
"""Console throughput through the console-client stand-in, two xcg builds alternated on one
guest: ROUNDS rounds of (before: RUNS runs, after: RUNS runs). On a loaded machine this
compares two builds more fairly than one run of each (docs/performance.md). Needs root.

  bench/ab_throughput.py --build build-bench --before OLD/xcg [--rounds 6] [--runs 3]

With --ssh, the production-like path instead: the hub reads the guest's pty itself, a real
`ssh` client takes the bytes, and each run records the broker's and the session's own CPU per
MB. --ciphers A,B alternates two client ciphers on one build instead of two builds; --attach
runs a profiler on the broker and the session for each transfer (docs/performance.md, "The data
path, stage by stage"):

  bench/ab_throughput.py --build build --dir /tmp/me --ssh --ciphers chacha20-poly1305@openssh.com,aes128-gcm@openssh.com
  bench/ab_throughput.py --build build --dir /tmp/me --ssh --before OLD/xcg --rounds 1 --runs 1 \
      --attach 'perf record -g -o {out}.perf -p {pids}'
"""

import argparse
import fcntl
import json
import select
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import procs  # noqa: E402
import servers  # noqa: E402
from loadgen_client import LoadGen  # noqa: E402
from servers import Guests, Layout, XcgServer, one_domain  # noqa: E402

SEQ = 10_000_000  # lines of the numbered guest: 88 MB a run
SSH_SEQ = 3_000_000  # 22.9 MB a run with CR LF line ends


def read_until(proc, mark, deadline, quiet=3.0):
    """Reads the ssh client's output until `mark` has passed, or until it has been quiet for
    `quiet` seconds after the hub skipped bytes (the mark may be among them); returns (bytes
    read, whether the hub skipped, when the last byte came)."""
    total, tail, skipped, last = 0, b"", False, time.monotonic()
    while mark not in tail:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {mark!r} from the guest")
        if not select.select([proc.stdout], [], [], quiet)[0]:
            if skipped:
                break
            continue
        chunk = proc.stdout.read(1 << 20)
        if not chunk:
            raise EOFError("the ssh client ended")
        total, last = total + len(chunk), time.monotonic()
        skipped = skipped or b"bytes skipped]" in tail + chunk
        tail = tail[-64:] + chunk[-256:]
    return total, skipped, last


def session_pid(server):
    kids = [p for p in procs.table().values() if p.ppid == server.main_pid() and p.comm == "xcg-session"]
    if len(kids) != 1:
        raise RuntimeError(f"expected one session process, found {len(kids)}")
    return kids[0].pid


def own_cpu(pid):
    return procs.cpu_seconds(pid, own_only=True)


def ssh_run(server, layout, cipher, attach, out):
    """One transfer of `seq` through a real ssh client: MB/s and CPU ms per MB per process."""
    key = layout.keys / "vm0001"
    argv = ["ssh", "-T", "-F", "/dev/null", "-i", str(key), "-p", str(server.port), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            *(["-c", cipher] if cipher else []), "vm0001@127.0.0.1"]
    client = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    deadline = time.monotonic() + 120
    try:
        client.stdin.write(b"\x03root\recho ready-mark\r")
        read_until(client, b"\r\nready-mark\r\n", deadline)
        while select.select([client.stdout], [], [], 0.5)[0]:  # the prompt, before the clock starts
            client.stdout.read(1 << 20)
        session = session_pid(server)
        pids = [server.main_pid(), session]
        profiler = subprocess.Popen(shlex.split(attach.format(pids=",".join(map(str, pids)), out=out))) if attach else None
        if profiler:
            time.sleep(1)  # the profiler attaches before the transfer starts
        cpu0, t0 = [own_cpu(p) for p in pids], time.monotonic()
        client.stdin.write(f"seq {SSH_SEQ}\r".encode())
        got, skipped, t1 = read_until(client, f"\r\n{SSH_SEQ}\r\n".encode(), deadline)  # seq's last line
        seconds = t1 - t0
        cpu = [own_cpu(p) - c for p, c in zip(pids, cpu0)]
        if profiler:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=120)
    finally:
        client.stdin.close()
        client.terminate()
        client.wait(timeout=30)
    mb = got / 1e6
    return {"ok": True, "bytes": got, "mb_per_s": mb / seconds, "skipped_bytes": int(skipped),
            "broker_ms_per_mb": 1000 * cpu[0] / mb, "session_ms_per_mb": 1000 * cpu[1] / mb,
            "server_ms_per_mb": 1000 * sum(cpu) / mb}


def measure(build, layout, domains, work, loadgen, label, binary, args, round_):
    server = XcgServer(build, layout, domains, work, binary=binary, name=label, on_guest_pty=args.ssh)
    server.write_config()
    server.start()
    cipher = args.ciphers.split(",")[label == "after"] if args.ciphers else None
    try:
        if args.ssh:
            return [ssh_run(server, layout, cipher, args.attach, work / f"{label}-{round_ + 1}-{i + 1}")
                    for i in range(args.runs)]
        return [loadgen.run("throughput", server, 1, 1, 120, seq=SEQ) for _ in range(args.runs)]
    finally:
        server.stop()


def summary(label, results):
    speeds = [r["mb_per_s"] for r in results]
    failed = sum(1 for r in results if not r["ok"])
    dropped = sum(1 for r in results if r["skipped_bytes"])
    cpu = "".join(f", {k} median {statistics.median(r[k] for r in results):.2f}"
                  for k in ("broker_ms_per_mb", "session_ms_per_mb", "server_ms_per_mb") if k in results[0])
    return (f"{label}: median {statistics.median(speeds):.1f} MB/s, fastest {max(speeds):.1f}, "
            f"slowest {min(speeds):.1f}, {failed} of {len(results)} failed, {dropped} with bytes "
            "dropped for a slow viewer" + cpu)


def brief(r):
    if "server_ms_per_mb" not in r:
        return f"{r['mb_per_s']:.1f}"
    return (f"{r['mb_per_s']:.1f} MB/s (broker {r['broker_ms_per_mb']:.2f}, session "
            f"{r['session_ms_per_mb']:.2f} ms/MB)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, required=True, help="optimised build with xcg and bench/")
    parser.add_argument("--before", help="the other xcg binary (its xcg-session beside it)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="work directory instead of the shared /run/xcg-bench")
    parser.add_argument("--ssh", action="store_true", help="guest's pty → xcg → a real ssh client")
    parser.add_argument("--ciphers", help="BEFORE,AFTER: the ssh client's cipher per side (with --ssh)")
    parser.add_argument("--attach", help="command run on each transfer; {pids}: broker,session; {out}: a path")
    args = parser.parse_args()
    if not args.before and not args.ciphers:
        parser.error("--before or --ciphers is needed")
    build = args.build.resolve()
    if args.dir:
        servers.RUN = args.dir.resolve()
    lock = open(servers.RUN.parent / f"{servers.RUN.name}.lock", "w")  # bench.py's for /run/xcg-bench
    fcntl.flock(lock, fcntl.LOCK_EX)
    layout = Layout()
    layout.create(build)
    work = layout.xcg
    domains = one_domain(build, layout)
    log = open(work / "loadgen.log", "wb")
    loadgen = LoadGen(build / "bench" / "xcg-loadgen", layout.keys, log)
    guests = Guests(build, layout, 1, work / "guests.log")
    guests.start()
    results = {"before": [], "after": []}
    try:
        for round_ in range(args.rounds):
            sides = (("before", args.before), ("after", None))
            for label, binary in sides[::-1] if round_ % 2 else sides:  # who goes first alternates
                got = measure(build, layout, domains, work, loadgen, label, binary, args, round_)
                results[label] += got
                print(f"round {round_ + 1} {label}: " + ", ".join(brief(r) for r in got), flush=True)
    finally:
        guests.stop()
    for label, got in results.items():
        print(summary(label, got))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
