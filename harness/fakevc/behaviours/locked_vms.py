"""Locked VMs: an encrypted VM whose key its host lacks and vCenter cannot get from the KMS (LOCK-*).

Sources:
- vSphere Security, "Resolve Missing Key Issues" (6.7:
  https://docs.vmware.com/en/VMware-vSphere/6.7/com.vmware.vsphere.security.doc/GUID-75758B55-E406-48B0-91F6-3F573459CB9A.html,
  8.0: https://docs.vmware.com/en/VMware-vSphere/8.0/vsphere-security/GUID-75758B55-E406-48B0-91F6-3F573459CB9A.html):
  a VM enters the locked state only when the key is not on its ESXi host AND vCenter cannot retrieve it
  from the KMS (after a host reboot, or when the VM is registered again); losing the KMS alone locks
  nothing. A locked VM can still be unregistered or reloaded, "you cannot perform other virtual machine
  operations such as powering on"; an event is posted ("Virtual machine is locked because keys are
  missing on KMS cluster" / "... because of a KMS cluster error"), "an error message appears in the
  event log" (8.0); once the keys are available again, "unlock the locked virtual machines"
  (CryptoUnlock_Task, "Unlock Locked Virtual Machines") or reboot the host and re-register the VM.
- vSphere API reference, VirtualMachineCryptoState (6.7): `locked` = "the configuration key missing on
  the ESX host where the VM is registered"; VirtualMachine.CryptoUnlock_Task (6.7, Cryptographer.RegisterVM).
- Event ids com.vmware.vc.vm.Crypto.VMLocked.KeyMissingOnKMS / .KMSClusterError / VMUnlocked (7.0+):
  lamw/vcenter-event-mapping (API.md 6.1).

Choices where vSphere is silent (the fake's, not asserted on a real target beyond the sources above):
which fault a refused operation raises (here EncryptionKeyRequired, an InvalidState naming the keys,
vSphere API reference "EncryptionKeyRequired": "an operation fails due to one or more required encryption
keys"); that crypto reconfigurations and clones count among the refused "other operations" (they need
the key too); that a locked VM stays locked once its key is served again, until CryptoUnlock_Task (the
suites do not assert it); the fault injection itself (`key_lost`: the KMS stops serving one key and the hosts holding
it reboot) stands in for a KMS administrator retiring a key, which no vSphere API can ask for.
"""
from __future__ import annotations

from pyVmomi import vim

from harness.fakevc.defects import defect
from harness.fakevc.disks import KeyRef
from harness.fakevc.kmip import keys
from harness.fakevc.model.host import key_id
from harness.fakevc.model.vm import VirtualMachine
from harness.fakevc.server import FakeVCenter

KEY_MISSING_ON_KMS = "com.vmware.vc.vm.Crypto.VMLocked.KeyMissingOnKMS"
KMS_CLUSTER_ERROR = "com.vmware.vc.vm.Crypto.VMLocked.KMSClusterError"
UNLOCKED = "com.vmware.vc.vm.Crypto.VMUnlocked"

STAYS_UNLOCKED = defect(
    "lock-state-stays-unlocked", "LOCK-STATE",
    "a VM whose key neither its host nor the KMS has keeps runtime.cryptoState 'unlocked'")
NO_LOCK_EVENT = defect(
    "lock-state-no-event", "LOCK-STATE",
    "a VM becomes locked because its key is missing on the KMS, but no VMLocked event is posted")
WRONG_CAUSE = defect(
    "lock-state-wrong-cause", "LOCK-STATE",
    "a VM locked because the KMS did not answer is reported as locked for keys missing on the KMS "
    "(VMLocked.KeyMissingOnKMS instead of VMLocked.KMSClusterError)")
REFUSAL_IGNORED = defect(
    "lock-refused-ignored", "LOCK-REFUSED",
    "a locked VM is powered on and cloned as if its keys were on its host")
REFUSAL_HALF = defect(
    "lock-refused-half", "LOCK-REFUSED",
    "an operation on a locked VM is refused, but the VM is reported unlocked afterwards", half_applied=True)
UNLOCK_WITHOUT_KEY = defect(
    "lock-unlock-without-key", "LOCK-UNLOCK",
    "CryptoUnlock_Task succeeds while the KMS still does not serve the VM's key")
UNLOCK_HALF = defect(
    "lock-unlock-half", "LOCK-UNLOCK",
    "CryptoUnlock_Task fails while the key is missing, but the VM is reported unlocked anyway", half_applied=True)
UNLOCK_REKEYS = defect(
    "lock-unlock-rekeys", "LOCK-UNLOCK",
    "CryptoUnlock_Task gives the VM home a new key from the default provider instead of sending its own")
UNLOCK_NO_EVENT = defect(
    "lock-unlock-no-event", "LOCK-UNLOCK",
    "CryptoUnlock_Task unlocks the VM but posts no VMUnlocked event")


def _post(vc: FakeVCenter, type_id: str, vm: VirtualMachine, severity: str, message: str, **arguments: str) -> None:
    vc.events.post(type_id, entity=vm, severity=severity, message=message, arguments=arguments)


# ---- becoming locked --------------------------------------------------------------------------
def lock(vm: VirtualMachine, missing: KeyRef, reason: str, unreachable: bool) -> None:
    """vCenter could not send `missing` to the VM's host: the VM is locked, with the event naming why."""
    vc = vm.vc
    if vc.world.defects.on(STAYS_UNLOCKED):
        return
    vm.locked = True
    if vc.world.defects.on(NO_LOCK_EVENT):
        return
    unreachable = unreachable and not vc.world.defects.on(WRONG_CAUSE)
    type_id, why = ((KMS_CLUSTER_ERROR, "an error occurred on the key provider") if unreachable
                    else (KEY_MISSING_ON_KMS, "keys were missing on the key provider"))
    _post(vc, type_id, vm, "error", f"Virtual machine {vm.name} is locked because {why}: {reason}",
          vmName=vm.name, keyId=missing[1], providerId=missing[0])


def lose_key(vc: FakeVCenter, key: KeyRef) -> list[VirtualMachine]:
    """Fault injection: the KMS stops serving `key`, and the hosts of this vCenter holding it reboot (their
    key caches empty); vCenter pushes the keys again and cannot get this one: each VM that needs it is
    locked (the two conditions of "Resolve Missing Key Issues"). Returns the VMs now locked."""
    keys.withheld(vc).add(key)
    keys.forget_key_material(vc)
    return refetch(vc, key)


def refetch(vc: FakeVCenter, key: KeyRef) -> list[VirtualMachine]:
    """Fault injection: the hosts of this vCenter holding `key` reboot and must get it again from vCenter,
    which asks the KMS (one KMIP Get); where the KMS does not give it (missing, or unreachable) each VM that
    needs it is locked. Returns the VMs now locked."""
    locked: list[VirtualMachine] = []
    for vm in vc.vms():
        host = vm.host
        if host is None or key not in vm.needed_keys():
            continue
        host.key_cache.discard(key)
        failure = keys.kek_failure(vc, key)
        if failure is None:   # the KMS gave it: the host has it again
            host.key_cache.add(key)
            continue
        lock(vm, key, *failure)
        locked.append(vm)
    return locked


def key_back(vc: FakeVCenter, key: KeyRef) -> None:
    """The KMS serves `key` again. Locked VMs stay locked until CryptoUnlock_Task (or re-registration): the
    fake's reading of "When the key server and keys become available, unlock the locked virtual machines"
    (vSphere is silent on whether vCenter unlocks by itself; the suites do not assert either way)."""
    keys.withheld(vc).discard(key)
    keys.forget_key_material(vc)


# ---- what a locked VM refuses -----------------------------------------------------------------
def refuse_while_locked(vm: VirtualMachine, operation: str) -> None:
    """Before `operation` changes anything: a locked VM refuses it (EncryptionKeyRequired names the keys its
    host lacks). Unregistering and reloading stay allowed, as the Security guide says (not checked here)."""
    if not vm.locked:
        return
    defects = vm.vc.world.defects
    if defects.on(REFUSAL_IGNORED):
        return
    missing = sorted(vm.needed_keys() - (vm.host.key_cache if vm.host is not None else set()))
    fault = vim.fault.EncryptionKeyRequired(
        requiredKey=[key_id(*k) for k in missing],
        msg=f"'{vm.name}' is locked: the keys it is encrypted with are missing on its host ({operation} is not "
            "possible until the keys are available and the virtual machine is unlocked with CryptoUnlock_Task).")
    if defects.on(REFUSAL_HALF):
        vm.locked = False
    raise fault


# ---- CryptoUnlock_Task's LOCK-UNLOCK defects (called by key_push.unlock) ------------------------
def unlock_fetch_failed(vm: VirtualMachine) -> bool:
    """The KMS did not give a key: True when a seeded defect lets the unlock go on (the caller then unlocks
    without the key); under the half-applied defect the VM is shown unlocked and the fault still raised."""
    defects = vm.vc.world.defects
    if defects.on(UNLOCK_HALF):
        vm.locked = False
    return defects.on(UNLOCK_WITHOUT_KEY)


def unlock_rekeys(vm: VirtualMachine) -> bool:
    """Whether a seeded defect re-keys the VM home while unlocking it."""
    return vm.vc.world.defects.on(UNLOCK_REKEYS)


def unlock_event(vm: VirtualMachine) -> None:
    """The VMUnlocked event (7.0+ event id), unless a seeded defect drops it."""
    if not vm.vc.world.defects.on(UNLOCK_NO_EVENT):
        _post(vm.vc, UNLOCKED, vm, "info", f"Virtual machine {vm.name} is unlocked.", vmName=vm.name)
