"""Hosts and key push through plain pyVmomi: HOST-CRYPTO-MODE, PUSH-HA, PUSH-NO-HA, PUSH-DRS,
PUSH-PRE7, the host crypto manager, CryptoUnlock, and every seeded defect of these rules.

Each test that changes host crypto states or HA gets a private fake vCenter (hosts never leave
crypto-safe mode, so the shared one cannot be restored).
"""
from __future__ import annotations

import os
from typing import Any, Iterator

import pytest
from pyVmomi import vim, vmodl

from harness.targets.environment import Environment
from harness.fakevc.model.pbm import ENCRYPTION_POLICY_ID
from tests.fakevc.conftest import make_vm, wait
from tests.fakevc.test_plumbing import cluster_of, fresh_fake, login

SHARED = "vcrypt-shared-kms"


# ---- pyVmomi helpers ---------------------------------------------------------------------------
def _disks(machine: Any) -> list[Any]:
    return [d for d in machine.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]


def encrypt(si: Any, machine: Any) -> str:
    """Encrypt VM home and disks with a new key from the default provider; returns the key id."""
    result = si.content.cryptoManager.GenerateKey()
    assert result.success, result.reason
    crypto = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=result.keyId)
    policy = [vim.vm.DefinedProfileSpec(profileId=ENCRYPTION_POLICY_ID)]
    edits = [vim.vm.device.VirtualDeviceSpec(operation="edit", device=d, profile=policy,
                                             backing=vim.vm.device.VirtualDeviceSpec.BackingSpec(crypto=crypto))
             for d in _disks(machine)]
    wait(machine.ReconfigVM_Task(spec=vim.vm.ConfigSpec(crypto=crypto, vmProfile=policy, deviceChange=edits)))
    assert machine.config.keyId.keyId == result.keyId.keyId
    return result.keyId.keyId


def decrypt(machine: Any) -> None:
    crypto = vim.encryption.CryptoSpecDecrypt()
    empty = [vim.vm.EmptyProfileSpec()]
    edits = [vim.vm.device.VirtualDeviceSpec(operation="edit", device=d, profile=empty,
                                             backing=vim.vm.device.VirtualDeviceSpec.BackingSpec(crypto=crypto))
             for d in _disks(machine)]
    wait(machine.ReconfigVM_Task(spec=vim.vm.ConfigSpec(crypto=crypto, vmProfile=empty, deviceChange=edits)))


def cache(host: Any) -> set[str]:
    return {k.keyId for k in host.configManager.cryptoManager.ListKeys() or []}


def states(cluster: Any) -> dict[str, str]:
    return {h.name: h.runtime.cryptoState for h in cluster.host}


def reconfigure_cluster(cluster: Any, ha: bool | None = None, drs: bool | None = None, mode: str | None = None) -> None:
    spec = vim.cluster.ConfigSpecEx()
    if ha is not None:
        spec.dasConfig = vim.cluster.DasConfigInfo(enabled=ha)
    if drs is not None:
        spec.drsConfig = vim.cluster.DrsConfigInfo(enabled=drs)
    if mode is not None:
        spec.cryptoConfig = vim.cluster.CryptoConfigInfo(cryptoMode=mode)
    wait(cluster.ReconfigureComputeResource_Task(spec=spec, modify=True))


def plain_key(key_id: str = "host-plain-key") -> Any:
    return vim.encryption.CryptoKeyPlain(
        keyId=vim.encryption.CryptoKeyId(keyId=key_id, providerId=vim.encryption.KeyProviderId(id="local")),
        algorithm="AES-256", keyData=os.urandom(32).hex())


@pytest.fixture
def fake(env: Environment) -> Iterator[tuple[Any, Any]]:
    """A private 7.0 fake: (ServiceInstance, its cluster DC0_C0 with three incapable hosts)."""
    with fresh_fake(env, vms=0) as (_, si):
        yield si, cluster_of(si)


# ---- HOST-CRYPTO-MODE ----------------------------------------------------------------------------
def test_host_goes_safe_before_a_crypto_operation_and_never_back(env: Environment, fake: Any) -> None:
    si, cluster = fake
    h0, h1, _ = cluster.host
    assert set(states(cluster).values()) == {"incapable"}
    machine = make_vm(si, host=h0)
    key = encrypt(si, machine)
    assert h0.runtime.cryptoState == "safe"
    host_key = h0.runtime.cryptoKeyId
    assert host_key.providerId.id == SHARED and host_key.keyId != key
    with env.kms.client("shared") as kms:           # the host key is a real KMS key
        assert kms.key_exists(host_key.keyId)
    assert {key, host_key.keyId} <= cache(h0)
    assert h1.runtime.cryptoState == "incapable"
    decrypt(machine)
    assert machine.config.keyId is None
    assert h0.runtime.cryptoState == "safe" and h0.runtime.cryptoKeyId.keyId == host_key.keyId


def test_host_with_encryption_disabled_refuses_crypto_operations(fake: Any) -> None:
    si, cluster = fake
    h0 = cluster.host[0]
    h0.ConfigureCryptoKey()
    manager = h0.configManager.cryptoManager
    with pytest.raises(vim.fault.InvalidState):
        manager.CryptoManagerHostPrepare()              # only an incapable host can be prepared
    manager.CryptoManagerHostDisable()
    assert h0.runtime.cryptoState == "pendingIncapable"
    with pytest.raises(vim.fault.InvalidState):
        manager.CryptoManagerHostDisable()
    with pytest.raises(vim.fault.InvalidState):
        h0.ConfigureCryptoKey()
    assert h0.runtime.cryptoState == "pendingIncapable"
    machine = make_vm(si, host=h0)
    with pytest.raises(vmodl.MethodFault):
        encrypt(si, machine)
    assert machine.config.keyId is None and h0.runtime.cryptoState == "pendingIncapable"


def test_host_that_cannot_get_a_host_key_fails_the_operation(env: Environment, fake: Any) -> None:
    """The KMS refuses to create the host key: the encrypt fails, the VM and the host stay as they were."""
    si, cluster = fake
    h0 = cluster.host[0]
    machine = make_vm(si, host=h0)
    key = si.content.cryptoManager.GenerateKey()          # the VM key exists before the outage
    crypto = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key.keyId)
    policy = [vim.vm.DefinedProfileSpec(profileId=ENCRYPTION_POLICY_ID)]
    edits = [vim.vm.device.VirtualDeviceSpec(operation="edit", device=d, profile=policy,
                                             backing=vim.vm.device.VirtualDeviceSpec.BackingSpec(crypto=crypto))
             for d in _disks(machine)]
    server = env.kms.servers["shared"]
    server.refuse_create(True)
    try:
        with pytest.raises(vmodl.MethodFault):
            wait(machine.ReconfigVM_Task(spec=vim.vm.ConfigSpec(crypto=crypto, vmProfile=policy, deviceChange=edits)))
    finally:
        server.refuse_create(False)
    assert machine.config.keyId is None
    assert h0.runtime.cryptoState == "incapable" and h0.runtime.cryptoKeyId is None
    assert cache(h0) == set()


def test_prepare_enable_change_and_configure_host_keys(env: Environment, fake: Any) -> None:
    si, cluster = fake
    h0, h1, _ = cluster.host
    manager = h1.configManager.cryptoManager
    with pytest.raises(vim.fault.InvalidState):
        manager.CryptoManagerHostEnable(initialKey=plain_key())   # not prepared yet
    manager.CryptoManagerHostPrepare()
    assert h1.runtime.cryptoState == "prepared" and manager.enabled is False
    manager.CryptoManagerHostEnable(initialKey=plain_key("k1"))
    assert h1.runtime.cryptoState == "safe" and h1.runtime.cryptoKeyId.keyId == "k1" and manager.enabled
    with pytest.raises(vim.fault.AlreadyExists):
        manager.CryptoManagerHostEnable(initialKey=plain_key("k2"))
    wait(manager.ChangeKey_Task(newKey=plain_key("k3")))
    assert h1.runtime.cryptoKeyId.keyId == "k3" and cache(h1) == {"k3"}
    # ConfigureCryptoKey with a KMS key: the key must exist there; the old host key leaves the cache
    generated = si.content.cryptoManager.GenerateKey().keyId
    h1.ConfigureCryptoKey(keyId=generated)
    assert h1.runtime.cryptoKeyId.keyId == generated.keyId and cache(h1) == {generated.keyId}
    missing = vim.encryption.CryptoKeyId(keyId="999999999", providerId=vim.encryption.KeyProviderId(id=SHARED))
    with pytest.raises(vmodl.MethodFault):
        h1.ConfigureCryptoKey(keyId=missing)
    assert h1.runtime.cryptoKeyId.keyId == generated.keyId
    unknown = vim.encryption.CryptoKeyId(keyId="1", providerId=vim.encryption.KeyProviderId(id="no-such-provider"))
    with pytest.raises(vmodl.fault.InvalidArgument):
        h0.ConfigureCryptoKey(keyId=unknown)
    assert h0.runtime.cryptoState == "incapable"
    h0.ConfigureCryptoKey()                         # no key given: the cluster's existing host key
    assert h0.runtime.cryptoKeyId.keyId == generated.keyId


def test_host_key_cache_add_remove_and_unlock(fake: Any) -> None:
    si, cluster = fake
    h0 = cluster.host[0]
    manager = h0.configManager.cryptoManager
    with pytest.raises(vim.fault.InvalidState):
        manager.AddKey(key=plain_key("extra"))          # only a safe host takes keys
    machine = make_vm(si, host=h0)
    key = encrypt(si, machine)
    manager.AddKey(key=plain_key("extra"))
    with pytest.raises(vim.fault.AlreadyExists):
        manager.AddKey(key=plain_key("extra"))
    assert "extra" in cache(h0)
    vm_key = machine.config.keyId
    with pytest.raises(vim.fault.ResourceInUse):
        manager.RemoveKey(key=vm_key, force=False)
    assert key in cache(h0) and machine.runtime.cryptoState == "unlocked"
    with pytest.raises(vmodl.fault.InvalidArgument):
        manager.RemoveKey(key=vim.encryption.CryptoKeyId(keyId="nope", providerId=vm_key.providerId), force=False)
    manager.RemoveKey(key=vm_key, force=True)
    assert key not in cache(h0) and machine.runtime.cryptoState == "locked"
    wait(machine.CryptoUnlock_Task())
    assert key in cache(h0) and machine.runtime.cryptoState == "unlocked"


def test_unlock_of_an_unencrypted_vm_is_refused(fake: Any) -> None:
    si, cluster = fake
    machine = make_vm(si, host=cluster.host[0])
    with pytest.raises(vim.fault.InvalidState):
        wait(machine.CryptoUnlock_Task())
    assert machine.config.keyId is None and cluster.host[0].runtime.cryptoState == "incapable"


def test_force_enable_crypto_mode_makes_every_host_safe(fake: Any) -> None:
    _, cluster = fake
    reconfigure_cluster(cluster, mode="forceEnable")
    assert cluster.configurationEx.cryptoConfig.cryptoMode == "forceEnable"
    assert set(states(cluster).values()) == {"safe"}
    with pytest.raises(vmodl.fault.InvalidArgument):
        reconfigure_cluster(cluster, mode="sometimes")
    assert cluster.configurationEx.cryptoConfig.cryptoMode == "forceEnable"


# ---- PUSH-NO-HA / PUSH-HA / PUSH-DRS ---------------------------------------------------------------
def test_without_ha_keys_go_only_to_the_vms_host(fake: Any) -> None:
    si, cluster = fake
    h0, h1, h2 = cluster.host
    assert cluster.configurationEx.dasConfig.enabled is False
    key = encrypt(si, make_vm(si, host=h1))
    assert key in cache(h1)
    assert key not in cache(h0) and key not in cache(h2)
    assert states(cluster) == {h0.name: "incapable", h1.name: "safe", h2.name: "incapable"}


def test_with_ha_every_host_is_safe_and_holds_every_key(fake: Any) -> None:
    si, cluster = fake
    reconfigure_cluster(cluster, ha=True)
    assert cluster.configurationEx.dasConfig.enabled is True
    assert set(states(cluster).values()) == {"incapable"}       # no encrypted VM yet: nothing to push
    first = encrypt(si, make_vm(si, host=cluster.host[0]))
    second = encrypt(si, make_vm(si, host=cluster.host[2]))
    assert set(states(cluster).values()) == {"safe"}
    for host in cluster.host:
        assert {first, second} <= cache(host), host.name


def test_enabling_ha_pushes_existing_keys_and_disabling_keeps_them(fake: Any) -> None:
    si, cluster = fake
    h0, h1, h2 = cluster.host
    key = encrypt(si, make_vm(si, host=h0))
    assert key not in cache(h1)
    reconfigure_cluster(cluster, ha=True)
    assert all(key in cache(h) for h in cluster.host)
    reconfigure_cluster(cluster, ha=False)
    assert all(key in cache(h) for h in cluster.host)           # no purge (documented choice)
    fresh = encrypt(si, make_vm(si, host=h2))                   # PUSH-NO-HA on a fresh key
    assert fresh in cache(h2) and fresh not in cache(h0) and fresh not in cache(h1)


def test_drs_does_not_change_which_hosts_get_keys(fake: Any) -> None:
    si, cluster = fake
    h0, h1, h2 = cluster.host
    reconfigure_cluster(cluster, drs=True)
    assert cluster.configurationEx.drsConfig.enabled is True
    with_drs = encrypt(si, make_vm(si, host=h0))
    reconfigure_cluster(cluster, drs=False)
    without_drs = encrypt(si, make_vm(si, host=h0))
    for key in (with_drs, without_drs):
        assert [key in cache(h) for h in (h0, h1, h2)] == [True, False, False]
    reconfigure_cluster(cluster, drs=True)
    assert [with_drs in cache(h) for h in (h0, h1, h2)] == [True, False, False]


def test_relocation_pushes_the_key_to_the_new_host(fake: Any) -> None:
    si, cluster = fake
    h0, _, h2 = cluster.host
    machine = make_vm(si, host=h0)
    key = encrypt(si, machine)
    assert key not in cache(h2)
    wait(machine.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=h2)))
    assert machine.runtime.host == h2
    assert h2.runtime.cryptoState == "safe" and key in cache(h2)


def test_ha_push_skips_hosts_the_user_may_not_register(env: Environment) -> None:
    """A peer that is not safe and where the user lacks Cryptographer.RegisterHost gets no key;
    the operation still succeeds (vSphere 6.7 Security guide)."""
    with fresh_fake(env, vms=0) as (world, admin):
        cluster = cluster_of(admin)
        h0, h1, h2 = cluster.host
        reconfigure_cluster(cluster, ha=True)
        name = next(iter(world.vcenters))
        world.vcenters[name].add_user("crypto-op@vsphere.local", "pw")
        am = admin.content.authorizationManager
        privileges = [p.privId for p in am.privilegeList if p.privId != "Cryptographer.RegisterHost"]
        limited = am.AddAuthorizationRole(name="all-but-register-host", privIds=privileges)
        grant = vim.AuthorizationManager.Permission(principal="crypto-op@vsphere.local", group=False,
                                                    roleId=limited, propagate=True)
        am.SetEntityPermissions(entity=admin.content.rootFolder, permission=[grant])
        admin_role = vim.AuthorizationManager.Permission(principal="crypto-op@vsphere.local", group=False,
                                                         roleId=-1, propagate=True)
        am.SetEntityPermissions(entity=h0, permission=[admin_role])
        operator = login(world, name, "crypto-op@vsphere.local", "pw")
        machine = make_vm(admin, host=h0)
        key = encrypt(operator, vim.VirtualMachine(machine._moId, operator._stub))
        assert key in cache(h0) and h0.runtime.cryptoState == "safe"
        assert states(cluster)[h1.name] == states(cluster)[h2.name] == "incapable"
        assert key not in cache(h1) and key not in cache(h2)


def test_encrypting_on_an_incapable_host_needs_register_host(env: Environment) -> None:
    with fresh_fake(env, vms=0) as (world, admin):
        cluster = cluster_of(admin)
        name = next(iter(world.vcenters))
        world.vcenters[name].add_user("no-register@vsphere.local", "pw")
        am = admin.content.authorizationManager
        privileges = [p.privId for p in am.privilegeList if p.privId != "Cryptographer.RegisterHost"]
        role = am.AddAuthorizationRole(name="no-register-host", privIds=privileges)
        am.SetEntityPermissions(entity=admin.content.rootFolder, permission=[vim.AuthorizationManager.Permission(
            principal="no-register@vsphere.local", group=False, roleId=role, propagate=True)])
        operator = login(world, name, "no-register@vsphere.local", "pw")
        machine = make_vm(admin, host=cluster.host[0])
        with pytest.raises(vim.fault.NoPermission) as err:
            encrypt(operator, vim.VirtualMachine(machine._moId, operator._stub))
        assert err.value.privilegeId == "Cryptographer.RegisterHost"
        assert machine.config.keyId is None and cluster.host[0].runtime.cryptoState == "incapable"


# ---- PUSH-PRE7 ---------------------------------------------------------------------------------------
def test_pre7_one_safe_host_makes_all_safe_and_all_get_keys(env: Environment) -> None:
    with fresh_fake(env, version="6.7.3", vms=0) as (_, si):
        cluster = cluster_of(si)
        h0, h1, h2 = cluster.host
        assert si.content.about.version.startswith("6.7")
        h0.ConfigureCryptoKey()
        assert set(states(cluster).values()) == {"safe"}
        key = encrypt(si, make_vm(si, host=h1))
        for host in cluster.host:
            assert key in cache(host), host.name


# ---- seeded defects: each one is observable --------------------------------------------------------
def test_defect_push_ha_own_host_only(env: Environment) -> None:
    with fresh_fake(env, defects=["push-ha-own-host-only"], vms=0) as (_, si):
        cluster = cluster_of(si)
        reconfigure_cluster(cluster, ha=True)
        key = encrypt(si, make_vm(si, host=cluster.host[0]))
        assert key not in cache(cluster.host[1])
        assert cluster.host[1].runtime.cryptoState == "incapable"


def test_defect_push_no_ha_everywhere(env: Environment) -> None:
    with fresh_fake(env, defects=["push-no-ha-everywhere"], vms=0) as (_, si):
        cluster = cluster_of(si)
        key = encrypt(si, make_vm(si, host=cluster.host[0]))
        assert key in cache(cluster.host[1]) and key in cache(cluster.host[2])


def test_defect_push_drs_changes_targets(env: Environment) -> None:
    with fresh_fake(env, defects=["push-drs-changes-targets"], vms=0) as (_, si):
        cluster = cluster_of(si)
        reconfigure_cluster(cluster, drs=True)
        key = encrypt(si, make_vm(si, host=cluster.host[0]))
        assert key in cache(cluster.host[1])


def test_defect_push_pre7_one_host(env: Environment) -> None:
    with fresh_fake(env, defects=["push-pre7-one-host"], version="6.7.3", vms=0) as (_, si):
        cluster = cluster_of(si)
        cluster.host[0].ConfigureCryptoKey()
        assert states(cluster)[cluster.host[1].name] == "incapable"


def test_defect_host_crypto_mode_stays_incapable(env: Environment) -> None:
    with fresh_fake(env, defects=["host-crypto-mode-stays-incapable"], vms=0) as (_, si):
        cluster = cluster_of(si)
        key = encrypt(si, make_vm(si, host=cluster.host[0]))
        assert cluster.host[0].runtime.cryptoState == "incapable"
        assert key in cache(cluster.host[0])


def test_defect_host_crypto_mode_reverts(env: Environment) -> None:
    with fresh_fake(env, defects=["host-crypto-mode-reverts"], vms=0) as (_, si):
        cluster = cluster_of(si)
        machine = make_vm(si, host=cluster.host[0])
        encrypt(si, machine)
        assert cluster.host[0].runtime.cryptoState == "safe"
        decrypt(machine)
        assert cluster.host[0].runtime.cryptoState == "incapable"


def test_defect_host_crypto_mode_half(env: Environment) -> None:
    with fresh_fake(env, defects=["host-crypto-mode-half"], vms=0) as (_, si):
        host = cluster_of(si).host[0]
        host.ConfigureCryptoKey()
        host.configManager.cryptoManager.CryptoManagerHostDisable()
        with pytest.raises(vim.fault.InvalidState):
            host.ConfigureCryptoKey()
        assert host.runtime.cryptoState == "safe"       # refused, yet changed
