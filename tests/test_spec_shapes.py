"""The specs the harness sends, as vSphere documents them (issue 12 items 4, 6, 7)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pyVmomi import vim, vmodl

from harness.vsphere import clone_shapes, clones, crypto
from harness.vsphere.errors import EnvironmentFault


class _Capture:
    """A client stand-in that records invoke() calls and answers the disk read."""
    name = "vc-a"

    def __init__(self, disks: int = 2) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.devices = [vim.vm.device.VirtualDisk(key=2000 + i, backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            keyId=vim.encryption.CryptoKeyId(keyId="k", providerId=vim.encryption.KeyProviderId(id="p"))))
            for i in range(disks)]

    def read(self, obj: Any, paths: list[str], **_: Any) -> dict[str, Any]:
        return {"config.hardware.device": self.devices}

    def invoke(self, obj: Any, method: str, **kwargs: Any) -> None:
        self.calls.append((method, kwargs))


def _place() -> Any:
    return SimpleNamespace(pool=vim.ResourcePool("pool-1"), datastore=vim.Datastore("ds-1"), vm_folder=vim.Folder("f-1"),
                           hosts=(vim.HostSystem("host-1"),))


def test_decrypt_carries_the_empty_profile_on_vm_home_and_every_disk_as_powercli_does():
    client = _Capture()
    crypto.decrypt(client, vim.VirtualMachine("vm-1"))
    [(method, kwargs)] = client.calls
    spec = kwargs["spec"]
    assert method == "ReconfigVM_Task" and isinstance(spec.crypto, vim.encryption.CryptoSpecDecrypt)
    assert [type(p) for p in spec.vmProfile] == [vim.vm.EmptyProfileSpec]
    assert len(spec.deviceChange) == 2
    assert all([type(p) for p in c.profile] == [vim.vm.EmptyProfileSpec] for c in spec.deviceChange)


def _cloned_spec(change: str, shape: str | None = None, policy: str | None = "enc-policy") -> Any:
    client = _Capture()
    if shape is not None:
        client.clone_crypto_shape = shape
    key = ("p", "new") if change != "decrypt" else None
    clones.clone(client, vim.VirtualMachine("vm-1"), clones.Destination(client=client, place=_place()), "c", "m",
                 crypto=change, key=key, policy_id=policy if change != "decrypt" else None)
    [(method, kwargs)] = client.calls
    assert method == "CloneVM_Task"
    return kwargs["spec"]


SPEC_TYPES = {"encrypt": vim.encryption.CryptoSpecEncrypt, "decrypt": vim.encryption.CryptoSpecDecrypt,
              "shallow": vim.encryption.CryptoSpecShallowRecrypt, "deep": vim.encryption.CryptoSpecDeepRecrypt}


@pytest.mark.parametrize("change", list(SPEC_TYPES))
def test_by_default_each_disk_locator_carries_the_policy_and_the_vm_level_cryptospec_as_powercli_does(change):
    """PowerCLI VMware.VMEncryption and vm-operator repeat the VM's CryptoSpec in every disk's backing.crypto;
    a disk policy without it is what terraform-provider-vsphere#2241 saw refused (clone_shapes.py)."""
    spec = _cloned_spec(change)
    assert isinstance(spec.config.crypto, SPEC_TYPES[change])
    assert spec.location.cryptoSpec is None and not spec.config.vmProfile
    assert [d.diskId for d in spec.location.disk] == [2000, 2001]
    assert all(d.backing is not None and d.backing.crypto is spec.config.crypto for d in spec.location.disk)
    wanted = [vim.vm.EmptyProfileSpec] if change == "decrypt" else [vim.vm.DefinedProfileSpec]
    assert all([type(p) for p in d.profile] == wanted for d in spec.location.disk)
    assert [type(p) for p in spec.location.profile] == wanted


def test_a_cross_vcenter_clone_sends_the_same_shape_next_to_its_service_locator():
    """No public client sends a crypto change across vCenters: the same-vCenter shape, plus location.service
    (community.vmware vmware_guest_cross_vc_clone)."""
    client = _Capture()
    locator = vim.ServiceLocator(instanceUuid="uuid-b", url="https://vc-b/sdk")
    clones.clone(client, vim.VirtualMachine("vm-1"), clones.Destination(client=client, place=_place(), locator=locator),
                 "c", "m", crypto="encrypt", key=("p", "k"), policy_id="enc-policy")
    spec = client.calls[0][1]["spec"]
    assert spec.location.service is locator and isinstance(spec.config.crypto, vim.encryption.CryptoSpecEncrypt)
    assert all(d.backing.crypto is spec.config.crypto for d in spec.location.disk)


def test_the_vm_level_shape_sends_no_disk_crypto_and_the_relocate_shape_uses_location_cryptospec():
    vm_level = _cloned_spec("shallow", clone_shapes.VM_LEVEL)
    assert isinstance(vm_level.config.crypto, vim.encryption.CryptoSpecShallowRecrypt)
    assert all(d.backing is None for d in vm_level.location.disk)
    relocate = _cloned_spec("shallow", clone_shapes.RELOCATE)
    assert relocate.config.crypto is None
    assert isinstance(relocate.location.cryptoSpec, vim.encryption.CryptoSpecShallowRecrypt)
    assert all(d.backing.crypto is relocate.location.cryptoSpec for d in relocate.location.disk)


def test_a_clone_without_a_crypto_change_sends_no_crypto_whatever_the_shape():
    for shape in clone_shapes.SHAPES:
        client = _Capture()
        client.clone_crypto_shape = shape
        clones.clone(client, vim.VirtualMachine("vm-1"), clones.Destination(client=client, place=_place()), "c", "m")
        spec = client.calls[0][1]["spec"]
        assert spec.config.crypto is None and spec.location.cryptoSpec is None and not spec.location.disk


def test_the_inventory_accepts_exactly_the_shapes_the_operations_layer_builds():
    from typing import get_args

    from harness.inventory.schema import VCenter
    assert set(get_args(VCenter.model_fields["clone_crypto_shape"].annotation)) == set(clone_shapes.SHAPES)
    assert VCenter.model_fields["clone_crypto_shape"].default == clone_shapes.DEFAULT


def test_a_fault_naming_the_disk_locators_crypto_is_an_environment_error_naming_the_option():
    """The vCenter refused the harness's spec shape, not the product's crypto change: no product verdict."""
    class Refusing(_Capture):
        def invoke(self, obj: Any, method: str, **kwargs: Any) -> None:
            raise vmodl.fault.InvalidArgument(invalidProperty="spec.disk.backing.crypto",
                                              msg="A specified parameter was not correct: spec.disk.backing.crypto")

    client = Refusing()
    client.clone_crypto_shape = clone_shapes.VM_LEVEL
    with pytest.raises(clones.CloneShapeRefused, match="clone_crypto_shape: vm-level") as caught:
        clones.clone(client, vim.VirtualMachine("vm-1"), clones.Destination(client=client, place=_place()), "c", "m",
                     crypto="encrypt", key=("p", "k"), policy_id="enc-policy")
    assert isinstance(caught.value, EnvironmentFault)


def test_a_decrypting_clone_carries_the_empty_profile():
    client = _Capture()
    clones.clone(client, vim.VirtualMachine("vm-1"), clones.Destination(client=client, place=_place()), "c", "m",
                 crypto="decrypt")
    spec = client.calls[0][1]["spec"]
    assert isinstance(spec.config.crypto, vim.encryption.CryptoSpecDecrypt)
    assert [type(p) for p in spec.location.profile] == [vim.vm.EmptyProfileSpec]
    assert all([type(p) for p in d.profile] == [vim.vm.EmptyProfileSpec] for d in spec.location.disk)


def test_a_service_locator_carries_the_thumbprint_it_is_given():
    dest = SimpleNamespace(content=SimpleNamespace(about=SimpleNamespace(instanceUuid="uuid-b")))
    locator = clones.service_locator(dest, "https://vc-b/sdk", "u", "pw", thumbprint="ab:" * 19 + "cd")
    assert locator.sslThumbprint == "ab:" * 19 + "cd" and locator.instanceUuid == "uuid-b"
    assert clones.service_locator(dest, "https://vc-b/sdk", "u", "pw").sslThumbprint is None
