"""The fake as a demanding real lab (issue 12): certificate trust between vCenters, hosts in maintenance
mode, storage policies that do not fit the datastore, the clone spec vCenter accepts, and per-link disk keys."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import pytest
from pyVmomi import vim, vmodl

from harness.vsphere.thumbprints import certificate_der, locator_thumbprint, sha1_thumbprint
from tests.fakevc.conftest import make_vm, wait
from tests.fakevc.test_cross_vcenter import dest_spec, gone, on_b  # noqa: F401 - fixture
from tests.fakevc.test_vm_crypto import (chain_keys, disks, empty_policy, enc_policy, find_vm, key_of, new_key,
                                         refused, seeded, shallow_spec, snapshot, state)
from tests.fakevc.test_vm_crypto import enc_vm, made, vm2  # noqa: F401 - fixtures

COVERED = {"xvc-locator-thumbprint-unchecked", "xvc-decrypt-refusal-is-login-failure",
           "clone-accepts-disk-policy-without-crypto", "snap-shallow-skips-frozen-links"}


@contextlib.contextmanager
def knob(env: Any, name: str, **values: Any) -> Iterator[Any]:
    """Set fake knobs on one fake vCenter for the test (arranging only); restored afterwards."""
    vc = env.world.vcenters[name]
    before = {k: getattr(vc, k) for k in values}
    for key, value in values.items():
        setattr(vc, key, value)
    try:
        yield vc
    finally:
        for key, value in before.items():
            setattr(vc, key, value)


# ---- certificates and ServiceLocator.sslThumbprint --------------------------------------------------------
def test_each_fake_vcenter_presents_its_own_certificate_and_the_harness_reads_its_sha1(env, si_a, si_b):
    der_a, der_b = certificate_der(si_a, "https://unused"), certificate_der(si_b, "https://unused")
    assert der_a != der_b
    thumb, source = locator_thumbprint(env.inventory.vcenter("vc-b"), si_b, "https://unused")
    assert thumb == sha1_thumbprint(der_b) and "certificate" in source
    assert len(thumb.split(":")) == 20 and thumb == thumb.lower()   # community.vmware's format


def test_an_inventory_pin_wins_over_the_certificate(si_b, env):
    entry = env.inventory.vcenter("vc-b").model_copy(update={"locator_thumbprint": "ab:" * 19 + "cd"})
    assert locator_thumbprint(entry, si_b, "https://unused") == ("ab:" * 19 + "cd", "inventory pin (locator_thumbprint)")


def test_without_shared_trust_a_locator_needs_the_destinations_thumbprint(env, si_a, si_b, enc_vm, on_b):
    name = enc_vm.name
    on_b.append(name)
    before = state(enc_vm)
    right = sha1_thumbprint(env.world.vcenters["vc-b"].certificate_der)
    with knob(env, "vc-a", trust_peers=False):
        fault = refused(enc_vm.RelocateVM_Task(spec=dest_spec(env, si_b)), vim.fault.SSLVerifyFault)
        assert fault.thumbprint == right
        wrong = dest_spec(env, si_b)
        wrong.service.sslThumbprint = "00:" * 19 + "00"
        refused(enc_vm.RelocateVM_Task(spec=wrong), vim.fault.SSLVerifyFault)
        assert state(enc_vm) == before and find_vm(si_b, name) is None
        good = dest_spec(env, si_b)
        good.service.sslThumbprint = right.upper()   # case is not significant
        wait(enc_vm.RelocateVM_Task(spec=good))
    assert gone(enc_vm) and find_vm(si_b, name) is not None


def test_a_wrong_thumbprint_is_refused_even_between_trusting_vcenters(env, si_b, enc_vm):
    spec = dest_spec(env, si_b)
    spec.service.sslThumbprint = "00:" * 19 + "00"
    refused(enc_vm.RelocateVM_Task(spec=spec), vim.fault.SSLVerifyFault)


def test_defect_locator_thumbprint_unchecked(env, si_b, enc_vm, on_b):
    on_b.append(enc_vm.name)
    with knob(env, "vc-a", trust_peers=False), seeded(env, "xvc-locator-thumbprint-unchecked"):
        wait(enc_vm.RelocateVM_Task(spec=dest_spec(env, si_b)))
    assert gone(enc_vm)


def test_defect_decrypt_refusal_is_a_login_failure(env, si_b, enc_vm):
    with seeded(env, "xvc-decrypt-refusal-is-login-failure"):
        refused(enc_vm.RelocateVM_Task(spec=dest_spec(env, si_b, profile=empty_policy())), vim.fault.InvalidLogin)


# ---- maintenance mode ---------------------------------------------------------------------------------------
def test_a_host_in_maintenance_mode_gets_no_vm_and_placement_avoids_it(env, si_a, made):
    dc = si_a.content.rootFolder.childEntity[0]
    cluster = [c for c in dc.hostFolder.childEntity if isinstance(c, vim.ClusterComputeResource)][0]
    host = cluster.host[0]
    model = env.world.vcenters["vc-a"].lookup(host._moId)
    model.in_maintenance = True
    try:
        assert host.runtime.inMaintenanceMode is True
        spec = vim.vm.ConfigSpec(name="maint-vm", files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"))
        refused(dc.vmFolder.CreateVM_Task(config=spec, pool=cluster.resourcePool, host=host), vim.fault.InvalidState)
        placed = make_vm(si_a)
        made.append(placed)
        assert placed.runtime.host._moId != host._moId
        from harness.vsphere.client import VCenterClient
        client = VCenterClient(name="vc-a", si=si_a, timeouts=env.inventory.timeouts, target="fake")
        from harness.vsphere import find
        assert host._moId not in {h._moId for h in find.placement(client, None, None).hosts}
    finally:
        model.in_maintenance = False


# ---- storage policies that do not fit the datastore ---------------------------------------------------------
def test_strict_policies_refuse_a_vsan_policy_on_vmfs_and_accept_the_empty_profile(env, enc_vm):
    from harness.fakevc.model import pbm as fake_pbm
    crypto = vim.encryption.CryptoSpecDecrypt()
    plain = [vim.vm.DefinedProfileSpec(profileId=fake_pbm.PLAIN_POLICY_ID)]
    before = state(enc_vm)
    with knob(env, "vc-a", strict_policies=True):
        fault = refused(enc_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(crypto=crypto, vmProfile=plain)),
                        vmodl.fault.InvalidArgument)
        assert "not compatible with the datastore" in fault.msg
        assert state(enc_vm) == before
        edits = [vim.vm.device.VirtualDeviceSpec(operation="edit", device=d, profile=empty_policy(),
                                                 backing=vim.vm.device.VirtualDeviceSpec.BackingSpec(crypto=crypto))
                 for d in disks(enc_vm)]
        wait(enc_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(crypto=crypto, vmProfile=empty_policy(), deviceChange=edits)))
    assert enc_vm.config.keyId is None


# ---- the clone spec ------------------------------------------------------------------------------------------
def test_defect_clone_accepts_disk_policy_without_crypto(env, si_a, vm2, made):
    locators = [vim.vm.RelocateSpec.DiskLocator(diskId=d.key, datastore=vm2.datastore[0], profile=enc_policy())
                for d in disks(vm2)]
    spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(profile=enc_policy(), disk=locators), template=False,
                            powerOn=False)
    refused(vm2.CloneVM_Task(folder=vm2.parent, name="disk-policy-clone", spec=spec), vmodl.fault.InvalidArgument)
    with seeded(env, "clone-accepts-disk-policy-without-crypto"):
        made.append(wait(vm2.CloneVM_Task(folder=vm2.parent, name="disk-policy-clone", spec=spec)))


# ---- per-link keys of a disk chain ---------------------------------------------------------------------------
def test_a_shallow_recrypt_puts_every_link_of_every_chain_on_the_new_key(si_a, enc_vm):
    snapshot(enc_vm, "s1")
    snapshot(enc_vm, "s2")
    key = new_key(si_a)
    wait(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, key)))
    for disk in disks(enc_vm):
        links = chain_keys(disk)
        assert len(links) == 3 and set(links) == {key_of(key)}
    for tree in enc_vm.snapshot.rootSnapshotList:
        for disk in [d for d in tree.snapshot.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]:
            assert set(chain_keys(disk)) == {key_of(key)}


def test_defect_shallow_recrypt_skips_frozen_links(env, si_a, enc_vm):
    old = key_of(enc_vm.config.keyId)
    snapshot(enc_vm, "s1")
    key = new_key(si_a)
    with seeded(env, "snap-shallow-skips-frozen-links"):
        wait(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, key)))
    tree = enc_vm.snapshot.rootSnapshotList[0]
    assert key_of(tree.snapshot.config.keyId) == key_of(key)          # what the old check read: fine
    assert [d.backing.keyId.keyId for d in disks(enc_vm)] == [key.keyId] * len(disks(enc_vm))
    assert old in chain_keys(disks(enc_vm)[0])                         # the links below: still old


def test_a_certificate_that_does_not_match_the_sha256_pin_gives_no_thumbprint(env, si_b):
    import hashlib

    from harness.vsphere.errors import EnvironmentFault
    entry = env.inventory.vcenter("vc-b")
    der = env.world.vcenters["vc-b"].certificate_der
    pinned = entry.model_copy(update={"tls": entry.tls.model_copy(update={"insecure": False,
                                                                          "thumbprint_sha256": hashlib.sha256(der).hexdigest()})})
    assert locator_thumbprint(pinned, si_b, "https://unused")[0] == sha1_thumbprint(der)
    wrong = entry.model_copy(update={"tls": entry.tls.model_copy(update={"insecure": False,
                                                                         "thumbprint_sha256": "0" * 64})})
    with pytest.raises(EnvironmentFault, match="does not match"):
        locator_thumbprint(wrong, si_b, "https://unused")


def test_a_shallow_recrypt_stopped_part_way_leaves_the_disk_links_on_mixed_keys(env, si_a, enc_vm):
    from harness.fakevc.behaviours import snapshots as fake_snapshots
    old = key_of(enc_vm.config.keyId)
    for name in ("s1", "s2", "s3"):
        snapshot(enc_vm, name)
    key = new_key(si_a)
    fake = env.world.vcenters["vc-a"]
    fake_snapshots.inject_rekey_failure(fake, after_links=1)
    try:
        refused(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, key)), vim.fault.InvalidState)
    finally:
        fake_snapshots.clear_rekey_failure(fake)
    links = {k for d in disks(enc_vm) for k in chain_keys(d)}
    assert links == {old, key_of(key)}, links
    wait(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, key)))
    assert {k for d in disks(enc_vm) for k in chain_keys(d)} == {key_of(key)}
