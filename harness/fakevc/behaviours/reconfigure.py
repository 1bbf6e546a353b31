"""ReconfigVM_Task: ordinary settings, disks, and the crypto changes of VM home and each disk.

What a spec asks is decided first (`_plan`): VM-level `crypto` applies to VM home and is inherited
by every disk that has no CryptoSpec of its own (API.md 2.2); a storage-policy change alone
encrypts or decrypts (PowerCLI's Enable-VMEncryption sends only the encryption policy, and
vCenter takes a key from the default provider, API.md 2.5). Then every precondition is checked
(`_check`), the datastore space, the keys (generated and fetched), and only then is anything
changed, so a refusal leaves the VM exactly as it was.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim, vmodl

from harness.fakevc.behaviours import default_providers, key_push, locked_vms, space, vtpm
from harness.fakevc.behaviours import snapshots as snaps
from harness.fakevc.behaviours.crypto_rules import (DECRYPT, DEEP, ENCRYPT, GENERATE, NOOP, REGISTER, REKEYS,
                                                    SHALLOW, UNCHANGED, Checks, CryptoAsk, Keks, crypto_ask,
                                                    generate, has_snapshots, invalid_argument, invalid_state,
                                                    check_policy_fits, is_encryption_policy, not_supported, powered_on, requested_policy,
                                                    snapshot_tree, transform)
from harness.fakevc.build import new_disk_chain
from harness.fakevc.defects import defect
from harness.fakevc.disks import DiskFile, KeyRef
from harness.fakevc.kmip import keys
from harness.fakevc.model.base import CallContext
from harness.fakevc.model.vm import VirtualMachine, VmDisk
from harness.fakevc.server import FakeVCenter

ENCRYPT_OFF_IGNORED = defect("op-encrypt-off-ignored", "OP-ENCRYPT-OFF", "encrypts a powered-on VM")
ENCRYPT_OFF_HALF = defect("op-encrypt-off-half", "OP-ENCRYPT-OFF",
                          "raises InvalidPowerState for a powered-on VM but sets its key anyway", half_applied=True)
ENCRYPT_SNAPS_IGNORED = defect("op-encrypt-snapshots-ignored", "OP-ENCRYPT-NO-SNAPSHOTS", "encrypts a VM that has snapshots")
ENCRYPT_SNAPS_HALF = defect("op-encrypt-snapshots-half", "OP-ENCRYPT-NO-SNAPSHOTS",
                            "refuses to encrypt a VM with snapshots but encrypts it anyway", half_applied=True)
DECRYPT_OFF_IGNORED = defect("op-decrypt-off-ignored", "OP-DECRYPT-OFF", "decrypts a powered-on VM")
DECRYPT_OFF_HALF = defect("op-decrypt-off-half", "OP-DECRYPT-OFF",
                          "raises InvalidPowerState for a powered-on VM but decrypts it anyway", half_applied=True)
DEEP_IGNORED = defect("op-deep-off-no-snapshots-ignored", "OP-DEEP-OFF-NO-SNAPSHOTS",
                      "deep-recrypts a powered-on VM or a VM with snapshots")
DEEP_HALF = defect("op-deep-off-no-snapshots-half", "OP-DEEP-OFF-NO-SNAPSHOTS",
                   "refuses a deep recrypt of a powered-on VM / a VM with snapshots but changes the key anyway",
                   half_applied=True)
STATE_IGNORED = defect("op-state-ignored", "OP-STATE",
                       "encrypts an encrypted VM again, and 'recrypts'/'decrypts' an unencrypted VM without error")
STATE_HALF = defect("op-state-half", "OP-STATE",
                    "refuses encrypting an encrypted VM (or recrypting an unencrypted one) but changes its key anyway",
                    half_applied=True)
DISK_HOME_IGNORED = defect("op-disk-with-home-ignored", "OP-DISK-WITH-HOME",
                           "encrypts a disk of an unencrypted VM / attaches an encrypted disk to it")
DISK_HOME_HALF = defect("op-disk-with-home-half", "OP-DISK-WITH-HOME",
                        "refuses encrypting a disk of an unencrypted VM but encrypts the disk anyway", half_applied=True)
# A check written as "refuse when powered on" instead of "allow only when powered off" lets a
# suspended VM through: one defect per rule, so each rule's suspended instance proves it can fail.
ENCRYPT_SUSPENDED = defect("op-encrypt-off-allows-suspended", "OP-ENCRYPT-OFF",
                           "encrypts a suspended VM (only a powered-on VM is refused)")
DECRYPT_SUSPENDED = defect("op-decrypt-off-allows-suspended", "OP-DECRYPT-OFF",
                           "decrypts a suspended VM (only a powered-on VM is refused)")
DEEP_SUSPENDED = defect("op-deep-off-allows-suspended", "OP-DEEP-OFF-NO-SNAPSHOTS",
                        "deep-recrypts a suspended VM (only a powered-on VM is refused)")
BRANCHES_IGNORED = defect("snap-branches-allowed", "SNAP-BRANCHES",
                          "shallow-recrypts a VM whose snapshot tree has several branches")
BRANCHES_HALF = defect("snap-branches-half", "SNAP-BRANCHES",
                       "refuses a shallow recrypt on a snapshot tree but changes the VM key anyway", half_applied=True)
PRE7_IGNORED = defect("snap-pre7-allows-shallow", "SNAP-PRE7",
                      "a 6.7 vCenter shallow-recrypts a VM that has snapshots")
PRE7_HALF = defect("snap-pre7-half", "SNAP-PRE7",
                   "a 6.7 vCenter refuses a shallow recrypt with snapshots but changes the key anyway", half_applied=True)
LINKED_IGNORED = defect("clone-linked-allows-rekey", "CLONE-LINKED", "recrypts or decrypts a linked clone")
LINKED_HALF = defect("clone-linked-rekey-half", "CLONE-LINKED",
                     "refuses recrypting/decrypting a linked clone but changes its key anyway", half_applied=True)
IC_IGNORED = defect("ic-locked-allows-rekey", "IC-LOCKED",
                    "recrypts or decrypts the parent or a child of an instant clone")
IC_HALF = defect("ic-locked-half", "IC-LOCKED",
                 "refuses recrypting an instant-clone parent/child but changes its key anyway", half_applied=True)
DEEP_SPACE_HALF = defect("rekey-deep-space-half", "REKEY-DEEP",
                         "a deep recrypt without the temporary disk space fails with NoDiskSpace, but the VM is "
                         "rekeyed anyway", half_applied=True)
FLIGHT_RELAXABLE = defect("data-in-flight-relaxable", "DATA-IN-FLIGHT",
                          "migrateEncryption of an encrypted VM can be set to disabled/opportunistic")
FLIGHT_HALF = defect("data-in-flight-half", "DATA-IN-FLIGHT",
                     "refuses relaxing migrateEncryption on an encrypted VM but relaxes it anyway", half_applied=True)
FLIGHT_NOT_REQUIRED = defect("data-in-flight-not-required", "DATA-IN-FLIGHT",
                             "encrypting a VM leaves migrateEncryption as it was instead of 'required'")


@dataclass
class DiskChange:
    """The effective crypto change and storage policy of one existing disk."""
    disk: VmDisk
    ask: CryptoAsk | None = None
    explicit: bool = False          # the spec named this disk's crypto (or policy) itself
    policy: Any = UNCHANGED


@dataclass
class NewDisk:
    device: Any
    size: int
    ask: CryptoAsk | None
    policy: Any


@dataclass
class Plan:
    home: CryptoAsk | None = None
    register: KeyRef | None = None
    home_policy: Any = UNCHANGED
    disks: list[DiskChange] = field(default_factory=list)
    adds: list[NewDisk] = field(default_factory=list)
    removes: list[VmDisk] = field(default_factory=list)   # disks removed (their files go with them)

    def changes(self) -> list[tuple[str, Any, CryptoAsk]]:
        """(target, disk-or-None, ask) for every crypto change, VM home first."""
        out: list[tuple[str, Any, CryptoAsk]] = []
        if self.home is not None:
            out.append(("home", None, self.home))
        out.extend(("disk", c.disk, c.ask) for c in self.disks if c.ask is not None)
        out.extend(("new", n, n.ask) for n in self.adds if n.ask is not None)
        return out

    def kinds(self) -> set[str]:
        return {ask.kind for _, _, ask in self.changes()}


# ---- entry point ------------------------------------------------------------------------------
def reconfigure(ctx: CallContext, vm: VirtualMachine, spec: Any) -> None:
    vc = vm.vc
    plan = _plan(vc, vm, spec)
    tpm = vtpm.read(spec)   # VTPM-*: a vTPM add/remove may change the VM home by itself (behaviours/vtpm.py)
    plan.home = vtpm.plan_home(vm, tpm, plan.home, spec.crypto is not None, plan.home_policy is not UNCHANGED)
    if isinstance(plan.home, vtpm.HomeForTpm):   # the vTPM's VM home only: the disks keep what they had
        for change in plan.disks:
            if not change.explicit:
                change.ask = None
    if plan.changes():
        locked_vms.refuse_while_locked(vm, f"{'/'.join(sorted(plan.kinds()))} reconfiguration")   # LOCK-REFUSED
    _require_privileges(ctx, vm, plan)
    checks = Checks(vc)
    vtpm.check(checks, vm, tpm, plan.home)
    _check(checks, vm, plan, spec)
    _check_space(checks, vm, plan)
    if plan.changes() or plan.register is not None:
        key_push.prepare_host(ctx, vm.host)   # HOST-CRYPTO-MODE: the host goes crypto-safe first
    keks = _resolve_keys(checks, vc, vm, plan)
    _apply_settings(vm, spec, plan)
    keys_before = vm.keys_in_use()
    encrypted_before = vm.encrypted
    try:
        _apply_crypto(vm, plan, keks, checks)
        vtpm.apply(vm, tpm, encrypted_before)
    finally:   # also after a recrypt that stopped part-way: hosts need the keys the chain is on
        if vm.keys_in_use() != keys_before or plan.register is not None:
            key_push.vm_keys_changed(vc, vm, ctx)
    checks.finish()


# ---- what the spec asks ------------------------------------------------------------------------
def _plan(vc: FakeVCenter, vm: VirtualMachine, spec: Any) -> Plan:
    plan = Plan(home_policy=requested_policy(spec.vmProfile))
    check_policy_fits(vc, plan.home_policy, "vmProfile")
    entity = default_providers.default_entity(vm)   # whose default provider a key naming none is of
    ask = crypto_ask(vc, spec.crypto, entity)
    if ask is not None and ask.kind == REGISTER:
        if ask.key != vm.key:
            raise invalid_argument("crypto.cryptoKeyId", "CryptoSpecRegister must name the key the VM is encrypted with")
        plan.register = ask.key
    elif ask is not None and ask.kind != NOOP:
        plan.home = ask
    elif plan.home_policy is not UNCHANGED:
        encrypting_policy = is_encryption_policy(vc, plan.home_policy)
        if encrypting_policy and not vm.encrypted:
            if ask is None and not vc.quirk("policy_only_encrypt"):
                # API.md 2.5/10: whether vCenter generates a key from the default provider for a policy-only
                # encrypt (PowerCLI's Enable-VMEncryption without -KMSClusterId relies on it) is UNCONFIRMED.
                raise invalid_argument("crypto", "an encryption storage policy needs a CryptoSpecEncrypt with a key")
            plan.home = CryptoAsk(ENCRYPT, GENERATE) if ask is None else None
        elif not encrypting_policy and vm.encrypted:
            plan.home = CryptoAsk(DECRYPT) if ask is None else None
        if plan.home is None and ask is not None and encrypting_policy != vm.encrypted:
            raise invalid_argument("vmProfile", "a NoOp crypto spec cannot change the encryption of the VM home")
    explicit: dict[int, DiskChange] = {}
    for change in spec.deviceChange or []:
        device = change.device
        if not isinstance(device, vim.vm.device.VirtualDisk):
            continue
        d_ask = crypto_ask(vc, change.backing.crypto, entity) if change.backing is not None else None
        d_policy = requested_policy(change.profile)
        check_policy_fits(vc, d_policy, "deviceChange.profile")
        if change.operation == "add":
            plan.adds.append(_new_disk(vc, vm, device, change, d_ask, d_policy))
        elif change.operation == "remove":
            plan.removes.append(_existing(vm, device))
        elif change.operation == "edit":
            disk = _existing(vm, device)
            explicit[disk.key] = _disk_change(vc, vm, plan, disk, d_ask, d_policy)
    for disk in vm.disks:
        if any(disk is removed for removed in plan.removes):
            continue
        plan.disks.append(explicit.get(disk.key) or _inherited(plan, disk))
    return plan


def _existing(vm: VirtualMachine, device: Any) -> VmDisk:
    disk = vm.disk(device.key)
    if disk is None:
        raise invalid_argument("deviceChange.device.key", f"the VM has no disk with key {device.key}")
    return disk


def _disk_change(vc: FakeVCenter, vm: VirtualMachine, plan: Plan, disk: VmDisk, ask: CryptoAsk | None, policy: Any) -> DiskChange:
    if ask is not None and ask.kind in (NOOP, REGISTER):
        return DiskChange(disk, None, explicit=True, policy=policy)
    if ask is not None:
        return DiskChange(disk, ask, explicit=True, policy=policy)
    if policy is not UNCHANGED:
        encrypting_policy = is_encryption_policy(vc, policy)
        if encrypting_policy and not disk.top.encrypted:
            return DiskChange(disk, CryptoAsk(ENCRYPT, _home_key_after(vm, plan)), explicit=True, policy=policy)
        if not encrypting_policy and disk.top.encrypted:
            return DiskChange(disk, CryptoAsk(DECRYPT), explicit=True, policy=policy)
        return DiskChange(disk, None, explicit=True, policy=policy)
    return _inherited(plan, disk)


def _home_key_after(vm: VirtualMachine, plan: Plan) -> KeyRef:
    """The key a disk encrypted by its policy alone gets: the VM home's (a new one if there is none)."""
    if plan.home is not None and plan.home.kind in (ENCRYPT, *REKEYS):
        return plan.home.key
    return vm.key if vm.key and (plan.home is None or plan.home.kind != DECRYPT) else GENERATE


def _inherited(plan: Plan, disk: VmDisk) -> DiskChange:
    """A disk without its own CryptoSpec follows the VM-level change (API.md 2.2)."""
    home = plan.home
    policy = plan.home_policy
    if home is None:
        return DiskChange(disk)
    if home.kind == ENCRYPT and not disk.top.encrypted:
        return DiskChange(disk, home, policy=policy)
    if home.kind in (DECRYPT, *REKEYS) and any(link.encrypted for link in disk.chain):
        return DiskChange(disk, home, policy=policy)
    return DiskChange(disk)


def _new_disk(vc: FakeVCenter, vm: VirtualMachine, device: Any, change: Any, ask: CryptoAsk | None, policy: Any) -> NewDisk:
    size = device.capacityInBytes or (device.capacityInKB or 64) * 1024
    file_name = getattr(device.backing, "fileName", None) if device.backing is not None else None
    if change.fileOperation != "create" and file_name:
        existing = _find_file(vc, file_name)
        if existing is None:
            raise vim.fault.FileNotFound(file=file_name, msg=f"File {file_name} was not found")
        if existing.encrypted and ask is None:
            ask = _AttachEncrypted(existing.key)
        if not isinstance(ask, _AttachEncrypted):
            raise not_supported("Attaching an existing unencrypted disk file is not modelled by the fake vCenter.")
    if ask is not None and ask.kind in (NOOP, REGISTER):
        ask = None
    if ask is None and policy is not UNCHANGED and is_encryption_policy(vc, policy):
        ask = CryptoAsk(ENCRYPT, None)   # the VM home key, once it is known (_resolve_keys)
    return NewDisk(device, size, ask, policy)


class _AttachEncrypted(CryptoAsk):
    """Attaching an existing, already encrypted disk file (checked, never applied: see OP-DISK-WITH-HOME)."""

    def __init__(self, key: KeyRef) -> None:
        super().__init__(ENCRYPT, key)


def _find_file(vc: FakeVCenter, path: str) -> DiskFile | None:
    for other in vc.vms():
        for link in other.all_disk_files():
            if link.path == path:
                return link
    return None


# ---- privileges and preconditions -------------------------------------------------------------
def _require_privileges(ctx: CallContext, vm: VirtualMachine, plan: Plan) -> None:
    needed = []
    for target, _, ask in plan.changes():
        if target == "new":
            needed.append("Cryptographer.AddDisk" if isinstance(ask, _AttachEncrypted) else "Cryptographer.Encrypt")
        elif ask.kind == ENCRYPT:
            needed.append("Cryptographer.Encrypt")
        elif ask.kind == DECRYPT:
            needed.append("Cryptographer.Decrypt")
        else:
            needed.append("Cryptographer.Recrypt")
    for privilege in dict.fromkeys(needed):
        vm.vc.authz.require(ctx, vm, privilege)


def _home_encrypted_after(vm: VirtualMachine, plan: Plan) -> bool:
    if plan.home is None:
        return vm.encrypted
    return plan.home.kind != DECRYPT


def _check(checks: Checks, vm: VirtualMachine, plan: Plan, spec: Any) -> None:
    vc = vm.vc
    kinds = plan.kinds()
    changes_keys = bool(kinds & {DECRYPT, SHALLOW, DEEP})
    # Who the VM is: linked clones and instant-clone families keep their keys.
    if changes_keys and vm.linked_parent is not None:
        checks.refuse(not_supported(f"'{vm.name}' is a linked clone: it keeps its parent's encryption and keys "
                                    "(recrypt and decrypt are not supported on linked clones)."),
                      ignored=LINKED_IGNORED, half=LINKED_HALF)
    if changes_keys and vm.instant_clone_family:
        checks.refuse(not_supported(f"'{vm.name}' is the parent or a child of an instant clone: its keys cannot be "
                                    "recrypted or decrypted."), ignored=IC_IGNORED, half=IC_HALF)
    _check_states(checks, vm, plan)
    # Power state and snapshots, once per kind of change.
    has_snaps = bool(vm.root_snapshots)
    # "Needs the VM powered off": powered on and suspended are both refused (crypto_rules.powered_on).
    on = vm.power_state != "poweredOff"
    suspended = vm.power_state == "suspended"
    if ENCRYPT in kinds:
        if on:
            checks.refuse(powered_on(vm, "encrypting"), half=ENCRYPT_OFF_HALF,
                          ignored=(ENCRYPT_OFF_IGNORED, *((ENCRYPT_SUSPENDED,) if suspended else ())))
        if has_snaps:
            checks.refuse(has_snapshots("encrypting"), ignored=ENCRYPT_SNAPS_IGNORED, half=ENCRYPT_SNAPS_HALF)
    if DECRYPT in kinds:
        if on:
            checks.refuse(powered_on(vm, "decrypting"), half=DECRYPT_OFF_HALF,
                          ignored=(DECRYPT_OFF_IGNORED, *((DECRYPT_SUSPENDED,) if suspended else ())))
        if has_snaps:
            checks.refuse(has_snapshots("decrypting"))
    if DEEP in kinds:
        if on:
            checks.refuse(powered_on(vm, "a deep recrypt"), half=DEEP_HALF,
                          ignored=(DEEP_IGNORED, *((DEEP_SUSPENDED,) if suspended else ())))
        if has_snaps:
            checks.refuse(has_snapshots("a deep recrypt"), ignored=DEEP_IGNORED, half=DEEP_HALF)
    if SHALLOW in kinds and has_snaps:
        if vc.is_pre7:
            checks.refuse(has_snapshots(f"a shallow recrypt on vCenter {vc.version}"), ignored=PRE7_IGNORED, half=PRE7_HALF)
        elif vm.has_snapshot_tree():
            checks.refuse(snapshot_tree(), ignored=BRANCHES_IGNORED, half=BRANCHES_HALF)
        snaps.check_retry(checks, vm)
    _check_policies(checks, vm, plan)
    _check_migrate_encryption(checks, vm, plan, spec)


def _check_states(checks: Checks, vm: VirtualMachine, plan: Plan) -> None:
    """OP-STATE on VM home and on explicitly named disks; OP-DISK-WITH-HOME on the result."""
    home = plan.home
    if home is not None:
        if home.kind == ENCRYPT and vm.encrypted:
            checks.refuse(invalid_state(f"The virtual machine '{vm.name}' is already encrypted."),
                          ignored=STATE_IGNORED, half=STATE_HALF)
        elif home.kind != ENCRYPT and not vm.encrypted:
            checks.refuse(invalid_state(f"vm is not encrypted: '{vm.name}' cannot be "
                                        f"{'decrypted' if home.kind == DECRYPT else 'recrypted'}."),
                          ignored=STATE_IGNORED, half=STATE_HALF)
    for change in plan.disks:
        if not change.explicit or change.ask is None:
            continue
        encrypted = change.disk.top.encrypted
        if change.ask.kind == ENCRYPT and encrypted:
            checks.refuse(invalid_state(f"{change.disk.label} of '{vm.name}' is already encrypted."),
                          ignored=STATE_IGNORED, half=STATE_HALF)
        elif change.ask.kind != ENCRYPT and not encrypted:
            checks.refuse(invalid_state(f"{change.disk.label} of '{vm.name}' is not encrypted."),
                          ignored=STATE_IGNORED, half=STATE_HALF)
    home_after = _home_encrypted_after(vm, plan)
    if home_after:
        return
    for change in plan.disks:
        encrypted_after = (change.disk.top.encrypted and (change.ask is None or change.ask.kind != DECRYPT)) or (
            change.ask is not None and change.ask.kind == ENCRYPT)
        if encrypted_after:
            what = ("encrypted" if change.ask is not None else "still encrypted")
            checks.refuse(invalid_state(f"A disk can be encrypted only when the VM home is encrypted: {change.disk.label} "
                                        f"of '{vm.name}' would be {what} while the VM home is not."),
                          ignored=DISK_HOME_IGNORED, half=DISK_HOME_HALF)
    for new in plan.adds:
        if new.ask is not None:
            checks.refuse(invalid_state(f"An encrypted disk cannot be attached to the unencrypted virtual machine "
                                        f"'{vm.name}'."), ignored=DISK_HOME_IGNORED, half=DISK_HOME_HALF)


def _check_policies(checks: Checks, vm: VirtualMachine, plan: Plan) -> None:
    """Encrypt and deep recrypt need the encryption policy; decrypt needs a policy without it."""
    vc = vm.vc
    for target, disk, ask in plan.changes():
        if target == "home":
            asked, current, where = plan.home_policy, vm.home_profile, "vmProfile"
        elif target == "disk":
            change = next(c for c in plan.disks if c.disk is disk)
            asked, current, where = change.policy, disk.profile, f"deviceChange[{disk.key}].profile"
        else:
            asked, current, where = disk.policy, None, "deviceChange.profile"
        if isinstance(ask, (_AttachEncrypted, vtpm.HomeForTpm)):   # a vTPM's VM home needs no policy
            continue
        effective = current if asked is UNCHANGED else asked
        encrypting_policy = is_encryption_policy(vc, effective)
        if ask.kind in (ENCRYPT, DEEP) and not encrypting_policy:
            checks.refuse(invalid_argument(where, f"{'encrypting' if ask.kind == ENCRYPT else 'a deep recrypt'} needs "
                                                  "the VM encryption storage policy"))
        elif ask.kind == DECRYPT and encrypting_policy:
            checks.refuse(invalid_argument(where, "decrypting needs a storage policy without encryption "
                                                  "(or the empty profile)"))


def _check_migrate_encryption(checks: Checks, vm: VirtualMachine, plan: Plan, spec: Any) -> None:
    wanted = spec.migrateEncryption
    if wanted in (None, "required"):
        return
    if vm.encrypted or _home_encrypted_after(vm, plan):
        checks.refuse(invalid_argument("migrateEncryption", f"'{vm.name}' is encrypted: encrypted vMotion is "
                                       f"required and cannot be set to '{wanted}'"),
                      ignored=FLIGHT_RELAXABLE, half=FLIGHT_HALF)


def _check_space(checks: Checks, vm: VirtualMachine, plan: Plan) -> None:
    links = []
    for change in plan.disks:
        if change.ask is not None and change.ask.kind in (ENCRYPT, DECRYPT, DEEP):
            links.extend(change.disk.chain)
    if links:
        kinds = plan.kinds() - {SHALLOW, NOOP}
        space.check_rewrite(checks, vm, links, "/".join(sorted(kinds)),
                            half=DEEP_SPACE_HALF if DEEP in kinds else None)


# ---- keys ------------------------------------------------------------------------------------
def _resolve_keys(checks: Checks, vc: FakeVCenter, vm: VirtualMachine, plan: Plan) -> Keks:
    """Generate asked-for keys (one per provider for the whole spec) and fetch every KEK needed."""
    generated: dict[KeyRef, KeyRef] = {}

    def resolve(ask: CryptoAsk | None) -> CryptoAsk | None:
        if ask is None or ask.key is None or ask.key[1]:
            return ask
        if ask.key not in generated:
            try:
                generated[ask.key] = generate(vc, ask.key, default_providers.default_entity(vm))
            except vmodl.MethodFault as fault:   # KMS-REQUIRED (keys.py), maybe half-applied
                invented = keys.half_applied_key(vc, ask.key)
                if invented is None:
                    raise
                checks.deferred = checks.deferred or fault
                generated[ask.key] = invented
        return CryptoAsk(ask.kind, generated[ask.key])

    plan.home = resolve(plan.home)
    for change in plan.disks:
        change.ask = resolve(change.ask)
    for new in plan.adds:
        if not isinstance(new.ask, _AttachEncrypted):
            new.ask = resolve(new.ask)
    if any(new.ask is not None and new.ask.key is None for new in plan.adds):
        for new in plan.adds:
            if new.ask is not None and new.ask.key is None:
                new.ask = CryptoAsk(ENCRYPT, (plan.home.key if plan.home else None) or vm.key)
    keks = Keks(vc)
    needed = {ask.key for _, _, ask in plan.changes() if ask.key}
    for change in plan.disks:
        if change.ask is not None:
            needed.update(link.key for link in change.disk.chain if link.key)
            if change.ask.kind == SHALLOW:
                needed.update(link.key for snap in vm.all_snapshots() for chain in snap.chains
                              for link in chain if link.key)
    keks.prefetch(needed)
    return keks


# ---- applying ------------------------------------------------------------------------------------
def _apply_settings(vm: VirtualMachine, spec: Any, plan: Plan) -> None:
    """The non-crypto part of the spec (names, annotation, extraConfig, sizes, disks removed)."""
    if spec.name:
        vm.name = spec.name
    if spec.annotation is not None:
        vm.annotation = spec.annotation
    if spec.numCPUs:
        vm.num_cpu = spec.numCPUs
    if spec.memoryMB:
        vm.memory_mb = spec.memoryMB
    for option in spec.extraConfig or []:
        if option.value in (None, ""):
            vm.extra_config.pop(option.key, None)
        else:
            vm.extra_config[option.key] = str(option.value)
    if spec.migrateEncryption:
        vm.migrate_encryption = spec.migrateEncryption
    for disk in plan.removes:
        vm.disks.remove(disk)


def _apply_crypto(vm: VirtualMachine, plan: Plan, keks: Keks, checks: Checks) -> None:
    vc = vm.vc
    home = plan.home
    shallow = [c for c in plan.disks if c.ask is not None and c.ask.kind == SHALLOW]
    by_key: dict[KeyRef, list[Any]] = {}
    for change in shallow:
        by_key.setdefault(change.ask.key, []).append(change.disk)
    if home is not None and home.kind == SHALLOW:
        by_key.setdefault(home.key, [])
    for key, disks in by_key.items():   # may stop part-way (SNAP-PARTIAL): the VM key is set after
        snaps.shallow_recrypt(vm, key, rekey_home=home is not None and home.kind == SHALLOW and home.key == key,
                              disks=disks, keks=keks, checks=checks)
    for change in plan.disks:
        if change.ask is not None and change.ask.kind != SHALLOW:
            for link in change.disk.chain:
                if not link.shared:
                    transform(vc, link, change.ask.kind, change.ask.key, keks)
        if change.policy is not UNCHANGED:
            change.disk.profile = change.policy
    for new in plan.adds:
        index = len(vm.disks)
        key = max([d.key for d in vm.disks] + [1999]) + 1
        disk = VmDisk(key=key, label=f"Hard disk {index + 1}", unit=new.device.unitNumber,
                      chain=new_disk_chain(vc, vm.name, vm.datastore, new.size, key - 2000),
                      profile=None if new.policy is UNCHANGED else new.policy)
        if new.ask is not None and new.ask.key:
            transform(vc, disk.chain[0], ENCRYPT, new.ask.key, keks)
        vm.disks.append(disk)
    if home is not None:
        vm.key = None if home.kind == DECRYPT else home.key
        if home.kind == ENCRYPT and not vc.world.defects.on(FLIGHT_NOT_REQUIRED):
            vm.migrate_encryption = "required"
    if plan.home_policy is not UNCHANGED:
        vm.home_profile = plan.home_policy

# ---- API handlers (registered in harness/fakevc/dispatch.py HANDLERS) --------------------------
def ReconfigVM_Task(ctx: CallContext, vm: VirtualMachine, spec: Any) -> Any:  # noqa: N802 (WSDL name)
    return vm.vc.tasks.run(ctx, vm, "VirtualMachine.reconfigure", lambda: reconfigure(ctx, vm, spec))
