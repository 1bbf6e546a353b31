"""The fake's plumbing through plain pyVmomi: property collector, views, waits, paging, the wire.

Also home of `fresh_fake`: a private fake vCenter (own world, the session's real KMS) for tests
that change shared state (host crypto modes, HA, sessions, roles) or switch on a defect.
"""
from __future__ import annotations

import contextlib
import itertools
import time
from typing import Any, Iterator

import pytest
from pyVmomi import vim, vmodl

from harness.targets.environment import Environment
from harness.fakevc.world import FakeWorld, ProviderSeed, VCenterSeed
from tests.fakevc.conftest import make_vm, wait

ADMIN = "administrator@vsphere.local"
ADMIN_PASSWORD = "fake-admin-password"
PC = vmodl.query.PropertyCollector
_worlds = itertools.count(1)


def login(world: FakeWorld, name: str, user: str = ADMIN, password: str = ADMIN_PASSWORD) -> Any:
    """A ServiceInstance on a fake vCenter of `world`, logged in as `user` (a stub of its own)."""
    si = vim.ServiceInstance("ServiceInstance", world.adapter(name))
    si.content.sessionManager.Login(user, password)
    return si


@contextlib.contextmanager
def fresh_fake(env: Environment, defects: list[str] | tuple[str, ...] = (), version: str = "7.0.3",
               hosts: int = 3, vms: int = 2) -> Iterator[tuple[FakeWorld, Any]]:
    """A private fake vCenter sharing the session's real KMS: (world, logged-in ServiceInstance)."""
    name = f"vc-private-{next(_worlds)}"
    world = FakeWorld(defects=list(defects))
    seeds = [ProviderSeed(provider_id=e.provider_id, server_name=e.server_name, address=e.address, port=e.port,
                          server_cert_pem=e.ca_pem, client_cert_pem=e.client_cert_pem,
                          client_key_pem=e.client_key_pem, vcenters=(name,), default=(role == "shared"))
             for role, e in env.kms_endpoints.items()]
    world.add_vcenter(VCenterSeed(name=name, url=f"https://{name}.fake.invalid/sdk", user=ADMIN,
                                  password=ADMIN_PASSWORD, version=version, hosts=hosts, vms=vms), seeds)
    try:
        yield world, login(world, name)
    finally:
        world.close()


def cluster_of(si: Any) -> Any:
    dc = si.content.rootFolder.childEntity[0]
    return [c for c in dc.hostFolder.childEntity if isinstance(c, vim.ClusterComputeResource)][0]


def _container_view(si: Any, types: list[type]) -> Any:
    return si.content.viewManager.CreateContainerView(si.content.rootFolder, types, True)


def _filter_spec(view: Any, typ: type, paths: list[str]) -> Any:
    traverse = PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)
    return PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[traverse])],
                         propSet=[PC.PropertySpec(type=typ, pathSet=paths)])


@pytest.fixture(scope="module")
def private(env: Environment) -> Iterator[tuple[FakeWorld, Any]]:
    with fresh_fake(env, vms=5) as pair:
        yield pair


# ---- property collector and views ------------------------------------------------------------
def test_container_view_lists_inventory_by_type(private: Any) -> None:
    _, si = private
    view = _container_view(si, [vim.HostSystem])
    try:
        names = sorted(h.name for h in view.view)
        assert names == ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2", "DC0_H_legacy"]
    finally:
        view.DestroyView()


def test_retrieve_properties_ex_pages_with_tokens(private: Any) -> None:
    _, si = private
    pc = si.content.propertyCollector
    view = _container_view(si, [vim.VirtualMachine])
    try:
        spec = _filter_spec(view, vim.VirtualMachine, ["name", "runtime.powerState"])
        first = pc.RetrievePropertiesEx(specSet=[spec], options=PC.RetrieveOptions(maxObjects=2))
        assert len(first.objects) == 2 and first.token
        seen = list(first.objects)
        token = first.token
        while token:
            page = pc.ContinueRetrievePropertiesEx(token=token)
            seen += page.objects
            token = page.token
        assert len(seen) == 5
        assert len({o.obj._moId for o in seen}) == 5
        for content in seen:
            props = {p.name: p.val for p in content.propSet}
            assert props["runtime.powerState"] == "poweredOff" and props["name"].startswith("DC0_C0_RP0_VM")
        with pytest.raises(vmodl.query.InvalidCollectorVersion):
            pc.ContinueRetrievePropertiesEx(token=first.token)   # a token is used once
    finally:
        view.DestroyView()


def test_invalid_property_path_is_a_fault(private: Any) -> None:
    _, si = private
    view = _container_view(si, [vim.VirtualMachine])
    try:
        spec = _filter_spec(view, vim.VirtualMachine, ["config.noSuchThing"])
        with pytest.raises(vmodl.query.InvalidProperty):
            si.content.propertyCollector.RetrievePropertiesEx(specSet=[spec], options=PC.RetrieveOptions())
    finally:
        view.DestroyView()


def test_wait_for_updates_reports_changes_and_times_out(private: Any) -> None:
    _, si = private
    machine = make_vm(si)
    collector = si.content.propertyCollector.CreatePropertyCollector()
    try:
        spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=machine, skip=False)],
                             propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.powerState"])])
        collector.CreateFilter(spec=spec, partialUpdates=False)
        options = PC.WaitOptions(maxWaitSeconds=0)
        initial = collector.WaitForUpdatesEx(version="", options=options)
        change = initial.filterSet[0].objectSet[0]
        assert change.kind == "enter" and change.changeSet[0].val == "poweredOff"
        began = time.monotonic()
        assert collector.WaitForUpdatesEx(version=initial.version, options=options) is None
        assert time.monotonic() - began < 0.5
        wait(machine.PowerOnVM_Task())
        update = collector.WaitForUpdatesEx(version=initial.version, options=PC.WaitOptions(maxWaitSeconds=5))
        change = update.filterSet[0].objectSet[0]
        assert change.kind == "modify" and change.changeSet[0].val == "poweredOn"
    finally:
        collector.DestroyPropertyCollector()
        if machine.runtime.powerState == "poweredOn":
            wait(machine.PowerOffVM_Task())
        wait(machine.Destroy_Task())


# ---- the wire ----------------------------------------------------------------------------------
def test_wrong_argument_type_is_refused_client_side(private: Any) -> None:
    _, si = private
    machine = si.content.rootFolder.childEntity[0].vmFolder.childEntity[0]
    with pytest.raises(TypeError):
        machine.ReconfigVM_Task(spec=vim.vm.RelocateSpec())
    with pytest.raises(TypeError):
        si.content.authorizationManager.RetrieveRolePermissions(roleId="Admin")


def test_missing_required_data_object_is_refused_client_side(private: Any) -> None:
    _, si = private
    machine = si.content.rootFolder.childEntity[0].vmFolder.childEntity[0]
    spec = vim.vm.ConfigSpec(crypto=vim.encryption.CryptoSpecEncrypt())   # cryptoKeyId is required
    with pytest.raises(TypeError, match="cryptoKeyId"):
        machine.ReconfigVM_Task(spec=spec)
    assert machine.config.keyId is None


def test_faults_round_trip_with_their_fields(private: Any) -> None:
    _, si = private
    machine = make_vm(si)
    try:
        with pytest.raises(vim.fault.InvalidPowerState) as err:
            wait(machine.PowerOffVM_Task())
        assert err.value.existingState == "poweredOff" and err.value.requestedState == "poweredOff"
        assert "Powered off" in err.value.msg
        with pytest.raises(vim.fault.NotFound) as missing:
            si.content.authorizationManager.RetrieveRolePermissions(roleId=424242)
        assert "424242" in missing.value.msg
    finally:
        wait(machine.Destroy_Task())


def test_deleted_object_is_managed_object_not_found(private: Any) -> None:
    _, si = private
    machine = make_vm(si)
    wait(machine.Destroy_Task())
    with pytest.raises(vmodl.fault.ManagedObjectNotFound) as err:
        _ = machine.name
    assert isinstance(err.value.obj, vim.VirtualMachine) and err.value.obj._moId == machine._moId
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        machine.PowerOnVM_Task()
    bogus = vim.VirtualMachine("vm-does-not-exist", si._stub)
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        _ = bogus.runtime


def test_method_the_fake_lacks_is_method_not_found(private: Any) -> None:
    _, si = private
    host = cluster_of(si).host[0]
    with pytest.raises(vmodl.fault.MethodNotFound):
        host.EnterMaintenanceMode_Task(timeout=0)


def test_seven_zero_methods_are_refused_on_a_six_seven_vcenter(env: Environment) -> None:
    with fresh_fake(env, version="6.7.3", vms=1) as (_, si):
        assert si.content.about.apiVersion.startswith("6.7")
        with pytest.raises(vmodl.fault.MethodNotFound):
            si.content.cryptoManager.ListKmsClusters(includeKmsServers=True)
        host = cluster_of(si).host[0]
        with pytest.raises(vmodl.fault.MethodNotFound):
            host.configManager.cryptoManager.CryptoManagerHostDisable()
        assert host.runtime.cryptoState == "incapable"      # nothing reached the fake
        assert cluster_of(si).configurationEx.dasConfig.enabled is False


def test_calls_are_fast(private: Any) -> None:
    """A fake operation (no KMS round trip) takes well under the 2 ms budget on average."""
    _, si = private
    manager = si.content.authorizationManager
    manager.RetrieveAllPermissions()
    began = time.perf_counter()
    for _ in range(50):
        manager.RetrieveAllPermissions()
    assert (time.perf_counter() - began) / 50 < 0.002
