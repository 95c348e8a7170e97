"""Runs xcg-loadgen (the C++ SSH load generator) and reads its JSON lines."""

import json
import select
import subprocess
import time

import procs


class LoadGenError(Exception):
    pass


class LoadGen:
    def __init__(self, binary, keys_dir, log):
        self.binary = str(binary)
        self.keys = str(keys_dir)
        self.log = log  # stderr of every run goes here

    def argv(self, mode, server, first, count, **options):
        argv = [self.binary, mode, "--port", str(server.port), "--keys", self.keys,
                "--first", str(first), "--count", str(count)]
        if server.user:
            argv += ["--user", server.user]
        for name, value in options.items():
            argv += ["--" + name.replace("_", "-"), str(value)]
        return argv

    def run(self, mode, server, first, count, timeout, stdin=None, **options):
        """stdin: text for the mode's standard input (the web modes read links there)."""
        argv = self.argv(mode, server, first, count, **options)
        self.log.write(f"$ {' '.join(argv)}\n".encode())
        self.log.flush()
        try:
            result = subprocess.run(argv, input=stdin.encode() if stdin else None,
                                    stdin=None if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=self.log, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LoadGenError(f"xcg-loadgen {mode} did not finish within {timeout}s") from None
        lines = result.stdout.decode(errors="replace").strip().splitlines()
        if not lines:
            raise LoadGenError(f"xcg-loadgen {mode} exited with {result.returncode} and no result")
        return json.loads(lines[-1])

    def hold(self, server, first, count, concurrency):
        return Hold(self.argv("hold", server, first, count, concurrency=concurrency), self.log)

    def web_hold(self, server):
        """`xcg-loadgen webhold`: one web viewer per link written to it (Hold.write_lines)."""
        return Hold(self.argv("webhold", server, 1, 1), self.log)


class Hold:
    """An `xcg-loadgen hold` process: sessions that stay open across commands."""

    def __init__(self, argv, log):
        log.write(f"$ {' '.join(argv)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        procs.started.add(self.proc.pid)

    def write_lines(self, lines):
        self.proc.stdin.write("".join(line + "\n" for line in lines).encode())
        self.proc.stdin.flush()

    def command(self, line, timeout):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        buffered = b""
        while b"\n" not in buffered:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LoadGenError(f"xcg-loadgen hold: no answer to '{line}' within {timeout}s")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                continue
            chunk = self.proc.stdout.read1(4096)
            if not chunk:
                raise LoadGenError(f"xcg-loadgen hold exited ({self.proc.poll()}) during '{line}'")
            buffered += chunk
        return json.loads(buffered.split(b"\n", 1)[0])

    def open(self, n, timeout):
        return self.command(f"open {n}", timeout)

    def trickle(self, window_ms, period_ms):
        return self.command(f"trickle {window_ms} {period_ms}", window_ms / 1000 + 30)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)
