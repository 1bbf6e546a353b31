"""The specs the harness sends, as vSphere documents them (issue 12 items 4, 6, 7)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pyVmomi import vim

from harness.vsphere import clones, crypto


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


def test_a_clone_with_a_new_key_sends_the_policy_and_one_vm_level_cryptospec_never_disk_backing_crypto():
    client = _Capture()
    key = ("p", "new")
    clones.clone(client, vim.VirtualMachine("vm-1"), clones.Destination(client=client, place=_place()), "c", "m",
                 crypto="shallow", key=key, policy_id="enc-policy")
    [(method, kwargs)] = client.calls
    spec = kwargs["spec"]
    assert method == "CloneVM_Task"
    assert isinstance(spec.config.crypto, vim.encryption.CryptoSpecShallowRecrypt)
    assert spec.config.crypto.newKeyId.keyId == "new"
    assert [p.profileId for p in spec.location.profile] == ["enc-policy"]
    assert not spec.config.vmProfile
    assert [d.diskId for d in spec.location.disk] == [2000, 2001]
    assert all(d.backing is None for d in spec.location.disk)          # terraform-provider-vsphere#2241
    assert all([p.profileId for p in d.profile] == ["enc-policy"] for d in spec.location.disk)


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
