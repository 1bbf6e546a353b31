"""Events and alarms (RULES.md: EVT-*): what vCenter posts when keys, KMS, disk space or a recrypt fail.

Events are read back through EventManager.QueryEvents by type id (since the test began), alarms
are found by walking AlarmManager.GetAlarm expressions for the event id they watch. The faults
themselves (a KMS refusing creation, a full datastore, a core dump, a recrypt stopping part-way)
can only be caused on the fake: those tests require `fault_injection` and arrange through the
fake's hooks or the embedded KMS; every verdict is read through pyVmomi.
"""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from pyVmomi import vim


from harness import unconfirmed
from harness.checks import refused, require_kmip_refusal, unchanged
from harness.vsphere import crypto, events, hosts, keys, snapshots, vms
from harness.vsphere.hosts import require_some

pytestmark = pytest.mark.requires("events")




def _kms_health_alarms(vc: Any) -> list[Any]:
    """Alarms whose expression watches the unreachable event (found by walking GetAlarm, never by name); may be
    none: that a default alarm watches this event is UNCONFIRMED (API.md 6.2), gated in _assert_...()."""
    alarms = events.alarms_watching(vc, events.KMS_UNREACHABLE)
    vc.recorder.note("alarms watching the KMS unreachable event", events.alarm_names(vc, alarms))
    return alarms


def _statuses(vc: Any, alarms: list[Any], wanted: str, timeout: float) -> dict[str, str]:
    return {a._moId: events.wait_for_alarm_status(vc, a, wanted, timeout) for a in alarms}


def _assert_unreachable_then_cleared(inventory: Any, vc: Any, seen: list[Any], during: dict[str, str],
                                     after: dict[str, str], outage: str, back: str) -> None:
    """EVT-KMS-UNREACHABLE's verdict: a critical unreachable event (event id from lamw/vcenter-event-mapping,
    API.md 6.1), then a red KMS health alarm during the outage and green again once the KMS answers. That the
    alarm is an event alarm naming that event is UNCONFIRMED (API.md 6.2): with no such alarm on a target
    that does not confirm it, the event part is asserted and the alarm part skipped as unconfirmed."""
    assert seen, f"no {events.KMS_UNREACHABLE} event {outage}"
    assert any(e.severity == "error" for e in seen), \
        f"{events.KMS_UNREACHABLE} is not critical: {[e.severity for e in seen]}"
    if not during:
        unconfirmed.gate(inventory, vc.name, "kms-alarm-watches-unreachable-event",
                         observed={"alarms": events.alarm_names(vc, events.all_alarms(vc))})
        require_some(during, f"alarm watching {events.KMS_UNREACHABLE}")
    assert "red" in during.values(), f"no alarm watching {events.KMS_UNREACHABLE} turned red: {during}"
    unconfirmed.gate(inventory, vc.name, "kms-alarm-clears-on-vendor-event", observed={"alarm statuses after": after})
    assert all(s == "green" for s in after.values()), f"the KMS health alarm did not clear {back}: {after}"


# ---- EVT-KEY-CREATE -------------------------------------------------------------------------------
@pytest.mark.rule("EVT-KEY-CREATE")
@pytest.mark.destructive
@pytest.mark.requires("key_providers", "fault_injection")
@pytest.mark.test_id("6a3e0eb8-2c39-4397-89bb-c3517d320145")
def test_a_kms_refusing_key_creation_makes_vcenter_post_a_critical_key_generate_fail_event(
        serial, embedded_kms_server, inventory, vc, provider, kms):
    server = embedded_kms_server
    since = events.server_time(vc)
    server.refuse_create(True)
    try:
        result = keys.generate_key_result(vc, provider)
    finally:
        server.refuse_create(False)
    if not result.success:  # the verdict rests on a KMIP refusal: an outage is an environment error
        require_kmip_refusal(kms.for_provider(provider), result.reason)

    assert result.success is False, "GenerateKey succeeded although the KMS refused to create the key"
    seen = events.wait_for_event(vc, events.KEY_GENERATE_FAIL, since, inventory.timeouts.event)
    assert seen, f"no {events.KEY_GENERATE_FAIL} event after the KMS refused key creation"
    wrong = [e.severity for e in seen if e.severity != "error"]
    assert not wrong, f"{events.KEY_GENERATE_FAIL} posted with severity {wrong}, expected a critical (error) event"


# ---- EVT-KMS-UNREACHABLE --------------------------------------------------------------------------
@pytest.mark.rule("EVT-KMS-UNREACHABLE")
@pytest.mark.destructive
@pytest.mark.requires("key_providers", "alarms", "fault_injection")
@pytest.mark.test_id("0461d828-6d8f-486d-a87a-999732c52626")
def test_losing_the_kms_posts_unreachable_and_turns_the_kms_health_alarm_red_until_it_is_back(
        serial, embedded_kms_server, inventory, vc, provider, kms):
    server = embedded_kms_server
    alarms = _kms_health_alarms(vc)
    timeout = inventory.timeouts.event
    before = _statuses(vc, alarms, "green", timeout)
    assert all(s == "green" for s in before.values()), f"the KMS health alarm is not green before the outage: {before}"
    since = events.server_time(vc)

    server.stop()
    try:
        seen = events.wait_for_event(vc, events.KMS_UNREACHABLE, since, timeout)
        during = _statuses(vc, alarms, "red", timeout)
    finally:
        server.start()
    after = _statuses(vc, alarms, "green", timeout)

    _assert_unreachable_then_cleared(inventory, vc, seen, during, after,
                                     f"while the KMS of {provider} was stopped", "after the KMS came back")


@pytest.mark.rule("EVT-KMS-UNREACHABLE")
@pytest.mark.destructive   # a provider at an unreachable address: vCenter-wide KMS-health alarm and events
@pytest.mark.requires("key_providers", "alarms")
@pytest.mark.test_id("631fa8d6-2bf3-4433-a46c-03f6a559e7db")
def test_a_key_provider_at_a_closed_port_posts_unreachable_and_the_alarm_clears_once_its_kms_answers(
        scratch, inventory, vc, provider, kms, unreachable_kms):
    alarms = _kms_health_alarms(vc)
    timeout = inventory.timeouts.event
    before = _statuses(vc, alarms, "green", timeout)
    assert all(s == "green" for s in before.values()), f"the KMS health alarm is not green before the test: {before}"
    provider_id, (address, port) = scratch.name("unreachable-kms"), unreachable_kms
    since = events.server_time(vc)

    scratch.custom_provider(vc, provider_id, lambda: keys.register_unreachable_provider(vc, provider_id, port, address))
    seen = events.wait_for_event(vc, events.KMS_UNREACHABLE, since, timeout)
    during = _statuses(vc, alarms, "red", timeout)
    live = kms.for_provider(provider)
    keys.move_server(vc, provider_id, f"{provider_id}-server", live.address, live.port)  # its KMS answers now
    after = _statuses(vc, alarms, "green", timeout)

    _assert_unreachable_then_cleared(inventory, vc, seen, during, after,
                                     f"for a key provider at closed port {port}", "once the KMS answered")


# ---- EVT-COREDUMP ---------------------------------------------------------------------------------
@pytest.mark.rule("EVT-COREDUMP")
@pytest.mark.destructive
@pytest.mark.requires("fault_injection", "host_crypto_state", "vm_encryption", "key_providers", "storage_policies")
@pytest.mark.test_id("895446b2-05b8-4587-80db-ca131f2d5b8c")
@pytest.mark.parametrize("kind", ["hostd", "vpxa", "application"])
def test_an_encrypted_core_dump_on_a_host_posts_a_warning_naming_the_file_and_where_it_is(
        kind, control, inventory, vc, encrypted_vm):
    host = vc.read(encrypted_vm, ["runtime.host"])["runtime.host"]
    assert hosts.crypto_states(vc, [host], label="host of the encrypted VM")[host._moId] == "safe", \
        "the host of an encrypted VM is not crypto-safe: it has no host key to encrypt a core dump with"
    file_name = f"{kind}-zdump.{uuid.uuid4().hex[:8]}"
    since = events.server_time(vc)

    control.encrypted_core_dump(host, kind, file_name)

    seen = events.wait_for_event(vc, events.CORE_DUMPED[kind], since, inventory.timeouts.event, entity=host)
    assert seen, f"no {events.CORE_DUMPED[kind]} event on the host after an encrypted {kind} core dump"
    naming = [e for e in seen if file_name in e.message or any(file_name in v for v in e.arguments.values())]
    assert naming, f"no {events.CORE_DUMPED[kind]} event names the core file {file_name}: {[e.message for e in seen]}"
    located = [e for e in naming if "/var/core" in e.message or any("/var/core" in v for v in e.arguments.values())]
    assert located, f"the event names {file_name} but not where it is: {[e.message for e in naming]}"
    assert all(e.severity == "warning" for e in naming), f"severity {[e.severity for e in naming]}, expected warning"


# ---- EVT-DISK-SPACE -------------------------------------------------------------------------------
@pytest.mark.rule("EVT-DISK-SPACE")
@pytest.mark.destructive
@pytest.mark.requires("fault_injection", "vm_encryption", "key_providers", "storage_policies")
@pytest.mark.test_id("c9f5c621-85ea-4387-90f5-11edb65db9c7")
@pytest.mark.parametrize("operation", ["encrypt", "decrypt"])
def test_an_encrypt_or_decrypt_lacking_disk_space_fails_with_no_disk_space_and_a_critical_event(
        operation, serial, control, inventory, scratch, vc, place, provider, policies_a):
    vm = scratch.vm(vc, place, f"full-ds-{operation}")
    if operation == "decrypt":
        crypto.encrypt(vc, vm, keys.generate_key(vc, provider), policies_a.encryption)
    key = keys.generate_key(vc, provider)
    disk_bytes = sum(d.capacityInKB * 1024 for d in require_some(vms.disks(vc, vm), "disk"))
    before = vms.state(vc, vm, label="before", phase="before")
    since = events.server_time(vc)
    actions = {"encrypt": lambda: crypto.encrypt(vc, vm, key, policies_a.encryption),
               "decrypt": lambda: crypto.decrypt(vc, vm, policies_a.plain)}

    with control.full_datastore(place.datastore_name, leave_free_bytes=disk_bytes // 2) as held:
        vc.recorder.note("datastore filled", {"datastore": place.datastore_name, "bytes_held": held,
                                              "left_free": disk_bytes // 2, "disk_bytes": disk_bytes})
        refused(actions[operation], f"{operation} on a full datastore", expected=vim.fault.NoDiskSpace)

    unchanged(before, vms.state(vc, vm, label="after", phase="after"), f"{operation} on a full datastore")
    seen = events.wait_for_event(vc, events.NO_DISK_SPACE, since, inventory.timeouts.event)
    assert seen, f"no {events.NO_DISK_SPACE} event after the {operation} failed for lack of space"
    assert all(e.severity == "error" for e in seen), f"severity {[e.severity for e in seen]}, expected critical (error)"


# ---- EVT-REKEY-MIXED ------------------------------------------------------------------------------
@pytest.mark.rule("EVT-REKEY-MIXED")
@pytest.mark.destructive
@pytest.mark.requires("fault_injection", "snapshots", "vm_encryption", "key_providers", "storage_policies")
@pytest.mark.covers(snapshots="chain")
@pytest.mark.test_id("236d0993-dc46-4427-ba85-2abb9b9fc249")
def test_a_shallow_recrypt_that_stops_part_way_reports_the_chain_left_on_mixed_keys(
        control, inventory, scratch, vc, place, provider, policies_a):
    vm = scratch.vm(vc, place, "mixed-keys")
    old_key = keys.generate_key(vc, provider)
    crypto.encrypt(vc, vm, old_key, policies_a.encryption)
    for name in ("s1", "s2", "s3"):
        snapshots.create(vc, vm, name)
    new_key = keys.generate_key(vc, provider)
    since = events.server_time(vc)

    with control.failing_rekey(after_links=1):
        refused(lambda: crypto.shallow_rekey(vc, vm, new_key), "shallow recrypt stopping part-way")

    chain = require_some(snapshots.with_keys(vc, vm, label="snapshot keys after the failure"), "snapshot")
    on = {s.key for s in chain}
    assert old_key in on and new_key in on, f"the fault did not leave the chain on mixed keys (snapshot keys {on})"
    seen = events.wait_for_event(vc, [events.REKEY_FAIL, events.MIXED_KEYS], since, inventory.timeouts.event,
                                 entity=vm)
    assert seen, (f"the chain of {vm._moId} is on mixed keys but neither {events.REKEY_FAIL} nor "
                  f"{events.MIXED_KEYS} was posted on the VM")
    assert all(e.severity in ("error", "warning") for e in seen), f"severity {[e.severity for e in seen]}"
