#!/usr/bin/env python3
"""The registry at scale (docs/performance.md, "The registry at scale"): fronts against a fleet
of simulated nodes in a real etcd. Needs root (a front drops its session processes to `xcg`).

  bench/registry_scale.py --build build [--nodes 1000] [--domains-per-node 100] [--fronts 3]
  bench/registry_scale.py --build build --quick     # 50 nodes x 20 domains, 2 fronts

One etcd member on loopback (enough for the costs measured here; a real fleet runs three).
Every simulated node holds its own lease, kept alive every ttl/3 as an xcg node does (one
`/v3/lease/keepalive` per lease over etcd's JSON gateway), with `nodes/<node>` under it and
`domains/<domain>` records naming it, as registry.cc writes them; the key map holds one key per
domain under `keys/`. The bulk load is `/v3/kv/txn` batches of etcd's default
`--max-txn-ops` (128) over keep-alive connections. Then, with real `xcg` fronts:
  - a front's start-up until its registry and key map are read whole (its metrics), and its
    broker's RSS and PSS, against the same front started on an empty prefix in the same run;
  - a revocation (a key deleted) until every front's key map revision passes the delete's;
  - a handover (`domains/<d>` rewritten to another node) until every front's `xcg ctl cluster`
    routes it to the new node;
  - etcd's RSS, database size, and its CPU while the leases are kept alive.
Prints each figure, then the whole as one JSON line. Everything it starts it stops.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import procs  # noqa: E402
from front_latency import Etcd  # noqa: E402
from servers import XCG_SESSION_USER, BenchError, ensure_system_user, run_checked  # noqa: E402

PREFIX = "/xcg/"
MAX_TXN_OPS = 128    # etcd's default --max-txn-ops
READY_TIMEOUT = 300
CHANGE_TIMEOUT = 30


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


class Gateway:
    """etcd's JSON gateway over one keep-alive HTTP connection."""

    def __init__(self, url):
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.bytes = 0

    def post(self, path, body):
        data = json.dumps(body)
        self.conn.request("POST", path, data, {"Content-Type": "application/json"})
        answer = self.conn.getresponse()
        raw = answer.read()
        self.bytes += len(data) + len(raw)
        if answer.status != 200:
            raise BenchError(f"etcd {path}: {answer.status} {raw[:300]!r}")
        return json.loads(raw)

    def txn_puts(self, puts):
        ops = [{"requestPut": {"key": b64(k), "value": b64(v), **({"lease": lease} if lease else {})}}
               for k, v, lease in puts]
        return int(self.post("/v3/kv/txn", {"success": ops})["header"]["revision"])

    def close(self):
        self.conn.close()


def node_name(n):
    return f"node{n:04d}"


def domain_name(n, j):
    return f"vm{n:04d}-{j:03d}"


def fake_key(domain):
    """A well-formed ed25519 public key line and its fingerprint, made from the domain's name."""
    raw = hashlib.sha256(domain.encode()).digest()
    blob = b"\0\0\0\x0bssh-ed25519\0\0\0\x20" + raw
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} customer@{domain}", fingerprint


def key_entry(domain):
    line, fingerprint = fake_key(domain)
    return f"{PREFIX}keys/{domain}/{fingerprint}", json.dumps({"key": line, "readonly": False})


def node_value(n):
    return json.dumps({"address": f"127.0.0.1:{10000 + n % 50000}", "fingerprint": f"SHA256:fake{n:04d}",
                       "version": "bench"})


def in_parallel(jobs, work):
    """Runs work(gateway, job) for each job on `len(jobs)` threads; re-raises the first error."""
    errors = []

    def run(job, gw):
        try:
            work(gw, job)
        except Exception as e:  # noqa: BLE001 - handed to the main thread
            errors.append(e)

    gateways = [Gateway(ETCD_URL) for _ in jobs]
    threads = [threading.Thread(target=run, args=(job, gw)) for job, gw in zip(jobs, gateways)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for gw in gateways:
        gw.close()
    if errors:
        raise errors[0]


def batches(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def grant_leases(args, threads=4):
    """One lease per node; returns them by node and the seconds taken."""
    nodes = list(range(args.nodes))
    leases = {}
    started = time.monotonic()

    def grant(gw, part):
        for n in part:
            leases[n] = int(gw.post("/v3/lease/grant", {"TTL": ARGS.lease_ttl})["ID"])

    in_parallel([nodes[i::threads] for i in range(threads)], grant)
    return leases, time.monotonic() - started


def load(args, leases, threads=4):
    """nodes/ (under the leases, kept alive meanwhile), domains/ and keys/; the time taken."""
    nodes = list(range(args.nodes))
    granted = time.monotonic()
    puts = [(f"{PREFIX}nodes/{node_name(n)}", node_value(n), leases[n]) for n in nodes]
    puts += [(f"{PREFIX}domains/{domain_name(n, j)}", node_name(n), None)
             for n in nodes for j in range(args.domains_per_node)]
    puts += [(*key_entry(domain_name(n, j)), None) for n in nodes for j in range(args.domains_per_node)]
    work = batches(puts, MAX_TXN_OPS)
    in_parallel([work[i::threads] for i in range(threads)], lambda gw, part: [gw.txn_puts(b) for b in part])
    done = time.monotonic()
    return {"puts": len(puts), "txns": len(work), "puts_s": done - granted}


class KeepAlive:
    """Every lease refreshed every ttl/3, as an xcg node's EtcdLease does, on a few connections."""

    def __init__(self, leases, threads=4):
        self.parts = [list(leases.values())[i::threads] for i in range(threads)]
        self.stop_flag = threading.Event()
        self.requests = 0
        self.bytes = 0
        self.late_rounds = 0  # a round that took longer than ttl/3
        self.expired = 0      # answers with TTL 0: the lease was gone
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(part,)) for part in self.parts]

    def start(self):
        for t in self.threads:
            t.start()

    def run(self, part):
        gw = Gateway(ETCD_URL)
        period = ARGS.lease_ttl / 3
        try:
            while not self.stop_flag.is_set():
                began = time.monotonic()
                for lease in part:
                    answer = gw.post("/v3/lease/keepalive", {"ID": lease})
                    self.requests += 1
                    if int(answer.get("result", {}).get("TTL", 0)) <= 0:
                        self.expired += 1
                left = period - (time.monotonic() - began)
                if left < 0:
                    self.late_rounds += 1
                self.stop_flag.wait(max(left, 0))  # pacing, as the node's timer paces it
        except Exception as e:  # noqa: BLE001 - reported by stop()
            self.errors.append(e)
        finally:
            self.bytes += gw.bytes
            gw.close()

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join()
        if self.errors:
            raise self.errors[0]


class Front:
    """An xcg front (`role: front`) reading the fleet under `prefix`."""

    def __init__(self, build, work, name, prefix):
        self.binary = build / "xcg"
        self.name = name
        self.dir = work / name
        self.dir.mkdir()
        self.socket = self.dir / "control.sock"
        self.config = self.dir / "xcg.yaml"
        self.log_path = self.dir / "xcg.log"
        host_key = self.dir / "hostkey"
        run_checked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)])
        empty = work / "chroot"
        empty.mkdir(mode=0o755, exist_ok=True)
        q = json.dumps
        self.config.write_text("\n".join([
            'listen: ["127.0.0.1:0"]', f"host_keys: [{q(str(host_key))}]",
            f"audit_log: {q(str(self.dir / 'audit.jsonl'))}", f"run_as: {XCG_SESSION_USER}",
            f"chroot_dir: {q(str(empty))}", "cluster:", f"  endpoints: [{q(ETCD_URL)}]",
            f"  node: {name}", "  role: front", f"  prefix: {q(prefix)}"]) + "\n")
        run_checked([str(self.binary), "check", "--config", str(self.config)])
        self.proc = None

    def start(self):
        self._log = open(self.log_path, "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([str(self.binary), "serve", "--config", str(self.config),
                                      "--control-socket", str(self.socket)],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        procs.started.add(self.proc.pid)

    def ctl(self, command):
        answer = subprocess.run([str(self.binary), "ctl", "--socket", str(self.socket), command],
                                capture_output=True, text=True, timeout=60)
        return answer.stdout if answer.returncode == 0 else ""

    def metrics(self):
        out = {}
        for line in self.ctl("metrics").splitlines():
            m = re.match(r"^(xcg_etcd_key_map_revision|xcg_registry_nodes|xcg_registry_domains) (\d+)$", line)
            if m:
                out[m.group(1)] = int(m.group(2))
        return out

    def wait_ready(self, nodes, domains):
        """Seconds from start until the metrics show the whole registry and a key map. `nodes`:
        a number, or a function giving the number etcd holds now (a lease the simulator let lapse
        takes its node away)."""
        deadline = self.started + READY_TIMEOUT
        while True:
            m = self.metrics()
            want = nodes() if callable(nodes) else nodes
            if (m.get("xcg_etcd_key_map_revision", 0) > 0 and m.get("xcg_registry_nodes") == want
                    and m.get("xcg_registry_domains") == domains):
                took = time.monotonic() - self.started
                if want == 0 and "registry: 0 nodes, 0 domains" not in self.ctl("cluster"):
                    continue  # empty counts before the registry is read: not ready yet
                return took
            if time.monotonic() >= deadline or self.proc.poll() is not None:
                raise BenchError(f"{self.name}: not ready after {READY_TIMEOUT}s ({m}); see {self.log_path}")
            time.sleep(0.02)

    def memory(self):
        return procs.memory_kb(self.proc.pid)

    def cpu(self):
        return procs.cpu_seconds(self.proc.pid, own_only=True)

    def stop(self):
        if self.proc:
            procs.stop_tree(self.proc.pid)
            self.proc.wait(timeout=10)
            self._log.close()
            self.proc = None


def wait_all(fronts, done, what, since):
    """Seconds from `since` until done(front) holds for every front (each polled in turn)."""
    pending = list(fronts)
    took = {}
    deadline = since + CHANGE_TIMEOUT
    while pending:
        for front in list(pending):
            if done(front):
                took[front.name] = time.monotonic() - since
                pending.remove(front)
        if pending and time.monotonic() >= deadline:
            raise BenchError(f"{what}: {[f.name for f in pending]} not after {CHANGE_TIMEOUT}s")
    return max(took.values())


def revocations(fronts, args, rounds):
    gw = Gateway(ETCD_URL)
    times = []
    for i in range(rounds):
        domain = domain_name((i * 7) % args.nodes, i % args.domains_per_node)
        key, _ = key_entry(domain)
        since = time.monotonic()
        revision = int(gw.post("/v3/kv/deleterange", {"key": b64(key)})["header"]["revision"])
        times.append(wait_all(fronts, lambda f: f.metrics().get("xcg_etcd_key_map_revision", 0) >= revision,
                              "revocation", since))
    gw.close()
    return times


def handovers(fronts, args, rounds):
    gw = Gateway(ETCD_URL)
    times = []
    for i in range(rounds):
        n = (i * 13) % args.nodes
        domain, target = domain_name(n, i % args.domains_per_node), node_name((n + 1) % args.nodes)
        routed = re.compile(rf"^  {target} .*\b{re.escape(domain)}\b", re.MULTILINE)
        since = time.monotonic()
        gw.txn_puts([(f"{PREFIX}domains/{domain}", target, None)])
        times.append(wait_all(fronts, lambda f: routed.search(f.ctl("cluster")) is not None, "handover", since))
    gw.close()
    return times


def ctl_cluster_seconds(front):
    began = time.monotonic()
    front.ctl("cluster")
    return time.monotonic() - began


def whole_range(gw, prefix):
    """Seconds and bytes of one unlimited range of `prefix`: what a front asked for before it read
    in pages."""
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    before, began = gw.bytes, time.monotonic()
    gw.post("/v3/kv/range", {"key": b64(prefix), "range_end": b64(end)})
    return {"s": time.monotonic() - began, "bytes": gw.bytes - before}


def count(gw, prefix):
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return int(gw.post("/v3/kv/range", {"key": b64(prefix), "range_end": b64(end), "count_only": True})
               .get("count", 0))


def db_size(gw):
    return int(gw.post("/v3/maintenance/status", {})["dbSize"])


def cpu_over(pids, seconds):
    before = [procs.cpu_seconds(p, own_only=True) for p in pids]
    time.sleep(seconds)  # a measuring window, not a wait for a condition
    return [(procs.cpu_seconds(p, own_only=True) - b) / seconds for p, b in zip(pids, before)]


def mib(kb):
    return kb / 1024


def report(results):
    r = results
    print(f"fleet: {r['nodes']} nodes x {r['domains_per_node']} domains, {r['keys']} keys, "
          f"{r['fronts']} fronts, lease ttl {r['lease_ttl']} s")
    ld = r["load"]
    print(f"load: {ld['lease_grants_s']:.2f} s for the lease grants, {ld['puts_s']:.2f} s for {ld['puts']} puts "
          f"in {ld['txns']} txns ({ld['puts'] / ld['puts_s']:.0f} puts/s)")
    for label in ("empty", "full"):
        s = r["start"][label]
        print(f"front start-up, {label} registry: ready in {s['ready_s']:.3f} s; broker RSS "
              f"{mib(s['rss']):.1f} MiB, PSS {mib(s['pss']):.1f} MiB, CPU {s['cpu_s']:.2f} s")
    full, empty = r["start"]["full"], r["start"]["empty"]
    print(f"full/empty: start-up x{full['ready_s'] / empty['ready_s']:.1f}, RSS x{full['rss'] / empty['rss']:.2f}; "
          f"{(full['rss'] - empty['rss']) * 1024 / r['domains']:.0f} bytes of RSS per domain (with its key)")
    for what in ("revocation", "handover"):
        t = r[what]
        print(f"{what} to all {r['fronts']} fronts: median {statistics.median(t) * 1000:.0f} ms, "
              f"max {max(t) * 1000:.0f} ms over {len(t)}; a front's CPU per {what} "
              f"{r[what + '_cpu_s'] * 1000:.0f} ms (with the polling)")
    print(f"one `xcg ctl cluster` of the full registry: {r['ctl_cluster_s'] * 1000:.0f} ms")
    w = r["whole_range"]
    print(f"one unlimited range of keys/ (JSON gateway): {w['s']:.2f} s, {w['bytes'] / 2**20:.1f} MiB")
    print(f"load average at the end: {r['load_average']}")
    e = r["etcd"]
    print(f"etcd: RSS {mib(e['rss']):.0f} MiB, db {e['db_bytes'] / 2**20:.1f} MiB; keepalives "
          f"{e['keepalives_per_s']:.0f}/s ({e['keepalive_bytes_per_s'] / 1024:.0f} KiB/s over HTTP), "
          f"etcd CPU {e['cpu_keepalive'] * 100:.0f}% of a core with them, {e['cpu_idle'] * 100:.0f}% without; "
          f"late keepalive rounds {e['late_rounds']}, expired leases {e['expired']}; "
          f"{r['nodes_registered']} nodes registered at the end")
    print(json.dumps(results))


def measure(build, work, args):
    global ETCD_URL
    etcd = Etcd(work)
    etcd.start()
    ETCD_URL = etcd.url
    procs.started.add(etcd.proc.pid)
    results = {"nodes": args.nodes, "domains_per_node": args.domains_per_node,
               "domains": args.nodes * args.domains_per_node, "keys": args.nodes * args.domains_per_node,
               "fronts": args.fronts, "lease_ttl": args.lease_ttl, "start": {}}
    keepalive = None
    fronts = []
    try:
        gw = Gateway(ETCD_URL)
        empty = Front(build, work, "empty", "/empty/")
        empty.start()
        fronts.append(empty)
        ready = empty.wait_ready(0, 0)
        results["start"]["empty"] = {"ready_s": ready, **empty.memory(), "cpu_s": empty.cpu()}
        empty.stop()
        fronts.remove(empty)
        idle = cpu_over([etcd.proc.pid], 3)[0]
        leases, granted_s = grant_leases(args)
        keepalive = KeepAlive(leases)
        keepalive.start()
        results["load"] = {"lease_grants_s": granted_s, **load(args, leases)}
        print(f"loaded: {results['load']}", flush=True)
        results["whole_range"] = whole_range(gw, PREFIX + "keys/")
        requests_before, began = keepalive.requests, time.monotonic()
        busy = cpu_over([etcd.proc.pid], 10)[0]
        rate = (keepalive.requests - requests_before) / (time.monotonic() - began)
        for i in range(args.fronts):
            front = Front(build, work, f"front{i + 1}", PREFIX)
            front.start()
            fronts.append(front)
            ready = front.wait_ready(lambda: count(gw, PREFIX + "nodes/"), results["domains"])
            print(f"{front.name} ready in {ready:.2f} s", flush=True)
            if i == 0:
                results["start"]["full"] = {"ready_s": ready, **front.memory(), "cpu_s": front.cpu()}
        cpu = [f.cpu() for f in fronts]
        results["revocation"] = revocations(fronts, args, args.rounds)
        results["revocation_cpu_s"] = max(f.cpu() - c for f, c in zip(fronts, cpu)) / args.rounds
        cpu = [f.cpu() for f in fronts]
        results["handover"] = handovers(fronts, args, args.rounds)
        results["handover_cpu_s"] = max(f.cpu() - c for f, c in zip(fronts, cpu)) / args.rounds
        results["ctl_cluster_s"] = ctl_cluster_seconds(fronts[0])
        results["load_average"] = procs.load_average()
        results["nodes_registered"] = count(gw, PREFIX + "nodes/")
        results["front_memory_after"] = [f.memory() for f in fronts]
        keepalive.stop()  # each thread adds its bytes as it ends
        per_request = keepalive.bytes / max(keepalive.requests, 1)
        results["etcd"] = {**procs.memory_kb(etcd.proc.pid), "db_bytes": db_size(gw), "cpu_idle": idle,
                           "cpu_keepalive": busy, "keepalives_per_s": rate,
                           "keepalive_bytes_per_s": rate * per_request, "late_rounds": keepalive.late_rounds,
                           "expired": keepalive.expired}
        keepalive = None
        gw.close()
    finally:
        if keepalive:
            keepalive.stop_flag.set()
        for front in fronts:
            front.stop()
        etcd.stop()
    report(results)


ETCD_URL = ""
ARGS = None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, required=True, help="a build with xcg")
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--domains-per-node", type=int, default=100)
    parser.add_argument("--fronts", type=int, default=3)
    parser.add_argument("--lease-ttl", type=int, default=30,
                        help="the simulated nodes' lease TTL (xcg's default is 5; see the docs for why 30)")
    parser.add_argument("--rounds", type=int, default=5, help="revocations and handovers measured")
    parser.add_argument("--quick", action="store_true", help="50 nodes x 20 domains, 2 fronts, 3 rounds")
    args = parser.parse_args()
    global ARGS
    ARGS = args
    if args.quick:
        args.nodes, args.domains_per_node, args.fronts, args.rounds = 50, 20, 2, 3
    if os.geteuid() != 0:
        sys.exit("registry_scale.py: run as root (a front's session processes run as `xcg`)")
    if not 2 <= args.nodes <= 20000 or not 1 <= args.domains_per_node <= 1000 or not 1 <= args.fronts <= 5:
        sys.exit("registry_scale.py: --nodes 2..20000, --domains-per-node 1..1000, --fronts 1..5")
    ensure_system_user(XCG_SESSION_USER, "/usr/sbin/nologin", "xcg session processes")
    procs.become_subreaper()
    work = Path(tempfile.mkdtemp(prefix="xcg-registry-scale-"))
    os.chmod(work, 0o755)
    measure(args.build.resolve(), work, args)
    shutil.rmtree(work)  # kept when the run fails: the logs are there


if __name__ == "__main__":
    main()
