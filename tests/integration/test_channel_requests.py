"""Channel-level refusals that the OpenSSH client can't produce on demand: a second exec or
shell on a channel already in use, and a second session channel. Driven with paramiko, which
sends exactly the requests we ask for."""

import paramiko
import pytest


def connect(gw, domain="web1"):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    key = paramiko.Ed25519Key.from_private_key_file(str(gw.keys[domain].path))
    client.connect("127.0.0.1", port=gw.port, username=domain, pkey=key, look_for_keys=False,
                   allow_agent=False, timeout=10, banner_timeout=10, auth_timeout=10)
    return client


def read_all(channel):
    data = b""
    while True:
        chunk = channel.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_second_exec_on_the_same_channel_is_refused(gw):
    client = connect(gw)
    try:
        channel = client.get_transport().open_session(timeout=10)
        channel.settimeout(10)
        channel.exec_command("console")
        # paramiko treats the refusal as the end of the channel, so one refusal per channel.
        with pytest.raises(paramiko.SSHException):
            channel.exec_command("reboot")
        assert gw.alive()
    finally:
        client.close()
    # The refused reboot did not happen, and the gateway still serves.
    assert "running, domid 1," in gw.status()


def test_second_shell_on_the_same_channel_is_refused(gw):
    client = connect(gw)
    try:
        channel = client.get_transport().open_session(timeout=10)
        channel.settimeout(10)
        channel.get_pty()
        channel.invoke_shell()
        seen = b""
        while b"Choice:" not in seen:
            seen += channel.recv(4096)
        with pytest.raises(paramiko.SSHException):
            channel.invoke_shell()
    finally:
        client.close()
    assert gw.alive()


def test_second_session_channel_is_refused(gw):
    client = connect(gw)
    try:
        transport = client.get_transport()
        first = transport.open_session(timeout=10)
        with pytest.raises(paramiko.ChannelException):
            transport.open_session(timeout=10)
        first.settimeout(10)
        first.exec_command("status")
        assert b"web1: running" in read_all(first)
        assert first.recv_exit_status() == 0
    finally:
        client.close()


def test_exec_after_pty_and_shell_is_refused(gw):
    client = connect(gw)
    try:
        channel = client.get_transport().open_session(timeout=10)
        channel.settimeout(10)
        channel.get_pty()
        channel.invoke_shell()
        seen = b""
        while b"Choice:" not in seen:
            seen += channel.recv(4096)
        with pytest.raises(paramiko.SSHException):
            channel.exec_command("destroy")
    finally:
        client.close()
    assert "running" in gw.status()
