"""Key providers through plain pyVmomi: registration, trust, status, defaults, GenerateKey, key status.

Rules: KMS-REQUIRED, KMS-GENERATE, KMS-STATUS (KMS-SHARED / KMS-DEDICATED as far as a provider
list shows them; their cross-vCenter effect is tested with the migrations). Every assertion reads
the fake through pyVmomi; the KMS itself is checked with a KMIP client of its own. Fault injection
(refusing Create) goes through env.kms. Shared state (default provider, KMS faults) is restored
in `finally`, and every provider a test adds is removed.
"""
from __future__ import annotations

import contextlib
import itertools
import uuid
from typing import Any, Iterator

import pytest
from pyVmomi import vim, vmodl

from harness.targets.connect import connect_fake
from harness.targets.environment import DEDICATED_PROVIDER, SHARED_PROVIDER, Environment
from harness.fakevc.world import FakeWorld, ProviderSeed, VCenterSeed
from harness.kms.client import KmipClient
from harness.kms.server import free_port

_ids = itertools.count(1)


# ---- helpers (also used by test_events_alarms.py) ---------------------------------------------------
def pid_ref(provider_id: str) -> Any:
    return vim.encryption.KeyProviderId(id=provider_id)


def new_provider_id() -> str:
    return f"vcrypt-test-kp-{next(_ids)}-{uuid.uuid4().hex[:6]}"


def providers(si: Any) -> dict[str, Any]:
    return {c.clusterId.id: c for c in si.content.cryptoManager.ListKmipServers()}


def register(si: Any, provider_id: str, address: str, port: int, name: str | None = None) -> Any:
    info = vim.encryption.KmipServerInfo(name=name or f"{provider_id}-srv", address=address, port=port)
    si.content.cryptoManager.RegisterKmipServer(
        server=vim.encryption.KmipServerSpec(clusterId=pid_ref(provider_id), info=info))
    return info


def remove_provider(si: Any, provider_id: str) -> None:
    """Remove every server of a provider (community.vmware's way); tolerant of a provider already gone."""
    info = providers(si).get(provider_id)
    for server in (info.servers or []) if info else []:
        si.content.cryptoManager.RemoveKmipServer(clusterId=pid_ref(provider_id), serverName=server.name)


def status(si: Any, provider_id: str) -> Any:
    """The ClusterStatus of one provider from RetrieveKmipServersStatus_Task."""
    task = si.content.cryptoManager.RetrieveKmipServersStatus_Task(
        clusters=[vim.encryption.KmipClusterInfo(clusterId=pid_ref(provider_id), useAsDefault=False)])
    assert task.info.state == "success", task.info.error
    (cluster,) = [c for c in task.info.result if c.clusterId.id == provider_id]
    return cluster


def kmip_client(env: Environment, role: str) -> KmipClient:
    """A KMIP client of our own to the embedded KMS (the evidence read: does the key exist?)."""
    ep = env.kms_endpoints[role]
    return KmipClient.from_paths(ep.address, ep.port, ep.ca_path, ep.client_cert_path, ep.client_key_path)


@contextlib.contextmanager
def restore_default(si: Any) -> Iterator[None]:
    """Put back the global default provider whatever a test did to it."""
    before = si.content.cryptoManager.GetDefaultKmsCluster()
    try:
        yield
    finally:
        si.content.cryptoManager.SetDefaultKmsCluster(entity=None, clusterId=pid_ref(before.id) if before else None)


@contextlib.contextmanager
def defect_world(env: Environment, *defects: str, version: str | None = None
                 ) -> Iterator[tuple[FakeWorld, dict[str, Any]]]:
    """Two small fakes like the session's, with seeded defects (and maybe another version), on the session's KMS."""
    world = FakeWorld(defects=list(defects))
    fakes = [e for e in env.inventory.vcenters if e.target == "fake"]
    seeds = [ProviderSeed(provider_id=ep.provider_id, server_name=ep.server_name, address=ep.address, port=ep.port,
                          server_cert_pem=ep.ca_pem, client_cert_pem=ep.client_cert_pem,
                          client_key_pem=ep.client_key_pem,
                          vcenters=tuple(e.name for e in fakes) if role == "shared" else (fakes[0].name,),
                          default=role == "shared")
             for role, ep in env.kms_endpoints.items()]
    try:
        for entry in fakes:
            world.add_vcenter(VCenterSeed(name=entry.name, url=entry.service_url, user=entry.user,
                                          password=entry.password(), version=version or entry.version or "7.0.3",
                                          hosts=3, vms=1), seeds)
        yield world, {entry.name: connect_fake(world, entry) for entry in fakes}
    finally:
        world.close()


@pytest.fixture
def scratch_provider(si_a: Any) -> Iterator[str]:
    """A provider id for this test; whatever the test registered under it is removed afterwards."""
    provider_id = new_provider_id()
    yield provider_id
    remove_provider(si_a, provider_id)


# ---- the seeded lab ----------------------------------------------------------------------------
def test_seeded_providers_per_vcenter(si_a: Any, si_b: Any) -> None:
    """vc-a has the shared (default) and the dedicated provider; vc-b only the shared one (KMS-SHARED/DEDICATED)."""
    a, b = providers(si_a), providers(si_b)
    assert {SHARED_PROVIDER, DEDICATED_PROVIDER} <= set(a)
    assert SHARED_PROVIDER in b and DEDICATED_PROVIDER not in b
    assert a[SHARED_PROVIDER].useAsDefault and not a[DEDICATED_PROVIDER].useAsDefault
    assert b[SHARED_PROVIDER].useAsDefault
    assert a[SHARED_PROVIDER].managementType == "vCenter"
    assert a[SHARED_PROVIDER].servers[0].address == b[SHARED_PROVIDER].servers[0].address
    assert si_a.content.cryptoManager.GetDefaultKmsCluster().id == SHARED_PROVIDER
    # the property serves the same data as the method
    assert {c.clusterId.id for c in si_a.content.cryptoManager.kmipServers} == set(a)


def test_list_kms_clusters_filters(si_a: Any) -> None:
    cm = si_a.content.cryptoManager
    with_servers = {c.clusterId.id: c for c in cm.ListKmsClusters(includeKmsServers=True)}
    assert with_servers[SHARED_PROVIDER].servers
    without = {c.clusterId.id: c for c in cm.ListKmsClusters()}
    assert not without[SHARED_PROVIDER].servers
    assert SHARED_PROVIDER in {c.clusterId.id for c in cm.ListKmsClusters(managementTypeFilter=0x01)}
    assert not cm.ListKmsClusters(managementTypeFilter=0x08)       # no native key providers
    active = {c.clusterId.id for c in cm.ListKmsClusters(statusFilter=0x01)}
    assert {SHARED_PROVIDER, DEDICATED_PROVIDER} <= active
    assert not {SHARED_PROVIDER, DEDICATED_PROVIDER} & {c.clusterId.id for c in cm.ListKmsClusters(statusFilter=0x02)}


def test_seeded_providers_are_green(si_a: Any) -> None:
    for provider_id in (SHARED_PROVIDER, DEDICATED_PROVIDER):
        cluster = status(si_a, provider_id)
        assert cluster.overallStatus == "green"
        (server,) = cluster.servers
        assert (server.status, server.clientTrustServer, server.serverTrustClient) == ("green", True, True)
        assert server.certInfo.secondsBeforeExpire > 0 and server.certInfo.fingerprint
        assert cluster.clientCertInfo.subject
        assert si_a.content.cryptoManager.IsKmsClusterActive(cluster=pid_ref(provider_id))


# ---- KMS-STATUS: the trust flow on a fresh provider ------------------------------------------
def test_trust_flow_on_fresh_provider(env: Environment, si_a: Any, scratch_provider: str) -> None:
    """Register -> RetrieveKmipServerCert -> UploadKmipServerCert -> UploadClientCert -> green."""
    cm, ep = si_a.content.cryptoManager, env.kms_endpoints["shared"]
    info = register(si_a, scratch_provider, ep.address, ep.port)
    assert scratch_provider in providers(si_a)
    assert not providers(si_a)[scratch_provider].useAsDefault     # a default exists already

    (server,) = status(si_a, scratch_provider).servers
    assert (server.clientTrustServer, server.serverTrustClient) == (False, False)
    assert server.status != "green"
    assert not cm.IsKmsClusterActive(cluster=pid_ref(scratch_provider))

    cert = cm.RetrieveKmipServerCert(keyProvider=pid_ref(scratch_provider), server=info)
    assert "BEGIN CERTIFICATE" in cert.certificate and not cert.clientTrustServer
    cm.UploadKmipServerCert(cluster=pid_ref(scratch_provider), certificate=cert.certificate)
    assert cm.RetrieveKmipServerCert(keyProvider=pid_ref(scratch_provider), server=info).clientTrustServer

    # vCenter trusts the KMS now, but the KMS does not know vCenter's client certificate yet
    (server,) = status(si_a, scratch_provider).servers
    assert (server.clientTrustServer, server.serverTrustClient) == (True, False)
    assert server.status != "green"
    assert not cm.IsKmsClusterActive(cluster=pid_ref(scratch_provider))
    assert not cm.GenerateKey(keyProvider=pid_ref(scratch_provider)).success

    cm.UploadClientCert(cluster=pid_ref(scratch_provider), certificate=ep.client_cert_pem, privateKey=ep.client_key_pem)
    cluster = status(si_a, scratch_provider)
    (server,) = cluster.servers
    assert (cluster.overallStatus, server.status) == ("green", "green")
    assert (server.clientTrustServer, server.serverTrustClient) == (True, True)
    assert cm.IsKmsClusterActive(cluster=pid_ref(scratch_provider))
    assert cm.RetrieveClientCert(cluster=pid_ref(scratch_provider)).strip() == ep.client_cert_pem.strip()
    result = cm.GenerateKey(keyProvider=pid_ref(scratch_provider))
    assert result.success and result.keyId.providerId.id == scratch_provider

    remove_provider(si_a, scratch_provider)
    assert scratch_provider not in providers(si_a)
    assert si_a.content.cryptoManager.GetDefaultKmsCluster().id == SHARED_PROVIDER


def test_self_signed_client_cert_is_not_trusted_by_the_kms(env: Environment, si_a: Any, scratch_provider: str) -> None:
    """The self-signed flow works on vCenter's side, but a KMS that checks its CA refuses the cert."""
    cm, ep = si_a.content.cryptoManager, env.kms_endpoints["shared"]
    info = register(si_a, scratch_provider, ep.address, ep.port)
    cm.UploadKmipServerCert(cluster=pid_ref(scratch_provider),
                            certificate=cm.RetrieveKmipServerCert(keyProvider=pid_ref(scratch_provider), server=info).certificate)
    generated = cm.GenerateSelfSignedClientCert(cluster=pid_ref(scratch_provider))
    assert cm.RetrieveSelfSignedClientCert(cluster=pid_ref(scratch_provider)) == generated
    assert cm.RetrieveClientCert(cluster=pid_ref(scratch_provider)) == ""        # not used until updated
    cm.UpdateSelfSignedClientCert(cluster=pid_ref(scratch_provider), certificate=generated)
    assert cm.RetrieveClientCert(cluster=pid_ref(scratch_provider)) == generated
    (server,) = status(si_a, scratch_provider).servers
    assert (server.clientTrustServer, server.serverTrustClient) == (True, False)


def test_closed_port_is_red(si_a: Any, scratch_provider: str) -> None:
    cm = si_a.content.cryptoManager
    info = register(si_a, scratch_provider, "127.0.0.1", free_port())
    cluster = status(si_a, scratch_provider)
    (server,) = cluster.servers
    assert (cluster.overallStatus, server.status) == ("red", "red")
    assert "refused" in server.connectionStatus
    assert not server.clientTrustServer and not server.serverTrustClient
    assert not cm.IsKmsClusterActive(cluster=pid_ref(scratch_provider))
    # RetrieveKmipServerCert answers with an empty certificate, not a fault
    assert cm.RetrieveKmipServerCert(keyProvider=pid_ref(scratch_provider), server=info).certificate == ""


# ---- registration rules and refusals ----------------------------------------------------------
def test_duplicate_server_refused(si_a: Any, scratch_provider: str) -> None:
    info = register(si_a, scratch_provider, "127.0.0.1", free_port(), name="dup")
    with pytest.raises(vim.fault.AlreadyExists):
        register(si_a, scratch_provider, "127.0.0.2", 5696, name="dup")
    (server,) = providers(si_a)[scratch_provider].servers
    assert (server.address, server.port) == (info.address, info.port)


def test_invalid_trust_material_refused(env: Environment, si_a: Any, scratch_provider: str) -> None:
    cm, ep = si_a.content.cryptoManager, env.kms_endpoints["shared"]
    register(si_a, scratch_provider, ep.address, ep.port)
    with pytest.raises(vmodl.fault.InvalidArgument):
        cm.UploadKmipServerCert(cluster=pid_ref(scratch_provider), certificate="not a certificate")
    other_key = env.kms_endpoints["dedicated"].client_key_pem
    with pytest.raises(vmodl.fault.InvalidArgument) as refused:
        cm.UploadClientCert(cluster=pid_ref(scratch_provider), certificate=ep.ca_pem, privateKey=other_key)
    assert "PRIVATE KEY" not in (refused.value.msg or "")                  # a secret never echoes back
    assert cm.RetrieveClientCert(cluster=pid_ref(scratch_provider)) == ""
    (server,) = status(si_a, scratch_provider).servers
    assert (server.clientTrustServer, server.serverTrustClient) == (False, False)


def test_unknown_provider_refused(si_a: Any) -> None:
    cm = si_a.content.cryptoManager
    missing = pid_ref(new_provider_id())
    for call in (lambda: cm.MarkDefault(clusterId=missing), lambda: cm.IsKmsClusterActive(cluster=missing),
                 lambda: cm.RemoveKmipServer(clusterId=missing, serverName="x"),
                 lambda: cm.UploadKmipServerCert(cluster=missing, certificate="x")):
        with pytest.raises(vmodl.fault.InvalidArgument):
            call()
    assert cm.GetDefaultKmsCluster().id == SHARED_PROVIDER


def test_update_server(si_a: Any, scratch_provider: str) -> None:
    cm = si_a.content.cryptoManager
    register(si_a, scratch_provider, "127.0.0.1", 5696, name="upd")
    cm.UpdateKmipServer(server=vim.encryption.KmipServerSpec(
        clusterId=pid_ref(scratch_provider),
        info=vim.encryption.KmipServerInfo(name="upd", address="127.0.0.9", port=5697, timeout=10)))
    (server,) = providers(si_a)[scratch_provider].servers
    assert (server.address, server.port, server.timeout) == ("127.0.0.9", 5697, 10)
    with pytest.raises(vmodl.fault.InvalidArgument):
        cm.UpdateKmipServer(server=vim.encryption.KmipServerSpec(
            clusterId=pid_ref(scratch_provider), info=vim.encryption.KmipServerInfo(name="nope", address="x", port=1)))


def test_register_kms_cluster_only_trust_authority(si_a: Any) -> None:
    cm, provider_id = si_a.content.cryptoManager, new_provider_id()
    with pytest.raises(vmodl.fault.InvalidArgument):
        cm.RegisterKmsCluster(clusterId=pid_ref(provider_id), managementType="vCenter")
    assert provider_id not in {c.clusterId.id for c in cm.ListKmsClusters()}
    cm.RegisterKmsCluster(clusterId=pid_ref(provider_id))
    try:
        clusters = {c.clusterId.id: c for c in cm.ListKmsClusters(managementTypeFilter=0x02)}
        assert clusters[provider_id].managementType == "trustAuthority"
        assert provider_id not in providers(si_a)            # ListKmipServers: KMIP (vCenter) providers only
    finally:
        cm.UnregisterKmsCluster(clusterId=pid_ref(provider_id))
    assert provider_id not in {c.clusterId.id for c in cm.ListKmsClusters()}


# ---- defaults ------------------------------------------------------------------------------------
def test_first_provider_becomes_default(si_a: Any, scratch_provider: str) -> None:
    cm = si_a.content.cryptoManager
    with restore_default(si_a):
        cm.SetDefaultKmsCluster(entity=None, clusterId=None)
        assert cm.GetDefaultKmsCluster() is None
        assert not any(c.useAsDefault for c in providers(si_a).values())
        register(si_a, scratch_provider, "127.0.0.1", free_port())
        assert cm.GetDefaultKmsCluster().id == scratch_provider
        assert providers(si_a)[scratch_provider].useAsDefault
        remove_provider(si_a, scratch_provider)
        assert cm.GetDefaultKmsCluster() is None              # the default went with its provider
    assert cm.GetDefaultKmsCluster().id == SHARED_PROVIDER


def test_mark_default_and_entity_defaults(si_a: Any) -> None:
    cm, content = si_a.content.cryptoManager, si_a.content
    dc = content.rootFolder.childEntity[0]
    cluster = [c for c in dc.hostFolder.childEntity if isinstance(c, vim.ClusterComputeResource)][0]
    with restore_default(si_a):
        cm.MarkDefault(clusterId=pid_ref(DEDICATED_PROVIDER))
        assert providers(si_a)[DEDICATED_PROVIDER].useAsDefault and not providers(si_a)[SHARED_PROVIDER].useAsDefault
    assert cm.GetDefaultKmsCluster().id == SHARED_PROVIDER
    try:
        cm.SetDefaultKmsCluster(entity=cluster, clusterId=pid_ref(DEDICATED_PROVIDER))
        assert cm.GetDefaultKmsCluster(entity=cluster).id == DEDICATED_PROVIDER
        assert [e._moId for e in providers(si_a)[DEDICATED_PROVIDER].useAsEntityDefault] == [cluster._moId]
        assert cm.GetDefaultKmsCluster(entity=dc.hostFolder) is None
        assert cm.GetDefaultKmsCluster(entity=dc.hostFolder, defaultsToParent=True).id == SHARED_PROVIDER
        assert cm.GetDefaultKmsCluster().id == SHARED_PROVIDER
        with pytest.raises(vmodl.fault.InvalidArgument):
            cm.SetDefaultKmsCluster(entity=dc.vmFolder.childEntity[0], clusterId=pid_ref(DEDICATED_PROVIDER))
    finally:
        cm.SetDefaultKmsCluster(entity=cluster, clusterId=None)
    assert cm.GetDefaultKmsCluster(entity=cluster) is None


# ---- KMS-GENERATE / KMS-REQUIRED ------------------------------------------------------------------
def test_generated_keys_exist_on_their_kms(env: Environment, si_a: Any, si_b: Any) -> None:
    shared, dedicated = kmip_client(env, "shared"), kmip_client(env, "dedicated")
    try:
        for si in (si_a, si_b):
            result = si.content.cryptoManager.GenerateKey()
            assert result.success and result.keyId.providerId.id == SHARED_PROVIDER
            assert shared.key_state(result.keyId.keyId) == "ACTIVE"
        result = si_a.content.cryptoManager.GenerateKey(keyProvider=pid_ref(DEDICATED_PROVIDER))
        assert result.success and result.keyId.providerId.id == DEDICATED_PROVIDER
        assert dedicated.key_exists(result.keyId.keyId)
        assert not shared.key_exists(result.keyId.keyId)     # separate clusters, disjoint UID ranges
    finally:
        shared.close()
        dedicated.close()


def test_generate_key_refused_by_kms_is_success_false(env: Environment, si_a: Any) -> None:
    server = env.kms.servers["shared"]
    server.refuse_create(True)
    try:
        result = si_a.content.cryptoManager.GenerateKey()
    finally:
        server.refuse_create(False)
    assert result.success is False
    assert SHARED_PROVIDER in result.reason and "refused" in result.reason
    assert isinstance(result.fault, vmodl.MethodFault)
    assert si_a.content.cryptoManager.GenerateKey().success


def test_generate_key_dedicated_provider_unknown_to_vc_b(si_b: Any) -> None:
    """KMS-DEDICATED as seen on vc-b: the dedicated provider is not there, so no key from it."""
    result = si_b.content.cryptoManager.GenerateKey(keyProvider=pid_ref(DEDICATED_PROVIDER))
    assert result.success is False and DEDICATED_PROVIDER in result.reason


def test_no_default_provider_means_no_key(si_a: Any) -> None:
    """KMS-REQUIRED: with no default provider a key cannot be made, and the reason says why."""
    cm = si_a.content.cryptoManager
    with restore_default(si_a):
        cm.SetDefaultKmsCluster(entity=None, clusterId=None)
        result = cm.GenerateKey()
        assert result.success is False and "default key provider" in result.reason
    assert cm.GenerateKey().success


def test_encrypt_without_default_provider_refused(si_a: Any, vm: Any) -> None:
    """KMS-REQUIRED end to end: an encrypt asking for a generated key fails and changes nothing."""
    from harness.fakevc.model.pbm import ENCRYPTION_POLICY_ID
    spec = vim.vm.ConfigSpec(crypto=vim.encryption.CryptoSpecEncrypt(cryptoKeyId=vim.encryption.CryptoKeyId(keyId="")),
                             vmProfile=[vim.vm.DefinedProfileSpec(profileId=ENCRYPTION_POLICY_ID)])
    with restore_default(si_a):
        si_a.content.cryptoManager.SetDefaultKmsCluster(entity=None, clusterId=None)
        task = vm.ReconfigVM_Task(spec=spec)
    assert task.info.state == "error", task.info.state
    assert isinstance(task.info.error, vim.fault.InvalidState)
    assert "key provider" in task.info.error.msg
    assert vm.config.keyId is None and vm.runtime.powerState == "poweredOff"
    assert all(d.backing.keyId is None for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))


# ---- keys vCenter knows ------------------------------------------------------------------------
def test_query_crypto_key_status(env: Environment, si_a: Any, vm: Any) -> None:
    cm = si_a.content.cryptoManager
    fresh = cm.GenerateKey().keyId
    bogus = vim.encryption.CryptoKeyId(keyId="999999", providerId=pid_ref(SHARED_PROVIDER))
    elsewhere = vim.encryption.CryptoKeyId(keyId=fresh.keyId, providerId=pid_ref(new_provider_id()))
    fake = env.fake_vcenter("vc-a")
    model = fake.objects[vm._moId]
    model.key = (fresh.providerId.id, fresh.keyId)          # arrange: a VM that uses the key
    try:
        by_key = {(s.keyId.providerId.id, s.keyId.keyId): s
                  for s in cm.QueryCryptoKeyStatus(keyIds=[fresh, bogus, elsewhere], checkKeyBitMap=0x07)}
        listed = {(k.providerId.id, k.keyId) for k in cm.ListKeys()}
    finally:
        model.key = None
    ok = by_key[(SHARED_PROVIDER, fresh.keyId)]
    assert ok.keyAvailable and [v._moId for v in ok.encryptedVMs] == [vm._moId] and not ok.affectedHosts
    missing = by_key[(SHARED_PROVIDER, "999999")]
    assert not missing.keyAvailable and missing.reason == "KeyStateMissingInKMS" and not missing.encryptedVMs
    invalid = by_key[(elsewhere.providerId.id, fresh.keyId)]
    assert not invalid.keyAvailable and invalid.reason == "KeyStateClusterInvalid"
    assert (SHARED_PROVIDER, fresh.keyId) in listed
    assert (SHARED_PROVIDER, fresh.keyId) not in {(k.providerId.id, k.keyId) for k in cm.ListKeys()}
    unknown = cm.QueryCryptoKeyStatus(keyIds=[bogus], checkKeyBitMap=0x02)[0]
    assert unknown.keyAvailable is None                       # bit not asked: field unknown


def test_host_keys_are_listed_and_affect_hosts(env: Environment, si_a: Any) -> None:
    cm = si_a.content.cryptoManager
    fake = env.fake_vcenter("vc-a")
    host = fake.cluster.hosts[0]
    before = host.host_key
    fresh = cm.GenerateKey().keyId
    host.host_key = (fresh.providerId.id, fresh.keyId)      # arrange: as if ConfigureCryptoKey had run
    try:
        (st,) = cm.QueryCryptoKeyStatus(keyIds=[fresh], checkKeyBitMap=0x04)
        listed = {(k.providerId.id, k.keyId) for k in cm.ListKeys()}
    finally:
        host.host_key = before
    assert [h._moId for h in st.affectedHosts] == [host.moid]
    assert (SHARED_PROVIDER, fresh.keyId) in listed


# ---- seeded defects of this area -------------------------------------------------------------------
def test_defect_phantom_key(env: Environment) -> None:
    with defect_world(env, "kms-generate-phantom-key") as (_, sis):
        result = sis["vc-a"].content.cryptoManager.GenerateKey()
    client = kmip_client(env, "shared")
    try:
        assert result.success and not client.key_exists(result.keyId.keyId)   # KMS-GENERATE violated
    finally:
        client.close()


def test_defect_failure_as_fault(env: Environment) -> None:
    server = env.kms.servers["shared"]
    with defect_world(env, "kms-generate-failure-as-fault") as (_, sis):
        server.refuse_create(True)
        try:
            with pytest.raises(vim.fault.InvalidState):
                sis["vc-a"].content.cryptoManager.GenerateKey()
        finally:
            server.refuse_create(False)


def test_defect_invented_key(env: Environment) -> None:
    with defect_world(env, "kms-required-invented-key") as (_, sis):
        cm = sis["vc-a"].content.cryptoManager
        cm.SetDefaultKmsCluster(entity=None, clusterId=None)
        result = cm.GenerateKey()
    assert result.success and result.keyId.providerId.id not in (SHARED_PROVIDER, DEDICATED_PROVIDER)


def test_defect_status_green_when_unreachable(env: Environment) -> None:
    with defect_world(env, "kms-status-green-when-unreachable") as (_, sis):
        si = sis["vc-a"]
        provider_id = new_provider_id()
        register(si, provider_id, "127.0.0.1", free_port())
        assert status(si, provider_id).overallStatus == "green"
        assert si.content.cryptoManager.IsKmsClusterActive(cluster=pid_ref(provider_id))


def test_defect_status_trust_lies(env: Environment) -> None:
    ep = env.kms_endpoints["shared"]
    with defect_world(env, "kms-status-trust-lies") as (_, sis):
        si = sis["vc-a"]
        provider_id = new_provider_id()
        register(si, provider_id, ep.address, ep.port)
        (server,) = status(si, provider_id).servers
        assert server.clientTrustServer and server.serverTrustClient        # nothing was uploaded


def test_defect_half_applied_invented_key(env: Environment) -> None:
    from harness.fakevc.model.pbm import ENCRYPTION_POLICY_ID
    with defect_world(env, "kms-required-half-applied") as (world, sis):
        si = sis["vc-a"]
        for host in world.vcenters["vc-a"].cluster.hosts:      # arrange: hosts already crypto-safe
            vim.HostSystem(host.moid, si._stub).ConfigureCryptoKey()
        si.content.cryptoManager.SetDefaultKmsCluster(entity=None, clusterId=None)
        machine = si.content.rootFolder.childEntity[0].vmFolder.childEntity[0]
        spec = vim.vm.ConfigSpec(
            crypto=vim.encryption.CryptoSpecEncrypt(cryptoKeyId=vim.encryption.CryptoKeyId(keyId="")),
            vmProfile=[vim.vm.DefinedProfileSpec(profileId=ENCRYPTION_POLICY_ID)])
        task = machine.ReconfigVM_Task(spec=spec)
        assert task.info.state == "error"
        assert machine.config.keyId is not None           # refused, yet changed: KMS-REQUIRED violated


# ---- privileges ------------------------------------------------------------------------------------
def test_key_management_needs_cryptographer_privileges(env: Environment) -> None:
    """A NoCryptoAdmin user is refused key-provider and key calls (NoPermission), and nothing changes."""
    user, password = "no-crypto@vsphere.local", "no-crypto-password"
    with defect_world(env) as (world, sis):
        admin = sis["vc-a"]
        world.vcenters["vc-a"].add_user(user, password)
        admin.content.authorizationManager.SetEntityPermissions(
            entity=admin.content.rootFolder,
            permission=[vim.AuthorizationManager.Permission(principal=user, group=False, roleId=-6, propagate=True)])
        limited = vim.ServiceInstance("ServiceInstance", world.adapter("vc-a"))
        limited.content.sessionManager.Login(user, password)
        cm = limited.content.cryptoManager
        with pytest.raises(vim.fault.NoPermission) as refused:
            cm.GenerateKey()
        assert refused.value.privilegeId == "Cryptographer.ManageKeys"
        provider_id = new_provider_id()
        with pytest.raises(vim.fault.NoPermission) as refused:
            register(limited, provider_id, "127.0.0.1", 5696)
        assert refused.value.privilegeId == "Cryptographer.ManageKeyServers"
        with pytest.raises(vim.fault.NoPermission):
            cm.SetDefaultKmsCluster(entity=None, clusterId=None)
        assert provider_id not in providers(admin)
        assert admin.content.cryptoManager.GetDefaultKmsCluster().id == SHARED_PROVIDER


# ---- KMS-SHARED / KMS-DEDICATED defects, seen through a cross-vCenter migration -------------------
def _encrypt(si: Any, machine: Any, provider_id: str) -> Any:
    from harness.fakevc.model.pbm import ENCRYPTION_POLICY_ID
    key = si.content.cryptoManager.GenerateKey(keyProvider=pid_ref(provider_id)).keyId
    crypto = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key)
    policy = [vim.vm.DefinedProfileSpec(profileId=ENCRYPTION_POLICY_ID)]
    disks = [d for d in machine.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
    spec = vim.vm.ConfigSpec(crypto=crypto, vmProfile=policy, deviceChange=[
        vim.vm.device.VirtualDeviceSpec(operation="edit", device=d, profile=policy,
                                        backing=vim.vm.device.VirtualDeviceSpec.BackingSpec(crypto=crypto))
        for d in disks])
    task = machine.ReconfigVM_Task(spec=spec)
    assert task.info.state == "success", task.info.error
    return key


def _migrate_encrypted(env: Environment, sis: dict[str, Any], provider_id: str) -> tuple[Any, Any]:
    """Encrypt a vc-a VM with a key of `provider_id` and migrate it to vc-b: (task, key)."""
    source, dest = sis["vc-a"], sis["vc-b"]
    machine = source.content.rootFolder.childEntity[0].vmFolder.childEntity[0]
    key = _encrypt(source, machine, provider_id)
    entry = env.inventory.vcenter("vc-b")
    dc = dest.content.rootFolder.childEntity[0]
    cluster = [c for c in dc.hostFolder.childEntity if isinstance(c, vim.ClusterComputeResource)][0]
    locator = vim.ServiceLocator(instanceUuid=dest.content.about.instanceUuid, url=entry.service_url,
                                 credential=vim.ServiceLocator.NamePassword(username=entry.user, password=entry.password()))
    host = cluster.host[0]
    spec = vim.vm.RelocateSpec(service=locator, host=host, pool=cluster.resourcePool, datastore=host.datastore[0],
                               folder=dc.vmFolder)
    return machine.RelocateVM_Task(spec=spec), key


def test_defect_shared_provider_rejected(env: Environment) -> None:
    with defect_world(env) as (_, sis):
        task, _ = _migrate_encrypted(env, sis, SHARED_PROVIDER)
        assert task.info.state == "success"                       # the rule holds without the defect
    with defect_world(env, "kms-shared-provider-rejected") as (_, sis):
        task, _ = _migrate_encrypted(env, sis, SHARED_PROVIDER)
        assert task.info.state == "error"                         # KMS-SHARED violated: shared cluster refused


def test_defect_dedicated_assumed_known(env: Environment) -> None:
    with defect_world(env) as (_, sis):
        task, _ = _migrate_encrypted(env, sis, DEDICATED_PROVIDER)
        assert task.info.state == "error"                         # the rule holds without the defect
    with defect_world(env, "kms-dedicated-assumed-known") as (_, sis):
        task, key = _migrate_encrypted(env, sis, DEDICATED_PROVIDER)
        assert task.info.state == "success"                       # KMS-DEDICATED violated
        arrived = [v for v in sis["vc-b"].content.rootFolder.childEntity[0].vmFolder.childEntity
                   if v.config.keyId is not None and v.config.keyId.keyId == key.keyId]
        assert arrived and arrived[0].config.keyId.providerId.id == DEDICATED_PROVIDER
