"""The audit log: one JSON object per line for every login, failure, attach and action."""

import json

import pexpect

from conftest import describe, send_until, wait_for

REQUIRED = ("time", "event", "remote", "domain", "fingerprint")


def find(records, **fields):
    return [r for r in records if all(r.get(k) == v for k, v in fields.items())]


def test_audit_log_records_everything(gw, keys):
    web1 = keys["web1"].fingerprint
    stranger = keys["stranger"].fingerprint

    assert gw.ssh("web1", "web1", "status").returncode == 0
    assert gw.ssh("web1", "stranger", "status").returncode == 255
    assert gw.ssh("web2", "web1", "status").returncode == 255
    assert gw.ssh("web1", "web1", "start").returncode == 1  # already running
    before = gw.domid()
    assert gw.ssh("web1", "web1", "reboot").returncode == 0
    gw.wait_running_after(before)
    child = gw.spawn("web1", "web1", "console")
    send_until(child, b"\r", rb"login: ")
    child.send(b"\x1d")
    child.expect(pexpect.EOF)
    child.close()

    def complete():
        records = gw.audit_records()
        wanted = [
            find(records, event="console_detach", domain="web1"),
            find(records, event="action", action="reboot", result="ok"),
            find(records, event="auth_failure", fingerprint=stranger),
        ]
        ends = find(records, event="session_end", domain="web1")
        return all(wanted) and len(ends) >= 5 and records

    try:
        records = wait_for(complete, 10, "audit records for all the above")
    except AssertionError:
        raise AssertionError(f"audit log so far:\n{gw.audit_path.read_text()}") from None

    for record in records:
        missing = [k for k in REQUIRED if k not in record]
        assert not missing, (missing, record)
        assert record["time"], record

    successes = find(records, event="auth_success")
    assert successes and all(r["domain"] == "web1" and r["fingerprint"] == web1
                             for r in successes), successes
    assert all("127.0.0.1" in str(r["remote"]) for r in successes), successes

    # One record per connection for its refused key offers, with their count.
    failures = find(records, event="auth_failure")
    assert find(failures, fingerprint=stranger, stage="key", offers="1", fingerprints=stranger), failures
    assert any(r["fingerprint"] == web1 and r["domain"] != "web1" for r in failures), failures
    assert all("127.0.0.1" in str(r["remote"]) for r in failures), failures

    for event in ("session_start", "session_end", "console_attach", "console_detach"):
        got = find(records, event=event, domain="web1", fingerprint=web1)
        assert got, (event, records)
        assert all("127.0.0.1" in str(r["remote"]) for r in got), got

    actions = find(records, event="action")
    assert find(actions, action="start", result="error", fingerprint=web1), actions
    assert find(actions, action="reboot", result="ok", fingerprint=web1), actions

    # A session's records come in order: login, start, end.
    events = [r["event"] for r in records if r.get("domain") == "web1"]
    first_success = events.index("auth_success")
    assert first_success < events.index("session_start") < events.index("session_end"), events


def test_audit_lines_are_single_json_objects(gw):
    assert gw.ssh("web1", "web1", "foo").returncode == 2
    assert gw.ssh("web1", "web1", "status").returncode == 0
    wait_for(lambda: len(find(gw.audit_records(), event="session_end")) >= 2, 10,
             "two session_end records")
    for line in gw.audit_path.read_text().splitlines():
        record = json.loads(line)
        assert isinstance(record, dict), line


def test_unknown_command_is_not_an_action(gw):
    assert gw.ssh("web1", "web1", "$(reboot)").returncode == 2
    assert gw.ssh("web1", "web1", "status").returncode == 0
    wait_for(lambda: len(find(gw.audit_records(), event="session_end")) >= 2, 10,
             "two session_end records")
    assert find(gw.audit_records(), event="action") == [], gw.audit_path.read_text()
    result = gw.ssh("web2", "web2", "destroy")
    assert result.returncode == 1, describe(result)
    wait_for(lambda: len(find(gw.audit_records(), event="session_end")) >= 3, 10,
             "three session_end records")
    refused = find(gw.audit_records(), event="action", action="destroy")
    # Refused (not allowed) actions are still worth an audit line, but must not say ok.
    assert all(r["result"] != "ok" for r in refused), refused
