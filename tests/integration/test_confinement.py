"""What faces the network is confined: a session process runs as the unprivileged run_as
user, chrooted to an empty directory, under seccomp with no_new_privs, holding only its TCP
connection and its IPC socket (plus the console socket while attached)."""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time

import pexpect

from conftest import (DETACH, ensure_user, Gateway, pid_alive, proc_status, require_root,
                      send_until, wait_for)

CHOICE = rb"Choice: "
SOCKET_LINK = re.compile(r"^socket:\[(\d+)\]$")
TCP_ESTABLISHED = "01"
CANARY = "XCG_TEST_CANARY"
BROKER_GROUPS = [0, 4]  # root, adm


def confined_gateway(make_gateway, chroot):
    # The broker gets supplementary groups and an environment variable that no session may
    # inherit.
    return make_gateway(extra={"run_as": "xcg", "chroot_dir": str(chroot)},
                        env={**os.environ, CANARY: "broker-environment"},
                        extra_groups=BROKER_GROUPS)


def the_session(gw):
    pids = wait_for(lambda: gw.connected_sessions(), 10, "an xcg-session child")
    assert len(pids) == 1, pids
    return pids[0]


def descriptors(pid):
    """fd number -> readlink of /proc/PID/fd/N."""
    links = {}
    for entry in os.listdir(f"/proc/{pid}/fd"):
        try:
            links[int(entry)] = os.readlink(f"/proc/{pid}/fd/{entry}")
        except FileNotFoundError:
            continue  # closed while we looked
    return links


def socket_inode(link):
    match = SOCKET_LINK.match(link)
    assert match, f"not a socket: {link}"
    return int(match.group(1))


def tcp_sockets():
    """inode -> (local port, remote port, state) of every TCP socket (IPv4 and IPv6)."""
    table = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
            table[inode] = (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16),
                            state)
    return table


def unix_sockets():
    with open("/proc/net/unix") as f:
        return {int(row.split()[6]) for row in f.read().splitlines()[1:]
                if len(row.split()) >= 7}


def unix_peers():
    """inode -> peer inode of every connected unix socket (from `ss`), or None without ss."""
    if shutil.which("ss") is None:
        return None
    out = subprocess.run(["ss", "-xaH"], capture_output=True, text=True, timeout=10,
                         check=True).stdout
    peers = {}
    for row in out.splitlines():
        fields = row.split()  # ... local-address local-inode peer-address peer-inode
        if len(fields) >= 4 and fields[-3].isdigit() and fields[-1].isdigit():
            peers[int(fields[-3])] = int(fields[-1])
    return peers


def socket_inodes(pid):
    return {int(m.group(1)) for m in map(SOCKET_LINK.match, descriptors(pid).values()) if m}


def client_port_of(pid, server_port):
    """The local port of process `pid`'s TCP connection to `server_port`."""
    table = tcp_sockets()
    ports = []
    for link in descriptors(pid).values():
        match = SOCKET_LINK.match(link)
        entry = match and table.get(int(match.group(1)))
        if entry and entry[1] == server_port:
            ports.append(entry[0])
    assert len(ports) == 1, f"client {pid}: connections to {server_port}: {ports}"
    return ports[0]


def assert_confined(pid, user, chroot):
    status = proc_status(pid)
    uid, gid = str(user.pw_uid), str(user.pw_gid)
    assert status["Uid"].split() == [uid] * 4, status["Uid"]
    assert status["Gid"].split() == [gid] * 4, status["Gid"]
    # The broker's supplementary groups must not survive the switch.
    assert set(status["Groups"].split()) <= {gid}, status["Groups"]
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, status
    assert status["NoNewPrivs"] == "1", status["NoNewPrivs"]
    assert status["Seccomp"] == "2", status["Seccomp"]  # 2: filter mode
    assert os.readlink(f"/proc/{pid}/root") == str(chroot)


def assert_descriptors(pid, broker_pid, server_port, client_port, attached):
    links = descriptors(pid)
    extra = sorted(set(links) - {0, 1, 2, 3})
    assert {0, 1, 2, 3} <= set(links), links
    assert len(extra) == (1 if attached else 0), links
    tcp, ipc = socket_inode(links[0]), socket_inode(links[2])
    assert links[1] == links[0], f"fd 1 is not the connection: {links}"
    assert links[3] == links[2], f"fd 3 is not the IPC socket: {links}"
    assert tcp != ipc, links
    # fd 0 is the customer's connection itself, not some other TCP socket.
    connection = tcp_sockets().get(tcp)
    assert connection == (server_port, client_port, TCP_ESTABLISHED), (connection, client_port)
    unix = unix_sockets()
    assert ipc in unix, f"fd 2/3 is not a unix socket: {links}"
    ours = [ipc]
    if attached:
        console = socket_inode(links[extra[0]])
        assert console not in (tcp, ipc) and console in unix, links
        ours.append(console)
    # The other ends are the broker's: the IPC, and the console hub while attached.
    peers = unix_peers()
    if peers is not None:
        broker = socket_inodes(broker_pid)
        ends = {inode: peers.get(inode) for inode in ours}
        assert all(end in broker for end in ends.values()), (ends, sorted(broker))


def test_logged_in_session_is_confined(make_gateway, tmp_path):
    require_root()
    user = ensure_user()
    chroot = tmp_path / "empty"  # missing: the broker creates it
    gw = confined_gateway(make_gateway, chroot)
    child = gw.spawn("web1", "web1", tty=True)
    child.expect(CHOICE)
    pid = the_session(gw)
    client_port = client_port_of(child.pid, gw.port)
    broker_groups = proc_status(gw.proc.pid)["Groups"].split()
    assert set(map(str, BROKER_GROUPS)) <= set(broker_groups), broker_groups

    assert_confined(pid, user, chroot)
    assert_descriptors(pid, gw.proc.pid, gw.port, client_port, attached=False)
    with open(f"/proc/{pid}/environ", "rb") as f:
        assert CANARY.encode() not in f.read(), "the broker's environment leaked into a session"

    child.send(b"1")
    send_until(child, b"\r", rb"web1 login: ")
    assert_descriptors(pid, gw.proc.pid, gw.port, client_port, attached=True)

    child.send(DETACH)
    child.expect(CHOICE)
    wait_for(lambda: len(descriptors(pid)) == 4, 5, "the console socket to be closed")
    assert_descriptors(pid, gw.proc.pid, gw.port, client_port, attached=False)
    assert_confined(pid, user, chroot)
    child.send(b"0")
    child.expect(pexpect.EOF)


def test_session_is_confined_before_login(make_gateway, tmp_path):
    # Confined before it reads a byte from the network, so a pre-auth exploit in
    # the SSH layer gains nothing. Its banner is on the wire, so it is past that point.
    require_root()
    user = ensure_user()
    chroot = tmp_path / "empty"
    gw = confined_gateway(make_gateway, chroot)
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        banner = b""
        deadline = time.monotonic() + 5
        while b"\n" not in banner and time.monotonic() < deadline:
            chunk = s.recv(256)
            if not chunk:
                break
            banner += chunk
        assert banner.startswith(b"SSH-2.0-"), banner
        pid = the_session(gw)
        assert_confined(pid, user, chroot)
        assert_descriptors(pid, gw.proc.pid, gw.port, s.getsockname()[1], attached=False)


def test_missing_chroot_dir_is_created_empty_and_root_owned(make_gateway, tmp_path):
    require_root()
    chroot = tmp_path / "not-yet"
    gw = confined_gateway(make_gateway, chroot)
    result = gw.ssh("web1", "web1", "status")
    assert result.returncode == 0, result
    info = os.lstat(chroot)
    assert stat.S_ISDIR(info.st_mode)
    assert (info.st_uid, info.st_gid) == (0, 0)
    assert stat.S_IMODE(info.st_mode) == 0o755, oct(info.st_mode)
    assert os.listdir(chroot) == []


def test_chroot_dir_with_files_is_refused(keys, tmp_path):
    # A chroot that holds files gives a compromised session something to read (or run). The
    # broker may refuse to start or refuse the session; either way nobody logs in there.
    require_root()
    chroot = tmp_path / "full"
    chroot.mkdir(mode=0o755)
    (chroot / "secret").write_text("not for sessions\n")
    directory = tmp_path / "gw"
    directory.mkdir()
    gw = Gateway(directory, keys, extra={"run_as": "xcg", "chroot_dir": str(chroot)})
    try:
        try:
            gw.start()
        except AssertionError:
            assert gw.proc.returncode not in (None, 0), gw.read_log()
            assert str(chroot) in gw.read_log(), gw.read_log()
            return
        result = gw.ssh("web1", "web1", "status")
        assert result.returncode != 0, (result, gw.read_log())
        assert "web1: running" not in result.stdout
    finally:
        gw.stop()


def test_logged_in_session_dies_with_its_broker(keys, tmp_path):
    # The uid drop clears the parent-death signal the broker's child set before the exec; a
    # session that outlived a killed broker would keep its customer's connection and the host
    # key. (A gateway of our own: make_gateway counts a killed broker as a failure.)
    require_root()
    ensure_user()
    directory = tmp_path / "gw"
    directory.mkdir()
    gw = Gateway(directory, keys, extra={"run_as": "xcg", "chroot_dir": str(tmp_path / "empty")})
    pid = None
    try:
        gw.start()
        child = gw.spawn("web1", "web1", tty=True)
        child.expect(CHOICE)
        pid = the_session(gw)
        assert proc_status(pid)["Uid"].split()[0] != "0", "the session has not dropped its uid"
        # Stopped, it stands for a compromised session that ignores its IPC socket closing (a
        # sound one notices and ends itself); only the kernel's SIGKILL can end it.
        os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: proc_status(pid)["State"].startswith("T"), 10, f"session {pid} to stop")
        gw.proc.kill()
        gw.proc.wait(timeout=10)
        wait_for(lambda: not pid_alive(pid), 10, f"session {pid} to end with its broker")
    finally:
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        gw.stop()
