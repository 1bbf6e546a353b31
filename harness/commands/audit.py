"""`vcrypt audit`: a read-only scan of the encryption posture of the inventory's vCenters.

Why a separate, read-only path: auditors run it on production vCenters where nothing may be
created or changed, whatever the inventory's safety settings say. It only reads properties
(container views + one paged RetrievePropertiesEx per object kind, so the round trips do not
grow with the number of VMs) and calls the read methods in `READ_METHODS`; the tests hold it to
that list. `RetrieveKmipServersStatus_Task` is a task that only reads: it is called and the task
is recorded in the report.

A capability the target lacks (MethodNotFound, a missing manager) is reported as
"not available on this target: <method>", never a crash. PRIV-AUDIT: every principal granted a
role holding Cryptographer.Decrypt, unless the role or the principal is on
`inventory.audit.decrypt_allow_list`, is a flag; flags make the command exit 3.
"""
from __future__ import annotations

import datetime
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pyVmomi import vmodl

from harness.vsphere import authz, keys, posture
from harness.vsphere import providers as native_providers
from harness.vsphere.authz import canonical
from harness.vsphere.errors import TargetLacks, fault_class_name, fault_message
from harness.vsphere.posture import HOST_PATHS, VM_PATHS  # noqa: F401  (re-exported: the audit's paths)
from harness.vsphere.vm_pages import PARSE_WORKERS

EXIT_OK = 0
EXIT_PRIV_FLAGS = 3
PRIV_AUDIT = "PRIV-AUDIT"
# VMs (hosts) per RetrievePropertiesEx reply: a 250-VM page of 3-disk VMs is ~2 MiB of XML, and the
# audit holds a few raw pages at once (fetched ahead, parsing here, parsing in a worker); 40 pages for
# 10,000 VMs cost 0.4 s more at 5 ms each way than 20 (bench/README.md, audit_vs_govc.py).
AUDIT_PAGE = 250

# Every method the audit may invoke (pyVmomi property reads are `Fetch` / RetrievePropertiesEx).
READ_METHODS: frozenset[str] = frozenset({
    "RetrieveServiceContent", "RetrieveContent", "Login", "Logout", "CurrentTime", "Fetch",
    "RetrieveProperties", "RetrievePropertiesEx", "ContinueRetrievePropertiesEx", "CancelRetrievePropertiesEx",
    "CreateContainerView", "DestroyView", "CreatePropertyCollector", "DestroyPropertyCollector",
    "CreateFilter", "DestroyPropertyFilter", "WaitForUpdatesEx", "WaitForUpdates", "CheckForUpdates",
    "ListKmipServers", "ListKmsClusters", "RetrieveKmipServersStatus_Task", "GetDefaultKmsCluster",
    "IsKmsClusterActive", "RetrieveAllPermissions", "RetrieveRolePermissions", "RetrieveEntityPermissions",
    "QueryEvents", "GetAlarm", "GetAlarmState",
})

def not_available(method: str) -> str:
    return f"not available on this target: {method}"


def _key(key_id: Any) -> dict[str, str] | None:
    if key_id is None:
        return None
    return {"provider": key_id.providerId.id if key_id.providerId else "", "key": key_id.keyId}


def _time(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, (datetime.datetime, datetime.date)) else value


class _Scan:
    """The audit of one vCenter: each section reads, and records what the target lacks."""

    def __init__(self, client: Any, allow_list: list[str], page_size: int = AUDIT_PAGE,
                 workers: int = PARSE_WORKERS) -> None:
        self.client = client
        self.allow_list = allow_list
        self.page_size = page_size
        self.workers = workers
        self.unavailable: list[dict[str, str]] = []
        self.problems: list[str] = []

    def attempt(self, method: str, fn: Callable[[], Any], default: Any = None) -> Any:
        """Run a read; a missing method is 'not available', another fault a problem (never a crash)."""
        try:
            return fn()
        except TargetLacks as err:
            if all(u["method"] != err.method for u in self.unavailable):
                self.unavailable.append({"method": err.method, "reason": not_available(err.method)})
        except vmodl.MethodFault as fault:
            self.problems.append(f"{method}: {fault_class_name(fault)}: {fault_message(fault)}")
        return default

    # ---- sections --------------------------------------------------------------------------
    def vms(self) -> dict[str, Any]:
        """Every VM's record (harness/vsphere/vm_posture.py), pages parsed in worker processes."""
        items = sorted(posture.vm_postures(self.client, self.page_size, self.workers), key=lambda v: v["moid"])
        encrypted = sum(1 for v in items if v["encrypted"])
        return {"total": len(items), "encrypted": encrypted, "unencrypted": len(items) - encrypted,
                "locked": sum(1 for v in items if v["crypto_state"] == "locked"), "items": items}

    def hosts(self) -> dict[str, Any]:
        items = [{"name": props.get("name", moid), "moid": moid, "crypto_state": props.get("runtime.cryptoState"),
                  "key": _key(props.get("runtime.cryptoKeyId"))}
                 for moid, (_, props) in sorted(posture.host_properties(self.client, self.page_size).items())]
        if items and all(h["crypto_state"] is None for h in items):
            self.unavailable.append({"method": "HostSystem.runtime.cryptoState",
                                     "reason": not_available("HostSystem.runtime.cryptoState")})
        safe = sum(1 for h in items if h["crypto_state"] == "safe")
        return {"total": len(items), "safe": safe, "not_safe": len(items) - safe, "items": items}

    def providers(self) -> dict[str, Any]:
        out: dict[str, Any] = {"default": None, "items": [], "status_task": None}
        manager = self.attempt("CryptoManagerKmip", lambda: posture.crypto_manager(self.client))
        if manager is None:
            return out
        infos = self.attempt("ListKmipServers", lambda: posture.kmip_servers(self.client, manager)) or []
        clusters = self.attempt("ListKmsClusters", lambda: posture.kms_clusters(self.client, manager)) or []
        by_id: dict[str, dict[str, Any]] = {}
        for info in [*infos, *clusters]:
            entry = by_id.setdefault(info.clusterId.id, {"id": info.clusterId.id, "default": False, "servers": {},
                                                         "management_type": None, "overall_status": None,
                                                         "client_cert": None, "active": None})
            entry["default"] = entry["default"] or bool(info.useAsDefault)
            entry["management_type"] = info.managementType or entry["management_type"]
            entry["overall_status"] = getattr(info, "overallStatus", None) or entry["overall_status"]
            for server in info.servers or []:
                entry["servers"].setdefault(server.name, _server(server.name, server.address, server.port))
        for provider_id, nkp in native_providers.native_facts(clusters).items():   # NKPs: kind, hasBackup (7.0.2)
            by_id[provider_id]["native"] = nkp
        if infos:
            self._status(manager, infos, by_id, out)
        for entry in by_id.values():
            entry["active"] = self.attempt("IsKmsClusterActive",
                                           lambda e=entry: posture.kms_cluster_active(self.client, manager, e["id"]))
            entry["servers"] = sorted(entry["servers"].values(), key=lambda s: s["name"])
            out["default"] = entry["id"] if entry["default"] else out["default"]
        out["items"] = sorted(by_id.values(), key=lambda e: e["id"])
        return out

    def _status(self, manager: Any, infos: list[Any], by_id: dict[str, Any], out: dict[str, Any]) -> None:
        """RetrieveKmipServersStatus_Task (a read-only task): status, trust flags, certificate expiry."""
        recorder = self.client.recorder
        before = len(recorder.calls)
        statuses = self.attempt("RetrieveKmipServersStatus_Task",
                                lambda: keys.servers_status(self.client, infos)) or []
        call = recorder.calls[before] if len(recorder.calls) > before else None
        out["status_task"] = {"method": "RetrieveKmipServersStatus_Task", "task": call.task if call else None,
                              "outcome": call.outcome if call else None}
        for status in statuses:
            entry = by_id.get(status.clusterId.id)
            if entry is None:
                continue
            entry["overall_status"] = status.overallStatus
            entry["client_cert"] = _cert(status.clientCertInfo)
            for server in status.servers or []:
                entry["servers"].setdefault(server.name, _server(server.name)).update({
                    "status": server.status, "connection": server.connectionStatus,
                    "client_trusts_server": server.clientTrustServer, "server_trusts_client": server.serverTrustClient,
                    "cert": _cert(server.certInfo)})

    def alarms(self) -> list[dict[str, Any]]:
        states = posture.triggered_alarms(self.client)
        alarms = list({s.alarm._moId: s.alarm for s in states if s.alarm is not None}.values())
        names = self.attempt("Alarm.info", lambda: posture.alarm_names(self.client, alarms), {}) or {}
        return [{"alarm": s.alarm._moId if s.alarm else None,
                 "name": names.get(s.alarm._moId, {}).get("info.name") if s.alarm else None,
                 "system_name": names.get(s.alarm._moId, {}).get("info.systemName") if s.alarm else None,
                 "entity": f"{type(s.entity).__name__}:{s.entity._moId}" if s.entity is not None else None,
                 "status": s.overallStatus, "acknowledged": bool(s.acknowledged), "time": _time(s.time)}
                for s in states]

    def roles(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Roles holding Cryptographer.* with their principals, and the PRIV-AUDIT flags."""
        grants = self.attempt("RetrieveAllPermissions", lambda: authz.roles_with(self.client)) or []
        allowed = {canonical(a) for a in self.allow_list}
        roles, flags = [], []
        for grant in grants:
            decrypt = authz.DECRYPT in grant.privileges
            role_allowed = canonical(grant.role) in allowed
            roles.append({"role": grant.role, "role_id": grant.role_id, "privileges": list(grant.privileges),
                          "principals": list(grant.principals), "decrypt": decrypt, "allow_listed": role_allowed})
            if not decrypt or role_allowed:
                continue
            for principal in grant.principals:
                if canonical(principal) not in allowed:
                    flags.append({"rule": PRIV_AUDIT, "role": grant.role, "role_id": grant.role_id,
                                  "principal": principal,
                                  "why": f"{principal} holds {authz.DECRYPT} through role {grant.role}, "
                                         f"which is not on audit.decrypt_allow_list"})
        return roles, flags


def _server(name: str | None, address: str | None = None, port: int | None = None) -> dict[str, Any]:
    return {"name": name, "address": address, "port": port, "status": None, "connection": None,
            "client_trusts_server": None, "server_trusts_client": None, "cert": None}


def _cert(info: Any) -> dict[str, Any] | None:
    if info is None:
        return None
    return {"subject": info.subject, "issuer": info.issuer, "not_after": _time(info.notAfter),
            "seconds_before_expire": info.secondsBeforeExpire}


def audit_vcenter(client: Any, entry: Any, allow_list: list[str], page_size: int = AUDIT_PAGE,
                  workers: int = PARSE_WORKERS) -> dict[str, Any]:
    """The posture of one vCenter as a JSON-able dict (reads only; bulk reads paged by `page_size`,
    VM pages parsed by `workers` processes, 0: in this process)."""
    scan = _Scan(client, allow_list, page_size, workers)
    about = posture.about(client)
    roles, flags = scan.roles()
    return {"name": entry.name, "target": entry.target, "url": entry.service_url, "api_version": about.apiVersion,
            "version": about.version, "vms": scan.vms(), "hosts": scan.hosts(), "key_providers": scan.providers(),
            "alarms": scan.alarms(), "cryptographer_roles": roles, "priv_audit": flags,
            "not_available": scan.unavailable, "problems": scan.problems}


@dataclass
class AuditOutcome:
    report: dict[str, Any]
    folder: Path

    @property
    def flags(self) -> list[dict[str, Any]]:
        return [f for vc in self.report["vcenters"] for f in vc["priv_audit"]]

    @property
    def exit_code(self) -> int:
        return EXIT_PRIV_FLAGS if self.flags else EXIT_OK


def _new_folder(reports: Path, moment: datetime.datetime) -> Path:
    base = reports / f"audit-{moment.strftime('%Y%m%dT%H%M%SZ')}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    folder.mkdir(parents=True)
    return folder


def run_audit(env: Any, vcenter: str | None = None, reports: Path = Path("reports"),
              page_size: int = AUDIT_PAGE, workers: int = PARSE_WORKERS) -> AuditOutcome:
    """Audit the named vCenter (all by default) of an open Environment; write audit.json/.html + manifest.

    `page_size`: at most this many VMs (hosts) per RetrievePropertiesEx reply (RetrieveOptions.maxObjects).
    `workers`: processes parsing VM pages while the next is fetched (0: parse in this process).
    """
    from harness import __version__
    from harness.evidence.manifest import write_manifest
    from harness.evidence.recorder import Recorder, reset_recorder, use_recorder
    from harness.safety import MutationGate
    from harness.vsphere.client import VCenterClient
    inventory = env.inventory
    entries = [inventory.vcenter(vcenter)] if vcenter else list(inventory.vcenters)
    started = datetime.datetime.now(datetime.timezone.utc)
    recorder = Recorder(test_id="audit")
    token = use_recorder(recorder)
    try:
        results = []
        for entry in entries:
            client = VCenterClient(entry.name, env.service_instance(entry.name), inventory.timeouts, entry.target,
                                   gate=MutationGate.read_only("vcrypt audit only reads, whatever the inventory allows"))
            results.append(audit_vcenter(client, entry, list(inventory.audit.decrypt_allow_list), page_size,
                                         workers))
    finally:
        reset_recorder(token)
    report = {"kind": "vcrypt-audit", "harness_version": __version__, "inventory": str(inventory.path),
              "started_at": started.isoformat(),
              "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "decrypt_allow_list": list(inventory.audit.decrypt_allow_list), "vcenters": results,
              "calls": [{"vcenter": c.vcenter, "method": c.method, "target": c.target, "task": c.task,
                         "outcome": c.outcome, "fault": c.fault} for c in recorder.calls]}
    folder = _new_folder(Path(reports), started)
    with (folder / "audit.json").open("w", encoding="utf-8") as out:   # streamed: no whole-report string
        json.dump(report, out, indent=1, default=str)
    write_html(report, folder / "audit.html")
    write_manifest(folder)
    return AuditOutcome(report, folder)


@functools.lru_cache(maxsize=1)
def _template() -> tuple[Any, str, str]:
    """The compiled audit template, its CSS and CSP: compiled once per process (~0.4 s a time)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from harness.evidence.html_report import TEMPLATES, _csp_hash
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    csp = f"default-src 'none'; style-src {_csp_hash(css)}; img-src data:; base-uri 'none'; form-action 'none'"
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    return env.get_template("audit.html.j2"), css, csp


def render_html(report: dict[str, Any]) -> str:
    """audit.html: self-contained (inline CSS under a hash-pinned CSP), autoescaped target data."""
    from markupsafe import Markup
    template, css, csp = _template()
    return template.render(css=Markup(css), csp=csp, report=report, no_server=_server(None))


def write_html(report: dict[str, Any], path: Path) -> None:
    """audit.html as `render_html` makes it, written chunk by chunk (10,000 VMs' rows are never one string)."""
    from markupsafe import Markup
    template, css, csp = _template()
    with path.open("w", encoding="utf-8") as out:
        for chunk in template.generate(css=Markup(css), csp=csp, report=report, no_server=_server(None)):
            out.write(chunk)


def summary_lines(outcome: AuditOutcome) -> list[str]:
    """The short console summary: per vCenter VMs, hosts, providers, flags, what was not available."""
    lines = []
    for vc in outcome.report["vcenters"]:
        vms, hosts, providers = vc["vms"], vc["hosts"], vc["key_providers"]
        lines.append(f"{vc['name']} ({vc['target']}, API {vc['api_version']}): VMs {vms['total']}: "
                     f"encrypted {vms['encrypted']}, unencrypted {vms['unencrypted']}, locked {vms['locked']}")
        lines.append(f"  hosts {hosts['total']}: safe {hosts['safe']}, not safe {hosts['not_safe']}")
        shown = [f"{p['id']}{' (default)' if p['default'] else ''}: {p['overall_status'] or 'status unknown'}"
                 for p in providers["items"]]
        lines.append(f"  key providers: {', '.join(shown) if shown else 'none'}")
        lines.extend(native_summary(providers["items"]))
        lines.append(f"  alarms triggered: {len(vc['alarms'])}")
        for flag in vc["priv_audit"]:
            lines.append(f"  {PRIV_AUDIT}: {flag['why']}")
        for item in vc["not_available"]:
            lines.append(f"  {item['reason']}")
        for problem in vc["problems"]:
            lines.append(f"  could not read: {problem}")
    count = len(outcome.flags)
    lines.append(f"{PRIV_AUDIT}: {count} flag(s)" if count else f"{PRIV_AUDIT}: no flags")
    lines.append(f"report: {outcome.folder / 'audit.html'} (json, manifest.sha256 beside it)")
    return lines


def native_summary(items: list[dict[str, Any]]) -> list[str]:
    """One console line per Native Key Provider: whether the API says it is backed up (NKP reporting)."""
    shown = {True: "backed up", False: "NOT backed up", None: "backup state not shown by this API version"}
    return [f"  native key provider {p['id']}: {shown[p['native']['has_backup']]}" for p in items if p.get("native")]
