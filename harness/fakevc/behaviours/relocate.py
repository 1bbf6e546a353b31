"""RelocateVM_Task within a vCenter and to another vCenter (a ServiceLocator in the spec).

A cross-vCenter migration of an encrypted VM keeps its keys and its bytes: the destination
vCenter must have the VM's key provider (KMS-DEDICATED, XVC-DEST-KMS) backed by the same key store
(KMS-SHARED: the key fetched through the destination is the key the source holds), both ESXi
hosts must run 7.0 or later (XVC-HOSTVER), and no decrypt or recrypt may ride along
(XVC-MIGRATE-NO-DECRYPT, XVC-MIGRATE-NO-RECRYPT). The shared pieces (destination lookup,
cross-vCenter checks) are in destination.py: they serve cross-vCenter clones too (clone.py).

Choice where vSphere is silent: XVC-DEST-KMS is enforced by requiring the provider on the
destination vCenter, whatever the crypto state of the destination host.
"""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

from harness.fakevc.behaviours import clone as cloning
from harness.fakevc.behaviours import key_push, lifecycle, space
from harness.fakevc.behaviours.crypto_rules import DECRYPT, ENCRYPT, Checks, Keks, not_supported, post
from harness.fakevc.behaviours.destination import Target, check_cross, target_of
from harness.fakevc.defects import defect
from harness.fakevc.model.base import CallContext
from harness.fakevc.model.vm import VirtualMachine
from harness.fakevc.server import FakeVCenter

MIGRATE_NEW_KEY = defect("xvc-migrate-new-key", "XVC-MIGRATE",
                         "an encrypted VM migrated to another vCenter arrives with a new key")
MIGRATE_SOURCE_KEPT = defect("xvc-migrate-source-kept", "XVC-MIGRATE",
                             "a VM migrated to another vCenter is also left registered on the source")
ALLOWS_DECRYPT = defect("xvc-migrate-allows-decrypt", "XVC-MIGRATE-NO-DECRYPT",
                        "a cross-vCenter migration with a non-encryption policy decrypts the VM")
DECRYPT_HALF = defect("xvc-migrate-decrypt-half", "XVC-MIGRATE-NO-DECRYPT",
                      "a decrypting cross-vCenter migration is refused, but the VM is moved and decrypted anyway",
                      half_applied=True)
ALLOWS_RECRYPT = defect("xvc-migrate-allows-recrypt", "XVC-MIGRATE-NO-RECRYPT",
                        "a cross-vCenter migration with a recrypt spec gives the VM a new key")
RECRYPT_HALF = defect("xvc-migrate-recrypt-half", "XVC-MIGRATE-NO-RECRYPT",
                      "a recrypting cross-vCenter migration is refused, but the VM is moved with a new key anyway",
                      half_applied=True)

REFUSAL_IS_LOGIN_FAILURE = defect("xvc-decrypt-refusal-is-login-failure", "XVC-MIGRATE-NO-DECRYPT",
                                  "a cross-vCenter migration asking to decrypt fails at the destination login "
                                  "(InvalidLogin) instead of being refused by the rule", caught_as="error")

MIGRATING_EVENT = "com.vmware.vc.vm.VmMigratingWithEncryptionEvent"
HOT_MIGRATING_EVENT = "com.vmware.vc.vm.VmHotMigratingWithEncryptionEvent"


# ---- RelocateVM_Task -------------------------------------------------------------------------------
def relocate(ctx: CallContext, vm: VirtualMachine, spec: Any) -> None:
    target = target_of(vm, spec)
    if target.cross:
        _migrate_cross(ctx, vm, spec, target)
    else:
        _move_local(ctx, vm, spec, target)


def _move_local(ctx: CallContext, vm: VirtualMachine, spec: Any, target: Target) -> None:
    vc = vm.vc
    checks = Checks(vc)
    intent = cloning.read_intent(vc, vm, None, spec, [(d, d.chain) for d in vm.disks])
    if intent.changes:
        raise not_supported("The encryption of a virtual machine cannot be changed while it is migrated; "
                            "reconfigure it or clone it instead.")
    if vm.encrypted:
        vc.authz.require(ctx, vm, "Cryptographer.Migrate")
    moving_files = target.datastore is not vm.datastore
    if moving_files:
        need = space.needed_by_datastore(vm.all_disk_files(), 1)
        space.check_copy(checks, vm, {target.datastore: sum(need.values())}, "migration", crypto=False)
    if vm.encrypted and target.host is not vm.host:
        key_push.prepare_host(ctx, target.host)
    if moving_files:
        for link in vm.all_disk_files():
            link.path = f"[{target.datastore.name}] {link.path.split('] ', 1)[-1]}"
            link.datastore = target.datastore
        vm.datastore = target.datastore
    if target.pool is not vm.pool:
        if vm.pool is not None and vm in vm.pool.vms:
            vm.pool.vms.remove(vm)
        target.pool.vms.append(vm)
        vm.pool = target.pool
    if target.folder is not vm.parent_mo:
        vm.parent_mo.remove(vm)
        target.folder.add(vm)
    moved_host = target.host is not vm.host
    vm.host = target.host
    if vm.migrate_encryption == "required" and (moved_host or moving_files):
        _migrating_event(vm, vm.vc)
    key_push.vm_keys_changed(vc, vm, ctx)
    checks.finish()


def _migrating_event(vm: VirtualMachine, vc: FakeVCenter) -> None:
    hot = vm.power_state == "poweredOn"
    post(vc, HOT_MIGRATING_EVENT if hot else MIGRATING_EVENT, vm, "info",
         f"Migrating {vm.name} {'with encrypted vMotion' if hot else 'with encryption'}", vm=vm.name)


def _migrate_cross(ctx: CallContext, vm: VirtualMachine, spec: Any, target: Target) -> None:
    src, dest = vm.vc, target.vc
    checks = Checks(src)
    intent = cloning.read_intent(src, vm, None, spec, [(d, d.chain) for d in vm.disks])
    kinds = intent.kinds()
    if vm.encrypted:
        src.authz.require(ctx, vm, "Cryptographer.Migrate")
    if vm.template:
        raise not_supported(f"'{vm.name}' is a template: templates cannot be migrated to another vCenter Server.")
    if vm.linked_parent is not None or vm.instant_clone_family or _has_linked_children(vm):
        raise not_supported(f"'{vm.name}' shares disks with other virtual machines (linked or instant clones) "
                            "and cannot be migrated to another vCenter Server.")
    if not vm.encrypted and ENCRYPT in kinds:
        raise not_supported("A virtual machine cannot be encrypted while it is migrated to another vCenter Server.")
    if vm.power_state == "poweredOn" and not src.quirk("hot_xvc_vmotion"):
        # A lab without a vMotion network between the vCenters' hosts, or without the licence, cannot move a
        # running VM at all, encrypted or not (the fault class is the fake's choice; API.md 3.2 lists MigrationFault).
        raise vim.fault.MigrationNotReady(reason="no vMotion network between the source and destination hosts",
                                          msg=f"Hot migration of '{vm.name}' to vCenter {dest.name} is not possible: "
                                              "no vMotion network between the source and destination hosts.")
    if DECRYPT in kinds and src.quirk("ignores_unsupported") and not checks.on(ALLOWS_DECRYPT):
        # The reference leaves open whether vCenter refuses or ignores a decrypt during a cross-vCenter migration
        # (API.md 3.2: UNCONFIRMED); this quirk ignores it: the VM moves on its keys.
        intent, kinds = intent.kept(), set()
    if DECRYPT in kinds and checks.on(REFUSAL_IS_LOGIN_FAILURE):
        raise vim.fault.InvalidLogin(msg="Cannot complete login due to an incorrect user name or password.")
    if DECRYPT in kinds:
        checks.refuse(not_supported(f"'{vm.name}' cannot be decrypted while it is migrated to another vCenter Server "
                                    "(a storage policy without encryption, or a decrypt spec, was given)."),
                      ignored=ALLOWS_DECRYPT, half=DECRYPT_HALF)
    if kinds - {DECRYPT}:
        checks.refuse(not_supported(f"The keys of '{vm.name}' cannot be changed while it is migrated to another "
                                    "vCenter Server (no recrypt during a cross-vCenter migration)."),
                      ignored=ALLOWS_RECRYPT, half=RECRYPT_HALF)
    keks = Keks(src)
    encrypted_any = vm.encrypted or bool(vm.keys_in_use())
    check_cross(checks, vm, target, encrypted_any or intent.changes, vm.keys_in_use(), vm.keys_in_use(), keks)
    need = space.needed_by_datastore(vm.all_disk_files(), 1)
    space.check_copy(checks, vm, {target.datastore: sum(need.values())}, "migration", crypto=False)
    if encrypted_any:
        key_push.prepare_host(None, target.host)
    if checks.on(MIGRATE_NEW_KEY) and vm.encrypted and not intent.changes:
        intent = cloning.rekey_everything(intent, vm)
    intent = cloning.resolve_intent_keys(dest, intent)
    cloning.prefetch(keks, vm, intent, dest, all_links=True)
    new = cloning.materialize(vm, target, vm.name, intent, keks, mode="move")
    if vm.migrate_encryption == "required":
        _migrating_event(new, dest)
    if not checks.on(MIGRATE_SOURCE_KEPT):
        lifecycle.detach(vm)
        key_push.vm_keys_changed(src, vm, ctx)
    key_push.vm_keys_changed(dest, new, None)
    checks.finish()


def _has_linked_children(vm: VirtualMachine) -> bool:
    return any(other.linked_parent is vm for other in vm.vc.vms())

# ---- API handlers (registered in harness/fakevc/dispatch.py HANDLERS) --------------------------
def RelocateVM_Task(ctx: CallContext, vm: VirtualMachine, spec: Any, priority: str | None = None) -> Any:  # noqa: N802
    return vm.vc.tasks.run(ctx, vm, "VirtualMachine.relocate", lambda: relocate(ctx, vm, spec))
