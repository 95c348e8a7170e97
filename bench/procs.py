"""Processes as /proc shows them: trees, memory (PSS), CPU time, and stopping what we started."""

import os
import signal
import time
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# Pids of the processes we started with subprocess.Popen: reaping orphans must leave their
# exit statuses to their Popen objects.
started = set()


@dataclass
class Proc:
    pid: int
    ppid: int
    comm: str
    uid: int
    cpu_ticks: int  # utime + stime + cutime + cstime: itself and its reaped descendants
    state: str = ""


def _read_stat(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    close = stat.rindex(b")")
    comm = stat[stat.index(b"(") + 1:close].decode(errors="replace")
    fields = stat[close + 2:].split()
    # fields[0] is state (field 3 in proc(5)); utime is field 14.
    ppid = int(fields[1])
    ticks = sum(int(x) for x in fields[11:15])
    return ppid, comm, ticks, sum(int(x) for x in fields[11:13]), fields[0].decode()


def table():
    """Every process we can read, by pid."""
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            ppid, comm, ticks, _, state = _read_stat(pid)
            uid = os.stat(f"/proc/{pid}").st_uid
        except (OSError, ValueError, IndexError):
            continue
        procs[pid] = Proc(pid, ppid, comm, uid, ticks, state)
    return procs


def descendants(root, procs=None):
    """Pids of every process below `root` (not root itself)."""
    procs = procs if procs is not None else table()
    children = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def memory_kb(pid):
    """{'pss': kB, 'rss': kB, 'uss': kB} from smaps_rollup, or None if the process is gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                    values[name] = int(rest.split()[0])
    except (OSError, ValueError):
        return None
    if "Pss" not in values:
        return None
    return {"pss": values["Pss"], "rss": values.get("Rss", 0),
            "uss": values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)}


def cpu_seconds(pid, own_only=False):
    """CPU seconds of `pid` and its reaped descendants (or of `pid` alone)."""
    try:
        return _read_stat(pid)[3 if own_only else 2] / CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return 0.0


def machine_cpu():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])
    return total - idle, total


def load_average():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:][:1] != b"Z"
    except (OSError, ValueError, IndexError):
        return False


def kill_pids(pids, sig=signal.SIGKILL):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def wait_gone(pids, timeout):
    """Waits (bounded) until none of `pids` is alive; returns those still alive."""
    deadline = time.monotonic() + timeout
    while True:
        reap_orphans()
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def reap_orphans():
    """As a child subreaper we inherit orphans (an sshd connection's user process often
    outlives its monitor); reaps those that have exited and returns the CPU seconds they (and
    the descendants they reaped) used, which their parents' accounting no longer shows."""
    me = os.getpid()
    cpu = 0.0
    for p in table().values():
        if p.ppid != me or p.state != "Z" or p.pid in started:
            continue
        try:
            pid, _, usage = os.wait4(p.pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if pid:
            cpu += usage.ru_utime + usage.ru_stime
    return cpu


def become_subreaper():
    """PR_SET_CHILD_SUBREAPER: orphans of our servers stay below us, so cleanup finds them."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def stop_tree(root, term_timeout=15.0):
    """SIGTERM `root`, then SIGKILL whatever of its tree is left. The tree is collected first,
    so that nothing escapes by being re-parented."""
    procs = table()
    tree = descendants(root, procs)
    kill_pids([root], signal.SIGTERM)
    left = wait_gone([root], term_timeout)
    kill_pids(left + tree)
    return wait_gone(left + tree, 10)
