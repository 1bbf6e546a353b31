"""The control facade (harness/targets/control.py): the fake injects faults and undoes them; other targets skip."""
from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim

from harness.targets.control import NoFaultInjection

DISK = 64 * 1024   # the conftest VM's disk


def _free(vm: Any) -> int:
    return vm.datastore[0].summary.freeSpace


def test_a_target_without_fault_injection_refuses_every_request_with_a_capability_skip():
    control = NoFaultInjection("vc-real")
    requests = [lambda: control.full_datastore("LocalDS_0", 0).__enter__(),
                lambda: control.failing_rekey(1).__enter__(),
                lambda: control.reboot_host("host-1"),
                lambda: control.encrypted_core_dump("host-1", "hostd", "f"),
                lambda: control.add_user("u", "p"),
                lambda: control.remove_user("u"),
                control.peers_trusted,
                lambda: control.set_peers_trusted(False)]
    for request in requests:
        with pytest.raises(pytest.skip.Exception, match="capability: vc-real lacks fault_injection"):
            request()
    assert control.injects_faults is False


def test_a_full_datastore_is_seen_through_the_api_and_released_even_after_an_error(env, vm):
    control = env.control("vc-a")
    total = _free(vm)
    with pytest.raises(RuntimeError):
        with control.full_datastore("LocalDS_0", leave_free_bytes=DISK) as held:
            assert held == total - DISK
            assert _free(vm) == DISK
            raise RuntimeError("the test failed inside")
    assert _free(vm) == total


def test_a_failing_rekey_is_armed_inside_and_cleared_after(env):
    control, fake = env.control("vc-a"), env.fake_vcenter("vc-a")
    with control.failing_rekey(after_links=2):
        assert fake.rekey_failure_after == 2
    assert fake.rekey_failure_after is None


def test_an_added_user_can_log_in_until_removed(env):
    control = env.control("vc-a")
    control.add_user("control-user@vsphere.local", "pw-1")
    fake = env.fake_vcenter("vc-a")
    assert fake.check_login("control-user@vsphere.local", "pw-1").name == "control-user@vsphere.local"
    control.remove_user("control-user@vsphere.local")
    with pytest.raises(vim.fault.InvalidLogin):
        fake.check_login("control-user@vsphere.local", "pw-1")


def test_peer_trust_is_switched_and_restored(env):
    control = env.control("vc-a")
    assert control.peers_trusted()
    control.set_peers_trusted(False)
    try:
        assert not env.fake_vcenter("vc-a").trust_peers
    finally:
        control.set_peers_trusted(True)
    assert control.peers_trusted()
