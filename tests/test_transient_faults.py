"""Retries cover only transient faults (dropped connections, expired sessions), bounded and logged."""
from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim

from harness.targets.environment import Environment
from harness.vsphere.errors import OutcomeUnknown, TaskFailed, VCenterUnreachable


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


# ---- issue 21, point 4: a mutating call is never sent twice ------------------------------------------
# Reproduced first: before the fix, a reply lost after the fake ran the call made `invoke` send
# CreateVM_Task / CloneVM_Task / RegisterKmipServer again (two entries in the fake's call log).
def _placement(client: Any) -> Any:
    from harness.vsphere import find
    return find.placement(client, "DC0", "DC0_C0")


def _create(client: Any, name: str) -> Any:
    from harness.vsphere import vms
    return vms.create_vm(client, _placement(client), name, "")


def _clone(client: Any, name: str) -> Any:
    from harness.vsphere import vms
    place = _placement(client)
    source = vms.create_vm(client, place, f"{name}-src", "")
    spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=place.pool, datastore=place.datastore), powerOn=False)
    return client.invoke(source, "CloneVM_Task", folder=place.vm_folder, name=name, spec=spec)


def _register(client: Any, name: str) -> Any:
    from harness.vsphere import keys
    return keys.register_unreachable_provider(client, name, 1)


MUTATING = [("CreateVM_Task", _create), ("CloneVM_Task", _clone), ("RegisterKmipServer", _register)]


@pytest.mark.parametrize("method,call", MUTATING, ids=[m for m, _ in MUTATING])
def test_a_mutating_call_whose_reply_was_lost_is_not_sent_again(env, client, method, call):
    fake = env.fake_vcenter("vc-a")
    before = _calls(env, method)

    original = client.invoke

    def invoke(obj: Any, called: str, /, **kwargs: Any) -> Any:
        if called == method:
            fake.drop_next_replies = 1
        return original(obj, called, **kwargs)
    client.invoke = invoke  # type: ignore[method-assign]
    try:
        with pytest.raises(OutcomeUnknown, match=f"{method} may or may not have run on vc-a: the connection "
                                                 "dropped after the request was sent") as err:
            call(client, f"vcrypt-lost-reply-{method}")
    finally:
        del client.invoke
        fake.drop_next_replies = 0
    assert _calls(env, method) - before == 1, f"{method} was sent {_calls(env, method) - before} times"
    assert isinstance(err.value, VCenterUnreachable), "an uncertain outcome is an environment error"
    assert (err.value.vcenter, err.value.method) == ("vc-a", method)


def test_a_mutating_call_whose_connection_was_refused_is_sent_once_more(env, client):
    """A refused connect proves the request never left: sending it (once) is safe."""
    fake = env.fake_vcenter("vc-a")
    before = _calls(env, "CreateVM_Task")
    fake.refuse_next_calls = 0
    original = client.invoke

    def invoke(obj: Any, called: str, /, **kwargs: Any) -> Any:
        if called == "CreateVM_Task":
            fake.refuse_next_calls = 1
        return original(obj, called, **kwargs)
    client.invoke = invoke  # type: ignore[method-assign]
    try:
        vm = _create(client, "vcrypt-refused-once")
    finally:
        del client.invoke
    assert vm is not None and _calls(env, "CreateVM_Task") - before == 1


def test_a_read_whose_reply_was_lost_is_retried(env, client):
    fake = env.fake_vcenter("vc-a")
    before = _calls(env, "CurrentTime")
    fake.drop_next_replies = 1
    assert client.invoke(client.si, "CurrentTime") is not None
    assert _calls(env, "CurrentTime") - before == 2, "a read-only method may be sent again"


def test_an_uncertain_call_is_written_to_the_ledger_for_sweep(env, client, tmp_path):
    from harness.calls import unsubscribe
    from harness.run.cleanup import Ledger, record_uncertain_calls
    ledger = Ledger(tmp_path / "r-unc" / "ledger.jsonl")
    record_uncertain_calls(ledger, "r-unc")
    fake = env.fake_vcenter("vc-a")
    original = client.invoke

    def invoke(obj: Any, called: str, /, **kwargs: Any) -> Any:
        if called == "CreateVM_Task":
            fake.drop_next_replies = 1
        return original(obj, called, **kwargs)
    client.invoke = invoke  # type: ignore[method-assign]
    try:
        with pytest.raises(OutcomeUnknown):
            _create(client, "vcrypt-r-unc-vm")
    finally:
        del client.invoke
        unsubscribe("ledger-uncertain-calls")
    [entry] = ledger.entries()
    assert (entry["kind"], entry["vcenter"], entry["method"], entry["run_id"]) == \
        ("uncertain", "vc-a", "CreateVM_Task", "r-unc")
    assert "may or may not have run" in entry["description"]
