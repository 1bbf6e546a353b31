"""The fake at vSphere 8.0.2: the API release and builds it reports, and the documented per-host key status
(CryptoManagerHost.GetCryptoKeyStatus, API 8.0.1) through plain pyVmomi, beside ListKeys of the same cache."""
from __future__ import annotations

from typing import Any, Iterator

import pytest
from pyVmomi import vim, vmodl

from harness.targets.environment import Environment
from tests.fakevc.conftest import make_vm
from tests.fakevc.test_hosts_key_push import cache, encrypt, reconfigure_cluster
from tests.fakevc.test_plumbing import ADMIN, ADMIN_PASSWORD, cluster_of, fresh_fake, login


@pytest.fixture(scope="module")
def fake80(env: Environment) -> Iterator[tuple[Any, Any, Any]]:
    """A private 8.0.2 fake: (world, ServiceInstance, its cluster)."""
    with fresh_fake(env, version="8.0.2", vms=0) as (world, si):
        yield world, si, cluster_of(si)


def _status(host: Any, *key_ids: str, provider: str) -> list[tuple[str, bool]]:
    ids = [vim.encryption.CryptoKeyId(keyId=k, providerId=vim.encryption.KeyProviderId(id=provider)) for k in key_ids]
    return [(s.keyId.keyId, s.present) for s in host.configManager.cryptoManager.GetCryptoKeyStatus(keys=ids)]


def test_an_80_fake_speaks_api_802_and_reports_80_u2_builds(fake80: Any) -> None:
    _, si, cluster = fake80
    about = si.content.about
    assert (about.version, about.apiVersion, about.build) == ("8.0.2", "8.0.2.0", "22385739")
    assert si._stub.version == "vim.version.v8_0_2_0"
    assert {(h.config.product.version, h.config.product.build) for h in cluster.host} == {("8.0.2", "22380479")}


def test_key_status_reports_present_exactly_for_the_keys_in_the_hosts_cache(fake80: Any) -> None:
    _, si, cluster = fake80
    reconfigure_cluster(cluster, ha=False)
    home, other = cluster.host[0], cluster.host[1]
    machine = make_vm(si, host=home)
    key = encrypt(si, machine)
    provider = machine.config.keyId.providerId.id
    assert key in cache(home) and key not in cache(other)      # without HA: pushed to its host only
    assert _status(home, key, "never-pushed", provider=provider) == [(key, True), ("never-pushed", False)]
    assert _status(other, key, provider=provider) == [(key, False)]
    assert _status(home, provider=provider) == []                # nothing asked, nothing answered


def test_key_status_of_a_host_older_than_801_is_not_supported(fake80: Any) -> None:
    world, si, _ = fake80
    legacy = next(iter(world.vcenters.values())).legacy_host            # DC0_H_legacy: ESXi 6.7
    host = vim.HostSystem(legacy.moid, si._stub)
    with pytest.raises(vmodl.fault.NotSupported):
        _status(host, "any", provider="p")


def test_a_70_vcenter_has_no_key_status(env: Environment) -> None:
    with fresh_fake(env, version="7.0.3", vms=0) as (world, si):
        host = cluster_of(si).host[0]
        with pytest.raises(vmodl.fault.MethodNotFound):
            _status(host, "any", provider="p")
        # A client that claims 8.0.2 anyway reaches the fake, which answers as a 7.0 vCenter does.
        name = next(iter(world.vcenters))
        eager = vim.ServiceInstance("ServiceInstance", world.adapter(name, version="vim.version.v8_0_2_0"))
        eager.content.sessionManager.Login(ADMIN, ADMIN_PASSWORD)
        manager = vim.encryption.CryptoManagerHostKMS(host.configManager.cryptoManager._moId, eager._stub)
        with pytest.raises(vmodl.fault.MethodNotFound, match="GetCryptoKeyStatus"):
            manager.GetCryptoKeyStatus(keys=[])
        assert login(world, name).content.about.apiVersion == "7.0.3.0"

