"""Virtual TPM (RULES: VTPM-*): a vTPM needs an encrypted VM home, keeps it encrypted, and what clones do with it.

What the API shows of a vTPM is the VirtualTPM device in `config.hardware.device` and its
`endorsementKeyCertificate`; the tests assert only that, the VM's keys, and the task outcomes.
"""
from __future__ import annotations

from typing import Any

import pytest

from harness import unconfirmed
from harness.checks import arrived, check_equal, check_that, positive_control, refused, refused_or_accepted, unchanged
from harness.vsphere import clones, crypto, keys, vms, vtpm

pytestmark = pytest.mark.requires("vm_encryption", "key_providers", "vtpm")


# ---- helpers --------------------------------------------------------------------------------------
def _with_tpm(vc: Any, vm: Any) -> vtpm.TpmState:
    """EFI firmware, then a vTPM (a plain device add, as community.vmware vmware_guest_tpm sends it)."""
    vtpm.set_efi_firmware(vc, vm)
    vtpm.add_tpm(vc, vm)
    return vtpm.tpm_state(vc, vm, label="vTPM after add", phase="after")


def _default_provider(vc: Any) -> str:
    """The provider a plain vTPM add takes its key from; a target without one cannot show the rule."""
    provider = keys.default_provider(vc)
    if provider is None:
        pytest.skip(f"capability: {vc.name} has no default key provider (a vTPM add without a CryptoSpec needs one)")
    return provider


def _certificates_shown(vc: Any, state: vtpm.TpmState) -> None:
    if not state.ek_certificates:
        pytest.skip(f"capability: {vc.name} shows no endorsementKeyCertificate on the vTPM device "
                    "(the clone's vTPM cannot be told from the source's)")


def _clone(scratch: Any, vc: Any, place: Any, source: Any, label: str, policy: str | None = None) -> Any:
    name = scratch.name(label)
    return arrived(scratch, vc, name, lambda: clones.clone(
        vc, source, clones.Destination(client=vc, place=place), name, scratch.marker, tpm_provision_policy=policy))


# ---- VTPM-ADD-ENCRYPTS-HOME --------------------------------------------------------------------------
@pytest.mark.rule("VTPM-ADD-ENCRYPTS-HOME")
@pytest.mark.covers(power="off")   # a vTPM is added to a powered-off VM (community.vmware vmware_guest_tpm)
@pytest.mark.test_id("3bbe187f-204c-4e5b-b1b0-bf0779ef6be5")
def test_adding_a_vtpm_encrypts_the_vm_home_not_the_disks_and_removing_it_leaves_the_vm_unencrypted(
        scratch, vc, place, provider):
    default = _default_provider(vc)
    vm = scratch.vm(vc, place, "vtpm-add", disks=2)
    before = vms.state(vc, vm, label="before vTPM add", phase="before")
    check_that("the VM starts unencrypted", not before.encrypted, "no config.keyId", f"{before.key}")

    tpm = _with_tpm(vc, vm)
    added = vms.state(vc, vm, label="after vTPM add", phase="after")
    check_that("the VM has a vTPM", tpm.present, "a VirtualTPM device", "none")
    check_that("the vTPM add encrypted the VM home", added.encrypted and added.key[0] == default,
               f"config.keyId from the default provider {default}", f"{added.key}")
    check_equal("the disks stay unencrypted", (None,) * len(before.disk_keys), added.disk_keys)

    vtpm.remove_tpm(vc, vm)
    removed = vms.state(vc, vm, label="after vTPM remove", phase="after")
    check_that("the vTPM is gone", not vtpm.tpm_state(vc, vm, label="vTPM after remove", phase="after").present,
               "no VirtualTPM device", "a VirtualTPM device")
    check_that("a VM unencrypted before the vTPM is unencrypted again", not removed.encrypted,
               "no config.keyId", f"{removed.key}")


@pytest.mark.rule("VTPM-ADD-ENCRYPTS-HOME")
@pytest.mark.test_id("04e1c554-764e-4501-9b7c-a9a8a8714a87")
def test_adding_and_removing_a_vtpm_leaves_an_encrypted_vm_on_its_own_key(scratch, vc, place, provider,
                                                                            policies_a):
    vm, key = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, label="vtpm-enc")
    before = vms.state(vc, vm, label="before vTPM add", phase="before")

    tpm = _with_tpm(vc, vm)
    added = vms.state(vc, vm, label="after vTPM add", phase="after")
    check_that("the VM has a vTPM", tpm.present, "a VirtualTPM device", "none")
    check_equal("the VM keeps its key when the vTPM is added", before.key, added.key)
    check_equal("its disks keep their keys", before.disk_keys, added.disk_keys)

    vtpm.remove_tpm(vc, vm)
    removed = vms.state(vc, vm, label="after vTPM remove", phase="after")
    check_equal("a VM encrypted before the vTPM keeps its key when the vTPM goes", key, removed.key)
    check_equal("its disks keep their keys", before.disk_keys, removed.disk_keys)


# ---- VTPM-DECRYPT-REFUSED ----------------------------------------------------------------------------
@pytest.mark.rule("VTPM-DECRYPT-REFUSED")
@pytest.mark.requires("storage_policies")
@pytest.mark.test_id("d9d1def7-f075-45e7-97d8-52571df46785")
def test_a_vm_with_a_vtpm_is_not_decrypted_and_once_the_vtpm_is_removed_the_same_decrypt_works(
        scratch, inventory, vc, place, provider, policies_a):
    vm, key = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, label="vtpm-dec")
    tpm_before = _with_tpm(vc, vm)
    before = vms.state(vc, vm, label="before decrypt", phase="before")
    check_that("the VM has a vTPM and its key", tpm_before.present and before.key == key,
               f"a vTPM, config.keyId {key}", f"vTPM {tpm_before.present}, key {before.key}")

    decrypt = lambda: crypto.decrypt(vc, vm, policies_a.plain)  # noqa: E731 - the same decrypt twice
    if unconfirmed.refusal_confirmed(inventory, vc.name, "vtpm-decrypt-refused"):
        refused(decrypt, "decrypt a VM that has a vTPM")
    else:
        refused_or_accepted(decrypt, "decrypt a VM that has a vTPM")

    after = vms.state(vc, vm, label="after the decrypt", phase="after")
    unchanged(before, after, "decrypt a VM that has a vTPM")
    check_equal("the vTPM is still there, the same one", tpm_before,
                vtpm.tpm_state(vc, vm, label="vTPM after the decrypt", phase="after"))
    # Positive control: without the vTPM the same decrypt (same policy) works, so what stopped it was the vTPM.
    vtpm.remove_tpm(vc, vm)
    positive_control(decrypt, "the same decrypt once the vTPM is removed")
    done = vms.state(vc, vm, label="after decrypt without vTPM", phase="after")
    check_that("decrypted once the vTPM is gone", not done.encrypted, "no config.keyId", f"{done.key}")


# ---- VTPM-CLONE-COPY ---------------------------------------------------------------------------------
@pytest.mark.rule("VTPM-CLONE-COPY")
@pytest.mark.test_id("c3c4b623-8a0e-4a9e-9164-a2580f03c596")
def test_a_clone_of_a_vm_with_a_vtpm_gets_a_copy_of_it_on_an_encrypted_home(scratch, vc, place, provider):
    _default_provider(vc)
    if (default := vtpm.default_clone_policy(vc)) not in (None, "copy"):
        pytest.skip(f"capability: {vc.name}'s {vtpm.CLONE_POLICY_SETTING} is {default!r}: a clone without "
                    "tpmProvisionPolicy does not copy the vTPM there (VTPM-CLONE-POLICY checks both policies)")
    source = scratch.vm(vc, place, "vtpm-src")
    source_tpm = _with_tpm(vc, source)
    _certificates_shown(vc, source_tpm)
    source_before = vms.state(vc, source, label="source before clone", phase="before")

    copy = _clone(scratch, vc, place, source, "vtpm-copy")

    clone_tpm = vtpm.tpm_state(vc, copy, label="clone's vTPM", phase="after")
    clone_state = vms.state(vc, copy, label="clone", phase="after")
    check_that("the clone has a vTPM", clone_tpm.present, "a VirtualTPM device", "none")
    check_equal("the copied vTPM has the source's endorsement key certificate", source_tpm.ek_certificates,
                clone_tpm.ek_certificates)
    check_equal("the clone's VM home is encrypted with the source's key", source_before.key, clone_state.key)
    unchanged(source_before, vms.state(vc, source, label="source after clone", phase="after"), "source of a clone")


# ---- VTPM-CLONE-POLICY (vSphere API 8.0.0.1) ---------------------------------------------------------
@pytest.mark.rule("VTPM-CLONE-POLICY")
@pytest.mark.test_id("9896f8d3-7cd4-4108-a699-47c6fdb743fc")
@pytest.mark.parametrize("policy", ["copy", "replace"])
def test_tpm_provision_policy_copy_keeps_the_vtpm_and_replace_gives_the_clone_a_new_one(policy, scratch, vc, place,
                                                                                       provider):
    _default_provider(vc)
    if not vtpm.supports_provision_policy(vc):
        pytest.skip(f"capability: {vc.name}'s API release {vc.content.about.apiVersion} has no "
                    "CloneSpec.tpmProvisionPolicy (vSphere API 8.0.0.1)")
    source = scratch.vm(vc, place, f"vtpm-{policy}-src")
    source_tpm = _with_tpm(vc, source)
    _certificates_shown(vc, source_tpm)
    source_before = vms.state(vc, source, label="source before clone", phase="before")

    copy = _clone(scratch, vc, place, source, f"vtpm-{policy}", policy=policy)

    clone_tpm = vtpm.tpm_state(vc, copy, label="clone's vTPM", phase="after")
    clone_state = vms.state(vc, copy, label="clone", phase="after")
    check_that("the clone has a vTPM", clone_tpm.present and bool(clone_tpm.ek_certificates),
               "a VirtualTPM device with an endorsement key certificate", f"{clone_tpm}")
    same = clone_tpm.ek_certificates == source_tpm.ek_certificates
    if policy == "copy":
        check_that("copy: the clone's vTPM has the source's endorsement key certificate", same,
                   "the source's certificate", "another certificate")
    else:
        check_that("replace: the clone's vTPM is a new one (another endorsement key certificate)", not same,
                   "a certificate other than the source's", "the source's certificate")
    check_that("the clone's VM home is encrypted", clone_state.encrypted, "config.keyId set", "unset")
    check_equal("the source keeps its vTPM", source_tpm,
                vtpm.tpm_state(vc, source, label="source's vTPM after clone", phase="after"))
    unchanged(source_before, vms.state(vc, source, label="source after clone", phase="after"), "source of a clone")
