"""`xcg serve` in dom0 with `hypervisor: xen`: keys, domains, and status from real Xen."""

import pytest

from conftest import GUEST_MEMORY_MIB, GUEST_VCPUS, GUESTS, RUNNING, describe


@pytest.mark.parametrize("name", GUESTS)
def test_status_shows_the_real_domain(gw, bed, name):
    result = gw.ssh(name, name, "status")
    assert result.returncode == 0, describe(result)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, describe(result)
    match = RUNNING.match(lines[0])
    assert match, describe(result)
    assert match.group("name") == name
    assert int(match.group("domid")) == bed.domid(name)
    assert int(match.group("mem")) == GUEST_MEMORY_MIB  # libxenctrl's, not a config default
    assert int(match.group("vcpus")) == GUEST_VCPUS


def assert_denied(result):
    assert result.returncode == 255, describe(result)
    assert "Permission denied (publickey)" in result.stderr, describe(result)
    assert "running" not in result.stdout, describe(result)


def test_unknown_key_denied(gw):
    assert_denied(gw.ssh("guest1", "stranger", "status"))


def test_key_of_another_domain_denied(gw):
    assert_denied(gw.ssh("guest2", "guest1", "status"))
    assert_denied(gw.ssh("guest1", "guest2", "status"))


def test_unknown_domain_denied(gw):
    assert_denied(gw.ssh("Domain-0", "guest1", "status"))
    assert_denied(gw.ssh("nosuchguest", "guest1", "status"))
