"""find.placement honours the inventory's datastore, VM folder, resource pool and hosts, and never
uses a host in maintenance mode (issue 12, item 9)."""
from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim

from harness.run.cleanup import annotation
from harness.targets.environment import Environment
from harness.inventory.schema import load_inventory
from harness.vsphere import find, vms
from harness.vsphere.client import VCenterClient


def _names(client: VCenterClient, objs: Any, vim_type: type) -> list[str]:
    props = client.read_many(list(objs), vim_type, ["name"])
    return [props[o._moId]["name"] for o in objs]


def test_defaults_use_every_cluster_host_and_let_vcenter_choose(client: VCenterClient) -> None:
    place = find.placement(client, "DC0", "DC0_C0")
    assert _names(client, place.hosts, vim.HostSystem) == ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"]
    assert not place.pin_host and place.datastore_name == "LocalDS_0"


def test_inventory_choices_are_used_and_vms_land_on_the_chosen_host(client: VCenterClient) -> None:
    entry = load_inventory("inventories/fake.yaml").vcenter("vc-a").model_copy(update={
        "datastore": "LocalDS_0", "vm_folder": "vm", "resource_pool": "Resources", "hosts": ["DC0_C0_H2"]})
    place = find.placement_for(client, entry)
    assert _names(client, place.hosts, vim.HostSystem) == ["DC0_C0_H2"] and place.pin_host
    assert client.read(place.vm_folder, ["name"])["name"] == "vm"
    assert client.read(place.pool, ["name"])["name"] == "Resources"

    vm = vms.create_vm(client, place, "vcrypt-placement-check", annotation("placement-check"))
    try:
        host = client.read(vm, ["runtime.host"])["runtime.host"]
        assert _names(client, [host], vim.HostSystem) == ["DC0_C0_H2"]
    finally:
        vms.destroy(client, vm)


def test_hosts_in_maintenance_mode_are_skipped(env: Environment, client: VCenterClient) -> None:
    fake_host = next(h for h in env.fake_vcenter("vc-a").hosts() if h.name == "DC0_C0_H0")
    fake_host.in_maintenance = True
    try:
        default = find.placement(client, "DC0", "DC0_C0")
        chosen = find.placement(client, "DC0", "DC0_C0", hosts=["DC0_C0_H0", "DC0_C0_H1"])
    finally:
        fake_host.in_maintenance = False
    assert _names(client, default.hosts, vim.HostSystem) == ["DC0_C0_H1", "DC0_C0_H2"]
    assert _names(client, chosen.hosts, vim.HostSystem) == ["DC0_C0_H1"]


@pytest.mark.parametrize("choice,named", [({"datastore": "NoSuchDS"}, "datastore named 'NoSuchDS'"),
                                          ({"vm_folder": "nope"}, "Folder named 'nope'"),
                                          ({"resource_pool": "nope"}, "ResourcePool named 'nope'"),
                                          ({"hosts": ["esx-9"]}, "host named 'esx-9'")])
def test_a_choice_the_vcenter_lacks_is_named(client: VCenterClient, choice: dict[str, Any], named: str) -> None:
    with pytest.raises(find.NotFoundInInventory, match=named):
        find.placement(client, "DC0", "DC0_C0", **choice)
