"""The six figures of docs/performance.md, measured the same way against either server."""

import time
from dataclasses import dataclass, field

import procs


@dataclass
class Profile:
    name: str
    max_sessions: int        # the last step of the concurrency ramp; domains = this + 1
    latency_logins: int
    latency_domains: int     # latency logins cycle over vm0001..
    keystrokes: int
    seq: int                 # throughput: the guest prints `seq N`
    memory_sessions: int
    rate_seconds: float
    rate_concurrency: int
    steps: list = field(default_factory=list)
    trickle_ms: int = 5000
    trickle_period_ms: int = 1000
    settle_s: float = 2.0
    hold_concurrency: int = 16
    web_viewers: int = 50    # browser console viewers open at once (xcg only)

    @property
    def domains(self):
        return self.max_sessions + 1

    @property
    def throughput_domain(self):
        # Its own domain: `seq` output fills that console's scrollback, and xcg replays the
        # scrollback on attach, which would weigh on later logins elsewhere.
        return self.domains


FULL = Profile("full", max_sessions=1000, latency_logins=100, latency_domains=50, keystrokes=1000,
               seq=10_000_000, memory_sessions=100, rate_seconds=30, rate_concurrency=16,
               steps=[10, 50, 100, 250, 500, 1000], web_viewers=500)
QUICK = Profile("quick", max_sessions=100, latency_logins=20, latency_domains=20, keystrokes=200,
                seq=1_000_000, memory_sessions=100, rate_seconds=5, rate_concurrency=16,
                steps=[10, 50, 100], trickle_ms=2000, settle_s=1.0)


def server_memory(server):
    """PSS/RSS of the server's processes, without the guest-side plumbing."""
    table = procs.table()
    main = server.main_pid()
    plumbing = server.plumbing(table)
    pids = [main] + [p for p in procs.descendants(main, table) if p not in plumbing]
    total = {"pss": 0, "rss": 0, "uss": 0}
    by_comm = {}
    counted = 0
    main_mem = None
    for pid in pids:
        mem = procs.memory_kb(pid)
        if mem is None:
            continue  # exited meanwhile
        counted += 1
        if pid == main:
            main_mem = mem
        for k in total:
            total[k] += mem[k]
        comm = table[pid].comm
        entry = by_comm.setdefault(comm, {"processes": 0, "pss_kb": 0})
        entry["processes"] += 1
        entry["pss_kb"] += mem["pss"]
    return {"processes": counted, "total_pss_kb": total["pss"], "total_rss_kb": total["rss"],
            "total_uss_kb": total["uss"], "main_pss_kb": main_mem["pss"] if main_mem else None,
            "main_rss_kb": main_mem["rss"] if main_mem else None, "by_command": by_comm}


def measure_latency(lg, server, prof):
    return lg.run("latency", server, 1, prof.latency_domains, timeout=prof.latency_logins * 25 + 30,
                  logins=prof.latency_logins)


def measure_echo(lg, server, prof):
    return lg.run("echo", server, 1, 1, timeout=prof.keystrokes * 6 + 60, keystrokes=prof.keystrokes)


def server_cpu_since(server, before):
    """CPU seconds the server used since `before` (from server_cpu_mark), counting the
    connection processes that have ended: those reaped by the server's main process, and the
    orphans that we, the subreaper, reaped."""
    time.sleep(1)  # the connection's processes are exiting
    orphans = procs.reap_orphans()
    return procs.cpu_seconds(server.main_pid()) - before + orphans


def server_cpu_mark(server):
    procs.reap_orphans()  # earlier figures' leftovers do not count here
    return procs.cpu_seconds(server.main_pid())


def measure_throughput(lg, server, prof):
    cpu_before = server_cpu_mark(server)
    result = lg.run("throughput", server, prof.throughput_domain, 1, timeout=240, seq=prof.seq)
    # Whatever else the machine was doing, this is what the transfer cost the server.
    cpu = server_cpu_since(server, cpu_before)
    result["server_cpu_s"] = cpu
    result["server_cpu_ms_per_mb"] = 1000 * cpu / (result["bytes"] / 1e6) if result.get("bytes") else None
    return result


def measure_memory(lg, server, prof):
    n = prof.memory_sessions
    time.sleep(prof.settle_s)  # the previous figure's logins have gone
    before = server_memory(server)
    hold = lg.hold(server, 1, n, prof.hold_concurrency)
    try:
        opened = hold.open(n, timeout=n * 2 + 60)
        time.sleep(prof.settle_s)
        after = server_memory(server)
    finally:
        hold.close()
    attached = opened["attached"]
    per = (lambda k: (after[k] - before[k]) / attached if attached else None)
    return {"sessions": n, "attached": attached, "failed": opened["failed"],
            "per_session_pss_kb": per("total_pss_kb"), "per_session_rss_kb": per("total_rss_kb"),
            "per_session_uss_kb": per("total_uss_kb"),
            "processes_per_session": per("processes"), "before": before, "after": after}


def measure_rate(lg, server, prof):
    time.sleep(prof.settle_s)
    cpu_before = server_cpu_mark(server)
    main_before = procs.cpu_seconds(server.main_pid(), own_only=True)
    busy0, total0 = procs.machine_cpu()
    result = lg.run("rate", server, 1, prof.domains, timeout=prof.rate_seconds + 90,
                    duration=prof.rate_seconds, concurrency=prof.rate_concurrency)
    busy1, total1 = procs.machine_cpu()
    server_cpu = server_cpu_since(server, cpu_before)
    main_cpu = procs.cpu_seconds(server.main_pid(), own_only=True) - main_before
    result["machine_busy_percent"] = 100.0 * (busy1 - busy0) / max(1, total1 - total0)
    result["server_cpu_s"] = server_cpu
    logins = result["ok"] + result["late"]
    result["server_cpu_ms_per_login"] = 1000 * server_cpu / logins if logins else None
    # Of which the broker (or the sshd listener) itself; the rest is per-connection processes.
    result["main_cpu_ms_per_login"] = 1000 * main_cpu / logins if logins else None
    result["client_cpu_ms_per_login"] = 1000 * result["client_cpu_s"] / logins if logins else None
    return result


def measure_steps(lg, server, prof):
    """Ramps attached sessions up; at each step every session gets a trickle of output."""
    rows = []
    time.sleep(prof.settle_s)
    hold = lg.hold(server, 1, prof.max_sessions, prof.hold_concurrency)
    try:
        for n in prof.steps:
            opened = hold.open(n, timeout=n * 2 + 120)
            trickled = hold.trickle(prof.trickle_ms, prof.trickle_period_ms)
            mem = server_memory(server)
            errors = opened["failed"] + opened["dead"] + trickled["lost"] + trickled["dead"]
            rows.append({"sessions": n, "attached": trickled["sessions"], "errors": errors,
                         "failed_logins": opened["failed"], "dead_sessions": opened["dead"] + trickled["dead"],
                         "lost_echoes": trickled["lost"], "failures": trickled["failures"],
                         "open_seconds": opened["seconds"], "keystrokes": trickled["keystrokes"],
                         "rtt_ms": trickled["rtt_ms"],
                         "broker_pss_kb": mem["main_pss_kb"], "broker_rss_kb": mem["main_rss_kb"],
                         "total_pss_kb": mem["total_pss_kb"], "processes": mem["processes"]})
            if trickled["sessions"] < n // 2:
                break  # far past what works here; higher steps would only add time
    finally:
        hold.close()
    return rows


FIGURES = [
    ("latency", measure_latency),
    ("echo", measure_echo),
    ("throughput", measure_throughput),
    ("memory", measure_memory),
    ("rate", measure_rate),
    ("steps", measure_steps),
]


def measure(lg, server, prof, say, figures=FIGURES):
    results = {"load_average_before": procs.load_average()}
    for name, fn in figures:
        say(f"{server.label}: {name}")
        started = time.monotonic()
        try:
            results[name] = fn(lg, server, prof)
        except Exception as e:  # one broken figure must not lose the others
            results[name] = {"error": f"{type(e).__name__}: {e}"}
            say(f"{server.label}: {name} FAILED: {e}")
        results.setdefault("seconds", {})[name] = round(time.monotonic() - started, 1)
    results["load_average_after"] = procs.load_average()
    return results
