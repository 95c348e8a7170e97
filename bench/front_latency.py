#!/usr/bin/env python3
"""What a front adds (docs/performance.md, "Through a front"): keystroke echo and login time
through a front against the same node directly, in the same run. Needs root.

  bench/front_latency.py --build build-bench [--rounds 8] [--keystrokes 1000] [--logins 50]

One etcd member, one sim node serving one domain (the shared guest behind its console client,
as in bench.py), one front routing to it. Each round measures the node directly and then
through the front, the order swapped every other round: the echo (`xcg-loadgen echo`, one
session) and sequential logins until the console answers (`xcg-loadgen latency`). Prints each
round with the machine's load average, then the medians over the rounds and the differences,
and the whole as one JSON line.
"""

import argparse
import fcntl
import json
import re
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure  # noqa: E402
import procs  # noqa: E402
from loadgen_client import LoadGen  # noqa: E402
from servers import (MAX_STARTUPS, START_TIMEOUT, XCG_SESSION_USER, BenchError, Guests, Layout,  # noqa: E402
                     XcgServer, free_port, one_domain, run_checked)

ROUTE_TIMEOUT = 30


class Etcd:
    """One etcd member on loopback, its data under `directory`."""

    def __init__(self, directory):
        self.url = f"http://127.0.0.1:{free_port()}"
        peer = f"http://127.0.0.1:{free_port()}"
        self.argv = ["/usr/bin/etcd", "--name", "m0", "--data-dir", str(directory / "etcd"),
                     "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                     "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                     "--initial-cluster", f"m0={peer}", "--log-level", "warn"]
        self.log_path = directory / "etcd.log"
        self.proc = None

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=0.5) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        procs.started.add(self.proc.pid)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.healthy():
            if time.monotonic() >= deadline or self.proc.poll() is not None:
                raise BenchError(f"etcd not healthy after {START_TIMEOUT}s; see {self.log_path}")
            time.sleep(0.05)

    def stop(self):
        if self.proc:
            procs.stop_tree(self.proc.pid)
            self.proc.wait(timeout=10)


class FrontServer(XcgServer):
    """A front (`role: front`): no hypervisor and no domains of its own; its key map and its
    registry are etcd's."""

    def __init__(self, build, layout, work, endpoints):
        super().__init__(build, layout, [], work, name="front")
        self.label = "through the front"
        self.endpoints = endpoints
        self.host_key = layout.xcg / "front-hostkey"

    def write_config(self):
        q = json.dumps
        lines = ['listen: ["127.0.0.1:0"]', f"host_keys: [{q(str(self.host_key))}]",
                 f"audit_log: {q(str(self.work / 'front-audit.jsonl'))}", f"run_as: {XCG_SESSION_USER}",
                 f"chroot_dir: {q(str(self.layout.empty))}", "limits:", f"  max_startups: {q(MAX_STARTUPS)}",
                 "  max_startups_per_source: 2000", "cluster:", f"  endpoints: {q(self.endpoints)}",
                 "  node: front1", "  role: front"]
        self.config.write_text("\n".join(lines) + "\n")
        run_checked([str(self.binary), "check", "--config", str(self.config)])

    def plumbing(self, table):
        return set()


def public_line(private_key):
    return run_checked(["ssh-keygen", "-y", "-f", str(private_key)]).strip()


def node_server(build, layout, work, domains, endpoints, front):
    q = json.dumps
    extra = ["cluster:", f"  endpoints: {q(endpoints)}", "  node: node1", f"fronts: [{q(public_line(front.host_key))}]"]
    node = XcgServer(build, layout, domains, work, name="node", extra=extra)
    node.label = "directly to the node"
    return node


def import_keys(node, domains, work):
    path = work / "keys.yaml"
    path.write_text("domains:\n" + "".join(f"  {name}:\n    keys: [{json.dumps(key)}]\n" for name, key in domains))
    run_checked([str(node.binary), "keys", "--config", str(node.config), "import", str(path)])


def wait_routed(front, domain):
    """Until the front's `xcg ctl cluster` shows the domain routed and its key in the key map."""
    routed = re.compile(rf"^  node1 +127\.0\.0\.1:\d+ +{domain}$", re.MULTILINE)
    deadline = time.monotonic() + ROUTE_TIMEOUT
    while True:
        view = run_checked([str(front.binary), "ctl", "--socket", str(front.control_socket), "cluster"])
        if routed.search(view) and "key map: 1 domains, 1 keys" in view:
            return
        if time.monotonic() >= deadline:
            raise BenchError(f"the front does not route {domain} after {ROUTE_TIMEOUT}s:\n{view}")
        time.sleep(0.2)


def one_run(loadgen, server, args):
    echo = loadgen.run("echo", server, 1, 1, timeout=args.keystrokes * 6 + 60, keystrokes=args.keystrokes)
    logins = loadgen.run("latency", server, 1, 1, timeout=args.logins * 25 + 30, logins=args.logins)
    if logins["ok"] != args.logins:
        raise BenchError(f"{server.label}: {logins['ok']} of {args.logins} logins: {logins['failures']}")
    return {"echo_p50": echo["rtt_ms"]["p50"], "echo_p99": echo["rtt_ms"]["p99"],
            "login_p50": logins["attached_ms"]["p50"], "login_p95": logins["attached_ms"]["p95"]}


def rounds(loadgen, node, front, args):
    results = {"direct": [], "front": [], "load_average": []}
    for round_ in range(args.rounds):
        order = [("direct", node), ("front", front)]
        for label, server in order if round_ % 2 == 0 else reversed(order):
            got = one_run(loadgen, server, args)
            results[label].append(got)
            print(f"round {round_ + 1} {label}: " + ", ".join(f"{k} {v:.3f} ms" for k, v in got.items()), flush=True)
        results["load_average"].append(procs.load_average())
        print(f"round {round_ + 1} load average: {results['load_average'][-1]}", flush=True)
    return results


def summary(results):
    med = {label: {k: statistics.median(r[k] for r in results[label]) for k in results[label][0]}
           for label in ("direct", "front")}
    for label, figures in med.items():
        print(f"{label} (medians of {len(results[label])} rounds): "
              + ", ".join(f"{k} {v:.3f} ms" for k, v in figures.items()))
    print("added by the front: " + ", ".join(f"{k} {med['front'][k] - med['direct'][k]:+.3f} ms" for k in med["front"]))
    loads = [one for one, _, _ in results["load_average"]]
    print(f"1-minute load average during the rounds: {min(loads):.2f} to {max(loads):.2f}")
    results["medians"] = med
    print(json.dumps(results))


def run(args):
    build = args.build.resolve()
    layout = Layout()
    layout.create(build)
    work = layout.xcg
    domains = one_domain(build, layout)
    guests = Guests(build, layout, 1, work / "guests.log")
    servers = []
    etcd = Etcd(work)
    with open(work / "loadgen.log", "wb") as log:
        etcd.start()
        guests.start()
        try:
            front = FrontServer(build, layout, work, [etcd.url])
            front.write_config()
            front.start()
            servers.append(front)
            node = node_server(build, layout, work, domains, [etcd.url], front)
            node.write_config()
            node.start()
            servers.append(node)
            import_keys(node, domains, work)
            wait_routed(front, domains[0][0])
            summary(rounds(LoadGen(build / "bench" / "xcg-loadgen", layout.keys, log), node, front, args))
        finally:
            for server in servers:
                server.stop()
            guests.stop()
            etcd.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, required=True, help="optimised build with xcg and bench/")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--keystrokes", type=int, default=measure.FULL.keystrokes)
    parser.add_argument("--logins", type=int, default=50)
    args = parser.parse_args()
    lock = open("/run/xcg-bench.lock", "w")  # bench.py's: all use /run/xcg-bench
    fcntl.flock(lock, fcntl.LOCK_EX)
    procs.become_subreaper()
    run(args)


if __name__ == "__main__":
    main()
