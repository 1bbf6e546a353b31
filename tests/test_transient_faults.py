"""Retries cover only transient faults (dropped connections, expired sessions), bounded and logged."""
from __future__ import annotations


import pytest
from pyVmomi import vim

from harness.targets.environment import Environment
from harness.vsphere.errors import TaskFailed, VCenterUnreachable


def _calls(env: Environment, method: str) -> int:
    return sum(1 for _, m in env.fake_vcenter("vc-a").call_log if m == method)


def test_an_expired_session_is_renewed_once_and_the_call_succeeds(env, client, caplog):
    env.fake_vcenter("vc-a").expire_sessions()
    root = client.content.rootFolder
    assert client.read(root, ["name"])["name"] == "Datacenters"
    assert "logging in again" in caplog.text


def test_a_dropped_connection_is_retried(env, client):
    fake = env.fake_vcenter("vc-a")
    time_before = _calls(env, "CurrentTime")
    fake.drop_next_calls = 1
    assert client.invoke(client.si, "CurrentTime") is not None
    assert _calls(env, "CurrentTime") == time_before + 1  # the dropped call never reached the model


def test_a_vcenter_that_stays_away_gives_a_bounded_environment_error(env, client):
    fake = env.fake_vcenter("vc-a")
    fake.drop_next_calls = 1000
    try:
        with pytest.raises(VCenterUnreachable, match="vc-a unreachable"):
            client.invoke(client.si, "CurrentTime")
    finally:
        fake.drop_next_calls = 0


def test_a_refusal_is_never_retried(env, client):
    dc = client.content.rootFolder.childEntity[0]
    vm = dc.vmFolder.childEntity[0]
    if vm.runtime.powerState == "poweredOn":
        vm.PowerOffVM_Task()
    before = _calls(env, "PowerOffVM_Task")
    with pytest.raises(TaskFailed) as err:
        client.invoke(vm, "PowerOffVM_Task")
    assert isinstance(err.value.fault, vim.fault.InvalidPowerState)
    assert _calls(env, "PowerOffVM_Task") - before == 1
