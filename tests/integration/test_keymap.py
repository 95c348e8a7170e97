"""The key map in etcd (docs/fleet.md): a sim node with `cluster:` against a real 3-member etcd.
`xcg keys import` lets customers in, deleting a key in etcd ends a live session within a
second, `xcg keys export` round-trips, a key does not reach another domain, and the node
accepts its front's logins for a customer."""

import json
import subprocess
import time

import pexpect

from conftest import XCG, describe, send_until, wait_for
from etcd_cluster import etcd3, free_port  # noqa: F401 (etcd3: a fixture)

REVOKE_LIMIT = 1.0
PREFIX = "/xcg/"


def xcg_keys(gw, *args):
    return subprocess.run([XCG, "keys", "--config", str(gw.config_path), *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def domains_yaml(domains):
    lines = ["domains:"]
    for name, key_lines in domains.items():
        lines += [f"  {name}:", "    keys:"] + [f"      - {json.dumps(k)}" for k in key_lines]
    return "\n".join(lines) + "\n"


def node(make_gateway, etcd, keys):
    """web1 and web2 here with no keys in the file; web3's key is the trusted front's."""
    gw = make_gateway(domains={"web1": {}, "web2": {}},
                      extra={"cluster": {"endpoints": etcd.endpoints, "node": "n1"},
                             "fronts": [keys["web3"].public_line]})
    wait_for(lambda: b"key map from etcd" in gw.log_path.read_bytes(), 15, "the first key map")
    return gw


def import_keys(gw, keys, tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text(domains_yaml({"web1": [keys["web1"].public_line], "web2": [keys["web2"].public_line],
                                  "elsewhere": [keys["stranger"].public_line]}))
    return xcg_keys(gw, "import", str(path))


def logs_in(gw, user, key):
    return gw.ssh(user, key, "status").returncode == 0


def assert_refused(gw, user, key):
    result = gw.ssh(user, key, "status")
    assert result.returncode == 255 and "Permission denied" in result.stderr, describe(result)


def attach(gw, domain, key):
    child = gw.spawn(domain, key, "console")
    prompt = rb"%s:~# " % domain.encode()
    send_until(child, b"\r", rb"login: |" + prompt)
    if child.after.endswith(b"login: "):
        child.send(b"root\r")
        child.expect(prompt)
    return child


def test_import_then_login_and_wrong_domain_refused(make_gateway, etcd3, keys, tmp_path):
    gw = node(make_gateway, etcd3, keys)
    assert_refused(gw, "web1", "web1")
    result = import_keys(gw, keys, tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout == "3 keys of 3 domains: 3 written, 0 already in etcd\n"
    assert etcd3.get(f"{PREFIX}keys/web1/{keys['web1'].fingerprint}") is not None
    wait_for(lambda: logs_in(gw, "web1", "web1"), 5, "web1's key from etcd")
    assert logs_in(gw, "web2", "web2")
    assert_refused(gw, "web2", "web1")
    assert_refused(gw, "elsewhere", "stranger")  # not a domain of this node
    again = import_keys(gw, keys, tmp_path)
    assert again.stdout == "3 keys of 3 domains: 0 written, 3 already in etcd\n", describe(again)
    check = subprocess.run([XCG, "check", "--config", str(gw.config_path)], capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 0, describe(check)
    assert "\netcd: 3 keys of 3 domains (2 for the domains here)\n" in check.stdout, describe(check)


def test_check_says_when_etcd_cannot_be_reached(tmp_path):
    config = tmp_path / "xcg.yaml"
    config.write_text(f'listen: ["127.0.0.1:0"]\nhost_keys: [{json.dumps(str(tmp_path / "k"))}]\n'
                      f'hypervisor: sim\ndomains: {{web1: {{}}}}\n'
                      f'cluster: {{endpoints: ["http://127.0.0.1:{free_port()}"]}}\n')
    check = subprocess.run([XCG, "check", "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, describe(check)
    assert "\nwarning: etcd: cannot read the key map: " in check.stdout, describe(check)


def test_deleting_the_key_in_etcd_ends_a_live_session_within_a_second(make_gateway, etcd3, keys, tmp_path):
    gw = node(make_gateway, etcd3, keys)
    assert import_keys(gw, keys, tmp_path).returncode == 0
    wait_for(lambda: logs_in(gw, "web1", "web1"), 5, "web1's key from etcd")
    victim = attach(gw, "web1", "web1")
    survivor = attach(gw, "web2", "web2")
    start = time.monotonic()
    etcd3.delete(f"{PREFIX}keys/web1/{keys['web1'].fingerprint}")
    victim.expect(rb"\[xcg: access to web1 was revoked\]", timeout=5)
    elapsed = time.monotonic() - start
    victim.expect(pexpect.EOF, timeout=5)
    print(f"\nrevocation through etcd: {elapsed:.3f} s")
    assert elapsed < REVOKE_LIMIT, f"revocation took {elapsed:.3f} s"
    survivor.send(b"echo still-here\r")
    survivor.expect(rb"\nstill-here\r?\n")
    assert_refused(gw, "web1", "web1")


def test_export_round_trips(make_gateway, etcd3, keys, tmp_path):
    gw = node(make_gateway, etcd3, keys)
    assert import_keys(gw, keys, tmp_path).returncode == 0
    before = etcd3.get_prefix(f"{PREFIX}keys/")
    exported = xcg_keys(gw, "export")
    assert exported.returncode == 0, describe(exported)
    assert exported.stdout.index("elsewhere:") < exported.stdout.index("web1:") < exported.stdout.index("web2:")
    etcd3.etcdctl("del", "--prefix", f"{PREFIX}keys/")
    path = tmp_path / "exported.yaml"
    path.write_text(exported.stdout)
    result = xcg_keys(gw, "import", str(path))
    assert result.stdout == "3 keys of 3 domains: 3 written, 0 already in etcd\n", describe(result)
    assert etcd3.get_prefix(f"{PREFIX}keys/") == before


def test_node_accepts_its_front_for_a_customer_key(make_gateway, etcd3, keys, tmp_path):
    gw = node(make_gateway, etcd3, keys)
    assert import_keys(gw, keys, tmp_path).returncode == 0
    wait_for(lambda: logs_in(gw, "web2", "web2"), 5, "web2's key from etcd")
    front = "web3"  # its key is in `fronts:`
    user = f"xcg-front:web2:{keys['web2'].fingerprint}:ro"
    result = gw.ssh(user, front, "status")
    assert result.returncode == 0 and result.stdout.startswith("web2: "), describe(result)
    assert_refused(gw, f"xcg-front:web2:{keys['web1'].fingerprint}:rw", front)  # web1's key, not web2's
    assert_refused(gw, f"xcg-front:elsewhere:{keys['stranger'].fingerprint}:rw", front)
    assert_refused(gw, user, "web2")  # the customer's own key is no front's
    records = [r for r in gw.audit_records() if r.get("event") == "auth_success"]
    fronted = [r for r in records if r.get("front_fp")]
    assert len(fronted) == 1, records
    assert fronted[0]["front_fp"] == keys["web3"].fingerprint
    assert fronted[0]["fingerprint"] == keys["web2"].fingerprint
    assert fronted[0]["readonly"] == "yes"


def test_a_bad_value_in_etcd_costs_only_itself(make_gateway, etcd3, keys, tmp_path):
    gw = node(make_gateway, etcd3, keys)
    etcd3.put(f"{PREFIX}keys/web2/SHA256:nonsense", "not json")
    assert import_keys(gw, keys, tmp_path).returncode == 0
    wait_for(lambda: logs_in(gw, "web1", "web1"), 5, "web1's key from etcd")
    assert logs_in(gw, "web2", "web2")
    assert b"key map: ignoring /xcg/keys/web2/SHA256:nonsense: the value is not a JSON object" in \
        gw.log_path.read_bytes()


def test_import_of_an_invalid_file_writes_nothing(make_gateway, etcd3, keys, tmp_path):
    gw = node(make_gateway, etcd3, keys)
    path = tmp_path / "bad.yaml"
    path.write_text(domains_yaml({"web1": [keys["web1"].public_line], "web2": ["ssh-foo AAAA"]}))
    result = xcg_keys(gw, "import", str(path), str(tmp_path / "missing.yaml"))
    assert result.returncode == 1, describe(result)
    assert "bad public key: unknown key type 'ssh-foo'" in result.stderr
    assert f"{tmp_path / 'missing.yaml'}:1:1: cannot open" in result.stderr
    assert etcd3.get_prefix(f"{PREFIX}keys/") == {}


def test_with_etcd_gone_the_last_key_map_stays_in_use(make_gateway, etcd3, keys, tmp_path):
    gw = node(make_gateway, etcd3, keys)
    assert import_keys(gw, keys, tmp_path).returncode == 0
    wait_for(lambda: logs_in(gw, "web1", "web1"), 5, "web1's key from etcd")
    for member in range(3):
        etcd3.kill(member)
    unreachable = b"key map: etcd cannot be reached; the last key map (3 keys) stays in use"
    wait_for(lambda: unreachable in gw.log_path.read_bytes(), 10, "the key map's unreachable line")
    assert logs_in(gw, "web1", "web1")
    assert_refused(gw, "web2", "web1")
    # Said once, however often the watch tries again meanwhile.
    wait_for(lambda: gw.log_path.read_bytes().count(b"etcd watch on") > 3, 10, "the watch to retry")
    assert gw.log_path.read_bytes().count(unreachable) == 1
