"""InstantClone_Task: a running copy that shares its parent's disks and keys, on the parent's host.

The source must be powered on (vmodl.fault.InvalidArgument otherwise, API.md 3.3); the clone
lands powered on on the same host, reading the parent's disk links with a delta of its own on
the same key (IC-INHERIT). A spec may only place the clone (folder, pool, datastore) and change
network cards or file-backed serial/parallel ports: any storage policy or crypto spec is refused
(IC-NO-CRYPTO-CHANGE). Afterwards parent and clone form a family whose keys cannot be recrypted
or decrypted (IC-LOCKED, enforced by reconfigure.py).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from pyVmomi import vim, vmodl

from harness.fakevc.behaviours import clone as cloning
from harness.fakevc.behaviours import key_push, space
from harness.fakevc.behaviours.crypto_rules import GENERATE, SHALLOW, UNCHANGED, Checks, CryptoAsk, Keks, requested_policy
from harness.fakevc.behaviours.destination import Target
from harness.fakevc.defects import defect
from harness.fakevc.model.base import CallContext
from harness.fakevc.model.inventory import Folder
from harness.fakevc.model.vm import VirtualMachine

INHERIT_NEW_KEY = defect("ic-inherit-new-key", "IC-INHERIT",
                         "an instant clone of an encrypted VM gets a new key instead of its parent's")
CHANGE_ALLOWED = defect("ic-crypto-change-allowed", "IC-NO-CRYPTO-CHANGE",
                        "an instant clone applies the storage policy / crypto spec given in its spec")
CHANGE_HALF = defect("ic-crypto-change-half", "IC-NO-CRYPTO-CHANGE",
                     "an instant clone with a crypto change is refused, but the clone is created (with the change)",
                     half_applied=True)

_ALLOWED_DEVICES = (vim.vm.device.VirtualEthernetCard, vim.vm.device.VirtualSerialPort,
                    vim.vm.device.VirtualParallelPort)


def _invalid(prop: str, why: str) -> vmodl.fault.InvalidArgument:
    return vmodl.fault.InvalidArgument(invalidProperty=prop, msg=f"A specified parameter was not correct: {prop} ({why})")


def _crypto_fields(location: Any) -> list[str]:
    """The parts of a RelocateSpec that would change storage policy or encryption."""
    found = []
    if requested_policy(location.profile) is not UNCHANGED:
        found.append("location.profile")
    if getattr(location, "cryptoSpec", None) is not None:
        found.append("location.cryptoSpec")
    for locator in location.disk or []:
        if requested_policy(locator.profile) is not UNCHANGED:
            found.append("location.disk.profile")
        if getattr(locator, "backing", None) is not None:
            found.append("location.disk.backing")
    for change in location.deviceChange or []:
        if change.backing is not None or requested_policy(change.profile) is not UNCHANGED:
            found.append("location.deviceChange.backing")
    return found


def instant_clone(ctx: CallContext, vm: VirtualMachine, spec: Any) -> Any:
    vc = vm.vc
    checks = Checks(vc)
    if vm.power_state != "poweredOn":
        raise _invalid("vm", f"the source '{vm.name}' of an instant clone must be powered on "
                             f"(it is {vm.power_state})")
    location = spec.location or vim.vm.RelocateSpec()
    if location.service is not None:
        raise _invalid("spec.location.service", "an instant clone stays on its vCenter Server")
    if location.host is not None and vc.lookup(location.host) is not vm.host:
        raise _invalid("spec.location.host", "an instant clone runs on the host of its source")
    for change in location.deviceChange or []:
        if not isinstance(change.device, _ALLOWED_DEVICES):
            raise _invalid("spec.location.deviceChange",
                           f"{type(change.device).__name__} cannot be changed by an instant clone")
    folder = vc.lookup(location.folder) if location.folder is not None else vm.parent_mo
    if not isinstance(folder, Folder):   # the fake's choice of fault (the reference asks for a Folder)
        raise _invalid("spec.location.folder", "the destination is not a VM folder")
    if any(getattr(m, "name", None) == spec.name for m in folder.members):
        raise vim.fault.DuplicateName(name=spec.name, object=folder.ref, msg=f"The name '{spec.name}' already exists.")
    target = Target(vc, False, vm.host, vc.lookup(location.pool) if location.pool is not None else vm.pool,
                    vc.lookup(location.datastore) if location.datastore is not None else vm.datastore, folder)
    state = [(d, d.chain) for d in vm.disks]
    intent = cloning.Intent(None, {d.key: None for d, _ in state})
    asked = _crypto_fields(location)
    if asked and vc.quirk("ignores_unsupported") and not checks.on(CHANGE_ALLOWED):
        asked = []   # the reference says "NOT supported", not refused (API.md 3.3/11): this quirk ignores them
    if asked:
        checks.refuse(_invalid(asked[0], "the keys, the encryption and the storage policy cannot be changed "
                                         "during an instant clone"), ignored=CHANGE_ALLOWED, half=CHANGE_HALF)
        intent = cloning.read_intent(vc, vm, None, location, state)
    if vm.encrypted and not intent.changes and checks.on(INHERIT_NEW_KEY):
        intent = replace(intent, home=CryptoAsk(SHALLOW, GENERATE))
    space.check_copy(checks, vm, {target.datastore: sum(max(64, d.capacity // 16) for d in vm.disks)},
                     "instant clone", crypto=False)
    encrypted = vm.encrypted or bool(vm.keys_in_use())
    if encrypted:
        key_push.prepare_host(ctx, vm.host)
    intent = cloning.resolve_intent_keys(vc, intent)
    keks = Keks(vc)
    cloning.prefetch(keks, vm, intent, vc, state=state)
    keks.prefetch({chain[-1].key for _, chain in state if chain and chain[-1].key})
    new = cloning.materialize(vm, target, spec.name, intent, keks, mode="instant")
    new.power_state = "poweredOn"
    for option in spec.config or []:
        if option.value not in (None, ""):
            new.extra_config[option.key] = str(option.value)
    if spec.biosUuid:
        new.uuid = spec.biosUuid
    if encrypted:
        vm.instant_clone_family = new.instant_clone_family = True
    key_push.vm_keys_changed(vc, new, ctx)
    checks.finish()
    return new.ref

# ---- API handlers (registered in harness/fakevc/dispatch.py HANDLERS) --------------------------
def InstantClone_Task(ctx: CallContext, vm: VirtualMachine, spec: Any) -> Any:  # noqa: N802 (WSDL name)
    return vm.vc.tasks.run(ctx, vm, "VirtualMachine.instantClone", lambda: instant_clone(ctx, vm, spec))
