"""The `web:` section from the command line: `xcg check` refuses a bad section or bad files with
a clear message and exit code 1, and `xcg hostkeys` prints the web certificate's fingerprint."""

import hashlib
import os
import ssl
import subprocess

from conftest import default_domains, describe, render_config


def run(xcg, *args):
    return subprocess.run([xcg, *args], capture_output=True, text=True, timeout=20,
                          stdin=subprocess.DEVNULL)


def write_config(tmp_path, keys, web):
    path = tmp_path / "xcg.yaml"
    path.write_text(render_config(tmp_path, default_domains(keys), {"autostart": False},
                                  {"web": web}))
    return path


def web_section(tmp_path, **more):
    return {"listen": ["127.0.0.1:0"], "public_url": "https://console.example",
            "tls_cert": str(tmp_path / "tls" / "web.crt"),
            "tls_key": str(tmp_path / "tls" / "web.key"), **more}


def test_check_accepts_a_web_section_whose_pair_is_not_made_yet(xcg_binary, keys, tmp_path):
    path = write_config(tmp_path, keys, web_section(tmp_path))
    result = run(xcg_binary, "check", "--config", str(path))
    assert result.returncode == 0, describe(result)
    assert not (tmp_path / "tls").exists()  # check makes nothing


def test_check_refuses_a_public_plain_listener_at_its_position(xcg_binary, keys, tmp_path):
    web = web_section(tmp_path, listen=["127.0.0.1:0", "http://0.0.0.0:8080"])
    path = write_config(tmp_path, keys, web)
    result = run(xcg_binary, "check", "--config", str(path))
    assert result.returncode == 1, describe(result)
    # Line 6 is "  listen: [...]", the second item starts at column 27.
    assert result.stdout.splitlines() == [
        f"{path}:6:27: listen: plain HTTP 'http://0.0.0.0:8080' is allowed only on loopback "
        "(127.0.0.0/8 or [::1]), behind a proxy on this host; a TLS listener is written "
        "HOST:PORT"], describe(result)


def test_check_refuses_half_a_pair_and_a_shared_panel_secret(xcg_binary, keys, tmp_path):
    secret = tmp_path / "panel.secret"
    secret.write_bytes(os.urandom(32))
    secret.chmod(0o644)
    path = write_config(tmp_path, keys, web_section(tmp_path, panel_secret_file=str(secret)))
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "web.key").write_text("")
    result = run(xcg_binary, "check", "--config", str(path))
    assert result.returncode == 1, describe(result)
    assert result.stdout.splitlines() == [
        f"{path}: web: web TLS certificate {tmp_path}/tls/web.crt: missing, but its key is there",
        f"{path}: web: panel secret {secret}: readable or writable by group or others; "
        "chmod 600 it"], describe(result)


def test_hostkeys_prints_the_web_certificates_fingerprint(xcg_binary, keys, tmp_path):
    path = write_config(tmp_path, keys, web_section(tmp_path))
    first = run(xcg_binary, "hostkeys", "--config", str(path), "--host", "gw.example.net")
    assert first.returncode == 0, describe(first)
    der = ssl.PEM_cert_to_DER_cert((tmp_path / "tls" / "web.crt").read_text())
    expected = ("# web certificate of https://console.example: SHA256:"
                + hashlib.sha256(der).hexdigest())
    assert first.stdout.splitlines()[-1] == expected, describe(first)
    assert (tmp_path / "tls" / "web.key").stat().st_mode & 0o777 == 0o600
    again = run(xcg_binary, "hostkeys", "--config", str(path), "--host", "gw.example.net")
    assert again.stdout == first.stdout, describe(again)
    assert run(xcg_binary, "check", "--config", str(path)).returncode == 0
