"""The fake's default key provider per cluster (behaviours/default_providers.py, KMS-DEFAULT-*), through plain
pyVmomi: set and read back, inheritance with defaultsToParent, a key-less encrypt of a VM of the cluster, and
each seeded defect bending exactly that."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import pytest
from pyVmomi import vim

from tests.fakevc.conftest import make_vm, wait
from tests.fakevc.test_vm_crypto import DEDICATED, SHARED, disks, enc_policy, key_of, seeded


def _cluster(si: Any) -> Any:
    dc = si.content.rootFolder.childEntity[0]
    return next(c for c in dc.hostFolder.childEntity if isinstance(c, vim.ClusterComputeResource))


def _ref(provider_id: str) -> Any:
    return vim.encryption.KeyProviderId(id=provider_id)


@contextlib.contextmanager
def cluster_default(si: Any, provider_id: str | None) -> Iterator[Any]:
    """The cluster's own default set for the block, cleared and the global default put back after."""
    cm, cluster = si.content.cryptoManager, _cluster(si)
    cm.SetDefaultKmsCluster(entity=cluster, clusterId=_ref(provider_id) if provider_id else None)
    try:
        yield cluster
    finally:
        cm.SetDefaultKmsCluster(entity=cluster, clusterId=None)
        cm.MarkDefault(clusterId=_ref(SHARED))


def _encrypt_by_policy_alone(vm: Any) -> tuple[str, str] | None:
    edits = [vim.vm.device.VirtualDeviceSpec(operation="edit", device=d, profile=enc_policy()) for d in disks(vm)]
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(vmProfile=enc_policy(), deviceChange=edits)))
    return key_of(vm.config.keyId)


@pytest.fixture
def plain_vm(si_a: Any) -> Iterator[Any]:
    machine = make_vm(si_a)
    yield machine
    wait(machine.Destroy_Task())


def test_a_cluster_default_reads_back_and_leaves_the_global_default(si_a: Any) -> None:
    cm = si_a.content.cryptoManager
    with cluster_default(si_a, DEDICATED) as cluster:
        assert cm.GetDefaultKmsCluster(entity=cluster).id == DEDICATED
        assert cm.GetDefaultKmsCluster().id == SHARED
    assert cm.GetDefaultKmsCluster(entity=cluster) is None
    assert cm.GetDefaultKmsCluster(entity=cluster, defaultsToParent=True).id == SHARED


def test_a_key_less_encrypt_takes_the_clusters_default_then_the_global_one_after_the_clear(
        si_a: Any, plain_vm: Any) -> None:
    with cluster_default(si_a, DEDICATED):
        assert _encrypt_by_policy_alone(plain_vm)[0] == DEDICATED
    other = make_vm(si_a)
    try:
        assert _encrypt_by_policy_alone(other)[0] == SHARED
    finally:
        wait(other.Destroy_Task())


def test_an_explicit_provider_wins_over_the_clusters_default(si_a: Any, plain_vm: Any) -> None:
    key = si_a.content.cryptoManager.GenerateKey(keyProvider=_ref(SHARED)).keyId
    with cluster_default(si_a, DEDICATED):
        wait(plain_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(
            crypto=vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key), vmProfile=enc_policy())))
    assert key_of(plain_vm.config.keyId) == key_of(key)


@pytest.mark.parametrize("defect,observe", [
    ("kms-default-set-not-kept", lambda cm, cluster: cm.GetDefaultKmsCluster(entity=cluster) is None),
    ("kms-default-set-replaces-global", lambda cm, cluster: cm.GetDefaultKmsCluster().id == DEDICATED),
])
def test_the_set_defects(env: Any, si_a: Any, defect: str, observe: Any) -> None:
    with seeded(env, defect), cluster_default(si_a, DEDICATED) as cluster:
        assert observe(si_a.content.cryptoManager, cluster)


def test_the_parent_defect_answers_nothing_for_an_inheriting_cluster(env: Any, si_a: Any) -> None:
    with seeded(env, "kms-default-parent-ignored"):
        assert si_a.content.cryptoManager.GetDefaultKmsCluster(entity=_cluster(si_a), defaultsToParent=True) is None


def test_the_encrypt_defect_takes_the_global_default(env: Any, si_a: Any, plain_vm: Any) -> None:
    with seeded(env, "kms-default-encrypt-uses-global"), cluster_default(si_a, DEDICATED):
        assert _encrypt_by_policy_alone(plain_vm)[0] == SHARED


@pytest.mark.parametrize("defect,cluster_after,global_after", [
    ("kms-default-clear-ignored", DEDICATED, SHARED),
    ("kms-default-clear-drops-global", None, None),
])
def test_the_clear_defects(env: Any, si_a: Any, defect: str, cluster_after: str | None,
                           global_after: str | None) -> None:
    cm = si_a.content.cryptoManager
    with cluster_default(si_a, DEDICATED) as cluster, seeded(env, defect):   # the undo runs without the defect
        cm.SetDefaultKmsCluster(entity=cluster, clusterId=None)
        assert getattr(cm.GetDefaultKmsCluster(entity=cluster), "id", None) == cluster_after
        assert getattr(cm.GetDefaultKmsCluster(), "id", None) == global_after
    assert cm.GetDefaultKmsCluster(entity=cluster) is None and cm.GetDefaultKmsCluster().id == SHARED


def test_a_key_naming_no_provider_is_of_the_clusters_default_provider(si_a: Any, plain_vm: Any) -> None:
    """KmipClusterInfo.useAsEntityDefault: the cluster's default applies "when the optional
    CryptoKeyId.providerId is not set"."""
    key = si_a.content.cryptoManager.GenerateKey(keyProvider=_ref(DEDICATED)).keyId
    bare = vim.encryption.CryptoKeyId(keyId=key.keyId)   # no providerId
    with cluster_default(si_a, DEDICATED):
        wait(plain_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(
            crypto=vim.encryption.CryptoSpecEncrypt(cryptoKeyId=bare), vmProfile=enc_policy())))
    assert key_of(plain_vm.config.keyId) == (DEDICATED, key.keyId)
