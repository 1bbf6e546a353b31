#!/usr/bin/env python3
"""A guided tour of vSphere VM encryption on the fake vCenter pair, in plain pyVmomi.

Run from the repository root:

    python examples/fake_tour.py

`harness.open_environment` starts what `inventories/fake.yaml` describes: an embedded PyKMIP KMS
(real KMIP over mutual TLS) and two fake vCenters, vc-a and vc-b, that live below pyVmomi. From
then on everything is ordinary pyVmomi - the same calls you would make against a lab vCenter:
`vim` for the vSphere API, `pbm` for storage policies, `pyVim.task.WaitForTask` for tasks. The
only thing that is not an API call is stopping and starting the KMS process in step 8 (in a lab
you would pull its network cable).

Each step prints what it observes and checks it: the script exits 0 only when every observation
is what vSphere documents, so it doubles as a smoke test. Everything it creates (VMs on both
vCenters, the "tour-kms" key provider) is removed at the end, also when a step fails.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pyVim.task import WaitForTask
from pyVmomi import pbm, vim, vmodl

import harness

INVENTORY = Path(__file__).resolve().parents[1] / "inventories" / "fake.yaml"
TOUR_PROVIDER = "tour-kms"                      # the key provider this tour registers
TOUR_SERVER = "tour-kms-1"                      # its one KMIP server
ENCRYPTION_POLICY = "VM Encryption Policy"      # vCenter's built-in encryption storage policy
KMS_UNREACHABLE = "com.vmware.vc.kms.crypto.Unreachable"


class Tour:
    """What the steps share: the sessions, the objects found or made, and what to clean up."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.si_a = env.service_instance("vc-a")
        self.si_b = env.service_instance("vc-b")
        self.provider = vim.encryption.KeyProviderId(id=TOUR_PROVIDER)
        self.registered: list[Any] = []          # ServiceInstances the tour provider is registered on
        self.vms: list[Any] = []                 # VMs to destroy at the end (on either vCenter)
        self.enc_policy: Any = None              # PBM ProfileId of "VM Encryption Policy"
        self.plain_policy: Any = None            # PBM ProfileId of a policy without encryption
        self.vm: Any = None                      # the encrypted VM of step 2
        self.clones: dict[str, Any] = {}


# ---- small helpers (plain pyVmomi) ------------------------------------------------------------------
def wait(task: Any) -> Any:
    """Wait for a task (PropertyCollector updates); return its result, raise its fault."""
    WaitForTask(task)
    return task.info.result


def key_text(key_id: Any) -> str:
    """A CryptoKeyId as 'provider/key', or 'none'."""
    if key_id is None:
        return "none"
    return f"{key_id.providerId.id if key_id.providerId else '?'}/{key_id.keyId}"


def same_key(a: Any, b: Any) -> bool:
    return a is not None and b is not None and key_text(a) == key_text(b)


def datacenter(si: Any) -> Any:
    return si.content.rootFolder.childEntity[0]


def cluster_of(si: Any) -> Any:
    return next(c for c in datacenter(si).hostFolder.childEntity if isinstance(c, vim.ClusterComputeResource))


def disks(vm: Any) -> list[Any]:
    return [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]


def find_vm(si: Any, name: str) -> Any | None:
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
    try:
        return next((vm for vm in view.view if vm.name == name), None)
    finally:
        view.DestroyView()


def new_key(si: Any, provider: Any) -> Any:
    """GenerateKey on a provider: a KMIP Create on its KMS. Failure is success=False, not a fault."""
    result = si.content.cryptoManager.GenerateKey(keyProvider=provider)
    if not result.success:
        raise SystemExit(f"GenerateKey on {provider.id} failed: {result.reason}")
    return result.keyId


def profile(policy_id: Any) -> list[Any]:
    return [vim.vm.DefinedProfileSpec(profileId=policy_id.uniqueId)]


def per_disk(vm: Any, crypto: Any, policy: list[Any] | None) -> list[Any]:
    """deviceChange entries applying the same crypto spec (and policy) to every disk."""
    changes = []
    for disk in disks(vm):
        change = vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk,
                                                 backing=vim.vm.device.VirtualDeviceSpec.BackingSpec(crypto=crypto))
        if policy is not None:
            change.profile = policy
        changes.append(change)
    return changes


def clone(vm: Any, name: str, config: Any = None, location: Any = None) -> Any:
    spec = vim.vm.CloneSpec(location=location or vim.vm.RelocateSpec(), template=False, powerOn=False,
                            config=config)
    return wait(vm.CloneVM_Task(folder=vm.parent, name=name, spec=spec))


def show_vm(label: str, vm: Any) -> None:
    print(f"    {label:<24} {vm.name:<18} config.keyId={key_text(vm.config.keyId)}  "
          f"disks={[key_text(d.backing.keyId) for d in disks(vm)]}")


# ---- the steps ---------------------------------------------------------------------------------------
def step1_register_key_provider(tour: Tour, si: Any = None) -> None:
    """Register a standard key provider with the full trust flow and check it is green and active.

    RegisterKmipServer with a new clusterId creates the provider; RetrieveKmipServerCert fetches
    the KMS certificate, UploadKmipServerCert makes vCenter trust it, UploadClientCert gives
    vCenter the client certificate the KMS trusts. Used again in step 6 for vc-b.
    """
    si = si or tour.si_a
    name = "vc-a" if si is tour.si_a else "vc-b"
    endpoint = tour.env.kms_endpoints["shared"]
    cm = si.content.cryptoManager
    info = vim.encryption.KmipServerInfo(name=TOUR_SERVER, address=endpoint.address, port=endpoint.port)
    cm.RegisterKmipServer(server=vim.encryption.KmipServerSpec(clusterId=tour.provider, info=info))
    tour.registered.append(si)
    print(f"  {name}: RegisterKmipServer {TOUR_PROVIDER} -> {endpoint.address}:{endpoint.port}")

    cert = cm.RetrieveKmipServerCert(keyProvider=tour.provider, server=info)
    if not cert.certificate:
        raise SystemExit(f"step 1: RetrieveKmipServerCert returned no certificate from "
                         f"{endpoint.address}:{endpoint.port}")
    print(f"  {name}: RetrieveKmipServerCert subject={cert.certInfo.subject} "
          f"fingerprint={cert.certInfo.fingerprint[:23]}... trusted yet={cert.clientTrustServer}")
    cm.UploadKmipServerCert(cluster=tour.provider, certificate=cert.certificate)
    cm.UploadClientCert(cluster=tour.provider, certificate=endpoint.client_cert_pem,
                        privateKey=endpoint.client_key_pem)
    print(f"  {name}: UploadKmipServerCert + UploadClientCert done")

    [listed] = [c for c in cm.ListKmsClusters(includeKmsServers=True) if c.clusterId.id == TOUR_PROVIDER]
    print(f"  {name}: ListKmsClusters: {TOUR_PROVIDER} managementType={listed.managementType} "
          f"servers={[s.name for s in listed.servers]} default={listed.useAsDefault}")
    if listed.managementType != "vCenter":
        raise SystemExit(f"step 1: {TOUR_PROVIDER} is a {listed.managementType} provider, expected vCenter")

    wanted = vim.encryption.KmipClusterInfo(clusterId=tour.provider, servers=[info])
    [status] = wait(cm.RetrieveKmipServersStatus_Task(clusters=[wanted]))
    for server in status.servers:
        print(f"  {name}: RetrieveKmipServersStatus {server.name}: status={server.status} "
              f"clientTrustServer={server.clientTrustServer} serverTrustClient={server.serverTrustClient}")
    print(f"  {name}: overall status of {TOUR_PROVIDER}: {status.overallStatus}")
    if status.overallStatus != "green" or not all(s.clientTrustServer and s.serverTrustClient for s in status.servers):
        raise SystemExit(f"step 1: {TOUR_PROVIDER} on {name} is {status.overallStatus}, "
                         "expected green with mutual trust")
    active = cm.IsKmsClusterActive(cluster=tour.provider)
    print(f"  {name}: IsKmsClusterActive({TOUR_PROVIDER}) = {active}")
    if not active:
        raise SystemExit(f"step 1: IsKmsClusterActive({TOUR_PROVIDER}) on {name} is False")


def step2_encrypt_a_vm(tour: Tour) -> None:
    """Generate a key, create a VM with a disk, find "VM Encryption Policy" through PBM, encrypt the VM.

    Encrypting is a ReconfigVM_Task carrying CryptoSpecEncrypt with the key, the encryption
    policy on the VM home (vmProfile) and the same crypto spec and policy on each disk.
    """
    si = tour.si_a
    key = new_key(si, tour.provider)
    print(f"  GenerateKey({TOUR_PROVIDER}) -> {key_text(key)}")

    dc, cluster = datacenter(si), cluster_of(si)
    controller = vim.vm.device.VirtualLsiLogicController(key=1000, busNumber=0, sharedBus="noSharing")
    disk = vim.vm.device.VirtualDisk(key=-1, controllerKey=1000, unitNumber=0, capacityInKB=64,
                                     backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent",
                                                                                         thinProvisioned=True))
    config = vim.vm.ConfigSpec(
        name="tour-vm", guestId="otherLinux64Guest", numCPUs=1, memoryMB=128,
        files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"),
        deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="add", device=controller),
                      vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk)])
    vm = wait(dc.vmFolder.CreateVM_Task(config=config, pool=cluster.resourcePool))
    tour.vms.append(vm)
    tour.vm = vm
    print(f"  CreateVM_Task -> {vm.name} with {len(disks(vm))} disk(s), config.keyId={key_text(vm.config.keyId)}")

    manager = tour.env.pbm("vc-a").RetrieveContent().profileManager
    ids = manager.PbmQueryProfile(resourceType=pbm.profile.ResourceType(resourceType="STORAGE"),
                                  profileCategory="REQUIREMENT")
    policies = manager.PbmRetrieveContent(profileIds=ids)

    def capabilities(policy: Any) -> list[Any]:
        return [cap for sub in (getattr(policy.constraints, "subProfiles", None) or []) for cap in sub.capability]

    def encrypts(policy: Any, depth: int = 0) -> bool:
        """vmwarevmcrypt directly, or through a data-service reference (as the vSphere CSI driver checks)."""
        for cap in capabilities(policy):
            if cap.id.namespace == "vmwarevmcrypt":
                return True
            if cap.id.namespace == "com.vmware.storageprofile.dataservice" and depth < 3:
                [ref] = manager.PbmRetrieveContent(profileIds=[pbm.profile.ProfileId(uniqueId=cap.id.id)])
                if encrypts(ref, depth + 1):
                    return True
        return False

    print(f"  PBM requirement policies: {[p.name for p in policies]}")
    enc = next((p for p in policies if p.name == ENCRYPTION_POLICY), None)
    if enc is None or not encrypts(enc):
        raise SystemExit(f"step 2: no '{ENCRYPTION_POLICY}' with the vmwarevmcrypt capability in PBM")
    plain = next((p for p in policies if not encrypts(p)), None)
    if plain is None:
        raise SystemExit("step 2: PBM has no requirement policy without encryption")
    tour.enc_policy, tour.plain_policy = enc.profileId, plain.profileId
    print(f"  '{enc.name}' = {enc.profileId.uniqueId} (encrypts via vmwarevmcrypt); "
          f"non-encryption policy: '{plain.name}'")

    crypto = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key)
    policy = profile(tour.enc_policy)
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(crypto=crypto, vmProfile=policy,
                                                   deviceChange=per_disk(vm, crypto, policy))))
    show_vm("after encrypt:", vm)
    print(f"    runtime.cryptoState={vm.runtime.cryptoState}")
    if not same_key(vm.config.keyId, key) or not all(same_key(d.backing.keyId, key) for d in disks(vm)):
        raise SystemExit(f"step 2: expected VM and disks on {key_text(key)}, got {key_text(vm.config.keyId)} / "
                         f"{[key_text(d.backing.keyId) for d in disks(vm)]}")


def step3_clone_three_ways(tour: Tour) -> None:
    """Clone the encrypted VM keeping its key, with a new key, and decrypted; clone a plain VM encrypted.

    A clone keeps the source's keys unless the CloneSpec asks otherwise: CryptoSpecShallowRecrypt
    in CloneSpec.config gives it a new key, CryptoSpecDecrypt with a policy without encryption
    leaves it unencrypted, CryptoSpecEncrypt with the encryption policy encrypts a plain source.
    """
    si, vm = tour.si_a, tour.vm
    source_key = vm.config.keyId

    keep = clone(vm, "tour-clone-keep")
    tour.vms.append(keep)
    tour.clones["keep"] = keep
    show_vm("keep (no crypto):", keep)
    if not same_key(keep.config.keyId, source_key):
        raise SystemExit(f"step 3: keep clone has {key_text(keep.config.keyId)}, expected {key_text(source_key)}")

    fresh = new_key(si, tour.provider)
    recrypt = vim.encryption.CryptoSpecShallowRecrypt(newKeyId=fresh)
    recrypted = clone(vm, "tour-clone-recrypt", config=vim.vm.ConfigSpec(crypto=recrypt))
    tour.vms.append(recrypted)
    tour.clones["recrypt"] = recrypted
    show_vm("recrypt (shallow):", recrypted)
    if not same_key(recrypted.config.keyId, fresh) or same_key(recrypted.config.keyId, source_key):
        raise SystemExit(f"step 3: recrypt clone has {key_text(recrypted.config.keyId)}, expected {key_text(fresh)}")

    plain = profile(tour.plain_policy)
    decrypted = clone(vm, "tour-clone-decrypt",
                      config=vim.vm.ConfigSpec(crypto=vim.encryption.CryptoSpecDecrypt(), vmProfile=plain),
                      location=vim.vm.RelocateSpec(disk=[
                          vim.vm.RelocateSpec.DiskLocator(diskId=d.key, datastore=vm.datastore[0], profile=plain)
                          for d in disks(vm)]))
    tour.vms.append(decrypted)
    tour.clones["decrypt"] = decrypted
    show_vm("decrypt:", decrypted)
    if decrypted.config.keyId is not None or any(d.backing.keyId for d in disks(decrypted)):
        raise SystemExit(f"step 3: decrypt clone still has key {key_text(decrypted.config.keyId)}")
    if not same_key(vm.config.keyId, source_key):
        raise SystemExit("step 3: cloning changed the source's key")

    third = new_key(si, tour.provider)
    encrypt = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=third)
    encrypted = clone(decrypted, "tour-clone-encrypt",
                      config=vim.vm.ConfigSpec(crypto=encrypt, vmProfile=profile(tour.enc_policy)))
    tour.vms.append(encrypted)
    show_vm("encrypt (plain source):", encrypted)
    if not same_key(encrypted.config.keyId, third):
        raise SystemExit(f"step 3: encrypt clone has {key_text(encrypted.config.keyId)}, expected {key_text(third)}")


def step4_shallow_rekey_with_snapshots(tour: Tour) -> None:
    """Take two snapshots (one chain), shallow-rekey the VM, and read every snapshot's key.

    A shallow recrypt rewraps the data keys of every link of the single snapshot chain with the
    new key encryption key; the data itself is not rewritten.
    """
    si, vm = tour.si_a, tour.vm
    old = vm.config.keyId
    for name in ("tour-snap-1", "tour-snap-2"):
        wait(vm.CreateSnapshot_Task(name=name, description="fake tour", memory=False, quiesce=False))
    print(f"  two snapshots taken, VM on {key_text(old)}")

    fresh = new_key(si, tour.provider)
    recrypt = vim.encryption.CryptoSpecShallowRecrypt(newKeyId=fresh)
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(crypto=recrypt, deviceChange=per_disk(vm, recrypt, None))))
    show_vm("after shallow rekey:", vm)

    def walk(trees: list[Any]) -> list[Any]:
        return [node for tree in trees for node in [tree, *walk(tree.childSnapshotList)]]

    snapshots = walk(vm.snapshot.rootSnapshotList)
    for node in snapshots:
        print(f"    snapshot {node.name:<12} config.keyId={key_text(node.snapshot.config.keyId)}")
    if not same_key(vm.config.keyId, fresh) or len(snapshots) != 2:
        raise SystemExit(f"step 4: VM is on {key_text(vm.config.keyId)} with {len(snapshots)} snapshots, "
                         f"expected {key_text(fresh)} and 2")
    stale = [n.name for n in snapshots if not same_key(n.snapshot.config.keyId, fresh)]
    if stale:
        raise SystemExit(f"step 4: snapshots {stale} are not on the new key {key_text(fresh)}")


def step5_instant_clone(tour: Tour) -> None:
    """Power on a VM, instant-clone it: the clone shares the parent's key, and the parent cannot be rekeyed."""
    si, parent = tour.si_a, tour.clones["recrypt"]
    wait(parent.PowerOnVM_Task())
    print(f"  {parent.name} powered on: {parent.runtime.powerState}")
    spec = vim.vm.InstantCloneSpec(name="tour-instant", location=vim.vm.RelocateSpec())
    child = wait(parent.InstantClone_Task(spec=spec))
    tour.vms.append(child)
    show_vm("parent:", parent)
    show_vm("instant clone:", child)
    print(f"    instant clone power state: {child.runtime.powerState}")
    if not same_key(child.config.keyId, parent.config.keyId):
        raise SystemExit(f"step 5: instant clone on {key_text(child.config.keyId)}, "
                         f"parent on {key_text(parent.config.keyId)}")

    before = parent.config.keyId
    recrypt = vim.encryption.CryptoSpecShallowRecrypt(newKeyId=new_key(si, tour.provider))
    try:
        wait(parent.ReconfigVM_Task(spec=vim.vm.ConfigSpec(crypto=recrypt,
                                                           deviceChange=per_disk(parent, recrypt, None))))
    except vmodl.MethodFault as fault:
        print(f"  shallow rekey of the parent refused: {type(fault).__name__}: {fault.msg}")
    else:
        raise SystemExit("step 5: the shallow rekey of an instant-clone parent succeeded, expected a refusal")
    if not same_key(parent.config.keyId, before):
        raise SystemExit(f"step 5: the refused rekey changed the parent's key to {key_text(parent.config.keyId)}")
    print(f"    parent still on {key_text(parent.config.keyId)}")


def step6_migrate_to_vc_b(tour: Tour) -> None:
    """Move the encrypted VM (with its snapshots) to vc-b with RelocateVM_Task and a ServiceLocator.

    The destination must know the VM's key provider backed by the same KMS, so the tour provider
    is registered on vc-b first (the step-1 trust flow). The VM arrives with the same key and is
    no longer registered on vc-a.
    """
    si_b, vm = tour.si_b, tour.vm
    step1_register_key_provider(tour, si_b)
    key, name = vm.config.keyId, vm.name

    entry = tour.env.inventory.vcenter("vc-b")
    locator = vim.ServiceLocator(
        url=tour.env.url_of(entry), instanceUuid=si_b.content.about.instanceUuid,
        credential=vim.ServiceLocator.NamePassword(username=entry.user, password=entry.password()))
    cluster_b = cluster_of(si_b)
    host_b = cluster_b.host[0]
    spec = vim.vm.RelocateSpec(service=locator, host=host_b, pool=cluster_b.resourcePool,
                               datastore=host_b.datastore[0], folder=datacenter(si_b).vmFolder)
    wait(vm.RelocateVM_Task(spec=spec))
    print(f"  RelocateVM_Task {name} -> {locator.url} (instanceUuid {locator.instanceUuid})")

    arrived = find_vm(si_b, name)
    if arrived is None:
        raise SystemExit(f"step 6: {name} is not on vc-b after the migration")
    tour.vms.append(arrived)
    show_vm("on vc-b:", arrived)
    left = find_vm(tour.si_a, name)
    print(f"    still on vc-a: {left is not None}")
    if not same_key(arrived.config.keyId, key):
        raise SystemExit(f"step 6: arrived on {key_text(arrived.config.keyId)}, left on {key_text(key)}")
    if left is not None:
        raise SystemExit(f"step 6: {name} is still registered on vc-a")
    tour.vms.remove(vm)
    tour.vm = arrived


def step7_ha_key_push(tour: Tour) -> None:
    """With HA on, every host of the cluster is crypto-safe and caches the keys of the cluster's VMs."""
    si = tour.si_a
    cluster = cluster_of(si)
    vm = tour.clones["keep"]
    key = vm.config.keyId
    spec = vim.cluster.ConfigSpecEx(dasConfig=vim.cluster.DasConfigInfo(enabled=True))
    wait(cluster.ReconfigureComputeResource_Task(spec=spec, modify=True))
    try:
        print(f"  HA on {cluster.name}: {cluster.configurationEx.dasConfig.enabled}; "
              f"looking for {vm.name}'s key {key_text(key)}")
        missing = []
        for host in cluster.host:
            cached = host.configManager.cryptoManager.ListKeys()
            has = any(same_key(k, key) for k in cached)
            print(f"    {host.name}: runtime.cryptoState={host.runtime.cryptoState} "
                  f"cached keys={len(cached)} has VM key={has}")
            if host.runtime.cryptoState != "safe" or not has:
                missing.append(host.name)
        if missing:
            raise SystemExit(f"step 7: with HA on, hosts {missing} are not safe or lack {key_text(key)}")
    finally:
        wait(cluster.ReconfigureComputeResource_Task(
            spec=vim.cluster.ConfigSpecEx(dasConfig=vim.cluster.DasConfigInfo(enabled=False)), modify=True))
        print(f"  HA off again: {cluster.configurationEx.dasConfig.enabled}")


def step8_kms_outage(tour: Tour) -> None:
    """Stop the shared KMS, read the unreachable events and the red KMS health alarm, restart it.

    The KMS health alarm is found by walking each alarm's expression for the event id it watches
    (alarm names differ between releases); GetAlarmState on the root folder gives its status.
    """
    si = tour.si_a
    content = si.content
    root = content.rootFolder

    def kms_alarms() -> list[Any]:
        def event_ids(expression: Any) -> list[str]:
            if isinstance(expression, (vim.alarm.OrAlarmExpression, vim.alarm.AndAlarmExpression)):
                return [i for e in expression.expression for i in event_ids(e)]
            if isinstance(expression, vim.alarm.EventAlarmExpression):
                return [expression.eventTypeId]
            return []
        return [alarm for alarm in content.alarmManager.GetAlarm(entity=root)
                if KMS_UNREACHABLE in event_ids(alarm.info.expression)]

    def status(alarm: Any) -> str:
        states = [s for s in content.alarmManager.GetAlarmState(entity=root) if s.alarm == alarm]
        return states[0].overallStatus if states else "green"   # no state on the entity: not triggered

    alarms = kms_alarms()
    if not alarms:
        raise SystemExit(f"step 8: no alarm on the root folder watches {KMS_UNREACHABLE}")
    alarm = alarms[0]
    print(f"  KMS health alarm: '{alarm.info.name}' (watches {KMS_UNREACHABLE}), now {status(alarm)}")

    since = si.CurrentTime()
    tour.env.kms.servers["shared"].stop()
    print("  shared KMS stopped")
    try:
        active = content.cryptoManager.IsKmsClusterActive(cluster=tour.provider)
        print(f"    IsKmsClusterActive({TOUR_PROVIDER}) = {active}")
        events = content.eventManager.QueryEvents(filter=vim.event.EventFilterSpec(
            eventTypeId=[KMS_UNREACHABLE], time=vim.event.EventFilterSpec.ByTime(beginTime=since)))
        for event in events:
            print(f"    event {event.eventTypeId} [{event.severity}]: {event.fullFormattedMessage}")
        red = status(alarm)
        print(f"    alarm '{alarm.info.name}': {red}")
        if active or not events or red != "red":
            raise SystemExit(f"step 8: with the KMS down expected inactive provider, an event and a red alarm; "
                             f"got active={active}, {len(events)} event(s), alarm {red}")
    finally:
        tour.env.kms.servers["shared"].start()
        print("  shared KMS started again")
    active = content.cryptoManager.IsKmsClusterActive(cluster=tour.provider)
    green = status(alarm)
    print(f"    IsKmsClusterActive({TOUR_PROVIDER}) = {active}; alarm '{alarm.info.name}': {green}")
    if not active or green != "green":
        raise SystemExit(f"step 8: after the restart expected an active provider and a green alarm; "
                         f"got active={active}, alarm {green}")


# ---- clean-up and main ----------------------------------------------------------------------------------
def clean_up(tour: Tour) -> list[str]:
    """Destroy every VM the tour made (children first), remove the tour key provider everywhere,
    and return what is still there (nothing, when clean-up worked)."""
    for vm in reversed(tour.vms):
        try:
            if vm.runtime.powerState == "poweredOn":
                wait(vm.PowerOffVM_Task())
            wait(vm.Destroy_Task())
        except vmodl.fault.ManagedObjectNotFound:
            pass
        except vmodl.MethodFault as fault:
            print(f"  clean-up: could not destroy a VM: {type(fault).__name__}: {fault.msg}")
    for si in tour.registered:
        try:
            si.content.cryptoManager.RemoveKmipServer(clusterId=tour.provider, serverName=TOUR_SERVER)
        except vmodl.MethodFault as fault:
            print(f"  clean-up: RemoveKmipServer: {type(fault).__name__}: {fault.msg}")
    left = []
    for label, si in (("vc-a", tour.si_a), ("vc-b", tour.si_b)):
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        left += [f"{label}: VM {vm.name}" for vm in view.view if vm.name.startswith("tour-")]
        view.DestroyView()
        left += [f"{label}: key provider {c.clusterId.id}" for c in si.content.cryptoManager.ListKmsClusters()
                 if c.clusterId.id == TOUR_PROVIDER]
    print(f"  destroyed {len(tour.vms)} VM(s), removed {TOUR_PROVIDER} from {len(tour.registered)} vCenter(s); "
          f"left behind: {left or 'nothing'}")
    return left


STEPS = (step1_register_key_provider, step2_encrypt_a_vm, step3_clone_three_ways,
         step4_shallow_rekey_with_snapshots, step5_instant_clone, step6_migrate_to_vc_b, step7_ha_key_push,
         step8_kms_outage)


def main() -> int:
    with harness.open_environment(INVENTORY) as env:
        tour = Tour(env)
        print(f"vc-a: {tour.si_a.content.about.fullName}; vc-b: {tour.si_b.content.about.fullName}")
        try:
            for number, step in enumerate(STEPS, 1):
                print(f"\nStep {number}: {step.__doc__.splitlines()[0]}")
                step(tour)
        finally:
            print("\nClean-up")
            left = clean_up(tour)
    if left:
        raise SystemExit(f"clean-up: still there: {left}")
    print("\nTour complete: every step showed what vSphere documents.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
