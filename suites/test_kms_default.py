"""A default key provider per cluster (RULES: KMS-DEFAULT-*): set on the inventory cluster it reads back and
leaves the vCenter-wide default alone; a cluster without one inherits the vCenter-wide default; an encrypt
that names no provider takes its key from the cluster's default; clearing it falls back.

Safety: the inventory cluster's default is lab state every user of that cluster depends on. Before any
change the value found (read from ListKmipServers, not from the method under test) is written to the run's
ledger with its restore, so teardown and, after a killed run, `vcrypt sweep` put it back; the vCenter-wide
default is checked and put back at teardown if the product changed it. The tests take the `serial` lock
and are `destructive`: while one runs, other users' key-less encrypts in that cluster use the test's provider.
"""
from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vmodl

from harness import unconfirmed
from harness.checks import ControlFailed, check_equal, precondition, reject_environment_fault
from harness.vsphere import crypto, default_providers, keys, vms
from harness.vsphere.errors import fault_class_name, fault_message

pytestmark = pytest.mark.requires("key_providers", "vm_encryption", "storage_policies")


# ---- helpers ------------------------------------------------------------------------------------
def _global_default(scratch: Any, vc: Any) -> str:
    """The vCenter-wide default (ListKmipServers' useAsDefault), guarded: put back at teardown should the
    product have changed it (pushed first, so it runs after every other undo of the test)."""
    found = keys.default_provider(vc)
    if found is None:
        pytest.skip(f"capability: {vc.name} has no vCenter-wide default key provider to compare a cluster's with")

    def put_back() -> None:
        if keys.default_provider(vc) != found:
            vc.recorder.note("vCenter-wide default key provider changed during the test: put back", found)
            keys.set_default(vc, found)
    scratch.cleanup.push(f"keep {found} the vCenter-wide default key provider", put_back)
    return found


def _answer(what: str, read: Any) -> str | None:
    """The provider a GetDefaultKmsCluster read answers. A fault instead of an answer is the product's failure
    to answer (its result is optional and it declares no fault: none is unset); TLS, session and permission
    faults stay environment errors."""
    try:
        return read()
    except vmodl.MethodFault as fault:
        reject_environment_fault(fault, what)
        raise AssertionError(f"{what} answered {fault_class_name(fault)} ({fault_message(fault)}) instead of a "
                             "key provider or none") from None


def _other_than(global_default: str, *candidates: str) -> str:
    """A provider of the session that is not the vCenter-wide default (so its use is observable)."""
    chosen = next((c for c in candidates if c != global_default), None)
    precondition(chosen is not None, f"the session has no key provider besides the vCenter-wide default {global_default}")
    return chosen


def _cluster_default_other_than_global(scratch: Any, vc: Any, cluster: Any, *candidates: str) -> tuple[str, str]:
    """(vCenter-wide default, the provider made the cluster's own default): one that is not the vCenter-wide
    default, so which of the two an encrypt used is observable."""
    global_default = _global_default(scratch, vc)
    chosen = _other_than(global_default, *candidates)
    _set_cluster_default(scratch, vc, cluster, chosen)
    return global_default, chosen


def _set_cluster_default(scratch: Any, vc: Any, cluster: Any, provider_id: str | None) -> None:
    """Make `provider_id` the cluster's own default (None: clear it). The value found is ledgered with its
    restore BEFORE the change (`vcrypt sweep` redoes the restore after a killed run: action
    entity_default_provider, harness/commands/sweep.py)."""
    found = default_providers.listed_entity_default(vc, cluster)

    def restore() -> None:
        if default_providers.listed_entity_default(vc, cluster) != found:
            default_providers.set_entity_default(vc, cluster, found)
    scratch.restore(f"restore the default key provider of cluster {cluster._moId} ({found or 'none'})", restore,
                    record={"action": "entity_default_provider", "vcenter": vc.name, "entity": cluster._moId,
                            "provider_id": found, "after": {"entity": cluster._moId, "provider_id": provider_id}})
    vc.recorder.note(f"default key provider of cluster {cluster._moId} (found, then set)",
                     {"found": found, "set": provider_id})
    default_providers.set_entity_default(vc, cluster, provider_id)


def _encrypt_naming_no_provider(scratch: Any, inventory: Any, vc: Any, place: Any, policy: str, label: str) -> Any:
    """A fresh VM of the cluster encrypted by its storage policy alone (no CryptoSpec, as PowerCLI's
    Enable-VMEncryption without -KMSClusterId sends it): the key vCenter gave it. Whether vCenter generates
    a key for such an encrypt is UNCONFIRMED (API.md 2.5/10): where it refuses or leaves the VM plain, the
    test skips as unconfirmed (recorded); where it is confirmed, that is a failure."""
    vm = scratch.vm(vc, place, label)
    try:
        crypto.encrypt(vc, vm, None, policy)
    except Exception as err:  # noqa: BLE001 - re-raised unless the behaviour is unconfirmed on this target
        unconfirmed.gate(inventory, vc.name, "policy-only-encrypt-generates-key",
                         observed={"refused": type(getattr(err, "fault", err)).__name__, "message": str(err)[:300]})
        raise
    key = vms.state(vc, vm, label=f"{label} after the encrypt naming no provider", phase="after").key
    if key is None:
        unconfirmed.gate(inventory, vc.name, "policy-only-encrypt-generates-key", observed={"key": None})
    assert key is not None, f"the encrypt of {label} by its encryption policy alone left it unencrypted"
    return key


# ---- KMS-DEFAULT-SET ------------------------------------------------------------------------------
@pytest.mark.rule("KMS-DEFAULT-SET")
@pytest.mark.destructive   # the inventory cluster's default key provider changes for the test
@pytest.mark.test_id("0c8519fb-c292-443d-b1fd-a2b5f9334cfe")
def test_a_clusters_default_key_provider_reads_back_and_leaves_the_vcenter_wide_default(
        serial, scratch, vc, place, provider, dedicated_provider):
    cluster = place.cluster
    global_before = _global_default(scratch, vc)
    chosen = _other_than(global_before, dedicated_provider, provider)
    if default_providers.listed_entity_default(vc, cluster) == chosen:   # so that the set below changes something
        _set_cluster_default(scratch, vc, cluster, None)

    _set_cluster_default(scratch, vc, cluster, chosen)

    what = "GetDefaultKmsCluster(entity=cluster)"
    check_equal(what, chosen, _answer(what, lambda: default_providers.entity_default(vc, cluster)))
    check_equal("ListKmipServers: provider whose useAsEntityDefault holds the cluster", chosen,
                default_providers.listed_entity_default(vc, cluster))
    check_equal("vCenter-wide default (useAsDefault) after setting the cluster's", global_before,
                keys.default_provider(vc))
    what = "GetDefaultKmsCluster() after setting the cluster's"
    check_equal(what, global_before, _answer(what, lambda: default_providers.global_default(vc)))


# ---- KMS-DEFAULT-PARENT ---------------------------------------------------------------------------
@pytest.mark.rule("KMS-DEFAULT-PARENT")
@pytest.mark.destructive   # the inventory cluster's default key provider changes for the test
@pytest.mark.test_id("6ee29edd-b9e8-4afb-a1b5-62f1f85b7e89")
def test_a_cluster_without_its_own_default_inherits_the_vcenter_wide_one_only_with_defaults_to_parent(
        serial, scratch, vc, place, provider):
    cluster = place.cluster
    global_default = _global_default(scratch, vc)
    if default_providers.listed_entity_default(vc, cluster) is not None:
        _set_cluster_default(scratch, vc, cluster, None)
    precondition(default_providers.listed_entity_default(vc, cluster) is None,
                 f"cluster {cluster._moId} still lists a default key provider of its own after clearing it")
    expected = default_providers.inherited_listed_default(vc, cluster)   # the global one, unless a folder has one
    vc.recorder.note("default the cluster inherits (ListKmipServers)", {"expected": expected, "global": global_default})

    asked_inherited = "GetDefaultKmsCluster(entity=cluster, defaultsToParent=true)"
    asked_own = "GetDefaultKmsCluster(entity=cluster, defaultsToParent=false)"
    inherited = _answer(asked_inherited, lambda: default_providers.entity_default(vc, cluster, to_parent=True))
    own = _answer(asked_own, lambda: default_providers.entity_default(vc, cluster, to_parent=False))

    check_equal(asked_inherited, expected, inherited)
    check_equal(asked_own, None, own)


# ---- KMS-DEFAULT-ENCRYPT --------------------------------------------------------------------------
@pytest.mark.rule("KMS-DEFAULT-ENCRYPT")
@pytest.mark.destructive   # the inventory cluster's default key provider changes for the test
@pytest.mark.test_id("1cd312a2-970f-4f64-a8a8-e18fedd50e35")
def test_an_encrypt_naming_no_provider_takes_its_key_from_the_clusters_default_not_the_vcenter_wide_one(
        serial, scratch, inventory, vc, place, provider, dedicated_provider, policies_a, kms):
    cluster = place.cluster
    global_default, chosen = _cluster_default_other_than_global(scratch, vc, cluster, dedicated_provider, provider)
    precondition(default_providers.listed_entity_default(vc, cluster) == chosen,
                 f"ListKmipServers does not list {chosen} as the default of cluster {cluster._moId} after setting it")

    key = _encrypt_naming_no_provider(scratch, inventory, vc, place, policies_a.encryption, "kms-default-encrypt")

    check_equal("key provider of the VM's new key (the cluster's default, not the vCenter-wide "
                f"{global_default})", chosen, key[0])
    assert kms.key_exists(key), f"key {key[1]} does not exist on the KMS of {key[0]}"


# ---- KMS-DEFAULT-CLEAR ----------------------------------------------------------------------------
@pytest.mark.rule("KMS-DEFAULT-CLEAR")
@pytest.mark.destructive   # the inventory cluster's default key provider changes for the test
@pytest.mark.test_id("a8f95094-de76-4912-b13b-6f7ae8057d43")
def test_clearing_a_clusters_default_falls_back_to_the_vcenter_wide_default(
        serial, scratch, inventory, vc, place, provider, dedicated_provider, policies_a, kms):
    cluster = place.cluster
    global_default, chosen = _cluster_default_other_than_global(scratch, vc, cluster, dedicated_provider, provider)
    # Positive control: with the cluster's default set, a key-less encrypt takes it; else clearing proves nothing.
    before_clear = _encrypt_naming_no_provider(scratch, inventory, vc, place, policies_a.encryption, "kms-default-set")
    if before_clear[0] != chosen:
        raise ControlFailed(f"positive control failed: with {chosen} the default of cluster {cluster._moId}, a VM "
                            f"there was encrypted with a key of {before_clear[0]}; falling back after the clear "
                            "would prove nothing (KMS-DEFAULT-ENCRYPT says more)")

    _set_cluster_default(scratch, vc, cluster, None)

    check_equal("ListKmipServers: the cluster's own default after clearing it", None,
                default_providers.listed_entity_default(vc, cluster))
    what = "GetDefaultKmsCluster(entity=cluster) after clearing it"
    check_equal(what, None, _answer(what, lambda: default_providers.entity_default(vc, cluster)))
    check_equal("vCenter-wide default (useAsDefault) after clearing the cluster's", global_default,
                keys.default_provider(vc))
    after_clear = _encrypt_naming_no_provider(scratch, inventory, vc, place, policies_a.encryption, "kms-default-cleared")
    check_equal("key provider of a VM encrypted after the clear (the vCenter-wide default)",
                default_providers.inherited_listed_default(vc, cluster), after_clear[0])
    assert kms.key_exists(after_clear), f"key {after_clear[1]} does not exist on the KMS of {after_clear[0]}"
