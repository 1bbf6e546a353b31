"""Builds one fake vCenter's inventory: a datacenter, a cluster of hosts, a datastore, VMs.

Layout mirrors vcsim's VPX model (DC0, DC0_C0, DC0_C0_H0.., LocalDS_0, DC0_C0_RP0_VM0..) plus a
standalone host on an older ESXi for the host-version rules.
"""
from __future__ import annotations

from typing import Any

from harness.fakevc.disks import DiskFile
from harness.fakevc.model.alarms import AlarmManager
from harness.fakevc.model.authorization import AuthorizationManager
from harness.fakevc.model.cluster import ClusterComputeResource, ComputeResource
from harness.fakevc.model.crypto_manager import CryptoManagerKmip
from harness.fakevc.model.datastore import MIB, Datastore
from harness.fakevc.model.events import EventManager
from harness.fakevc.model.host import HostSystem
from harness.fakevc.model.inventory import Datacenter, Folder, Network
from harness.fakevc.model.property_collector import PropertyCollector, ViewManager
from harness.fakevc.model.service_instance import ServiceInstance, SessionManager
from harness.fakevc.model.task import TaskManager
from harness.fakevc.model.vm import VirtualMachine, VmDisk
from harness.fakevc.server import FakeVCenter

LEGACY_HOST_VERSION = "6.7.0"
# vCenter builds by version, so a fake reports a build of the version it plays (VMware KB 2143838, "Build
# numbers and versions of VMware vCenter Server": 6.7 Update 3g is build 16046470; VMware vCenter Server 8.0
# Update 2 release notes: GA ISO build 22385739). Looked up by the full version, then major.minor; other
# versions keep FakeVCenter's 7.0.3 default.
VCENTER_BUILDS = {"6.7": "16046470", "8.0.2": "22385739"}
# ESXi builds of the cluster hosts by version (VMware KB 2143832, "Build numbers and versions of VMware ESXi";
# VMware ESXi 8.0 Update 2 release notes: GA ISO build 22380479); others keep HostSystem's default.
ESXI_BUILDS = {"8.0.2": "22380479"}


def build_of(builds: dict[str, str], version: str) -> dict[str, str]:
    """{"build": ...} for `version` (full version first, then major.minor), or {} to keep the default."""
    text = str(version)
    for key in (text, ".".join(text.split(".")[:2])):
        if key in builds:
            return {"build": builds[key]}
    return {}


def new_disk_chain(vc: FakeVCenter, vm_name: str, datastore: Datastore, size: int, index: int = 0) -> list[DiskFile]:
    suffix = "" if index == 0 else f"_{index}"
    return [DiskFile.create(f"[{datastore.name}] {vm_name}/{vm_name}{suffix}.vmdk", size, datastore)]


def create_vm(vc: FakeVCenter, name: str, disk_size: int, host: HostSystem | None = None,
              folder: Folder | None = None) -> VirtualMachine:
    """A powered-off, unencrypted VM with one disk of real bytes on the cluster's datastore."""
    host = host or vc.cluster.hosts[0]
    datastore = host.datastores[0]
    folder = folder or vc.datacenter.vm_folder
    pool = host.parent_mo.pool
    disk = VmDisk(key=2000, label="Hard disk 1", chain=new_disk_chain(vc, name, datastore, disk_size))
    vm = VirtualMachine(vc, name, folder, pool, host, datastore, [disk])
    folder.add(vm)
    return vm


def build_vcenter(world: Any, seed: Any, providers: list[Any]) -> FakeVCenter:
    vc = FakeVCenter(world, seed.name, seed.url, version=seed.version, **build_of(VCENTER_BUILDS, seed.version))
    vc.trust_peers = seed.trust_peers
    vc.strict_policies = seed.strict_policies
    vc.quirks = seed.quirks
    vc.add_user(seed.user, seed.password)
    service = ServiceInstance(vc, moid="ServiceInstance")
    root = Folder(vc, "Datacenters", None, ["Folder", "Datacenter"], moid="group-d1")
    vc.root = root
    vc.tasks = TaskManager(vc, moid="TaskManager")
    vc.events = EventManager(vc, moid="EventManager")
    vc.alarms = AlarmManager(vc, moid="AlarmManager")
    vc.authz = AuthorizationManager(vc, moid="AuthorizationManager")
    vc.crypto = CryptoManagerKmip(vc, moid="CryptoManager")
    vc.managers = {
        "rootFolder": root, "propertyCollector": PropertyCollector(vc, moid="propertyCollector"),
        "viewManager": ViewManager(vc, moid="ViewManager"), "sessionManager": SessionManager(vc, moid="SessionManager"),
        "taskManager": vc.tasks, "eventManager": vc.events, "alarmManager": vc.alarms,
        "authorizationManager": vc.authz, "cryptoManager": vc.crypto,
    }
    vc.service_instance = service

    dc = root.add(Datacenter(vc, seed.datacenter, root))
    vc.datacenter = dc
    datastore = dc.datastore_folder.add(Datastore(vc, "LocalDS_0", dc.datastore_folder,
                                                  seed.datastore_capacity_mib * MIB))
    dc.network_folder.add(Network(vc, "VM Network", dc.network_folder))
    cluster = dc.host_folder.add(ClusterComputeResource(vc, seed.cluster, dc.host_folder))
    vc.cluster = cluster
    versions = seed.host_versions or []
    for index in range(seed.hosts):
        version = versions[index] if index < len(versions) else seed.version
        host = HostSystem(vc, f"{seed.cluster}_H{index}", cluster, version=version, **build_of(ESXI_BUILDS, version))
        host.datastores.append(datastore)
        host.in_maintenance = index > 0 and index >= seed.hosts - seed.maintenance_hosts   # host 0 always usable
        cluster.hosts.append(host)
    legacy = dc.host_folder.add(ComputeResource(vc, "DC0_H_legacy", dc.host_folder))
    legacy_host = HostSystem(vc, "DC0_H_legacy", legacy, version=LEGACY_HOST_VERSION, build="15160138")
    legacy_host.datastores.append(datastore)
    legacy.hosts.append(legacy_host)
    vc.legacy_host = legacy_host

    for index in range(seed.vms):
        usable = [h for h in cluster.hosts if not h.in_maintenance]
        create_vm(vc, f"{seed.cluster}_RP0_VM{index}", seed.disk_size_kib * 1024, host=usable[index % len(usable)])
    vc.crypto.seed_providers(providers)
    return vc
