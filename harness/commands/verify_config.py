"""`vcrypt verify-config`: probe each vCenter for every known capability and compare with the inventory.

Why: "unknown is not pass" only works if the declared capabilities are true. A lab whose inventory
claims instant clone on a target without it would otherwise turn failures into confusing errors;
this command says so up front. Probes are reads (methods that only answer) unless the inventory
allows mutations, in which case one marked scratch VM is created, probed (encrypt, snapshot,
an instant clone that must be refused) and destroyed. What cannot be probed says why.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Callable

from pyVmomi import vim, vmodl

from harness.inventory.capabilities import KNOWN_CAPABILITIES
from harness.run.cleanup import annotation
from harness.vsphere import authz, events, keys, providers, sessions, vms
from harness.vsphere.errors import EnvironmentFault, TargetLacks, TaskFailed, fault_class_name, fault_message
from harness.vsphere.hosts import key_cache, key_cache_read
from harness.vsphere.props import retrieve_all

YES, NO, NOT_PROBED = "yes", "no", "not probed"
INVENTORY_WIDE = {"cross_vcenter", "mixed_host_versions"}  # present if any vCenter has it
FAKE_ONLY = {"disk_bytes", "fault_injection"}


@dataclass(frozen=True)
class Probe:
    result: str   # yes / no / not probed
    reason: str = ""

    def __post_init__(self) -> None:  # one line, whatever a fault's str() looks like
        object.__setattr__(self, "reason", one_line(self.reason))


def one_line(text: str, limit: int = 200) -> str:
    """A reason for the table: first line of a fault dump, whitespace collapsed, bounded."""
    first = next((line.strip() for line in str(text).splitlines() if line.strip()), "")
    return " ".join(first.split())[:limit]


def describe_error(err: BaseException) -> str:
    """`Class: message` of a fault or exception, in one line (never pyVmomi's multi-line dump)."""
    fault = _fault(err)
    if isinstance(fault, vmodl.MethodFault):
        return one_line(f"{fault_class_name(fault)}: {fault_message(fault)}")
    return one_line(f"{type(err).__name__}: {err}")


def _fault(err: BaseException) -> Any:
    return err.fault if isinstance(err, TaskFailed) else err


def answers(fn: Callable[[], Any], what: str) -> Probe:
    """yes when the call answers (even with a non-MethodNotFound fault), no on MethodNotFound."""
    try:
        fn()
    except TargetLacks as err:
        return Probe(NO, f"{err.method}: MethodNotFound")
    except (vmodl.MethodFault, TaskFailed) as err:
        return Probe(YES, f"{what} answers ({fault_class_name(_fault(err))})")
    return Probe(YES, f"{what} answers")


class _Prober:
    """Probes of one vCenter; `run()` returns capability -> Probe for every known capability."""

    def __init__(self, env: Any, entry: Any, client: Any) -> None:
        self.env = env
        self.entry = entry
        self.client = client
        self.inventory = env.inventory
        self.results: dict[str, Probe] = {}

    def run(self) -> dict[str, Probe]:
        probes: list[tuple[tuple[str, ...], Callable[[], None]]] = [
            (("key_providers", "kms_status", "kms_trust"), self.crypto), (("storage_policies",), self.storage_policies),
            (("host_crypto_state", "mixed_host_versions", "host_key_cache"), self.hosts),
            (("cluster_ha",), self.cluster_ha), (("events",), self.events), (("alarms",), self.alarms),
            (("authorization",), self.authorization), (("instant_clone",), self.instant_clone_api),
            (("key_providers", "kms_trust"), self.provider_probes),
            (("vm_encryption", "snapshots", "instant_clone"), self.scratch_probes),
            (("key_providers",), self.remove_probe_provider),
            (("native_key_provider",), self.native_key_provider)]
        for caps, probe in probes:
            try:
                probe()
            except (EnvironmentFault, ConnectionError, TimeoutError):
                raise
            except Exception as err:  # noqa: BLE001 - a broken probe must not hide the other rows
                for cap in caps:
                    self.results.setdefault(cap, Probe(NOT_PROBED, f"probe failed: {describe_error(err)}"))
        several = len(self.inventory.vcenters) > 1
        self.results["cross_vcenter"] = (Probe(NOT_PROBED, "needs a cross-vCenter clone; decided by the suites")
                                         if several else Probe(NO, "the inventory has one vCenter"))
        for cap in ("clone_crypto", "linked_clone"):
            self.results[cap] = Probe(NOT_PROBED, "needs clones; decided by the suites")
        # vTPM family: adding one encrypts a VM home (no probe that changes a VM's encryption)
        self.results["vtpm"] = Probe(NOT_PROBED, "needs a VM with a vTPM; decided by the suites (VTPM-*)")
        for cap in FAKE_ONLY:
            self.results[cap] = Probe(YES if self.entry.target == "fake" else NO, f"target is {self.entry.target}")
        return {cap: self.results.get(cap, Probe(NOT_PROBED, "no probe")) for cap in KNOWN_CAPABILITIES}

    def native_key_provider(self) -> None:
        """A Native Key Provider (NKP-*): listed by ListKmsClusters with managementType nativeProvider (read-only).
        The fake creates one on cue; elsewhere only an admin can (vSphere Client or REST), so it must exist."""
        if self.entry.target == "fake":
            self.results["native_key_provider"] = Probe(YES, "the fake creates Native Key Providers on cue")
            return
        try:
            listed = providers.all_providers(self.client)
        except TargetLacks as err:
            self.results["native_key_provider"] = Probe(NO, f"{err.method}: MethodNotFound")
            return
        native = sorted(pid for pid, info in listed.items() if info.managementType == providers.NATIVE)
        declared = self.entry.key_provider
        if declared is not None and declared.id not in native:
            self.results["native_key_provider"] = Probe(NO, f"no Native Key Provider {declared.id!r} (key_provider) "
                                                            f"among ListKmsClusters' {native or 'none'}")
        else:
            self.results["native_key_provider"] = Probe(YES if native else NO, f"Native Key Providers: "
                                                                               f"{', '.join(native) or 'none'}")

    def events(self) -> None:
        self.results["events"] = answers(lambda: events.query(self.client, [events.KMS_UNREACHABLE]), "QueryEvents")

    # ---- read-only probes -----------------------------------------------------------------------
    def crypto(self) -> None:
        try:
            keys.crypto_manager(self.client)
        except TargetLacks:
            self.results["key_providers"] = self.results["kms_status"] = Probe(NO, "no CryptoManagerKmip")
            return
        infos: list[Any] = []

        def listing() -> None:
            infos.extend(keys.list_providers(self.client).values())
        self.results["key_providers"] = answers(listing, "ListKmipServers")
        status = answers(lambda: keys.servers_status(self.client, infos), "RetrieveKmipServersStatus_Task")
        active = answers(lambda: keys.is_active(self.client, "vcrypt-probe"), "IsKmsClusterActive")
        self.results["kms_status"] = next((p for p in (status, active) if p.result != YES),
                                          Probe(YES, "RetrieveKmipServersStatus_Task and IsKmsClusterActive answer"))
        closed = vim.encryption.KmipServerInfo(name="vcrypt-probe", address="127.0.0.1", port=1)
        self.results["kms_trust"] = answers(lambda: keys.server_certificate(self.client, "vcrypt-probe", closed),
                                            "RetrieveKmipServerCert")

    # ---- a probe key provider (mutations allowed only): every CryptoManagerKmip call the suites make
    def provider_probes(self) -> None:
        """Register a probe provider at the inventory's KMS, trust it, generate a key, query it, remove it.

        `key_providers` is yes only if every one of those calls answers; `kms_trust` only if the
        three trust calls do. The generated key is kept for the encryption probe (never a made-up key).
        """
        self.probe_key: Any = None
        endpoint = self.env.kms_endpoints.get("shared")
        if self.results.get("key_providers", Probe(NO)).result != YES:
            return
        if not self.inventory.safety.allow_mutations or endpoint is None:
            why = "mutations not allowed (safety.allow_mutations: false)" if endpoint else "the inventory has no KMS"
            self.results["key_providers"] = Probe(NOT_PROBED, f"ListKmipServers answers; registering a provider "
                                                              f"not probed: {why}")
            return
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
        provider_id = f"{self.inventory.safety.name_prefix}verify-config-{stamp}-provider"
        missing: list[str] = []
        calls = ["RegisterKmipServer"]
        try:
            keys.register_provider(self.client, endpoint, provider_id, make_default=False, with_trust=False)
            if self.results.get("kms_trust", Probe(NO)).result == YES:
                info = vim.encryption.KmipServerInfo(name=endpoint.server_name, address=endpoint.address,
                                                     port=endpoint.port)
                probe = answers(lambda: keys.establish_trust(self.client, endpoint, provider_id, info),
                                "RetrieveKmipServerCert, UploadKmipServerCert, UploadClientCert")
                self.results["kms_trust"] = probe
            steps: list[tuple[str, Callable[[], Any]]] = [
                ("GenerateKey", lambda: self._generate(provider_id)),
                ("QueryCryptoKeyStatus", lambda: keys.key_status(self.client, [self.probe_key] if self.probe_key else [])),
                ("GetDefaultKmsCluster", lambda: keys.default_for(self.client, self.client.content.rootFolder)),
                ("UpdateKmipServer", lambda: keys.move_server(self.client, provider_id, endpoint.server_name,
                                                              endpoint.address, endpoint.port))]
            if keys.default_provider(self.client) is None:  # never move a lab's default: only when none is set
                steps.append(("MarkDefault", lambda: keys.set_default(self.client, provider_id)))
            for method, call in steps:
                calls.append(method)
                if answers(call, method).result == NO:
                    missing.append(method)
        except TargetLacks as err:
            missing.append(err.method)
        self.probe_provider = provider_id  # removed after the encryption probe (remove_probe_provider)
        self.results["key_providers"] = (Probe(NO, f"{', '.join(missing)}: MethodNotFound") if missing
                                         else Probe(YES, f"{', '.join(calls)} answer"))

    def remove_probe_provider(self) -> None:
        provider_id = getattr(self, "probe_provider", None)
        if provider_id is None:
            return
        try:
            keys.remove_provider(self.client, provider_id)
        except TargetLacks as err:
            self.results["key_providers"] = Probe(NO, f"{err.method}: MethodNotFound")

    def _generate(self, provider_id: str) -> None:
        try:
            self.probe_key = keys.generate_key(self.client, provider_id)
        except keys.KeyGenerationFailed:  # it answered (success false): present, but no key to encrypt with
            self.probe_key = None

    def storage_policies(self) -> None:
        from harness.vsphere.policies import ENCRYPTION_NAMESPACE, discover
        try:
            found = discover(self.env.pbm(self.entry.name))
        except LookupError:
            self.results["storage_policies"] = Probe(NO, f"PBM answers but no policy has {ENCRYPTION_NAMESPACE}")
            return
        except vmodl.MethodFault as fault:
            self.results["storage_policies"] = Probe(NO, f"PBM answers, but finding the encryption policy failed: "
                                                         f"{fault_class_name(fault)} {fault.msg or ''}".strip())
            return
        except Exception as err:  # noqa: BLE001 - any failure to reach PBM means it is not usable
            self.results["storage_policies"] = Probe(NO, f"PBM: {type(err).__name__}: {err}"[:200])
            return
        self.policy = found.encryption
        self.results["storage_policies"] = Probe(YES, "PBM answers; encryption policy found")

    def hosts(self) -> None:
        found = retrieve_all(self.client, vim.HostSystem, ["name", "runtime.cryptoState", "config.product.version",
                                                            "configManager.cryptoManager"])
        states = [p.get("runtime.cryptoState") for _, p in found.values()]
        self.results["host_crypto_state"] = (Probe(YES, f"{sum(1 for s in states if s)} of {len(states)} hosts report it")
                                             if any(states) else Probe(NO, "no host reports runtime.cryptoState"))
        old = [p.get("name") for _, p in found.values() if _major(p.get("config.product.version")) < 7]
        self.results["mixed_host_versions"] = (Probe(YES, f"hosts before 7.0: {', '.join(old)}") if old
                                               else Probe(NO, "every host reports 7.0 or later"))
        host = next((h for h, p in found.values() if p.get("configManager.cryptoManager") is not None), None)
        if host is None:
            self.results["host_key_cache"] = Probe(NO, "no host has configManager.cryptoManager")
        else:
            # The read the suites make (hosts.key_cache_read): GetCryptoKeyStatus from API 8.0.1, ListKeys before.
            read = key_cache_read(self.client, [host])
            self.results["host_key_cache"] = answers(lambda: key_cache(self.client, host, (), read.documented),
                                                     f"host {read.method}")

    def cluster_ha(self) -> None:
        found = retrieve_all(self.client, vim.ClusterComputeResource, ["configurationEx"])
        readable = [p for _, p in found.values() if getattr(p.get("configurationEx"), "dasConfig", None) is not None]
        self.results["cluster_ha"] = (Probe(YES, "configurationEx.dasConfig readable") if readable
                                      else Probe(NO, "no cluster with configurationEx.dasConfig"))

    def alarms(self) -> None:
        try:
            watching = events.alarms_watching(self.client, events.KMS_UNREACHABLE)
        except TargetLacks as err:
            self.results["alarms"] = Probe(NO, f"{err.method}: MethodNotFound")
            return
        self.results["alarms"] = (Probe(YES, f"GetAlarm answers; {len(watching)} alarm(s) watch {events.KMS_UNREACHABLE}")
                                  if watching else Probe(NO, f"GetAlarm answers; no alarm watches {events.KMS_UNREACHABLE}"))

    def authorization(self) -> None:
        roles = authz.roles(self.client)
        probe = answers(lambda: authz.all_permissions(self.client), "RetrieveAllPermissions")
        if probe.result == YES and roles:
            probe = Probe(YES, "roleList and permissions readable (creating roles and other users' logins not probed)")
        self.results["authorization"] = probe

    def instant_clone_api(self) -> None:
        if not self.client.api_has(vim.VirtualMachine, "InstantClone"):
            self.results["instant_clone"] = Probe(NO, f"the server's API ({self.client.api_version}) predates InstantClone_Task")
        else:
            self.results["instant_clone"] = Probe(NOT_PROBED, "API supports it; the server call is probed only "
                                                              "when mutations are allowed")

    # ---- probes on a scratch VM (mutations allowed only) ------------------------------------------
    def scratch_probes(self) -> None:
        caps = ["vm_encryption", "snapshots"] + (["instant_clone"] if self.results["instant_clone"].result != NO else [])
        if not self.inventory.safety.allow_mutations:
            for cap in caps:
                self.results[cap] = Probe(NOT_PROBED, "mutations not allowed (safety.allow_mutations: false)")
            return
        from harness.vsphere.find import placement_for
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
        run_id = f"verify-config-{stamp}"
        name = f"{self.inventory.safety.name_prefix}{run_id}-probe"
        try:
            place = placement_for(self.client, self.entry)
            vm = vms.create_vm(self.client, place, name, annotation(run_id, "verify-config"))
        except (LookupError, TargetLacks, vmodl.MethodFault, TaskFailed) as err:
            for cap in caps:
                self.results[cap] = Probe(NOT_PROBED, f"scratch VM not created: {err}"[:200])
            return
        steps: list[tuple[str, Callable[[], None]]] = [("vm_encryption", lambda: self.encrypt_probe(vm))]
        if "instant_clone" in caps:
            steps.append(("instant_clone", lambda: self.instant_clone_probe(vm, f"{name}-ic", place)))
        steps.append(("snapshots", lambda: self.snapshot_probe(vm)))
        try:
            for cap, step in steps:
                try:
                    step()
                except (EnvironmentFault, ConnectionError, TimeoutError):
                    raise
                except Exception as err:  # noqa: BLE001 - one broken probe must not hide the others
                    self.results[cap] = Probe(NOT_PROBED, f"probe failed: {describe_error(err)}")
        finally:
            vms.destroy(self.client, vm)

    def encrypt_probe(self, vm: Any) -> None:
        """Encrypt with a key GenerateKey really made (a made-up key id proves nothing: vcsim takes it)."""
        from harness.vsphere import crypto
        key = getattr(self, "probe_key", None)
        if key is None:
            self.results["vm_encryption"] = Probe(NOT_PROBED, "no key to encrypt with (GenerateKey on a probe "
                                                              "provider did not give one)")
            return
        try:
            crypto.encrypt(self.client, vm, key, getattr(self, "policy", None) or "")
        except (TargetLacks, vmodl.MethodFault, TaskFailed) as err:
            self.results["vm_encryption"] = Probe(NO, f"encrypt refused: {describe_error(err)}")
            return
        key_id = self.client.read(vm, ["config.keyId"]).get("config.keyId")
        self.results["vm_encryption"] = (Probe(YES, "config.keyId set after encrypt with a generated key")
                                         if key_id is not None and key_id.keyId == key[1]
                                         else Probe(NO, "crypto spec accepted but ignored: config.keyId unset"))

    def instant_clone_probe(self, vm: Any, name: str, place: Any) -> None:
        """InstantClone_Task on a powered-off VM must be refused; MethodNotFound means the server lacks it."""
        from harness.vsphere.clones import find_vm, instant_clone
        try:
            instant_clone(self.client, vm, name, place)
        except TargetLacks:
            self.results["instant_clone"] = Probe(NO, "InstantClone_Task: MethodNotFound")
            return
        except (vmodl.MethodFault, TaskFailed) as err:
            self.results["instant_clone"] = Probe(YES, f"InstantClone_Task answers (refused a powered-off source: "
                                                       f"{fault_class_name(_fault(err))})")
            return
        clone = find_vm(self.client, name)
        if clone is not None:
            vms.destroy(self.client, clone)
        self.results["instant_clone"] = Probe(YES, "InstantClone_Task answers (it cloned a powered-off VM; removed)")

    def snapshot_probe(self, vm: Any) -> None:
        from harness.vsphere import snapshots
        try:
            snapshots.create(self.client, vm, "vcrypt-probe")
        except (TargetLacks, vmodl.MethodFault, TaskFailed) as err:
            self.results["snapshots"] = Probe(NO, f"CreateSnapshot_Task: {fault_class_name(_fault(err))}")
            return
        info = self.client.read(vm, ["snapshot"]).get("snapshot")
        trees = getattr(info, "rootSnapshotList", None) or []
        config = self.client.read(trees[0].snapshot, ["config.name"]) if trees else {}
        self.results["snapshots"] = (Probe(YES, "CreateSnapshot_Task and per-snapshot config readable") if config
                                     else Probe(NO, "snapshot created but its config is not readable"))


def _major(version: str | None) -> int:
    try:
        return int((version or "0").split(".")[0])
    except ValueError:
        return 0


@dataclass(frozen=True)
class Row:
    capability: str
    declared: bool | None
    probes: dict[str, Probe]   # vCenter name -> probe
    match: str                 # ok / MISMATCH ... / unverified / available but not declared / -

    @property
    def mismatch(self) -> bool:
        return self.match.startswith("MISMATCH")


def _verdict(cap: str, declared: bool | None, probes: dict[str, Probe]) -> str:
    results = [p.result for p in probes.values()]
    if cap in INVENTORY_WIDE:
        present = YES in results
        absent = not present and NO in results
    else:
        present = bool(results) and all(r == YES for r in results)
        absent = NO in results
    if declared:
        if absent:
            missing = [name for name, p in probes.items() if p.result == NO]
            return f"MISMATCH: declared but absent on {', '.join(missing)}"
        return "ok" if present else "unverified (not probed)"
    if present:
        return "available but not declared"
    return "ok" if declared is False else "-"


def verify(env: Any, vcenter: str | None = None) -> list[Row]:
    """Probe the inventory's vCenters (or the named one); one row per known capability."""
    from harness.evidence.recorder import Recorder, reset_recorder, use_recorder
    from harness.safety import MutationGate
    from harness.vsphere.client import VCenterClient
    inventory = env.inventory
    entries = [inventory.vcenter(vcenter)] if vcenter else list(inventory.vcenters)
    probed: dict[str, dict[str, Probe]] = {}
    token = use_recorder(Recorder(test_id="verify-config"))
    try:
        for entry in entries:
            client = VCenterClient(entry.name, env.service_instance(entry.name), inventory.timeouts, entry.target,
                                   gate=MutationGate.for_inventory(inventory))
            probed[entry.name] = _Prober(env, entry, client).run()
    finally:
        reset_recorder(token)
    rows = []
    for cap in KNOWN_CAPABILITIES:
        declared = inventory.features.get(cap)
        probes = {name: results[cap] for name, results in probed.items()}
        rows.append(Row(cap, declared, probes, _verdict(cap, declared, probes)))
    return rows


def table(rows: list[Row]) -> list[str]:
    """The printed table: capability, declared, probed per vCenter (with reason), match."""
    names = list(rows[0].probes) if rows else []
    declared = {True: "yes", False: "no", None: "-"}
    lines = [f"{'capability':20} {'declared':9} " + " ".join(f"{'probed ' + n:28}" for n in names) + " match"]
    for row in rows:
        cells = " ".join(f"{row.probes[n].result:28}" for n in names)
        lines.append(f"{row.capability:20} {declared[row.declared]:9} {cells} {row.match}")
    lines.append("")
    for row in rows:
        for name, probe in row.probes.items():
            lines.append(f"  {row.capability} on {name}: {probe.result}" + (f" ({probe.reason})" if probe.reason else ""))
    return lines


def version_lines(env: Any, vcenter: str | None = None) -> tuple[list[str], list[str]]:
    """(lines, mismatches): each vCenter's version for the rules' gate, cross-checked with apiVersion."""
    from harness.run.version_gate import target_version
    entries = [env.inventory.vcenter(vcenter)] if vcenter else list(env.inventory.vcenters)
    lines, mismatches = [], []
    for entry in entries:
        about = sessions.about(env.service_instance(entry.name))
        found = target_version(entry, about)
        lines.append(f"  version on {entry.name}: {found.text} ({found.source}; about.version {about.version}, "
                     f"about.apiVersion {about.apiVersion})")
        if found.mismatch:
            mismatches.append(f"version on {entry.name}: {found.mismatch}")
    return lines, mismatches
