"""Where the time goes, process by process: a system-wide `perf record` of the scheduler's
switches and of every system call's entry while one measurement runs, read back into each
process's time on a CPU, times it went to sleep, and system calls by name. System-wide, so that
processes that live only for the measurement (a session, sshd's per-connection process) count
too. The tracing itself slows every system call a little, on both sides alike."""

import collections
import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path

UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
LINE = re.compile(r"^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$")
SWITCH = re.compile(r"prev_comm=(.*) prev_pid=(\d+) prev_prio=\S+ prev_state=(\S+) ==> "
                    r"next_comm=(.*) next_pid=(\d+) next_prio=\S+")


def syscall_names():
    names = {}
    for line in UNISTD.read_text().splitlines():
        m = re.match(r"#define __NR_(\w+)\s+(\d+)", line)
        if m:
            names[int(m.group(2))] = m.group(1)
    return names


def group(comm):
    """kworker/u4:1 and kworker/1:2 are one group: the kernel's workers."""
    return "kworker" if comm.startswith("kworker/") else comm


class Usage:
    def __init__(self):
        self.cpu_s = 0.0
        self.sleeps = 0  # switched out because it waited (state S or D), not preempted
        self.syscalls = collections.Counter()


class Trace:
    """with Trace() as t: <measurement>; then t.usage(): {process name: Usage}. label(comm, tid)
    names the row a thread counts in (default: its command, the kernel's workers as one)."""

    def __init__(self, label=None):
        self.label = label or (lambda comm, tid: group(comm))
        self.dir = tempfile.TemporaryDirectory(prefix="xcg-sched-trace-")
        self.data = Path(self.dir.name) / "perf.data"

    def __enter__(self):
        ctl, ack = Path(self.dir.name) / "ctl", Path(self.dir.name) / "ack"
        os.mkfifo(ctl)
        os.mkfifo(ack)
        # Starts with the events off (-D -1), so that what perf does to start is not traced.
        self.proc = subprocess.Popen(
            ["perf", "record", "-q", "-a", "-D", "-1", f"--control=fifo:{ctl},{ack}", "-m", "4M",
             # perf's own writes of what it records would be recorded, and so on without end.
             "-e", "raw_syscalls:sys_enter", "--filter", 'comm != "perf"',
             "-e", "sched:sched_switch", "-o", str(self.data)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ctl, self.ack = open(ctl, "w"), open(ack, "r")
        self.command("enable")
        return self

    def command(self, word):
        self.ctl.write(word + "\n")
        self.ctl.flush()
        if self.ack.readline().strip("\0\n") != "ack":  # perf sends "ack\n" and its C string's NUL
            raise RuntimeError(f"perf did not acknowledge '{word}'")

    def __exit__(self, *exc):
        self.command("disable")
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=120)
        self.ctl.close()
        self.ack.close()

    def usage(self):
        try:
            return read_usage(self.data, self.label)
        finally:
            self.dir.cleanup()


def read_usage(data, label):
    names, usage, on_cpu = syscall_names(), collections.defaultdict(Usage), {}
    script = subprocess.run(["perf", "script", "-i", str(data), "-F", "comm,tid,cpu,time,event,trace"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True)
    for line in script.stdout.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        comm, tid, cpu, when, event, rest = (m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(4)),
                                             m.group(5), m.group(6))
        if event == "raw_syscalls:sys_enter":
            nr = int(rest.split()[1])
            usage[label(comm, tid)].syscalls[names.get(nr, str(nr))] += 1
        elif event == "sched:sched_switch":
            switched(usage, on_cpu, cpu, when, SWITCH.match(rest), label)
    return usage


def switched(usage, on_cpu, cpu, when, m, label):
    if not m:
        return
    prev, prev_state, next_comm = label(m.group(1), int(m.group(2))), m.group(3), m.group(4)
    if cpu in on_cpu:
        usage[prev].cpu_s += when - on_cpu[cpu]
    if prev_state[0] in "SD":
        usage[prev].sleeps += 1
    on_cpu[cpu] = when
    if next_comm.startswith("swapper"):
        del on_cpu[cpu]


def table(usage, per, unit, top=8, calls=4):
    """Lines of the busiest processes: CPU ms, sleeps and system calls per `per` `unit`."""
    ranked = sorted(usage.items(), key=lambda kv: -kv[1].cpu_s)[:top]
    lines = []
    for comm, u in ranked:
        if comm.startswith("swapper") or comm == "perf":
            continue
        busiest = ", ".join(f"{name} {n / per:.1f}" for name, n in u.syscalls.most_common(calls))
        lines.append(f"  {comm:<16} CPU {1e3 * u.cpu_s / per:7.3f} ms, sleeps {u.sleeps / per:7.1f}, "
                     f"syscalls {sum(u.syscalls.values()) / per:7.1f} per {unit} ({busiest})")
    return lines
