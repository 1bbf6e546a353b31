"""Start what an inventory needs (embedded KMS, fake vCenters, vcsims) and hand out ServiceInstances.

The Python API for scripts and the base of the pytest plugin:

    with harness.open_environment("inventories/fake.yaml") as env:
        si = env.service_instance("vc-a")      # an ordinary vim.ServiceInstance

Everything started here is stopped on exit, also after an exception.
"""
from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from harness.targets.connect import connect_fake, connect_soap, pbm_service
from harness.inventory.schema import Inventory, VCenter, load_inventory
from harness.inventory.secret import Secret
from harness.vsphere import sessions

if TYPE_CHECKING:
    from harness.kms.client import KmipClient
    from harness.targets.control import TargetControl

SHARED_PROVIDER = "vcrypt-shared-kms"
DEDICATED_PROVIDER = "vcrypt-dedicated-kms"


@dataclass(frozen=True)
class KmsEndpoint:
    """A KMS the suites can register as a key provider: where it is and the trust material.

    PEM contents are held in memory only to hand them to vCenter's UploadKmipServerCert /
    UploadClientCert; they are never logged or written to reports.
    """
    role: str                 # "shared" or "dedicated" ("multi": a server of the KMS-MULTI cluster)
    provider_id: str
    server_name: str
    address: str
    port: int
    ca_pem: str = field(repr=False)              # certificates: long, and no reader needs them in a repr
    client_cert_pem: str = field(repr=False)
    client_key_pem: str = field(repr=False)      # a private key: never in a repr (pytest prints reprs in failures)
    ca_path: Path
    client_cert_path: Path
    client_key_path: Path
    lab_owned: bool = False   # the lab's vCenters already have this provider: used for keys, never changed
    harness_started: bool = False  # the harness's own embedded KMS pre-registered on fakes: not the lab's to protect
    username: str | None = None                       # the KMIP credential (vCenter's and the harness's)
    password: Secret | None = field(default=None, repr=False)
    kmip_version: str | None = None                   # pinned by the inventory; None: negotiated
    # How the harness reads vCenter's keys for evidence: None = as client_cert above, "none" = it may
    # not (KMS-side checks not observable), or (cert path, key path) of another identity.
    read_identity: "tuple[Path, Path] | str | None" = None

    def describe(self) -> dict[str, Any]:
        return {"name": self.server_name, "role": self.role, "address": f"{self.address}:{self.port}",
                "provider_id": self.provider_id, "kmip_credential": self.username is not None,
                "kmip_version": self.kmip_version or "negotiated",
                "evidence_reads": ("none (KMS-side checks not observable)" if self.read_identity == "none"
                                   else "a separate read identity" if self.read_identity else "vCenter's identity")}

    def kmip_client(self, timeout: float = 5.0, gate: Any = None, reader: bool = False) -> "KmipClient":
        """A KMIP client for this KMS with its credential and version; `reader`: the evidence-read identity
        (ValueError when the inventory says there is none: check `read_identity` first)."""
        from harness.kms.client import KmipClient
        cert, key = self.client_cert_path, self.client_key_path
        if reader and self.read_identity == "none":
            raise ValueError(f"KMS {self.address}:{self.port} has no read identity (read_identity: none)")
        if reader and isinstance(self.read_identity, tuple):
            cert, key = self.read_identity
        return KmipClient.from_paths(self.address, self.port, self.ca_path, cert, key, timeout=timeout, gate=gate,
                                     username=self.username, password=self.password, version=self.kmip_version)


class Environment:
    """The started pieces of one inventory; use `open_environment` rather than building one."""

    def __init__(self, inventory: Inventory, workdir: Path, defects: list[str] | None = None) -> None:
        self.inventory = inventory
        self.workdir = workdir
        self.defects = defects
        self.kms: Any = None
        self.kms_endpoints: dict[str, KmsEndpoint] = {}
        self.strict_kms: Any = None                  # harness.targets.strict_kms.StrictCluster (kms.strict)
        self.strict_fallback: str | None = None      # why kms.strict fell back to PyKMIP
        self.multi_kms: Any = None                   # harness.targets.multi_kms.MultiServerKms, on first use
        self.world: Any = None
        self.vcsims: dict[str, Any] = {}
        self.vcsim_choices: dict[str, Any] = {}   # name -> harness.vcsim.choice.VcsimChoice
        self._sis: dict[str, Any] = {}
        self._thumbprints: dict[str, tuple[str, str]] = {}
        self.startup_s = 0.0

    # ---- start and stop ---------------------------------------------------------------------
    def start(self) -> "Environment":
        began = time.monotonic()
        self._start_kms()
        self._start_fakes()
        self._start_vcsims()
        self.startup_s = time.monotonic() - began
        return self

    def close(self) -> None:
        for si in self._sis.values():
            with contextlib.suppress(Exception):
                sessions.logout(si)
        self._sis.clear()
        if self.world is not None:
            self.world.close()
        for sim in self.vcsims.values():
            sim.stop()
        if self.multi_kms is not None:
            self.multi_kms.stop()
        if self.kms is not None:
            from harness.kms import kept
            if not kept.give_back(self.kms):   # a pair kept for the process (selftest workers) stays up
                self.kms.stop()
        if self.strict_kms is not None:
            self.strict_kms.stop()

    def _start_kms(self) -> None:
        cfg = self.inventory.kms
        if cfg.embedded and cfg.strict is not None and self._start_strict_kms(cfg.strict):
            return
        if cfg.embedded:
            from harness.kms import kept
            from harness.kms.server import EmbeddedKms
            self.kms = kept.take() or EmbeddedKms(self.workdir / "kms").start()
            client = self.kms.client_cert
            # On fakes the embedded KMS is pre-registered (as a lab's admin would have done): lab-owned.
            fakes_only = all(vc.target == "fake" for vc in self.inventory.vcenters)
            lab = self._fake_lab_provider()
            for role, provider in (("shared", SHARED_PROVIDER), ("dedicated", DEDICATED_PROVIDER)):
                server = self.kms.servers[role]
                provider_id, server_name = (lab.id, lab.server_name) if lab and role == "shared" else (provider, f"{role}-kms")
                self.kms_endpoints[role] = KmsEndpoint(
                    role=role, provider_id=provider_id, server_name=server_name, address=server.host,
                    port=server.port, ca_pem=self.kms.ca.ca_pem(), client_cert_pem=client.cert_pem(),
                    client_key_pem=client.key_pem(), ca_path=self.kms.ca.ca_path,
                    client_cert_path=client.cert_path, client_key_path=client.key_path, lab_owned=fakes_only,
                    harness_started=fakes_only and not (lab and role == "shared"))
            return
        for role in ("shared", "dedicated"):
            ext = getattr(cfg, role)
            if ext is None:
                continue
            reader = ext.read_identity
            self.kms_endpoints[role] = KmsEndpoint(
                role=role, provider_id=ext.provider_id, server_name=ext.server_name or f"{role}-kms",
                address=ext.address, port=ext.port, ca_pem=ext.ca.read_text(),
                client_cert_pem=ext.client_cert.read_text(), client_key_pem=ext.client_key.read_text(),
                ca_path=ext.ca, client_cert_path=ext.client_cert, client_key_path=ext.client_key,
                lab_owned=ext.registered, username=ext.username, password=ext.password(f"kms.{role}"),
                kmip_version=ext.kmip_version,
                read_identity=(reader.client_cert, reader.client_key) if hasattr(reader, "client_cert") else reader)

    def multi_server_kms(self) -> Any:
        """The KMS-MULTI family's own cluster of several servers (harness/targets/multi_kms.py), started on
        first use; None when the KMS is not the embedded PyKMIP (no server of it may be stopped)."""
        if self.multi_kms is None and self.kms is not None:
            from harness.targets import multi_kms
            self.multi_kms = multi_kms.start(self.kms, self.workdir / "kms-multi")
        return self.multi_kms

    def multi_server_endpoints(self, provider_id: str) -> list[KmsEndpoint]:
        """The servers of one KMS cluster as KmsEndpoints of provider `provider_id`, in registration order:
        the embedded replicas (`multi_server_kms()`), else a lab's shared KMS and its `replicas`; empty when
        the inventory names no second server."""
        cluster = self.multi_server_kms()
        if cluster is not None:
            return [KmsEndpoint(**fields) for fields in cluster.endpoint_fields(provider_id)]
        ext, shared = self.inventory.kms.shared, self.kms_endpoints.get("shared")
        if ext is None or shared is None or not ext.replicas:
            return []
        addresses = [(shared.address, shared.port)] + [(r.address, r.port) for r in ext.replicas]
        return [dataclasses.replace(shared, role="multi", provider_id=provider_id, server_name=f"multi-{i}",
                                    address=address, port=port, lab_owned=False, harness_started=False)
                for i, (address, port) in enumerate(addresses, start=1)]

    def _start_strict_kms(self, modes: list[str]) -> bool:
        """The embedded KMS as the strict second KMS; False (PyKMIP instead, reason kept) without Go."""
        from harness.targets import strict_kms
        self.strict_kms, self.strict_fallback = strict_kms.start(self.workdir / "strict-kms", modes)
        if self.strict_kms is None:
            return False
        fakes_only = all(vc.target == "fake" for vc in self.inventory.vcenters)
        lab = self._fake_lab_provider()
        cluster = self.strict_kms
        for role, provider in (("shared", SHARED_PROVIDER), ("dedicated", DEDICATED_PROVIDER)):
            server = cluster.servers[role]
            provider_id, server_name = (lab.id, lab.server_name) if lab and role == "shared" else (provider, f"{role}-kms")
            self.kms_endpoints[role] = KmsEndpoint(
                role=role, provider_id=provider_id, server_name=server_name, address=server.host, port=server.port,
                ca_pem=cluster.ca.ca_pem(), client_cert_pem=cluster.vcenter.cert_pem(),
                client_key_pem=cluster.vcenter.key_pem(), ca_path=cluster.ca.ca_path,
                client_cert_path=cluster.vcenter.cert_path, client_key_path=cluster.vcenter.key_path,
                lab_owned=fakes_only, username=server.username,
                password=Secret(server.password) if server.password else None,
                read_identity=(cluster.reader.cert_path, cluster.reader.key_path))
        return True

    def _fake_lab_provider(self) -> Any:
        """The lab-owned provider the fake vCenters start with (`fake.lab_provider`), if any."""
        for vc in self.inventory.vcenters:
            if vc.target == "fake" and vc.fake and vc.fake.lab_provider:
                return vc.fake.lab_provider
        return None

    def _start_fakes(self) -> None:
        fakes = [vc for vc in self.inventory.vcenters if vc.target == "fake"]
        if not fakes:
            return
        from harness.fakevc.world import FakeWorld, ProviderSeed, VCenterSeed
        defects = self.defects if self.defects is not None else sorted({d for vc in fakes for d in (vc.fake.defects if vc.fake else [])})
        logged = [vc.fake for vc in fakes if vc.fake and vc.fake.request_log]
        from harness.fakevc.request_log import RequestLog
        log = RequestLog(logged[0].request_log, logged[0].request_log_per_call) if logged else None
        self.world = FakeWorld(defects=defects, request_log=log)
        seeds = []
        for role, endpoint in self.kms_endpoints.items():
            members = tuple(vc.name for vc in fakes) if role == "shared" else (fakes[0].name,)
            seeds.append(ProviderSeed(
                provider_id=endpoint.provider_id, server_name=endpoint.server_name, address=endpoint.address,
                port=endpoint.port, server_cert_pem=endpoint.ca_pem, client_cert_pem=endpoint.client_cert_pem,
                client_key_pem=endpoint.client_key_pem, vcenters=members, default=(role == "shared"),
                username=endpoint.username, password=endpoint.password))
        for entry in fakes:
            opts = entry.fake
            fake = self.world.add_vcenter(VCenterSeed(
                name=entry.name, url=entry.service_url, user=entry.user, password=entry.password(),
                version=entry.version or "7.0.3", datacenter=entry.datacenter or "DC0",
                cluster=entry.cluster or "DC0_C0", hosts=opts.hosts if opts else 3, vms=opts.vms if opts else 4,
                host_versions=list(opts.host_versions) if opts else [],
                datastore_capacity_mib=opts.datastore_capacity_mib if opts else 4096,
                trust_peers=opts.trust_peers if opts else True, strict_policies=opts.strict_policies if opts else False,
                maintenance_hosts=opts.maintenance_hosts if opts else 0,
                quirks=opts.real_quirks if opts else None), seeds)
            if entry.test_user:   # the fake plays the lab's SSO, which has this second user
                fake.add_user(entry.test_user.user, entry.test_user.password())
        self._seed_native_providers(fakes)

    def _seed_native_providers(self, fakes: list[VCenter]) -> None:
        """The Native Key Providers fake entries declare (`key_provider: {type: native}`), as a lab's admin made
        them: created on the first vCenter naming an id, its backup restored on the others naming it."""
        backups: dict[str, bytes] = {}
        for entry in fakes:
            declared = entry.key_provider
            if declared is None:
                continue
            control = self.control(entry.name)
            if declared.id in backups:
                control.restore_native_key_provider(declared.id, backups[declared.id])
            else:
                control.create_native_key_provider(declared.id)
                backups[declared.id] = control.native_key_provider_backup(declared.id)

    def _start_vcsims(self) -> None:
        for entry in self.inventory.vcenters:
            if entry.target != "vcsim" or entry.url:
                continue
            from harness.vcsim.choice import choose_vcsim
            from harness.vcsim.process import VcsimProcess
            opts = entry.vcsim
            choice = choose_vcsim(str(opts.binary) if opts and opts.binary else None, opts.source if opts else "auto")
            self.vcsim_choices[entry.name] = choice
            sim = VcsimProcess(self.workdir / f"vcsim-{entry.name}", binary=choice.path,
                               api_version=opts.api_version if opts else None,
                               hosts=opts.hosts if opts else 3, clusters=opts.clusters if opts else 1,
                               vms=opts.vms if opts else 2, extra_args=list(opts.extra_args) if opts else [],
                               ready_timeout=self.inventory.timeouts.vcsim_ready)
            self.vcsims[entry.name] = sim.start()

    # ---- access -----------------------------------------------------------------------------
    def url_of(self, entry: VCenter) -> str:
        """The SDK URL of a vCenter entry (a started vcsim's real URL, else the inventory's)."""
        sim = self.vcsims.get(entry.name)
        return sim.url if sim else entry.service_url

    def service_instance(self, name: str | None = None) -> Any:
        """A logged-in ServiceInstance for the named vCenter (the first one by default); cached."""
        entry = self.inventory.vcenter(name)
        if entry.name not in self._sis:
            if entry.target == "fake":
                self._sis[entry.name] = connect_fake(self.world, entry)
            else:
                self._sis[entry.name] = connect_soap(self.login_entry(entry), url=self.url_of(entry),
                                                     timeout=self.inventory.timeouts.connect,
                                                     read_timeout=self.inventory.timeouts.read)
        return self._sis[entry.name]

    def login_entry(self, entry: VCenter) -> VCenter:
        """The entry as the harness logs in: a vcsim it started is pinned to the certificate it made for
        it (harness/vcsim/certificate.py), whatever the entry's tls says (the shipped ones say insecure)."""
        sim = self.vcsims.get(entry.name)
        pin = getattr(sim, "certificate_sha256", None)
        if not pin:
            return entry
        from harness.inventory.schema import Tls
        return entry.model_copy(update={"tls": Tls(thumbprint_sha256=pin)})

    def relogin(self, name: str) -> Any:
        """A fresh login to the named vCenter, replacing the cached session (expired or dropped)."""
        self._sis.pop(self.inventory.vcenter(name).name, None)
        return self.service_instance(name)

    def locator_thumbprint(self, name: str) -> tuple[str, str]:
        """(SHA-1 thumbprint, source) of a vCenter for ServiceLocators: the inventory pin, else the
        certificate it presents now (harness/vsphere/thumbprints.py); cached per vCenter."""
        from harness.vsphere.thumbprints import locator_thumbprint
        cache = self._thumbprints
        entry = self.inventory.vcenter(name)
        if entry.name not in cache:
            cache[entry.name] = locator_thumbprint(self.login_entry(entry), self.service_instance(entry.name),
                                                   self.url_of(entry),
                                                   self.inventory.timeouts.connect)
        return cache[entry.name]

    def pbm(self, name: str | None = None) -> Any:
        return pbm_service(self.service_instance(name))

    def fake_vcenter(self, name: str | None = None) -> Any | None:
        """The fake model behind an entry (fault injection only; never for assertions)."""
        entry = self.inventory.vcenter(name)
        return self.world.vcenters.get(entry.name) if self.world and entry.target == "fake" else None

    def control(self, name: str | None = None) -> "TargetControl":
        """Fault injection on a vCenter (harness/targets/control.py): the fake's, else one that refuses
        every request with a capability skip."""
        from harness.targets.control import NoFaultInjection
        fake = self.fake_vcenter(name)
        if fake is None:
            return NoFaultInjection(self.inventory.vcenter(name).name)
        from harness.fakevc.control import FakeControl
        return FakeControl(fake)

    def disk_reader(self, name: str | None = None) -> Any:
        """A reader of VM disk bytes at rest (DATA-AT-REST): `read(vm, disk_key) -> bytes`.

        Only the fake can hand out a disk's stored bytes; a real vCenter or vcsim raises
        TargetLacks (tests gate on the `disk_bytes` capability).
        """
        from harness.vsphere.errors import TargetLacks
        fake = self.fake_vcenter(name)
        if fake is None:
            raise TargetLacks(self.inventory.vcenter(name).name, "disk bytes at rest (datastore download)")
        from harness.fakevc.control import FakeDiskReader
        return FakeDiskReader(fake)

    def describe(self) -> dict[str, Any]:
        kms: dict[str, Any] = {"embedded": self.inventory.kms.embedded,
                               "servers": [e.describe() for e in self.kms_endpoints.values()]}
        if self.strict_kms is not None:
            kms.update(self.strict_kms.describe)
        if self.strict_fallback:
            kms["strict_fallback"] = f"PyKMIP instead of the strict KMS: {self.strict_fallback}"
        return {"kms": kms}


@contextlib.contextmanager
def open_environment(inventory: str | Path | Inventory | None = None, workdir: str | Path | None = None,
                     defects: list[str] | None = None) -> Iterator[Environment]:
    """Start an inventory's environment; stop everything on exit (a temp workdir is removed)."""
    inv = inventory if isinstance(inventory, Inventory) else load_inventory(inventory)
    owned = workdir is None
    from harness.workdirs import make_workdir
    path = make_workdir("vcrypt-env-") if owned else Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    env = Environment(inv, path, defects)
    try:
        env.start()
        yield env
    finally:
        env.close()
        if owned:
            shutil.rmtree(path, ignore_errors=True)
