"""Everything SSH offers beyond the console and the commands is refused."""

import socket
import subprocess
import time

from conftest import describe, wait_for


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_still_serving(gw):
    assert gw.alive(), gw.read_log()
    result = gw.ssh("web1", "web1", "status")
    assert result.returncode == 0, describe(result)
    assert result.stdout.startswith("web1: running"), describe(result)


def test_local_forwarding_refused(gw):
    local_port = free_port()
    # The forward targets the gateway itself: if it worked we would read its SSH banner.
    argv = gw.ssh_argv("web1", "web1", [], extra=[
        "-N", "-o", "ExitOnForwardFailure=yes",
        "-L", f"127.0.0.1:{local_port}:127.0.0.1:{gw.port}"])
    client = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        def connected():
            if client.poll() is not None:
                raise AssertionError(f"ssh -L exited early: {client.returncode}, "
                                     f"{client.stderr.read()!r}")
            try:
                return socket.create_connection(("127.0.0.1", local_port), timeout=2)
            except OSError:
                return None

        conn = wait_for(connected, 15, f"ssh -L listening on {local_port}", 0.1)
        with conn:
            conn.settimeout(5)
            received = b""
            try:
                while True:
                    data = conn.recv(4096)
                    if not data:
                        break
                    received += data
            except socket.timeout:
                pass
            except ConnectionResetError:
                pass
        assert received == b"", f"data flowed through the forward: {received!r}"
    finally:
        client.terminate()
        try:
            client.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            client.kill()
            client.communicate(timeout=10)
    # ssh usually says "open failed: administratively prohibited" here; a server that
    # drops the request silently still passes, as long as no byte came through.
    assert_still_serving(gw)


def test_remote_forwarding_refused(gw):
    result = gw.ssh("web1", "web1", "status",
                    extra=["-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:22"])
    assert result.returncode != 0, describe(result)
    assert "remote port forwarding failed" in result.stderr, describe(result)
    assert_still_serving(gw)


def test_remote_forwarding_opens_no_port(gw):
    # Ask for a fixed port and check nothing listens there, whatever the client says.
    port = free_port()
    result = gw.ssh("web1", "web1", "status",
                    extra=["-o", "ExitOnForwardFailure=yes", "-R", f"{port}:127.0.0.1:22"])
    assert result.returncode != 0, describe(result)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        listening = True
    except OSError:
        listening = False
    assert not listening, f"something listens on {port} after ssh -R"
    assert_still_serving(gw)


def test_sftp_subsystem_refused(gw):
    started = time.monotonic()
    result = gw.ssh("web1", "web1", "sftp", extra=["-s"], timeout=15)
    assert result.returncode != 0, describe(result)
    assert time.monotonic() - started < 10
    assert_still_serving(gw)


def test_sftp_client_fails(gw, tmp_path):
    batch = tmp_path / "batch"
    batch.write_text("ls /\n")
    # sftp takes the ssh options, but spells the port -P and has no -T.
    options = [a for a in gw.ssh_argv("web1", "web1", [])[1:-1] if a != "-T"]
    argv = ["sftp", "-b", str(batch)] + options + ["web1@127.0.0.1"]
    argv[argv.index("-p")] = "-P"
    result = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                            stdin=subprocess.DEVNULL)
    assert result.returncode != 0, describe(result)
    assert_still_serving(gw)


def test_agent_and_x11_forwarding_do_not_break_the_command(gw):
    # Requests for agent/X11 forwarding are refused; the command itself still runs.
    result = gw.ssh("web1", "web1", "status", extra=["-A", "-X"])
    assert result.returncode == 0, describe(result)
    assert result.stdout.startswith("web1: running"), describe(result)


def test_env_does_not_change_command(gw):
    before = gw.domid()
    result = gw.ssh("web1", "web1", "status",
                    extra=["-o", "SetEnv=LD_PRELOAD=/tmp/x.so XCG_COMMAND=reboot"])
    assert result.returncode == 0, describe(result)
    assert gw.domid() == before
