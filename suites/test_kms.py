"""Key providers and keys (RULES.md: KMS-*): a KMS is required, keys live on it, status tells the truth,
and a VM crosses to another vCenter only when both reach its KMS cluster."""
from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vmodl


from harness import unconfirmed
from harness.checks import (ControlFailed, arrived, positive_control, precondition, refused, refused_crossing,
                            require_kmip_refusal, unchanged)
from harness.vsphere import clones, crypto, keys, vms
from harness.vsphere.hosts import require_some

pytestmark = pytest.mark.requires("key_providers")


# ---- helpers ------------------------------------------------------------------------------------


def _control(scratch: Any, environment: Any, vc: Any, vc_b: Any, place: Any, place_b: Any, provider: str,
             policy: str, operation: str) -> None:
    """Positive control of a cross-vCenter refusal: the same operation on a twin encrypted with the shared
    provider (which the destination has) must succeed in this run, or the refusal proves nothing (an error)."""
    twin, _ = scratch.encrypted_vm(vc, place, provider, policy, f"twin-{operation}")
    name = scratch.name("twin-copy") if operation == "clone" else vms.state(vc, twin).name
    dest = clones.cross_destination(environment, vc_b, place_b)
    positive_control(lambda: arrived(scratch, vc_b, name,
                                     lambda: clones.clone_or_migrate(vc, twin, dest, operation, name, scratch.marker)),
                     f"cross-vCenter {operation} of a twin on the shared provider {provider}")


def _has_7_0_api(client: Any) -> bool:
    return client.version_tuple() >= (7, 0)


def _clear_default_provider(scratch: Any, vc: Any, saved: str | None, kms: Any) -> None:
    """Leave `vc` without a default key provider; the original default is restored at teardown.

    7.0 clears the default (SetDefaultKmsCluster without a provider). Before 7.0 there is no such
    call: the default provider is removed and registered again afterwards through the trust flow,
    which needs its KMS endpoint in the inventory.
    """
    record = {"action": "default_provider", "vcenter": vc.name, "provider_id": saved, "after": {"provider_id": None}}
    if _has_7_0_api(vc):
        scratch.restore("restore the default key provider", lambda: keys.set_default(vc, saved), record=record)
        keys.set_default(vc, None)
    elif saved is not None:
        try:
            endpoint = kms.for_provider(saved)
        except LookupError:
            pytest.skip(f"capability: {vc.name} ({vc.version}) can lose its default key provider only by removing "
                        f"it, and the inventory has no KMS endpoint to register {saved} again")

        def restore() -> None:
            keys.register_provider(vc, endpoint, saved, make_default=False)
            keys.set_default(vc, saved)
        scratch.restore(f"register key provider {saved} again and make it default", restore, record=record)
        keys.remove_provider(vc, saved)
    vc.recorder.note("default key provider (saved, then cleared)", saved)


# ---- KMS-REQUIRED ---------------------------------------------------------------------------------
def _policy_only_control(scratch: Any, inventory: Any, vc: Any, place: Any, host: Any, saved: str | None,
                         provider: str, policy: str) -> None:
    """The positive control of KMS-REQUIRED's refusal: the same policy-only encrypt (no CryptoSpec, as PowerCLI's
    Enable-VMEncryption without -KMSClusterId sends) of a twin WITH a default provider must encrypt it with a key
    of that provider. Whether vCenter generates that key is UNCONFIRMED (API.md 2.5/10): where it does not, the
    refusal without a default provider proves nothing about the provider: skipped as unconfirmed (recorded);
    where the behaviour is confirmed (the fake's model, `confirmed:`), a failed control is an error."""
    if saved is None:
        if not _has_7_0_api(vc):
            pytest.skip(f"capability: {vc.name} ({vc.version}) has no default key provider to run the policy-only "
                        "positive control with, and cannot set one temporarily before 7.0")
        scratch.restore("clear the default key provider again", lambda: keys.set_default(vc, None),
                        record={"action": "default_provider", "vcenter": vc.name, "provider_id": None})
        keys.set_default(vc, provider)
    default = saved or provider
    twin = scratch.vm(vc, place, "kms-default-twin", host=host)
    what = f"policy-only encrypt of a twin with the default key provider {default} set"
    try:
        positive_control(lambda: crypto.encrypt(vc, twin, None, policy), what)
        key = vms.state(vc, twin, label="twin after the policy-only encrypt", phase="before").key
        if key is None or key[0] != default:
            raise ControlFailed(f"positive control failed: the {what} left it on {key} (expected a key of "
                                f"{default}); the refusal next to it proves nothing")
    except ControlFailed as failed:
        unconfirmed.gate(inventory, vc.name, "policy-only-encrypt-generates-key", observed=str(failed))
        raise


@pytest.mark.rule("KMS-REQUIRED")
@pytest.mark.destructive
@pytest.mark.requires("vm_encryption", "storage_policies")
@pytest.mark.test_id("f87e9421-5702-4b30-b579-87c7a4e68e46")
def test_encrypting_with_no_default_key_provider_is_refused_and_changes_nothing(serial, scratch, inventory, vc, place,
                                                                               provider, policies_a, kms):
    # An encrypted VM on the host first: the host is crypto-safe, so a refusal is about the key alone.
    anchor = scratch.vm(vc, place, "kms-anchor")
    crypto.encrypt(vc, anchor, keys.generate_key(vc, provider), policies_a.encryption)
    host = vc.read(anchor, ["runtime.host"])["runtime.host"]
    vm = scratch.vm(vc, place, "no-default-kms", host=host)
    saved = keys.default_provider(vc)
    _policy_only_control(scratch, inventory, vc, place, host, saved, provider, policies_a.encryption)
    _clear_default_provider(scratch, vc, saved, kms)
    if keys.default_provider(vc) is not None or (_has_7_0_api(vc) and keys.default_for(vc, place.cluster)):
        pytest.skip(f"capability: {vc.name} still has a default key provider for the cluster after clearing "
                    f"{saved} (another provider, or one set on the cluster itself)")
    before = vms.state(vc, vm, label="before encrypt", phase="before")

    try:
        result = keys.generate_key_result(vc, None)
    except vmodl.MethodFault as fault:  # a fault is also an honest "no provider" answer here
        vc.recorder.note("GenerateKey without a default provider", {"fault": type(fault).__name__})
    else:
        assert not result.success, "GenerateKey without any default key provider reported success"
        assert result.reason, "GenerateKey failed without saying why"
    refused(lambda: crypto.encrypt(vc, vm, None, policies_a.encryption), "encrypt with no default key provider")

    after = vms.state(vc, vm, label="after refused encrypt", phase="after")
    unchanged(before, after, "encrypt with no default key provider")
    assert after.key is None


@pytest.mark.rule("KMS-REQUIRED")
@pytest.mark.requires("vm_encryption", "storage_policies")
@pytest.mark.test_id("c5417592-fcec-4a24-b281-37df5e432e0b")
@pytest.mark.parametrize("operation", ["encrypt", "shallow", "deep"])
def test_a_crypto_operation_with_a_key_of_an_unregistered_key_provider_is_refused_and_changes_nothing(
        operation, scratch, vc, place, provider, policies_a):
    unregistered = scratch.name("unregistered-kms")
    assert unregistered not in keys.list_providers(vc), f"{unregistered} is registered on {vc.name}"
    foreign_key = (unregistered, "1")
    vm = scratch.vm(vc, place, f"foreign-{operation}")
    if operation != "encrypt":
        crypto.encrypt(vc, vm, keys.generate_key(vc, provider), policies_a.encryption)
    before = vms.state(vc, vm, label="before", phase="before")
    actions = {"encrypt": lambda: crypto.encrypt(vc, vm, foreign_key, policies_a.encryption),
               "shallow": lambda: crypto.shallow_rekey(vc, vm, foreign_key),
               "deep": lambda: crypto.deep_rekey(vc, vm, foreign_key, policies_a.encryption)}

    refused(actions[operation], f"{operation} with a key of unregistered provider {unregistered}")

    after = vms.state(vc, vm, label="after", phase="after")
    unchanged(before, after, f"{operation} with a key of an unregistered provider")
    assert (after.key is None) == (operation == "encrypt")


# ---- KMS-GENERATE ---------------------------------------------------------------------------------
@pytest.mark.rule("KMS-GENERATE")
@pytest.mark.requires("vm_encryption", "storage_policies")
@pytest.mark.test_id("c8876ae7-da7e-4920-bef9-45ce5c355d04")
def test_a_generated_key_and_an_encrypted_vms_keys_exist_on_the_kms_cluster_their_provider_names(
        scratch, inventory, vc, place, provider, policies_a, kms):
    generated = keys.generate_key(vc, provider)
    assert generated[0] == provider, f"GenerateKey on {provider} returned a key of provider {generated[0]!r}"
    assert kms.key_exists(generated), f"GenerateKey returned {generated[1]}, which the KMS of {provider} lacks"
    state_on_kms = kms.key_state(generated)
    if kms.observed(state_on_kms) and unconfirmed.confirmed_on(inventory, vc.name, "kmip-key-state-active"):
        assert state_on_kms == "ACTIVE", f"key {generated[1]} is in KMIP state {state_on_kms}"
    else:
        vc.recorder.note("KMIP state of the generated key (unconfirmed: recorded, not asserted)", state_on_kms)
    other = next((e for e in kms.endpoints.values() if e.provider_id != provider), None)
    if other is not None:  # another cluster does not hold it: the provider ID names where the key lives
        assert kms.key_absent((other.provider_id, generated[1])), \
            f"key {generated[1]} of {provider} also answers on the KMS of {other.provider_id}"

    vm = scratch.vm(vc, place, "kms-keys")
    crypto.encrypt(vc, vm, generated, policies_a.encryption)

    state = vms.state(vc, vm, label="encrypted VM", phase="after")
    assert state.key is not None, "the VM is not encrypted"
    assert kms.key_exists(state.key), f"VM key {state.key[1]} does not exist on the KMS of {state.key[0]}"
    for disk_key in require_some([k for k in state.disk_keys if k is not None], "encrypted disk"):
        assert kms.key_exists(disk_key), f"disk key {disk_key[1]} does not exist on the KMS of {disk_key[0]}"


@pytest.mark.rule("KMS-GENERATE")
@pytest.mark.destructive
@pytest.mark.requires("fault_injection")
@pytest.mark.test_id("44499cf6-0d8e-4644-9613-d79edcd6ca3b")
def test_generate_key_reports_a_kms_refusal_as_success_false_with_a_reason(
        serial, embedded_kms_server, vc, provider, kms):
    server = embedded_kms_server
    server.refuse_create(True)
    try:
        result = keys.generate_key_result(vc, provider)
    finally:
        server.refuse_create(False)
    vc.recorder.note("GenerateKey while the KMS refuses", {"success": result.success, "reason": result.reason})
    if not result.success:  # the verdict rests on a KMIP refusal: an outage is an environment error
        require_kmip_refusal(kms.for_provider(provider), result.reason)

    assert result.success is False, "GenerateKey reported success although the KMS refused to create the key"
    assert result.reason, "GenerateKey failed without a reason"
    assert not (result.keyId and result.keyId.keyId) or kms.key_absent((provider, result.keyId.keyId))


# ---- KMS-STATUS -----------------------------------------------------------------------------------
@pytest.mark.rule("KMS-STATUS")
@pytest.mark.requires("kms_status", "kms_trust")
@pytest.mark.test_id("06e160e1-012d-4e0f-abfa-ad6943dd9ea2")
def test_a_fully_trusted_key_provider_reports_green(vc, provider, kms):
    kms.require_kmip(provider)   # a Native Key Provider (inventory key_provider) has no KMIP server
    status = keys.status(vc, provider)
    vc.recorder.note("provider status", status.__dict__)

    for server in require_some(list(status.servers), f"KMIP server of {provider}"):
        assert server["status"] == "green", f"server {server['name']}: {server['status']} ({server['connection']})"
        assert server["client_trusts_server"] is True
        assert server["server_trusts_client"] is True
    if _has_7_0_api(vc):
        assert status.overall == "green"
        assert keys.is_active(vc, provider)


@pytest.mark.rule("KMS-STATUS")
@pytest.mark.destructive   # a provider at an unreachable address: vCenter-wide KMS-health alarm and events
@pytest.mark.requires("kms_status")
@pytest.mark.test_id("7b9b494b-a81a-46b9-a317-cc292751a8d9")
def test_a_key_provider_whose_kms_is_unreachable_reports_red(scratch, vc, provider, kms, unreachable_kms):
    address, port = unreachable_kms
    provider_id = scratch.name("closed-port-kms")
    scratch.custom_provider(vc, provider_id, lambda: keys.register_unreachable_provider(vc, provider_id, port, address))
    live = kms.for_provider(provider)  # at teardown, answer again before removal: the KMS health alarm clears
    scratch.cleanup.push(f"point {provider_id} at a live KMS", lambda: keys.move_server(
        vc, provider_id, f"{provider_id}-server", live.address, live.port))
    status = keys.status(vc, provider_id)
    vc.recorder.note("provider status", status.__dict__)

    for server in require_some(list(status.servers), f"KMIP server of {provider_id}"):
        assert server["status"] == "red", f"server at {address}:{port} (no KMS there): {server['status']} ({server['connection']})"
    if _has_7_0_api(vc):
        assert status.overall == "red"
        assert not keys.is_active(vc, provider_id)


@pytest.mark.rule("KMS-STATUS")
@pytest.mark.requires("kms_status", "kms_trust")
@pytest.mark.test_id("98cca8cd-d9f7-469a-802b-f47c31cdc811")
def test_without_vcenters_client_certificate_the_kms_does_not_trust_vcenter(scratch, inventory, vc, provider, kms):
    endpoint = kms.for_provider(provider)
    provider_id = scratch.name("no-client-cert-kms")
    scratch.custom_provider(vc, provider_id,
                            lambda: keys.register_provider(vc, endpoint, provider_id, make_default=False, trust_client=False))
    status = keys.status(vc, provider_id)
    vc.recorder.note("provider status", status.__dict__)

    unconfirmed.gate(inventory, vc.name, "server-trust-client-false-without-cert", observed=status.__dict__)
    for server in require_some(list(status.servers), f"KMIP server of {provider_id}"):
        assert server["client_trusts_server"] is True, "vCenter should trust the KMS certificate it uploaded"
        assert server["server_trusts_client"] is False, "the KMS cannot trust a vCenter that sent no client certificate"
        assert server["status"] != "green"
    if _has_7_0_api(vc):
        assert status.overall != "green"
        assert not keys.is_active(vc, provider_id)


# ---- KMS-SHARED / KMS-DEDICATED -------------------------------------------------------------------
@pytest.mark.rule("KMS-SHARED")
@pytest.mark.requires("vm_encryption", "storage_policies", "cross_vcenter")
@pytest.mark.test_id("a1f547b0-f02a-4585-9680-8e00972bbeb6")
def test_an_encrypted_vm_cloned_to_a_vcenter_sharing_its_kms_cluster_is_encrypted_with_the_same_key(
        scratch, environment, inventory, vc, vc_b, place_b, encrypted_vm, provider, provider_b, kms):
    assert provider in keys.list_providers(vc_b), f"{vc_b.name} does not have key provider {provider}"
    source_before = vms.state(vc, encrypted_vm, label="source before clone", phase="before")
    name = scratch.name("shared-clone")

    clone = arrived(scratch, vc_b, name, lambda: clones.clone(
        vc, encrypted_vm, clones.cross_destination(environment, vc_b, place_b), name, scratch.marker))

    dest = vms.state(vc_b, clone, label="clone on the other vCenter", phase="after")
    assert dest.key == source_before.key, f"clone key {dest.key} differs from the source's {source_before.key}"
    assert kms.key_exists(dest.key)
    unchanged(source_before, vms.state(vc, encrypted_vm, label="source after clone", phase="after"),
              "source of a clone")


@pytest.mark.rule("KMS-SHARED")
@pytest.mark.requires("vm_encryption", "storage_policies", "cross_vcenter")
@pytest.mark.test_id("f6f1d843-ca0f-487d-b070-704c4a23ae12")
def test_an_encrypted_vm_migrated_to_a_vcenter_sharing_its_kms_cluster_arrives_with_its_key(
        scratch, environment, inventory, vc, vc_b, place_b, encrypted_vm, provider, provider_b, kms):
    assert provider in keys.list_providers(vc_b), f"{vc_b.name} does not have key provider {provider}"
    before = vms.state(vc, encrypted_vm, label="before migration", phase="before")

    moved = arrived(scratch, vc_b, before.name,
                    lambda: clones.migrate(vc, encrypted_vm, clones.cross_destination(environment, vc_b, place_b)))

    after = vms.state(vc_b, moved, label="after migration", phase="after")
    assert after.key == before.key, f"migrated VM key {after.key} differs from {before.key}"
    assert kms.key_exists(after.key)
    assert not vms.exists(vc, encrypted_vm), f"{before.name} is still registered on {vc.name}"


@pytest.mark.rule("KMS-SHARED")
@pytest.mark.requires("vm_encryption", "storage_policies", "cross_vcenter")
@pytest.mark.test_id("47e7b0a7-1164-43ca-aa61-17e532db06b7")
@pytest.mark.parametrize("operation", ["clone", "migrate"])
def test_a_destination_whose_provider_of_the_same_id_is_another_key_store_is_refused(
        operation, serial, scratch, environment, inventory, vc, vc_b, place, place_b, dedicated_provider, provider,
        provider_b, policies_a, kms):
    """Same provider ID is not enough: vc-b gets a provider named like the VM's, backed by another KMS.

    Takes `serial`: while it runs, vc-b has a provider with the dedicated provider's ID (KMS-DEDICATED
    tests on other workers must not see it)."""
    precondition(dedicated_provider not in keys.list_providers(vc_b),
                 f"{vc_b.name} already has {dedicated_provider} (a killed run's leftover? see `vcrypt sweep`)")
    other_store = kms.endpoint("shared")
    assert other_store.provider_id != dedicated_provider
    scratch.provider(vc_b, other_store, dedicated_provider, make_default=False)
    vm = scratch.vm(vc, place, f"other-store-{operation}")
    crypto.encrypt(vc, vm, keys.generate_key(vc, dedicated_provider), policies_a.encryption)
    before = vms.state(vc, vm, label="source before", phase="before")
    _control(scratch, environment, vc, vc_b, place, place_b, provider, policies_a.encryption, operation)
    dest = clones.cross_destination(environment, vc_b, place_b)
    name = scratch.name("other-store-copy") if operation == "clone" else before.name

    refused_crossing(scratch, vc_b, name, lambda: clones.clone_or_migrate(vc, vm, dest, operation, name, scratch.marker),
                     f"{operation} to {vc_b.name}, whose {dedicated_provider} is another key store")
    unchanged(before, vms.state(vc, vm, label="source after", phase="after"), f"refused cross-vCenter {operation}")


@pytest.mark.rule("KMS-DEDICATED")
@pytest.mark.requires("vm_encryption", "storage_policies", "cross_vcenter")
@pytest.mark.test_id("50a00079-1c4e-4d69-9900-7464c5a8a449")
@pytest.mark.parametrize("operation", ["clone", "migrate"])
def test_a_vm_whose_key_lives_on_a_dedicated_kms_cluster_can_not_go_to_a_vcenter_without_it(
        operation, serial, scratch, environment, inventory, vc, vc_b, place, place_b, dedicated_provider, provider,
        provider_b, policies_a, kms):
    precondition(dedicated_provider not in keys.list_providers(vc_b),
                 f"{vc_b.name} has key provider {dedicated_provider}: it is not dedicated to {vc.name}")
    _control(scratch, environment, vc, vc_b, place, place_b, provider, policies_a.encryption, operation)
    vm = scratch.vm(vc, place, f"dedicated-{operation}")
    crypto.encrypt(vc, vm, keys.generate_key(vc, dedicated_provider), policies_a.encryption)
    before = vms.state(vc, vm, label="source before", phase="before")
    assert before.key is not None and before.key[0] == dedicated_provider
    dest = clones.cross_destination(environment, vc_b, place_b)
    name = scratch.name("dedicated-copy") if operation == "clone" else before.name

    refused_crossing(scratch, vc_b, name, lambda: clones.clone_or_migrate(vc, vm, dest, operation, name, scratch.marker),
                     f"{operation} a VM of dedicated provider {dedicated_provider} to {vc_b.name}", source=(vc, vm))
    unchanged(before, vms.state(vc, vm, label="source after", phase="after"), f"refused cross-vCenter {operation}")
    assert kms.key_exists(before.key)


@pytest.mark.rule("KMS-GENERATE")
@pytest.mark.test_id("85ca0680-cded-4bb7-876d-85f631fccf57")
def test_using_the_key_provider_for_keys_leaves_it_byte_for_byte_the_same(vc, provider, kms):
    """The lab's provider is used, never owned (harness/run/lab_providers.py): taking keys from it and
    reading its status must leave its KmipClusterInfo exactly as it was (pyVmomi's serialization)."""
    from harness.run.lab_providers import snapshot
    before = snapshot(vc, provider)
    vc.recorder.note("key provider before", before)

    key = keys.generate_key(vc, provider)
    keys.status(vc, provider)

    assert kms.key_exists(key)
    after = snapshot(vc, provider)
    assert before is not None and after == before, f"key provider {provider} changed by using it:\n{before}\n{after}"
