"""The browser console's figures, on the xcg side only (OpenSSH has no counterpart): keystroke
echo through a WebSocket viewer beside the SSH viewer's, many web viewers at once, and the
memory per web session (docs/performance.md, "Browser console")."""

import re
import subprocess
import time

import measure

LINK = re.compile(r"https://\S+/#\S+")
LINK_TTL_S = 600


def mint_link(server, domain):
    """A one-time link from `xcg ctl weblink`, as an operator makes one."""
    result = subprocess.run([str(server.binary), "ctl", "--socket", str(server.control_socket), "weblink",
                             domain, "--ttl", str(LINK_TTL_S)],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    match = LINK.search(result.stdout)
    if result.returncode != 0 or not match:
        raise RuntimeError(f"xcg ctl weblink {domain} failed ({result.returncode}): {result.stderr.strip()}")
    return match.group(0)


def measure_web_echo(lg, server, prof):
    """The SSH viewer's echo and then the web viewer's, back to back on the same domain
    (vm0001) with the same keystrokes: the pair is compared, so that load that comes and goes
    on the machine between figures weighs on both alike."""
    link = mint_link(server, server.domains[0][0])
    ssh = measure.measure_echo(lg, server, prof)
    web = lg.run("webecho", server, 1, 1, timeout=prof.keystrokes * 6 + 60, stdin=link + "\n",
                 keystrokes=prof.keystrokes)
    return {**web, "ssh": ssh}


def web_pss(mem):
    entry = mem["by_command"].get("xcg-web", {"processes": 0, "pss_kb": 0})
    return entry["processes"], entry["pss_kb"]


def measure_web_viewers(lg, server, prof):
    """prof.web_viewers viewers, one per domain, each with its own link, logged in and shown the
    replay, all open at once; then the memory of the xcg-web processes."""
    n = prof.web_viewers
    links = [mint_link(server, name) for name, _ in server.domains[:n]]
    time.sleep(prof.settle_s)  # the previous figure's sessions have gone
    before = measure.server_memory(server)
    hold = lg.web_hold(server)
    started = time.monotonic()
    try:
        hold.write_lines(links)
        opened = hold.command("report", timeout=n * 2 + 60)
        seconds = time.monotonic() - started
        time.sleep(prof.settle_s)
        after = measure.server_memory(server)
    finally:
        hold.close()
    attached = opened["attached"]
    processes, pss = web_pss(after)
    per = (lambda k: (after[k] - before[k]) / attached if attached else None)
    return {"viewers": n, "attached": attached, "failed": opened["failed"], "errors": n - attached,
            "failures": opened["failures"], "login_ms": opened["login_ms"], "open_seconds": seconds,
            "xcg_web_processes": processes, "xcg_web_pss_kb": pss,
            "xcg_web_pss_kb_per_process": pss / processes if processes else None,
            "per_session_pss_kb": per("total_pss_kb"), "per_session_rss_kb": per("total_rss_kb"),
            "before": before, "after": after}


FIGURES = [("web_echo", measure_web_echo), ("web_viewers", measure_web_viewers)]
