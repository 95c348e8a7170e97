"""Turns both sides' measurements into figures, ratios and targets; prints the table, writes
results.json and the data for the chart."""

import json
import subprocess
from pathlib import Path


def _get(d, *path):
    for key in path:
        if not isinstance(d, dict) or key not in d or d[key] is None:
            return None
        d = d[key]
    return d


def max_clean_step(steps):
    """The largest step every session of which attached and got its trickle without error."""
    best = 0
    for row in steps or []:
        if row["errors"] == 0 and row["attached"] == row["sessions"]:
            best = max(best, row["sessions"])
    return best


# (key, label, short label for the chart, unit, path into a side's results, target, direction)
#   direction "le": the ratio xcg/baseline must be <= target; "ge": >= target.
def figure_specs(prof):
    return [
        ("login_p50", "login → console answers, median", "login p50", "ms", ("latency", "attached_ms", "p50"), 0.1, "le"),
        ("login_p95", "login → console answers, p95", "login p95", "ms", ("latency", "attached_ms", "p95"), 0.1, "le"),
        ("first_byte_p50", "login → first console byte, median", "1st byte p50", "ms",
         ("latency", "first_byte_ms", "p50"), 0.1, "le"),
        ("first_byte_p95", "login → first console byte, p95", "1st byte p95", "ms",
         ("latency", "first_byte_ms", "p95"), 0.1, "le"),
        ("echo_p50", "keystroke echo, median", "echo p50", "ms", ("echo", "rtt_ms", "p50"), 1.0, "le"),
        ("echo_p99", "keystroke echo, p99", "echo p99", "ms", ("echo", "rtt_ms", "p99"), 1.0, "le"),
        ("throughput", "throughput guest → client", "MB/s (↑)", "MB/s", ("throughput", "mb_per_s"), 1.0, "ge"),
        ("throughput_cpu", "server CPU per MB transferred", "CPU/MB", "ms",
         ("throughput", "server_cpu_ms_per_mb"), None, "le"),
        ("memory", f"memory per idle session at {prof.memory_sessions} (PSS)", "memory/session", "KiB",
         ("memory", "per_session_pss_kb"), 0.4, "le"),
        ("logins", f"logins/s, {prof.rate_seconds:g} s, concurrency {prof.rate_concurrency}", "logins/s (↑)", "/s",
         ("rate", "logins_per_s"), 4.0, "ge"),
        ("server_cpu", "server CPU per login", "CPU/login", "ms", ("rate", "server_cpu_ms_per_login"), 0.2, "le"),
    ]


def compute(results, prof):
    figures = []
    for key, label, short, unit, path, target, direction in figure_specs(prof):
        standin = key in PTY_KEYS and bool(results.get("pty_rounds"))  # its target is the pty row's
        if standin:
            label, target = f"{label} (stand-in)", None
        x, b = _get(results["xcg"], *path), _get(results["openssh"], *path)
        ratio = x / b if x is not None and b not in (None, 0) else None
        met = None
        if ratio is not None and target is not None:
            met = ratio <= target if direction == "le" else ratio >= target
        fig = {"key": key, "label": label, "short": short, "unit": unit, "xcg": x, "openssh": b,
               "ratio": ratio, "target": target, "direction": direction, "met": met}
        if results.get("before"):
            xb = _get(results["before"], *path)
            fig["before"] = xb
            fig["ratio_before"] = xb / b if xb is not None and b not in (None, 0) else None
        figures.append(fig)
    # Conditions that are not ratios.
    x_fail = _get(results["xcg"], "rate", "failed")
    b_fail = _get(results["openssh"], "rate", "failed")
    figures.append({"key": "login_failures", "label": "failed logins during logins/s", "unit": "",
                    "xcg": x_fail, "openssh": b_fail, "ratio": None, "target": 0, "direction": "eq",
                    "met": None if x_fail is None else x_fail == 0})
    x_skip = _get(results["xcg"], "throughput", "skipped_bytes")
    figures.append({"key": "throughput_skipped", "label": "bytes skipped during throughput", "unit": "B",
                    "xcg": x_skip, "openssh": _get(results["openssh"], "throughput", "skipped_bytes"),
                    "ratio": None, "target": None, "direction": "eq", "met": None})
    for f in figures[-2:]:
        if results.get("before"):
            f["before"] = _get(results["before"], *({"login_failures": ("rate", "failed"),
                                                     "throughput_skipped": ("throughput", "skipped_bytes")}[f["key"]]))
    x_max = max_clean_step(_get(results["xcg"], "steps"))
    b_max = max_clean_step(_get(results["openssh"], "steps"))
    figures.append({"key": "max_sessions", "label": "concurrent sessions, all without error", "unit": "",
                    "xcg": x_max, "openssh": b_max, "ratio": x_max / b_max if b_max else None,
                    "target": prof.max_sessions, "direction": "abs",
                    "met": x_max >= prof.max_sessions})
    if results.get("before"):
        figures[-1]["before"] = max_clean_step(_get(results["before"], "steps"))
    return figures


def _median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


# The figures measured in both topologies; their targets apply to the guest's-pty one.
PTY_KEYS = ("echo_p50", "echo_p99", "throughput", "throughput_cpu")


def pty_figures(results, figures, prof):
    """Echo and throughput in both topologies: through the stand-in console client (the main
    figures) and with both sides on the guest's pty (medians over the alternated rounds)."""
    rounds = results.get("pty_rounds") or []
    rows = []
    for f in figures:
        if f["key"] not in PTY_KEYS:
            continue
        _, _, _, _, path, target, direction = next(spec for spec in figure_specs(prof) if spec[0] == f["key"])
        per_round = [(_get(r.get("xcg_pty"), *path), _get(r.get("openssh"), *path)) for r in rounds]
        x, b = _median(p[0] for p in per_round), _median(p[1] for p in per_round)
        ratio = x / b if x is not None and b else None
        met = None
        if ratio is not None and target is not None:
            met = ratio <= target if direction == "le" else ratio >= target
        rows.append({"key": f["key"], "label": f["label"].removesuffix(" (stand-in)"), "short": f["short"] + " (pty)", "unit": f["unit"],
                     "standin_xcg": f["xcg"], "standin_openssh": f["openssh"], "standin_ratio": f["ratio"],
                     "xcg": x, "openssh": b, "ratio": ratio, "target": target, "direction": direction,
                     "met": met, "rounds": [{"xcg": a, "openssh": c, "ratio": a / c if a is not None and c else None}
                                            for a, c in per_round]})
    return rows


def pty_chart_rows(rows):
    """The guest's-pty ratios as rows for the ratio chart."""
    return [{"key": r["key"], "short": r["short"], "ratio": r["ratio"], "target": r["target"]} for r in rows]


WEB_ECHO_TARGET = 1.2  # web viewer / SSH viewer, same gateway, same domain


def web_figures(results, prof):
    """The browser console (xcg only): its echo against xcg's SSH echo measured just before it, the
    viewers open at once, and memory per web session beside xcg's per SSH session."""
    x = results.get("xcg") or {}
    rows = []
    for key, label, pct in (("web_echo_p50", "keystroke echo, median", "p50"),
                            ("web_echo_p99", "keystroke echo, p99", "p99")):
        w, s = _get(x, "web_echo", "rtt_ms", pct), _get(x, "web_echo", "ssh", "rtt_ms", pct)
        if _get(x, "web_echo", "lost") or _get(x, "web_echo", "ssh", "lost"):
            w = s = None  # lost keystrokes: no percentile of the rest stands for the pair
        ratio = w / s if w is not None and s else None
        rows.append({"key": key, "label": label, "unit": "ms", "web": w, "ssh": s, "ratio": ratio,
                     "target": WEB_ECHO_TARGET, "met": None if ratio is None else ratio <= WEB_ECHO_TARGET})
    errors = _get(x, "web_viewers", "errors")
    rows.append({"key": "web_viewers", "label": f"{prof.web_viewers} web viewers at once: errors", "unit": "",
                 "web": errors, "ssh": None, "ratio": None, "target": 0,
                 "met": None if errors is None else errors == 0})
    rows.append({"key": "web_memory", "label": f"memory/session, web at {prof.web_viewers}, SSH at {prof.memory_sessions}", "unit": "KiB PSS",
                 "web": _get(x, "web_viewers", "per_session_pss_kb"), "ssh": _get(x, "memory", "per_session_pss_kb"),
                 "ratio": None, "target": None, "met": None})
    rows.append({"key": "web_process_pss", "label": "PSS per xcg-web process", "unit": "KiB",
                 "web": _get(x, "web_viewers", "xcg_web_pss_kb_per_process"), "ssh": None,
                 "ratio": None, "target": None, "met": None})
    return rows


def _web_table(rows):
    lines = ["", f"{'browser console (xcg only)':<46} {'web':>10} {'SSH':>10} {'web/SSH':>7}  {'target':<11} met"]
    for f in rows:
        unit = f" ({f['unit']})" if f["unit"] else ""
        ratio = f"{f['ratio']:.2f}" if f["ratio"] is not None else "-"
        target = "" if f["target"] is None else (f"≤ {f['target']:g}×" if f["ratio"] is not None or f["unit"]
                                                 else f"= {f['target']}")
        met = {True: "yes", False: "NO", None: ""}[f["met"]]
        lines.append(f"{(f['label'] + unit):<46} {_fmt(f['web'], f['unit']):>10} {_fmt(f['ssh'], f['unit']):>10} "
                     f"{ratio:>7}  {target:<11} {met}")
    return lines


def _fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, int) or unit in ("", "B"):
        return f"{v:,.0f}" if isinstance(v, (int, float)) else str(v)
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _target_text(f):
    t = f["target"]
    if t is None:
        return ""
    return {"le": f"≤ {t:g}×", "ge": f"≥ {t:g}×", "eq": f"= {t}", "abs": f"{t} (xcg)"}[f["direction"]]


def _pty_table(rows):
    lines = ["", "echo and throughput in both topologies; the targets apply to the guest's pty:",
             f"{'':<38} {'stand-in: xcg':>13} {'OpenSSH':>8} {'ratio':>6} | {'guest pty: xcg':>14} {'OpenSSH':>8} "
             f"{'ratio':>6}  {'target':<8} met  rounds' ratios"]
    ratio = lambda r: f"{r:.2f}" if r is not None else "-"
    for f in rows:
        met = {True: "yes", False: "NO", None: ""}[f["met"]]
        per_round = " ".join(ratio(r["ratio"]) for r in f["rounds"])
        lines.append(f"{(f['label'] + ' (' + f['unit'] + ')'):<38} {_fmt(f['standin_xcg'], f['unit']):>13} "
                     f"{_fmt(f['standin_openssh'], f['unit']):>8} {ratio(f['standin_ratio']):>6} | "
                     f"{_fmt(f['xcg'], f['unit']):>14} {_fmt(f['openssh'], f['unit']):>8} {ratio(f['ratio']):>6}  "
                     f"{_target_text(f):<8} {met:<4} {per_round}")
    return lines


def table(figures, results, pty=(), web=()):
    lines = []
    before = bool(results.get("before"))
    extra = f" {'before':>10}" if before else ""
    head = f"{'figure':<46}{extra} {'xcg':>10} {'OpenSSH':>10} {'ratio':>7}  {'target':<11} met"
    lines += [head, "-" * len(head)]
    for f in figures:
        unit = f" ({f['unit']})" if f["unit"] else ""
        ratio = f"{f['ratio']:.2f}" if f["ratio"] is not None else "-"
        met = {True: "yes", False: "NO", None: ""}[f["met"]]
        cell = f" {_fmt(f.get('before'), f['unit']):>10}" if before else ""
        lines.append(f"{(f['label'] + unit):<46}{cell} {_fmt(f['xcg'], f['unit']):>10} "
                     f"{_fmt(f['openssh'], f['unit']):>10} {ratio:>7}  {_target_text(f):<11} {met}")
    if pty:
        lines += _pty_table(pty)
    if web:
        lines += _web_table(web)
    lines.append("")
    head = (f"{'sessions':>8} | {'xcg errors':>10} {'broker PSS':>11} {'total PSS':>10} {'echo p50/p99 ms':>16} |"
            f" {'ssh errors':>10} {'sshd PSS':>9} {'total PSS':>10} {'echo p50/p99 ms':>16}")
    lines += [head, "-" * len(head)]
    steps = {side: {r["sessions"]: r for r in (_get(results[side], "steps") or [])} for side in ("xcg", "openssh")}
    for n in sorted(set(steps["xcg"]) | set(steps["openssh"])):
        cells = []
        for side in ("xcg", "openssh"):
            r = steps[side].get(n)
            if r is None:
                cells.append(f"{'-':>10} {'-':>11} {'-':>10} {'-':>16}" if side == "xcg" else f"{'-':>10} {'-':>9} {'-':>10} {'-':>16}")
                continue
            mb = lambda kb: f"{kb / 1024:.1f} MiB" if kb is not None else "-"
            echo = f"{r['rtt_ms']['p50']:.2f}/{r['rtt_ms']['p99']:.2f}"
            width = 11 if side == "xcg" else 9
            cells.append(f"{r['errors']:>10} {mb(r['broker_pss_kb']):>{width}} {mb(r['total_pss_kb']):>10} {echo:>16}")
        lines.append(f"{n:>8} | {cells[0]} | {cells[1]}")
    return "\n".join(lines)


def write_chart_data(figures, results, directory):
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "ratios.dat", "w") as f:
        f.write("# label ratio target\n")
        for fig in figures:
            if fig["ratio"] is None or fig["key"] in ("max_sessions", "first_byte_p95"):
                continue
            label = fig["short"]
            target = fig["target"] if fig["target"] is not None else "NaN"
            f.write(f'"{label}" {fig["ratio"]:.4f} {target}\n')
    with open(directory / "steps.dat", "w") as f:
        f.write("# sessions xcg_total_mib xcg_broker_mib xcg_p50 xcg_p99 ssh_total_mib ssh_listener_mib ssh_p50 ssh_p99\n")
        steps = {side: {r["sessions"]: r for r in (_get(results[side], "steps") or [])} for side in ("xcg", "openssh")}
        for n in sorted(set(steps["xcg"]) | set(steps["openssh"])):
            cols = [str(n)]
            for side in ("xcg", "openssh"):
                r = steps[side].get(n)
                if r is None:
                    cols += ["NaN"] * 4
                    continue
                cols += [f"{r['total_pss_kb'] / 1024:.2f}", f"{(r['broker_pss_kb'] or 0) / 1024:.2f}",
                         f"{r['rtt_ms']['p50']:.3f}", f"{r['rtt_ms']['p99']:.3f}"]
            f.write(" ".join(cols) + "\n")


def draw_chart(script, directory, png):
    result = subprocess.run(["gnuplot", "-e", f"datadir='{directory}'; out='{png}'", str(script)],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        return f"gnuplot failed: {result.stderr.strip()}"
    return None


def write_json(path, data):
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
