"""CloneVM_Task: full, template and linked clones, on one vCenter or to another, with crypto changes.

A clone's crypto change comes from `config.crypto` or `location.cryptoSpec` (VM home, inherited by
the disks) and from `location.disk[].backing.crypto` / `config.deviceChange[].backing.crypto` (per
disk), or from a storage policy alone (`location.profile`, `config.vmProfile`, disk profiles): an
encryption policy encrypts, a policy without encryption decrypts. Nothing asked keeps the source's
keys (CLONE-KEEP). The source never changes. Before 7.0 (vCenter or either ESXi host) a clone
cannot change encryption (CLONE-PRE7, CLONE-HOSTVER); a linked clone shares its parent's disks and
therefore its keys (CLONE-LINKED).

`read_intent` and `materialize` also serve migrations (relocate.py; where a copy lands: destination.py): a cross-vCenter move is a
copy that keeps the identity, the snapshots and every byte of the VM.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pyVmomi import vim, vmodl

from harness.fakevc.behaviours import destination, key_push, locked_vms, space, vtpm
from harness.fakevc.behaviours.crypto_rules import (DECRYPT, DEEP, ENCRYPT, GENERATE, NOOP, REGISTER, REKEYS,
                                                    SHALLOW, UNCHANGED, Checks, CryptoAsk, Keks, check_policy_fits,
                                                    crypto_ask,
                                                    generate, invalid_argument, invalid_state, is_encryption_policy,
                                                    merge_asks, merge_policies, not_supported, requested_policy,
                                                    transform)
from harness.fakevc.behaviours.snapshots import new_delta
from harness.fakevc.defects import defect
from harness.fakevc.disks import DiskFile, KeyRef
from harness.fakevc.model.base import CallContext
from harness.fakevc.model.vm import Snapshot, VirtualMachine, VmDisk
from harness.fakevc.server import FakeVCenter

ENCRYPT_IGNORED = defect("clone-encrypt-ignored", "CLONE-ENCRYPT",
                         "a clone with the encryption policy of an unencrypted VM comes out unencrypted")
DECRYPT_IGNORED = defect("clone-decrypt-ignored", "CLONE-DECRYPT",
                         "a clone with a non-encryption policy of an encrypted VM comes out encrypted")
RECRYPT_KEEPS_KEY = defect("clone-recrypt-keeps-key", "CLONE-RECRYPT",
                           "a clone asked to recrypt keeps the source's key")
KEEP_NEW_KEY = defect("clone-keep-new-key", "CLONE-KEEP",
                      "a clone of an encrypted VM with no crypto change gets a new key")
LINKED_NEW_KEY = defect("clone-linked-new-key", "CLONE-LINKED",
                        "a linked clone of an encrypted VM gets its own new key instead of its parent's")
TEMPLATE_IGNORES = defect("clone-template-ignores-crypto", "CLONE-TEMPLATE",
                          "deploying from a template ignores the asked crypto change (keeps the template's state)")
HOSTVER_IGNORED = defect("clone-hostver-ignored", "CLONE-HOSTVER",
                         "a clone with a crypto change runs although a host is older than ESXi 7.0")
HOSTVER_HALF = defect("clone-hostver-half", "CLONE-HOSTVER",
                      "a clone with a crypto change and a pre-7.0 host is refused, but the clone is created anyway",
                      half_applied=True)
PRE7_ALLOWS = defect("clone-pre7-allows-crypto", "CLONE-PRE7",
                     "a 6.7 vCenter changes encryption during a clone")
PRE7_HALF = defect("clone-pre7-half", "CLONE-PRE7",
                   "a 6.7 vCenter refuses a clone with a crypto change, but creates the clone anyway",
                   half_applied=True)
XVC_ENCRYPT_IGNORED = defect("xvc-clone-encrypt-ignored", "XVC-CLONE-ENCRYPT",
                             "a cross-vCenter clone asked to encrypt arrives unencrypted")
XVC_DECRYPT_IGNORED = defect("xvc-clone-decrypt-ignored", "XVC-CLONE-DECRYPT",
                             "a cross-vCenter clone asked to decrypt arrives encrypted")
XVC_RECRYPT_KEEPS_KEY = defect("xvc-clone-recrypt-keeps-key", "XVC-CLONE-RECRYPT",
                               "a cross-vCenter clone asked to recrypt arrives with the source's key")

DISK_POLICY_WITHOUT_CRYPTO_ACCEPTED = defect(
    "clone-accepts-disk-policy-without-crypto", "CLONE-ENCRYPT",
    "a clone whose disk locators carry an encryption storage policy but no backing.crypto is accepted")

LINKED = "createNewChildDiskBacking"


def reject_disk_policy_without_crypto(vc: FakeVCenter, spec: Any) -> None:
    """vCenter 7.0U3 refuses a clone whose disk locator carries an encryption storage policy and no
    `backing.crypto`: terraform-provider-vsphere issue #2241 ("A specified parameter was not correct:
    spec.disk.backing.crypto"; the provider sets no disk crypto at all, and the clone worked once the disk
    policy was dropped). Accepted: the policy with `backing.crypto` (PowerCLI VMware.VMEncryption, vm-operator
    crypto reconciler: the VM-level CryptoSpec repeated on each disk), or a disk locator without a policy
    (it follows the VM-level spec, "inherited to all disks", API.md 2.2). `DiskLocator.backing` exists since
    7.0, so an older vCenter cannot raise this.
    """
    location = spec.location
    if location is None or vc.is_pre7 or vc.world.defects.on(DISK_POLICY_WITHOUT_CRYPTO_ACCEPTED):
        return
    for locator in location.disk or []:
        backing = getattr(locator, "backing", None)
        if backing is not None and backing.crypto is not None:
            continue
        policy = requested_policy(locator.profile)
        if policy is not UNCHANGED and is_encryption_policy(vc, policy):
            raise vmodl.fault.InvalidArgument(invalidProperty="spec.disk.backing.crypto",
                                              msg="A specified parameter was not correct: spec.disk.backing.crypto")


# ---- what a clone (or a migration) asks ----------------------------------------------------------
@dataclass
class Intent:
    """The crypto change of VM home and of each disk (by device key); None keeps what is there."""
    home: CryptoAsk | None
    disks: dict[int, CryptoAsk | None] = field(default_factory=dict)
    home_policy: Any = UNCHANGED
    disk_policies: dict[int, Any] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return self.home is not None or any(a is not None for a in self.disks.values())

    def kinds(self) -> set[str]:
        asks = [self.home, *self.disks.values()]
        return {a.kind for a in asks if a is not None}

    def kept(self) -> "Intent":
        """The same placement with no crypto change (what a defect that ignores the change does)."""
        return Intent(None, {k: None for k in self.disks}, UNCHANGED, {k: UNCHANGED for k in self.disks})


def _resolve(vc: FakeVCenter, encrypted: bool, current: KeyRef | None, ask: CryptoAsk | None, policy: Any, where: str) -> CryptoAsk | None:
    """One target's change from its CryptoSpec and storage policy, given its present state."""
    encrypting_policy = None if policy is UNCHANGED else is_encryption_policy(vc, policy)
    if ask is not None and ask.kind in (ENCRYPT, SHALLOW, DEEP):
        if encrypting_policy is False:
            raise invalid_argument(where, "a storage policy without encryption cannot go with an encrypt or recrypt spec")
        if ask.kind == ENCRYPT:
            if not encrypted:
                return ask
            return None if ask.key == current else CryptoAsk(DEEP, ask.key)   # a copy with new keys
        if not encrypted:
            raise invalid_state(f"vm is not encrypted: {where} cannot be recrypted.")
        return None if ask.kind == SHALLOW and ask.key == current else ask
    if ask is not None and ask.kind == DECRYPT:
        if encrypting_policy:
            raise invalid_argument(where, "decrypting needs a storage policy without encryption")
        if not encrypted:
            raise invalid_state(f"vm is not encrypted: {where} cannot be decrypted.")
        return ask
    if encrypting_policy is None:
        return None
    if ask is not None and encrypting_policy != encrypted:   # NoOp/Register with a policy that would change it
        raise invalid_argument(where, "a NoOp crypto spec cannot go with a storage policy that changes encryption")
    if encrypting_policy and not encrypted:
        return CryptoAsk(ENCRYPT, GENERATE)
    if not encrypting_policy and encrypted:
        return CryptoAsk(DECRYPT)
    return None


def read_intent(vc: FakeVCenter, vm: VirtualMachine, config: Any, location: Any, state: list[tuple[VmDisk, list[DiskFile]]],
                home_key: KeyRef | None = None, use_home_key: bool = False) -> Intent:
    """What a CloneSpec (config + location) or a RelocateSpec (location) asks of home and each disk."""
    current = home_key if use_home_key else vm.key
    ask = merge_asks(crypto_ask(vc, config.crypto) if config is not None else None,
                     crypto_ask(vc, getattr(location, "cryptoSpec", None)) if location is not None else None,
                     where="cryptoSpec")
    if ask is not None and ask.kind == REGISTER:
        ask = CryptoAsk(NOOP)
    home_policy = merge_policies(requested_policy(location.profile) if location is not None else UNCHANGED,
                                 requested_policy(config.vmProfile) if config is not None else UNCHANGED,
                                 where="profile")
    check_policy_fits(vc, home_policy, "profile")
    home = _resolve(vc, current is not None, current, ask, home_policy, "the VM home")
    explicit = _explicit_disks(vc, config, location, {d.key for d, _ in state})
    intent = Intent(home, home_policy=home_policy)
    home_after = _key_after(current, home)
    for disk, chain in state:
        top = chain[-1] if chain else None
        encrypted = bool(top is not None and top.encrypted)
        d_ask, d_policy = explicit.get(disk.key, (None, UNCHANGED))
        check_policy_fits(vc, d_policy, f"{disk.label} profile")
        if d_ask is None and d_policy is not UNCHANGED:   # a disk with only a policy follows the VM-level
            d_ask = _inherit(home, encrypted)              # CryptoSpec ("inherited to all disks", API.md 2.2)
        if d_ask is not None or d_policy is not UNCHANGED:
            change = _resolve(vc, encrypted, top.key if top else None, d_ask, d_policy, disk.label)
            if change is not None and change.kind == ENCRYPT and change.key == GENERATE and home_after:
                change = CryptoAsk(ENCRYPT, home_after)
        else:
            change = _inherit(home, encrypted)
            d_policy = home_policy if change is not None else UNCHANGED
        intent.disks[disk.key] = change
        intent.disk_policies[disk.key] = d_policy
        if home_after is None and (change.kind != DECRYPT if change is not None else encrypted):
            raise invalid_state(f"A disk can be encrypted only when the VM home is encrypted: {disk.label} would be "
                                f"encrypted while the VM home of the clone is not.")
    return intent


def _explicit_disks(vc: FakeVCenter, config: Any, location: Any, keys_: set[int]) -> dict[int, tuple[CryptoAsk | None, Any]]:
    found: dict[int, tuple[CryptoAsk | None, Any]] = {}
    for locator in (location.disk or []) if location is not None else []:
        if locator.diskId not in keys_:
            raise invalid_argument("location.disk.diskId", f"the VM has no disk with key {locator.diskId}")
        backing = getattr(locator, "backing", None)
        found[locator.diskId] = (crypto_ask(vc, backing.crypto) if backing is not None else None,
                                 requested_policy(locator.profile))
    for change in (config.deviceChange or []) if config is not None else []:
        if change.operation == "edit" and isinstance(change.device, vim.vm.device.VirtualDisk):
            if change.device.key not in keys_:
                raise invalid_argument("config.deviceChange.device.key", f"the VM has no disk with key {change.device.key}")
            d_ask = crypto_ask(vc, change.backing.crypto) if change.backing is not None else None
            before = found.get(change.device.key, (None, UNCHANGED))
            found[change.device.key] = (merge_asks(before[0], d_ask, where="disk crypto"),
                                        merge_policies(before[1], requested_policy(change.profile), where="disk profile"))
    return {k: ((None if a is not None and a.kind in (NOOP, REGISTER) else a), p) for k, (a, p) in found.items()}


def _inherit(home: CryptoAsk | None, encrypted: bool) -> CryptoAsk | None:
    if home is None:
        return None
    if home.kind == ENCRYPT:
        return None if encrypted else home
    return home if encrypted else None


def _key_after(current: KeyRef | None, change: CryptoAsk | None) -> KeyRef | None:
    if change is None:
        return current
    return None if change.kind == DECRYPT else change.key


def rekey_everything(intent: Intent, vm: VirtualMachine) -> Intent:
    """Every encrypted target gets a fresh key (what the 'new key' defects do)."""
    fresh = CryptoAsk(SHALLOW, GENERATE)
    disks = {key: (fresh if any(link.encrypted for link in d.chain) else None)
             for key, d in ((d.key, d) for d in vm.disks)}
    return replace(intent, home=fresh if vm.encrypted else None, disks=disks)


def resolve_intent_keys(dest_vc: FakeVCenter, intent: Intent) -> Intent:
    """Turn 'generate' placeholders into new keys of the destination's provider (one per provider)."""
    made: dict[KeyRef, KeyRef] = {}

    def one(ask: CryptoAsk | None) -> CryptoAsk | None:
        if ask is None or ask.key is None or ask.key[1]:
            return ask
        if ask.key not in made:
            made[ask.key] = generate(dest_vc, ask.key)
        return CryptoAsk(ask.kind, made[ask.key])

    return replace(intent, home=one(intent.home), disks={k: one(a) for k, a in intent.disks.items()})


def prefetch(keks: Keks, vm: VirtualMachine, intent: Intent, dest_vc: FakeVCenter, all_links: bool = False,
             state: list[tuple[VmDisk, list[DiskFile]]] | None = None) -> None:
    """Fetch every KEK the copy will need before anything is created (a KMS fault changes nothing)."""
    state = state if state is not None else [(d, d.chain) for d in vm.disks]
    for disk, chain in state:
        change = intent.disks.get(disk.key)
        if change is not None:
            keks.prefetch({link.key for link in (chain if all_links else chain[:1]) if link.key}, vm.vc)
            if change.key:
                keks.prefetch({change.key}, dest_vc)
    if all_links and intent.home is not None:
        keks.prefetch({s.home_key for s in vm.all_snapshots() if s.home_key} | {link.key for link in vm.all_disk_files()
                                                                             if link.key}, vm.vc)
    if intent.home is not None and intent.home.key:
        keks.prefetch({intent.home.key}, dest_vc)


# ---- building the copy ------------------------------------------------------------------------------
def _file_name(path: str) -> str:
    return path.split("] ", 1)[-1].rsplit("/", 1)[-1]


def materialize(vm: VirtualMachine, target: destination.Target, name: str, intent: Intent, keks: Keks, *, mode: str,
                snapshot: Any = None, template: bool = False, config: Any = None, tpm_policy: str | None = None) -> Any:
    """Create the destination VM (clone or moved VM) in the target vCenter, files copied with their bytes.

    mode: "full" (one link per disk, the state of the source or of `snapshot`), "linked" (the
    snapshot's links shared, a new delta on top), "instant" (like linked, from the running state)
    or "move" (identity, snapshots and every link).
    """
    dest_vc, src_vc, ds = target.vc, vm.vc, target.datastore
    new = VirtualMachine(dest_vc, name, target.folder, target.pool, target.host, ds, [], template=template)
    target.folder.add(new)
    new.num_cpu, new.memory_mb, new.annotation = vm.num_cpu, vm.memory_mb, vm.annotation
    new.extra_config = dict(vm.extra_config)
    new.migrate_encryption = vm.migrate_encryption
    new.home_profile = vm.home_profile
    if mode == "move":   # VTPM-CLONE-*: a moved VM keeps its vTPM, a clone gets a copy or a new one
        vtpm.moved(vm, new)
    else:
        vtpm.cloned(vm, new, tpm_policy)
    copies: dict[int, DiskFile] = {}

    def copied(link: DiskFile, path: str | None = None, shared: bool = False) -> DiskFile:
        if id(link) not in copies:
            dup = link.copy(path or f"[{ds.name}] {name}/{_file_name(link.path)}", ds if not shared else link.datastore)
            dup.shared = shared
            if shared:       # the parent's file, read in place
                dup.path = link.path
            copies[id(link)] = dup
        return copies[id(link)]

    if mode == "move":
        new.uuid, new.instance_uuid, new.power_state, new.key = vm.uuid, vm.instance_uuid, vm.power_state, vm.key
        new.locked = vm.locked
        disk_map = {id(d): VmDisk(d.key, d.label, [copied(link) for link in d.chain], d.profile, d.unit) for d in vm.disks}
        new.disks = [disk_map[id(d)] for d in vm.disks]
        snap_map: dict[int, Any] = {}
        for snap in vm.all_snapshots():
            disks = []
            for disk, chain in snap.disks:
                twin = disk_map.get(id(disk)) or VmDisk(disk.key, disk.label, [], disk.profile, disk.unit)
                disks.append((twin, [copied(link) for link in chain]))
            twin_snap = Snapshot(dest_vc, new, snap.name, snap.description, snap.memory,
                                 snap_map.get(id(snap.parent)), disks)
            twin_snap.home_key, twin_snap.created, twin_snap.power_state = snap.home_key, snap.created, snap.power_state
            twin_snap.snap_id = snap.snap_id
            snap_map[id(snap)] = twin_snap
            (snap_map[id(snap.parent)].children_snaps if snap.parent else new.root_snapshots).append(twin_snap)
        new._snapshot_ids = vm._snapshot_ids
        new.current_snapshot = snap_map.get(id(vm.current_snapshot))
    else:
        state = snapshot.disks if snapshot is not None else [(d, d.chain) for d in vm.disks]
        new.key = snapshot.home_key if snapshot is not None else vm.key
        for index, (disk, chain) in enumerate(state):
            suffix = "" if index == 0 else f"_{index}"
            twin = VmDisk(disk.key, disk.label, [], disk.profile, disk.unit)
            if mode in ("linked", "instant"):
                twin.chain = [copied(link, shared=True) for link in chain]
                twin.chain.append(new_delta(src_vc, new, twin, keks))
                twin.chain[-1].path = f"[{ds.name}] {name}/{name}{suffix}-000001.vmdk"
                twin.chain[-1].datastore = ds
            else:
                twin.chain = [copied(chain[0], f"[{ds.name}] {name}/{name}{suffix}.vmdk")]
            new.disks.append(twin)
        if mode == "linked":
            new.linked_parent = vm
    _apply_intent(new, intent, keks, src_vc, dest_vc)
    if config is not None:
        _apply_config(new, config)
    return new


def _apply_intent(new: VirtualMachine, intent: Intent, keks: Keks, src_vc: FakeVCenter, dest_vc: FakeVCenter) -> None:
    for disk in new.disks:
        change = intent.disks.get(disk.key)
        if change is not None:
            for link in disk.chain:
                if not link.shared:
                    transform(dest_vc, link, change.kind, change.key, keks, old_vc=src_vc, new_vc=dest_vc)
        policy = intent.disk_policies.get(disk.key, UNCHANGED)
        if policy is not UNCHANGED:
            disk.profile = policy
        elif change is not None and change.kind == DECRYPT and is_encryption_policy(dest_vc, disk.profile):
            disk.profile = None
    home = intent.home
    if home is not None:
        new.key = None if home.kind == DECRYPT else home.key
        for snap in new.all_snapshots():
            snap.home_key = new.key
    if intent.home_policy is not UNCHANGED:
        new.home_profile = intent.home_policy
    elif home is not None and home.kind == DECRYPT and is_encryption_policy(dest_vc, new.home_profile):
        new.home_profile = None
    if new.encrypted:
        new.migrate_encryption = "required"


def _apply_config(new: VirtualMachine, config: Any) -> None:
    if config.annotation is not None:
        new.annotation = config.annotation
    if config.numCPUs:
        new.num_cpu = config.numCPUs
    if config.memoryMB:
        new.memory_mb = config.memoryMB
    for option in config.extraConfig or []:
        if option.value in (None, ""):
            new.extra_config.pop(option.key, None)
        else:
            new.extra_config[option.key] = str(option.value)


# ---- CloneVM_Task --------------------------------------------------------------------------------
def clone(ctx: CallContext, vm: VirtualMachine, folder_ref: Any, name: str, spec: Any) -> Any:
    src = vm.vc
    locked_vms.refuse_while_locked(vm, "cloning")   # LOCK-REFUSED
    location = spec.location or vim.vm.RelocateSpec()
    target = destination.target_of(vm, location, folder_ref)
    dest = target.vc
    linked = location.diskMoveType == LINKED
    snapshot = _snapshot(vm, spec.snapshot) if spec.snapshot is not None else None
    if linked and snapshot is None:
        raise invalid_argument("spec.snapshot", "a linked clone (createNewChildDiskBacking) needs a snapshot")
    if linked and target.cross:
        raise not_supported("A linked clone cannot be created on another vCenter Server.")
    if spec.template and spec.powerOn:
        raise invalid_argument("spec.powerOn", "a template cannot be powered on")
    if any(getattr(m, "name", None) == name for m in target.folder.members):
        raise vim.fault.DuplicateName(name=name, object=target.folder.ref, msg=f"The name '{name}' already exists.")
    state = snapshot.disks if snapshot is not None else [(d, d.chain) for d in vm.disks]
    home_key = snapshot.home_key if snapshot is not None else vm.key
    reject_disk_policy_without_crypto(src, spec)
    vtpm.check_clone_policy(vm, getattr(spec, "tpmProvisionPolicy", None))
    intent = read_intent(src, vm, spec.config, location, state, home_key, use_home_key=True)
    checks = Checks(src)
    intent = _seeded_intent(checks, vm, target, intent, linked, home_key)
    source_encrypted = home_key is not None or any(link.encrypted for _, chain in state for link in chain)
    if source_encrypted:
        src.authz.require(ctx, vm, "Cryptographer.Clone")
    if not target.cross and not source_encrypted and intent.home is not None and intent.home.kind == ENCRYPT:
        src.authz.require(ctx, target.folder, "Cryptographer.EncryptNew")
    if linked and intent.changes:
        raise not_supported(f"A linked clone inherits the encryption and keys of '{vm.name}': its encryption cannot "
                            "be changed when it is created.")
    if intent.changes and src.is_pre7:
        checks.refuse(not_supported(f"Changing encryption while cloning is not supported on vCenter Server "
                                    f"{src.version} (vSphere 7.0 or later is needed)."),
                      ignored=PRE7_ALLOWS, half=PRE7_HALF)
    keks = Keks(src)
    if target.cross:
        source_keys = ({home_key} if home_key else set()) | {link.key for _, chain in state for link in chain if link.key}
        destination.check_cross(checks, vm, target, source_encrypted or intent.changes, source_keys,
                             _kept_keys(state, home_key, intent), keks)
    elif intent.changes and not src.is_pre7:   # before 7.0 CLONE-PRE7 already decides
        for host in (vm.host, target.host):
            if host is not None and host.is_pre7:
                checks.refuse(not_supported(f"A clone that changes encryption needs ESXi 7.0 or later on the source "
                                            f"and destination hosts: {host.name} runs ESXi {host.esx_version}."),
                              ignored=HOSTVER_IGNORED, half=HOSTVER_HALF)
    _check_space(checks, vm, target, state, linked, intent)
    dest_encrypted = _key_after(home_key, intent.home) is not None
    if dest_encrypted or intent.changes:
        key_push.prepare_host(ctx if not target.cross else None, target.host)
    if linked and checks.on(LINKED_NEW_KEY) and home_key is not None:
        intent = replace(intent, home=CryptoAsk(SHALLOW, GENERATE))
    intent = resolve_intent_keys(dest, intent)
    prefetch(keks, vm, intent, dest, state=state)
    if linked:
        keks.prefetch({chain[-1].key for _, chain in state if chain and chain[-1].key}, src)
    new = materialize(vm, target, name, intent, keks, mode="linked" if linked else "full", snapshot=snapshot,
                      template=bool(spec.template), config=spec.config,
                      tpm_policy=getattr(spec, "tpmProvisionPolicy", None))
    if spec.powerOn:
        new.power_state = "poweredOn"
    key_push.vm_keys_changed(dest, new, ctx if not target.cross else None)
    checks.finish()
    return new.ref


def _snapshot(vm: VirtualMachine, ref: Any) -> Snapshot:
    snap = vm.vc.lookup(ref)
    if not isinstance(snap, Snapshot) or snap.vm is not vm:
        raise invalid_argument("spec.snapshot", f"the snapshot does not belong to '{vm.name}'")
    return snap


def _seeded_intent(checks: Checks, vm: VirtualMachine, target: destination.Target, intent: Intent, linked: bool, home_key: KeyRef | None) -> Intent:
    """The defects that make a buggy vCenter ignore (or invent) a clone's crypto change."""
    kinds = intent.kinds()
    cross = target.cross
    if vm.template and intent.changes and checks.on(TEMPLATE_IGNORES):
        return intent.kept()
    if ENCRYPT in kinds and home_key is None and checks.on(XVC_ENCRYPT_IGNORED if cross else ENCRYPT_IGNORED):
        return intent.kept()
    if DECRYPT in kinds and checks.on(XVC_DECRYPT_IGNORED if cross else DECRYPT_IGNORED):
        return intent.kept()
    if kinds & set(REKEYS) and checks.on(XVC_RECRYPT_KEEPS_KEY if cross else RECRYPT_KEEPS_KEY):
        return intent.kept()
    if not intent.changes and home_key is not None and not linked and checks.on(KEEP_NEW_KEY):
        return rekey_everything(intent, vm)
    return intent


def _kept_keys(state: list[tuple[VmDisk, list[DiskFile]]], home_key: KeyRef | None, intent: Intent) -> set[KeyRef]:
    """Keys the destination must hold because the copy stays on them."""
    kept = {home_key} if home_key and intent.home is None else set()
    for disk, chain in state:
        if intent.disks.get(disk.key) is None:
            kept.update(link.key for link in chain if link.key)
    return kept


def _check_space(checks: Checks, vm: VirtualMachine, target: destination.Target, state: list[tuple[VmDisk, list[DiskFile]]], linked: bool,
                 intent: Intent) -> None:
    need = 0
    for disk, chain in state:
        need += chain[-1].size // 16 if linked else chain[0].size
    space.check_copy(checks, vm, {target.datastore: need}, "clone", crypto=intent.changes)

# ---- API handlers (registered in harness/fakevc/dispatch.py HANDLERS) --------------------------
def CloneVM_Task(ctx: CallContext, vm: VirtualMachine, folder: Any, name: str, spec: Any) -> Any:  # noqa: N802
    return vm.vc.tasks.run(ctx, vm, "VirtualMachine.clone", lambda: clone(ctx, vm, folder, name, spec))
