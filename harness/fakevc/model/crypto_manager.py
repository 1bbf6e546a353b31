"""CryptoManagerKmip (content.cryptoManager): key providers, their trust material, keys.

A provider ("KMS cluster") is created implicitly by RegisterKmipServer with a new clusterId, as on
vCenter; the first provider registered becomes the default when there is none. Trust is what an
admin uploaded: UploadKmipServerCert (vCenter trusts the KMS) and UploadClientCert (the KMS
trusts vCenter); every status comes from a real connection with exactly that material.
Removing a provider's last server removes the provider (community.vmware deletes a standard
provider that way; whether vCenter keeps an empty entry is UNCONFIRMED). Secrets (client private
keys, server passwords) are never logged nor returned.
"""
from __future__ import annotations

import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyVmomi import vim, vmodl

from harness.fakevc.defects import defect
from harness.fakevc.kmip import keys, kms_health, multi_server, native
from harness.fakevc.kmip.provider import NATIVE, TRUST_AUTHORITY, VCENTER, Provider
from harness.fakevc.model.base import MO, CallContext
from harness.fakevc.model.host import key_id as crypto_key_id
from harness.fakevc.wire import complete

MANAGE_SERVERS = "Cryptographer.ManageKeyServers"
MANAGE_KEYS = "Cryptographer.ManageKeys"
_TYPE_BITS = {VCENTER: 0x01, TRUST_AUTHORITY: 0x02, NATIVE: 0x08}   # ListKmsClusters managementTypeFilter

FAILURE_AS_FAULT = defect(
    "kms-generate-failure-as-fault", "KMS-GENERATE",
    "GenerateKey reports a KMS failure by raising a fault instead of returning success == False with a reason")
STATUS_GREEN_WHEN_DOWN = defect(
    "kms-status-green-when-unreachable", "KMS-STATUS",
    "RetrieveKmipServersStatus and IsKmsClusterActive report an unreachable KMS as green / active")
STATUS_TRUST_LIES = defect(
    "kms-status-trust-lies", "KMS-STATUS",
    "RetrieveKmipServersStatus reports clientTrustServer and serverTrustClient true whatever trust was uploaded")

LAB_PROVIDER_MODIFIED = defect(
    "kms-lab-provider-modified", "KMS-GENERATE",
    "using a key provider for keys changes the provider itself (its server's settings are rewritten, as a "
    "run that re-registers or re-trusts the lab's provider would): the lab's provider differs after the run")


def _invalid(prop: str, msg: str) -> vmodl.fault.InvalidArgument:
    return vmodl.fault.InvalidArgument(invalidProperty=prop, msg=msg)


def _self_signed(common_name: str) -> tuple[str, str]:
    """(cert, key) PEMs of a fresh self-signed client certificate (GenerateSelfSignedClientCert)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key)


def _csr(common_name: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key)


def _key_pem(key: Any) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


class CryptoManagerKmip(MO):
    vim_type = vim.encryption.CryptoManagerKmip
    moid_prefix = "CryptoManager"

    def __init__(self, vc: Any, moid: str | None = None) -> None:
        super().__init__(vc, moid)
        self.providers: dict[str, Provider] = {}
        self.default_id: str | None = None
        self.checking = False                  # kms_health re-entrancy guard
        self.kek_cache: dict = {}              # see keys.py: per API call, dropped on outages
        self.kek_stamp, self.kek_time = -1, 0.0
        self.seeds: list[Any] = []
        if not hasattr(vc, "close"):           # FakeWorld.close() closes what a vCenter holds
            vc.close = lambda: keys.close(vc)

    # ---- set-up and helpers ---------------------------------------------------------------------
    def seed_providers(self, providers: list[Any]) -> None:
        """Providers the lab comes up with: registered, fully trusted, the default one marked."""
        self.seeds = list(providers)
        for seed in providers:
            info = complete(vim.encryption.KmipServerInfo(name=seed.server_name, address=seed.address,
                                                          port=seed.port, protocol="KMIP1",
                                                          userName=getattr(seed, "username", None)))
            self.providers[seed.provider_id] = Provider(
                id=seed.provider_id, servers={seed.server_name: info}, server_certs=[seed.server_cert_pem],
                client_cert=seed.client_cert_pem, client_key=seed.client_key_pem,
                passwords={seed.server_name: seed.password} if getattr(seed, "password", None) else {})
            if seed.default:
                self.default_id = seed.provider_id

    def _require(self, ctx: CallContext, privilege: str) -> None:
        self.vc.authz.require(ctx, self.vc.root, privilege)

    def _provider(self, ref: Any, prop: str = "clusterId") -> Provider:
        pid = getattr(ref, "id", None)
        found = self.providers.get(pid or "")
        if found is None:
            raise _invalid(prop, f"Key provider '{pid}' is not registered with vCenter {self.vc.name}")
        return found

    def _remove(self, provider: Provider) -> None:
        provider.drop_clients()
        kms_health.forget(self.vc, provider)
        self.providers.pop(provider.id, None)
        if self.default_id == provider.id:
            self.default_id = None

    def _cluster_info(self, provider: Provider, with_servers: bool = True) -> Any:
        entities = [self.vc.objects[m].ref for m in sorted(provider.entity_defaults) if m in self.vc.objects]
        kind = provider.management_type
        if native.is_native(provider) and self.vc.world.defects.on(native.REPORTED_AS_STANDARD):
            kind = VCENTER
        info = vim.encryption.KmipClusterInfo(
            clusterId=vim.encryption.KeyProviderId(id=provider.id),
            servers=list(provider.servers.values()) if with_servers else [],
            useAsDefault=self.default_id == provider.id, managementType=kind,
            useAsEntityDefault=entities, hasBackup=provider.has_backup, tpmRequired=False)
        if native.is_native(provider):   # KmipClusterInfo.keyId (7.0.2): the NKP's key id (kmip/native.py)
            info.keyId = native.provider_key_id(provider.kdk)
        return info

    # ---- Native Key Providers (no SOAP call creates one: kmip/native.py) ---------------------------
    def add_native_provider(self, provider_id: str, kdk: bytes, has_backup: bool = True) -> None:
        """An NKP as an admin creates it in the vSphere Client or imports its backup (REST API): the fake's
        stand-in for a lab precondition. Never the default: the harness names it in every CryptoSpec."""
        if provider_id in self.providers:
            raise ValueError(f"vCenter {self.vc.name} already has a key provider {provider_id!r}")
        self.providers[provider_id] = Provider(id=provider_id, management_type=NATIVE, kdk=kdk,
                                               has_backup=has_backup)

    def restore_native_provider(self, provider_id: str, backup: bytes) -> None:
        """Import an NKP's backup (its KDK) here: "Restore a vSphere Native Key Provider" (kmip/native.py)."""
        kdk = native.new_kdk() if self.vc.world.defects.on(native.RESTORE_NEW_KDK) else backup
        self.add_native_provider(provider_id, kdk, has_backup=True)

    def backup_native_provider(self, provider_id: str) -> bytes:
        """Back the NKP up (what the vSphere Client's Back Up does): its KDK, and hasBackup turns true."""
        provider = self.providers.get(provider_id)
        if not native.is_native(provider):
            raise ValueError(f"vCenter {self.vc.name} has no Native Key Provider {provider_id!r}")
        provider.has_backup = True
        return provider.kdk

    def remove_native_provider(self, provider_id: str) -> None:
        provider = self.providers.get(provider_id)
        if native.is_native(provider):
            self._remove(provider)

    def _active(self, provider: Provider) -> bool:
        """A provider is active when at least one of its servers is reachable and mutually trusted."""
        if native.is_native(provider):
            # The Back up page: an NKP is "Not backed up" until its first backup, then "Active" once the KDK
            # reached the hosts. Mapping that onto IsKmsClusterActive is the fake's choice (vSphere is silent).
            return provider.has_backup
        if self.vc.world.defects.on(STATUS_GREEN_WHEN_DOWN) and provider.servers:
            return True
        probes = [kms_health.probe_server(provider, name) for name in provider.servers]
        if probes:
            answered = any(p.reachable for p in probes)
            kms_health.record(self.vc, provider, answered,
                              "" if answered else "; ".join(p.connection for p in probes))
        return multi_server.active(self.vc, provider,
                                   [p.reachable and p.client_trusts_server and p.server_trusts_client for p in probes],
                                   [p.reachable for p in probes])

    # ---- properties -----------------------------------------------------------------------------
    def p_enabled(self) -> bool:
        return True

    def p_kmipServers(self) -> list:
        # Native Key Providers are listed too: govmomi's crypto.ManagerKmip.IsValidProvider looks a provider up in
        # ListKmipServers, and vm-operator calls it for native providers before IsNativeProvider (its crypto
        # reconciler, getCryptoKeyFromEncryptionClass); vcsim lists every provider there as well.
        return [self._cluster_info(p) for p in self.providers.values() if p.management_type in (VCENTER, NATIVE)]

    # ---- providers and servers ------------------------------------------------------------------
    def RegisterKmipServer(self, ctx: CallContext, server: Any) -> None:
        self._require(ctx, MANAGE_SERVERS)
        pid = server.clusterId.id if server.clusterId else ""
        info = server.info
        if not pid:
            raise _invalid("server.clusterId.id", "The key provider id must not be empty")
        if not info.name:
            raise _invalid("server.info.name", "The KMIP server name must not be empty")
        if not info.address:
            raise _invalid("server.info.address", "The KMIP server address must not be empty")
        if not 0 < (info.port or 0) < 65536:
            raise _invalid("server.info.port", f"Invalid KMIP server port {info.port}")
        provider = self.providers.get(pid)
        if provider is not None and provider.management_type != VCENTER:
            raise _invalid("server.clusterId", f"Key provider '{pid}' is a {provider.management_type} provider")
        if provider is not None and info.name in provider.servers:
            raise vim.fault.AlreadyExists(name=info.name,
                                          msg=f"KMIP server '{info.name}' is already registered in key provider '{pid}'")
        if provider is None:
            provider = self.providers[pid] = Provider(id=pid)
        provider.servers[info.name] = complete(info)
        if server.password:
            provider.passwords[info.name] = server.password
        provider.drop_clients()
        if self.default_id is None:
            self.default_id = pid          # docs: the first key provider added becomes the default

    def UpdateKmipServer(self, ctx: CallContext, server: Any) -> None:
        self._require(ctx, MANAGE_SERVERS)
        provider = self._provider(server.clusterId, "server.clusterId")
        info = server.info
        current = provider.servers.get(info.name)
        if current is None:
            raise _invalid("server.info.name", f"KMIP server '{info.name}' is not part of key provider '{provider.id}'")
        if not info.address or not 0 < (info.port or 0) < 65536:
            raise _invalid("server.info", "A KMIP server needs an address and a port")
        for prop in ("proxyAddress", "userName", "protocol"):   # "" deletes an optional entry
            if getattr(info, prop) == "":
                setattr(info, prop, None)
        for prop in ("proxyPort", "reconnect", "nbio", "timeout"):  # -1 deletes an optional entry
            if getattr(info, prop) == -1:
                setattr(info, prop, None)
        provider.servers[info.name] = complete(info)
        if server.password:
            provider.passwords[info.name] = server.password
        provider.drop_clients()

    def RemoveKmipServer(self, ctx: CallContext, clusterId: Any, serverName: str) -> None:
        self._require(ctx, MANAGE_SERVERS)
        provider = self._provider(clusterId)
        if serverName not in provider.servers:
            raise _invalid("serverName", f"KMIP server '{serverName}' is not part of key provider '{provider.id}'")
        provider.drop_clients()
        del provider.servers[serverName]
        provider.passwords.pop(serverName, None)
        if not provider.servers:
            self._remove(provider)

    def ListKmipServers(self, ctx: CallContext, limit: int | None = None) -> list:
        self._require(ctx, MANAGE_SERVERS)
        clusters = self.p_kmipServers()
        return clusters[:limit] if limit is not None and limit >= 0 else clusters

    def ListKmsClusters(self, ctx: CallContext, includeKmsServers: bool | None = None,
                        managementTypeFilter: int | None = None, statusFilter: int | None = None) -> list:
        self._require(ctx, MANAGE_SERVERS)
        out = []
        for provider in self.providers.values():
            if managementTypeFilter not in (None, -1) and not managementTypeFilter & _TYPE_BITS.get(provider.management_type, 0):
                continue
            if statusFilter not in (None, -1, 0x03):
                bit = 0x01 if self._active(provider) else 0x02
                if not statusFilter & bit:
                    continue
            out.append(self._cluster_info(provider, with_servers=bool(includeKmsServers)))
        return out

    def RegisterKmsCluster(self, ctx: CallContext, clusterId: Any, managementType: str | None = None) -> None:
        """Only Trusted Key Providers (trustAuthority, the API's default); KMIP ones use RegisterKmipServer."""
        self._require(ctx, MANAGE_SERVERS)
        kind = managementType or TRUST_AUTHORITY
        if kind != TRUST_AUTHORITY:
            raise _invalid("managementType", f"RegisterKmsCluster accepts only '{TRUST_AUTHORITY}' providers; "
                                             "register a standard key provider with RegisterKmipServer")
        if not clusterId.id:
            raise _invalid("clusterId.id", "The key provider id must not be empty")
        if clusterId.id in self.providers:
            raise vim.fault.AlreadyExists(name=clusterId.id, msg=f"Key provider '{clusterId.id}' is already registered")
        self.providers[clusterId.id] = Provider(id=clusterId.id, management_type=kind)

    def UnregisterKmsCluster(self, ctx: CallContext, clusterId: Any) -> None:
        self._require(ctx, MANAGE_SERVERS)
        self._remove(self._provider(clusterId))

    # ---- defaults -------------------------------------------------------------------------------
    def MarkDefault(self, ctx: CallContext, clusterId: Any) -> None:
        self._require(ctx, MANAGE_SERVERS)
        self.default_id = self._provider(clusterId).id

    def SetDefaultKmsCluster(self, ctx: CallContext, entity: Any = None, clusterId: Any = None) -> None:
        self._require(ctx, MANAGE_SERVERS)
        provider = self._provider(clusterId) if clusterId is not None and clusterId.id else None
        if entity is None:
            self.default_id = provider.id if provider else None
            return
        target = self.vc.lookup(entity)
        if not isinstance(target.ref, (vim.ClusterComputeResource, vim.Folder)):
            raise _invalid("entity", "A default key provider can be set on a cluster or a host folder only")
        for other in self.providers.values():
            other.entity_defaults.discard(target.moid)
        if provider is not None:
            provider.entity_defaults.add(target.moid)

    def GetDefaultKmsCluster(self, ctx: CallContext, entity: Any = None, defaultsToParent: bool | None = None) -> Any:
        self._require(ctx, MANAGE_SERVERS)
        if entity is None:
            pid = self.default_id
        else:
            target = self.vc.lookup(entity)
            chain = target.ancestors() if defaultsToParent else [target]
            pid = next((p.id for node in chain for p in self.providers.values() if node.moid in p.entity_defaults), None)
            if pid is None and defaultsToParent:
                pid = self.default_id
        return vim.encryption.KeyProviderId(id=pid) if pid else None

    # ---- status ---------------------------------------------------------------------------------
    def IsKmsClusterActive(self, ctx: CallContext, cluster: Any = None) -> bool:
        self._require(ctx, MANAGE_SERVERS)
        if cluster is None or not cluster.id:
            if self.default_id is None:
                raise _invalid("cluster", f"No default key provider is configured on vCenter {self.vc.name}")
            cluster = vim.encryption.KeyProviderId(id=self.default_id)
        return self._active(self._provider(cluster, "cluster"))

    def RetrieveKmipServersStatus_Task(self, ctx: CallContext, clusters: list | None = None) -> Any:
        self._require(ctx, MANAGE_SERVERS)
        wanted = []
        for cluster in clusters or []:
            provider = self._provider(cluster.clusterId, "clusters.clusterId")
            names = [s.name for s in cluster.servers or []] or list(provider.servers)
            for name in names:
                if name not in provider.servers:
                    raise _invalid("clusters.servers.name", f"KMIP server '{name}' is not part of key provider '{provider.id}'")
            wanted.append((provider, names))
        if not clusters:
            wanted = [(p, list(p.servers)) for p in self.providers.values() if p.management_type == VCENTER]
        # A Native Key Provider has no KMIP server, and ClusterStatus.servers is required (pyVmomi typeinfo): the
        # fake leaves NKPs out of the answer. vSphere does not document this case (govmomi's IsNativeProvider
        # reads an NKP's managementType from this task, so a real vCenter may answer it): the fake's choice,
        # and no test asserts it (KMS-STATUS skips an NKP: capability).
        wanted = [(p, names) for p, names in wanted if not native.is_native(p)]
        return self.vc.tasks.run(ctx, None, "CryptoManagerKmip.retrieveKmipServersStatus",
                                 lambda: vim.encryption.CryptoManagerKmip.ClusterStatus.Array(
                                     [self._status(p, names) for p, names in wanted]))

    def _status(self, provider: Provider, names: list[str]) -> Any:
        green_lie = self.vc.world.defects.on(STATUS_GREEN_WHEN_DOWN)
        trust_lie = self.vc.world.defects.on(STATUS_TRUST_LIES)
        servers, colours, answered = [], [], []
        for name in names:
            probe = kms_health.probe_server(provider, name)
            answered.append(probe.reachable)
            colour = "green" if probe.reachable and probe.client_trusts_server and probe.server_trusts_client \
                else ("yellow" if probe.reachable else "red")
            client_trusts, server_trusts = probe.client_trusts_server, probe.server_trusts_client
            if green_lie:
                colour, client_trusts, server_trusts = "green", True, True
            if trust_lie:
                client_trusts = server_trusts = True
            colours.append(colour)
            servers.append(vim.encryption.CryptoManagerKmip.ServerStatus(
                name=name, status=colour, connectionStatus=probe.connection,
                certInfo=kms_health.certificate_info(probe.certificate),
                clientTrustServer=client_trusts, serverTrustClient=server_trusts))
        if names:
            kms_health.record(self.vc, provider, any(answered),
                              "" if any(answered) else "; ".join(s.connectionStatus for s in servers))
        if len(servers) > 1:   # KMS-MULTI: a down server beside one that answers (multi_server.py)
            for i, server in enumerate(servers):
                others_answer = any(a for j, a in enumerate(answered) if j != i)
                colours[i] = server.status = multi_server.server_colour(self.vc, colours[i], others_answer)
        overall = multi_server.overall(self.vc, colours)
        return vim.encryption.CryptoManagerKmip.ClusterStatus(
            clusterId=vim.encryption.KeyProviderId(id=provider.id), overallStatus=overall,
            managementType=provider.management_type, servers=servers,
            clientCertInfo=kms_health.certificate_info(provider.client_cert))

    # ---- trust material -------------------------------------------------------------------------
    def RetrieveKmipServerCert(self, ctx: CallContext, keyProvider: Any, server: Any) -> Any:
        """The server's leaf certificate as sent, unverified; an empty certificate on any error."""
        self._require(ctx, MANAGE_SERVERS)
        provider = self.providers.get(keyProvider.id if keyProvider else "")
        try:
            pem = kms_health.fetch_server_certificate(server.address, server.port, timeout=kms_health.PROBE_TIMEOUT)
        except (OSError, ValueError):
            return vim.encryption.CryptoManagerKmip.ServerCertInfo(certificate="")
        trusted = bool(provider and provider.server_certs and kms_health.trusts(provider.server_certs, pem))
        return vim.encryption.CryptoManagerKmip.ServerCertInfo(
            certificate=pem, certInfo=kms_health.certificate_info(pem), clientTrustServer=trusted)

    def UploadKmipServerCert(self, ctx: CallContext, cluster: Any, certificate: str) -> None:
        self._require(ctx, MANAGE_SERVERS)
        provider = self._provider(cluster, "cluster")
        try:
            kms_health.load_certificates(certificate)
        except ValueError as err:
            raise _invalid("certificate", f"The KMS certificate is not valid: {err}") from None
        if certificate not in provider.server_certs:
            provider.server_certs.append(certificate)
        provider.drop_clients()

    def UploadClientCert(self, ctx: CallContext, cluster: Any, certificate: str, privateKey: str) -> None:
        self._require(ctx, MANAGE_SERVERS)
        provider = self._provider(cluster, "cluster")
        try:
            kms_health.check_key_pair(certificate, privateKey)
        except ValueError as err:
            raise _invalid("certificate", f"The client certificate and private key are not usable: {err}") from None
        provider.client_cert, provider.client_key = certificate, privateKey
        provider.drop_clients()

    def RetrieveClientCert(self, ctx: CallContext, cluster: Any) -> str:
        self._require(ctx, MANAGE_SERVERS)
        return self._provider(cluster, "cluster").client_cert or ""

    def GenerateSelfSignedClientCert(self, ctx: CallContext, cluster: Any, request: Any = None) -> str:
        """A new self-signed client certificate; not used until UpdateSelfSignedClientCert."""
        self._require(ctx, MANAGE_SERVERS)
        provider = self._provider(cluster, "cluster")
        provider.pending_self_signed = _self_signed(f"vCenter {self.vc.name} ({provider.id})")
        return provider.pending_self_signed[0]

    def RetrieveSelfSignedClientCert(self, ctx: CallContext, cluster: Any) -> str:
        self._require(ctx, MANAGE_SERVERS)
        pending = self._provider(cluster, "cluster").pending_self_signed
        return pending[0] if pending else ""

    def UpdateSelfSignedClientCert(self, ctx: CallContext, cluster: Any, certificate: str) -> None:
        self._require(ctx, MANAGE_SERVERS)
        provider = self._provider(cluster, "cluster")
        pending = provider.pending_self_signed
        if pending is None or pending[0].strip() != (certificate or "").strip():
            raise _invalid("certificate", "The certificate is not the self-signed certificate this vCenter generated")
        provider.client_cert, provider.client_key = pending
        provider.pending_self_signed = None
        provider.drop_clients()

    def GenerateClientCsr(self, ctx: CallContext, cluster: Any, request: Any = None) -> str:
        self._require(ctx, MANAGE_SERVERS)
        provider = self._provider(cluster, "cluster")
        provider.pending_csr = _csr(f"vCenter {self.vc.name} ({provider.id})")
        return provider.pending_csr[0]

    def RetrieveClientCsr(self, ctx: CallContext, cluster: Any) -> str:
        self._require(ctx, MANAGE_SERVERS)
        pending = self._provider(cluster, "cluster").pending_csr
        return pending[0] if pending else ""

    def UpdateKmsSignedCsrClientCert(self, ctx: CallContext, cluster: Any, certificate: str) -> None:
        """The KMS-signed certificate for the pending CSR; it must carry the CSR's public key."""
        self._require(ctx, MANAGE_SERVERS)
        provider = self._provider(cluster, "cluster")
        if provider.pending_csr is None:
            raise vim.fault.InvalidState(msg=f"No client CSR was generated for key provider '{provider.id}'")
        try:
            kms_health.check_key_pair(certificate, provider.pending_csr[1])
        except ValueError as err:
            raise _invalid("certificate", f"The certificate does not match the CSR: {err}") from None
        provider.client_cert, provider.client_key = certificate, provider.pending_csr[1]
        provider.pending_csr = None
        provider.drop_clients()

    # ---- keys -----------------------------------------------------------------------------------
    def GenerateKey(self, ctx: CallContext, keyProvider: Any = None, spec: Any = None, keySpec: Any = None) -> Any:
        self._require(ctx, MANAGE_KEYS)
        pid = keyProvider.id if keyProvider is not None and keyProvider.id else None
        key, reason, fault = keys.create_key(self.vc, pid)
        if key is None and pid is None and keys.default_provider(self.vc) is None \
                and self.vc.world.defects.on(keys.INVENTED_KEY):
            key = keys.invented_key()
        if key is not None:
            if self.vc.world.defects.on(LAB_PROVIDER_MODIFIED):
                self._rewrite_servers(key[0])
            return vim.encryption.CryptoKeyResult(keyId=crypto_key_id(*key), success=True)
        if self.vc.world.defects.on(FAILURE_AS_FAULT):
            raise fault
        target = pid or keys.default_provider(self.vc)
        return vim.encryption.CryptoKeyResult(
            keyId=vim.encryption.CryptoKeyId(keyId="", providerId=vim.encryption.KeyProviderId(id=target) if target else None),
            success=False, reason=reason, fault=fault)

    def _rewrite_servers(self, provider_id: str) -> None:
        """The kms-lab-provider-modified defect: the provider's servers get a changed setting."""
        provider = self.providers.get(provider_id)
        for name, info in (provider.servers.items() if provider else []):
            changed = complete(vim.encryption.KmipServerInfo(name=name, address=info.address, port=info.port,
                                                             protocol=info.protocol))
            changed.timeout = (info.timeout or 0) + 1
            provider.servers[name] = changed

    def _keys_in_use(self) -> dict[tuple[str, str], tuple[list, list]]:
        """key -> (VMs using it for home or a disk, hosts using it as host key)."""
        used: dict[tuple[str, str], tuple[list, list]] = {}
        for vm in self.vc.vms():
            refs = {vm.key} | {link.key for link in vm.all_disk_files()} | {s.key for s in vm.all_snapshots()}
            for key in refs - {None}:
                used.setdefault(key, ([], []))[0].append(vm)
        for host in self.vc.hosts():
            if host.host_key:
                used.setdefault(tuple(host.host_key), ([], []))[1].append(host)
        return used

    def ListKeys(self, ctx: CallContext, limit: int | None = None) -> list:
        """Keys used by registered VMs plus host keys (vCenter semantics of ListKeys)."""
        self._require(ctx, MANAGE_KEYS)
        found = [crypto_key_id(*key) for key in sorted(self._keys_in_use())]
        return found[:limit] if limit is not None and limit >= 0 else found

    def QueryCryptoKeyStatus(self, ctx: CallContext, keyIds: list | None, checkKeyBitMap: int) -> list:
        self._require(ctx, MANAGE_KEYS)
        used = self._keys_in_use()
        out = []
        for kid in keyIds or []:
            key = (kid.providerId.id if kid.providerId else "", kid.keyId)
            status = vim.encryption.CryptoManagerKmip.CryptoKeyStatus(keyId=kid)
            if checkKeyBitMap & 0x01:
                status.keyAvailable, reason = keys.key_status(self.vc, key)
                status.reason = reason or None
            vms, hosts = used.get(key, ([], []))
            if checkKeyBitMap & 0x02:
                status.encryptedVMs = [vm.ref for vm in vms]
            if checkKeyBitMap & 0x04:
                status.affectedHosts = [host.ref for host in hosts]
            if checkKeyBitMap & 0x08:
                status.referencedByTags = []
            out.append(status)
        return out

    def RemoveKey(self, ctx: CallContext, key: Any, force: bool) -> None:
        """Removes a key from vCenter only (never from the KMS); every key vCenter lists is in use."""
        self._require(ctx, MANAGE_KEYS)
        wanted = (key.providerId.id if key.providerId else "", key.keyId)
        used = self._keys_in_use()
        if force:
            return
        if wanted not in used:
            raise _invalid("key", f"Key {key.keyId} is not known to vCenter {self.vc.name}")
        raise vim.fault.ResourceInUse(name=key.keyId, msg=f"Key {key.keyId} is in use")

    def RemoveKeys(self, ctx: CallContext, keys: list | None, force: bool) -> list:
        self._require(ctx, MANAGE_KEYS)
        results = []
        used = self._keys_in_use()
        for kid in keys or []:
            in_use = (kid.providerId.id if kid.providerId else "", kid.keyId) in used
            ok = force or not in_use
            results.append(vim.encryption.CryptoKeyResult(
                keyId=kid, success=ok, reason=None if ok else f"Key {kid.keyId} is in use"))
        return results
