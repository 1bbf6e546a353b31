"""Where a clone or a migration lands, and the checks a crossing to another vCenter must pass.

Shared by clone.py, relocate.py and instant_clone.py: the destination lookup (a ServiceLocator
names another vCenter) and the cross-vCenter checks (XVC-POWER, XVC-HOSTVER, XVC-DEST-KMS,
KMS-DEDICATED, KMS-SHARED, the locator's thumbprint of XVC-MIGRATE). Moved out of relocate.py so
clone.py and relocate.py need not import each other.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from harness.fakevc.behaviours import maintenance
from harness.fakevc.behaviours.crypto_rules import (Checks, Keks, invalid_argument, invalid_state, key_text,
                                                    not_supported)
from harness.fakevc.defects import defect
from harness.fakevc.disks import KeyRef
from harness.fakevc.kmip import keys, native
from harness.fakevc.model.datastore import Datastore
from harness.fakevc.model.host import HostSystem
from harness.fakevc.model.inventory import Folder, ResourcePool
from harness.fakevc.model.vm import VirtualMachine
from harness.fakevc.server import FakeVCenter

POWER_ON_REFUSED = defect("xvc-power-on-refused", "XVC-POWER",
                          "cross-vCenter clones and migrations of a powered-on encrypted VM fail with InvalidPowerState")
HOSTVER_IGNORED = defect("xvc-hostver-ignored", "XVC-HOSTVER",
                         "cross-vCenter operations on encrypted VMs run although a host is older than ESXi 7.0")
HOSTVER_HALF = defect("xvc-hostver-half", "XVC-HOSTVER",
                      "a cross-vCenter operation with a pre-7.0 host is refused, but the VM moves (or is cloned) anyway",
                      half_applied=True)
DEST_KMS_IGNORED = defect("xvc-dest-kms-ignored", "XVC-DEST-KMS",
                          "a VM moves (or is cloned) to a vCenter that lacks the VM's key provider")
DEST_KMS_HALF = defect("xvc-dest-kms-half", "XVC-DEST-KMS",
                       "the move to a vCenter lacking the VM's key provider is refused, but happens anyway",
                       half_applied=True)
DEDICATED_HALF = defect("kms-dedicated-xvc-half", "KMS-DEDICATED",
                        "moving (or cloning) a VM whose key provider the destination lacks is refused, but the VM "
                        "lands there anyway", half_applied=True)
KEY_STORE_UNCHECKED = defect("kms-shared-key-store-unchecked", "KMS-SHARED",
                             "a destination vCenter whose provider of the same name holds other keys (not the same "
                             "key store) is accepted for a cross-vCenter move")
THUMBPRINT_UNCHECKED = defect("xvc-locator-thumbprint-unchecked", "XVC-MIGRATE",
                              "a vCenter that does not trust the destination's certificate accepts a ServiceLocator "
                              "without sslThumbprint", fake_options={"trust_peers": False})


@dataclass
class Target:
    """Where a VM (or its clone) lands: a vCenter and placement objects of that vCenter."""
    vc: FakeVCenter
    cross: bool
    host: HostSystem
    pool: ResourcePool
    datastore: Datastore
    folder: Folder


# ---- the destination ----------------------------------------------------------------------------
def destination_vc(vm: VirtualMachine, service: Any) -> tuple[FakeVCenter, bool]:
    """The vCenter a ServiceLocator names, after checking its instance UUID and the credential."""
    vc = vm.vc
    if service is None:
        return vc, False
    dest = vc.world.by_url(service.url or "")
    if dest is None:
        raise invalid_argument("spec.service.url", f"no vCenter Server answers at {service.url}")
    if (service.instanceUuid or "").lower() != dest.instance_uuid.lower():
        raise invalid_argument("spec.service.instanceUuid",
                               f"{service.instanceUuid} is not the instance UUID of the vCenter Server at {service.url}")
    if dest is not vc:
        check_thumbprint(vc, dest, service.sslThumbprint)
    credential = service.credential
    if not isinstance(credential, vim.ServiceLocator.NamePassword):
        raise not_supported("Only user name and password credentials are supported for the destination vCenter Server.")
    dest.check_login(credential.username, credential.password)   # vim.fault.InvalidLogin
    return dest, dest is not vc


def check_thumbprint(src: FakeVCenter, dest: FakeVCenter, thumbprint: str | None) -> None:
    """The source must be able to trust the destination's certificate (API.md 3.2/11).

    Source: community.vmware `vmware_guest_cross_vc_clone.py` fills `ServiceLocator.sslThumbprint`
    with the destination's SHA-1 (`get_cert_fingerprint`) because, without Enhanced Linked Mode, the
    source vCenter does not trust the destination's VMCA. Fake's choices where vSphere is silent: the
    fault class (SSLVerifyFault, vCenter's fault for an untrusted peer certificate on host connect),
    a wrong thumbprint refused even between trusting fakes, and case and colons compared loosely.
    """
    from harness.vsphere.thumbprints import sha1_thumbprint
    actual = sha1_thumbprint(dest.certificate_der)
    given = (thumbprint or "").replace(":", "").lower()
    if given and given == actual.replace(":", ""):
        return
    if not given and (src.trust_peers or src.world.defects.on(THUMBPRINT_UNCHECKED)):
        return
    raise vim.fault.SSLVerifyFault(
        selfSigned=True, thumbprint=actual,
        msg=(f"vCenter {src.name} does not trust the certificate of {dest.url}: "
             + ("the ServiceLocator names no sslThumbprint." if not given
                else f"sslThumbprint {thumbprint} does not match the certificate.")))


def _lookup(vc: FakeVCenter, ref: Any) -> Any:
    return vc.lookup(ref) if ref is not None else None


def target_of(vm: VirtualMachine, location: Any, folder_ref: Any = None) -> Target:
    """Resolve a RelocateSpec's placement in the vCenter it names (destination MoRefs when cross)."""
    dest, cross = destination_vc(vm, location.service if location is not None else None)
    location = location or vim.vm.RelocateSpec()
    host = _lookup(dest, location.host)
    pool = _lookup(dest, location.pool)
    if cross and host is None and pool is None:
        raise invalid_argument("spec.host", "a host or a resource pool of the destination vCenter is required")
    if host is None:
        if pool is None:
            host = vm.host
        else:   # the pool's compute resource decides; the VM stays on its host when it is one of them
            hosts = maintenance.usable(pool.owner_mo.hosts)
            host = vm.host if not cross and vm.host in hosts else hosts[0]
    if host is not vm.host:
        maintenance.refuse_placement(host, f"placing '{vm.name}'")
    if pool is None:
        pool = host.parent_mo.pool if (cross or host is not vm.host) else vm.pool
    datastore = _lookup(dest, location.datastore) or (host.datastores[0] if cross else vm.datastore)
    folder = _lookup(dest, folder_ref or location.folder)   # CloneVM_Task's folder comes first
    if folder is None:
        folder = dest.datacenter.vm_folder if cross else vm.parent_mo
    return Target(dest, cross, host, pool, datastore, folder)


# ---- cross-vCenter checks (migrations and clones) -------------------------------------------------
def check_cross(checks: Checks, vm: VirtualMachine, target: Target, crypto_involved: bool, source_keys: set[KeyRef],
                kept_keys: set[KeyRef], keks: Keks) -> None:
    """The rules every cross-vCenter operation on an encrypted VM (or with a crypto change) obeys.

    Every provider of `source_keys` must exist on the destination (KMS-DEDICATED: neither migrated
    nor cloned, whatever the copy's keys); `kept_keys`, which the copy stays on, must come out of
    the same key store there (KMS-SHARED).
    """
    src, dest = vm.vc, target.vc
    if not crypto_involved:
        return
    if vm.encrypted and vm.power_state == "poweredOn" and checks.on(POWER_ON_REFUSED):
        raise vim.fault.InvalidPowerState(requestedState="poweredOff", existingState="poweredOn",
                                          msg=f"'{vm.name}' must be powered off to leave vCenter {src.name}.")
    if src.is_pre7 or dest.is_pre7:
        raise not_supported(f"Migrating or cloning encrypted virtual machines across vCenter Server systems is not "
                            f"supported before vSphere 7.0 (vCenter {src.name} {src.version}, {dest.name} {dest.version}).")
    for host in (vm.host, target.host):
        if host is not None and host.is_pre7:
            checks.refuse(not_supported(f"Cross-vCenter crypto operations need ESXi 7.0 or later on both hosts: "
                                        f"{host.name} runs ESXi {host.esx_version}."),
                          ignored=HOSTVER_IGNORED, half=HOSTVER_HALF)
    for provider in sorted({k[0] for k in source_keys | kept_keys}):
        if not keys.provider_known(dest, provider) and native.is_native(keys.provider(src, provider)):
            # KB 378053 (knowledge.broadcom.com/external/article/378053): a VM encrypted by a Native Key Provider
            # cannot go to a vCenter the NKP was not restored to ("Unable to decrypt the ciphertext. Failed to
            # decrypt the key"); vCenter fails that vMotion at 100%, the fake refuses it up front (same outcome:
            # nothing arrives, the source keeps the VM).
            checks.refuse(invalid_state(f"The destination vCenter Server {dest.name} has no Native Key Provider "
                                        f"'{provider}' (restore its backup there first): Unable to decrypt the "
                                        f"ciphertext. Failed to decrypt the key of '{vm.name}'."),
                          half=native.MISSING_HALF)
            continue
        if not keys.provider_known(dest, provider):
            checks.refuse(invalid_state(f"The destination vCenter Server {dest.name} has no key provider "
                                        f"'{provider}': the keys of '{vm.name}' would not be available there."),
                          ignored=DEST_KMS_IGNORED, half=(DEST_KMS_HALF, DEDICATED_HALF))
    if checks.on(KEY_STORE_UNCHECKED):
        return
    for key in sorted(kept_keys):
        if not keys.provider_known(dest, key[0]):
            continue
        try:
            same = keks.get(key, dest) == keks.get(key, src)
        except vim.fault.EncryptionKeyRequired as fault:
            raise invalid_state(f"The destination vCenter Server {dest.name} cannot get key {key_text(key)} "
                                f"from its key provider: {fault.msg}") from None
        if not same:
            raise invalid_state(f"Key provider '{key[0]}' of vCenter {dest.name} is not the key store of vCenter "
                                f"{src.name}: key {key[1]} differs. Both must use the same KMS cluster.")
