"""`vcrypt sweep`: remove what aborted runs left behind, in dependency order, and nothing else.

Why: a run killed mid-test (SIGKILL, a lost CI machine) never reaches its LIFO cleanup. Its
objects are still findable two ways: the fsync'd ledgers under reports/*/ledger.jsonl, and the
annotation marker every created VM carries (`vcrypt-harness run=<id> ...`), which works without
any ledger. The sweeper never touches a VM whose annotation lacks the marker, whatever a ledger
or a name says.

Order: power off marked VMs, destroy them (newest first; templates and snapshots go with their
VM), remove key providers a selected run's ledger says it *added*, then apply the restore
entries the ledger holds that were not marked done.

Ledger formats read here (written by harness.run.fixtures.Scratch; one JSON object per line):

    {"kind": "vm", "vcenter": NAME, "moid": "vm-12", "name": ..., "run_id": ..., "phase": "created"}
    {"kind": "key_provider", "vcenter": NAME, "provider_id": ID, "run_id": ..., "phase": "creating"|"created"|"removed"}
        only a provider with a "created" entry (the run's register call added it), no later
        "removed" entry, AND an id that is exactly one this run registers
        (`harness.run.markers.is_run_provider`: <name_prefix><run-id>-<worker>-<n>-<label>) is removed;
        "creating" alone (the register call may or may not have run) is removed only for such an id,
        else left alone (reported), and so is a ledger line naming any other provider (a forged or
        stale line cannot remove the lab's provider).

Run ids are validated (harness.run.markers: safe charset, 1-64 characters) and VM annotations must
match the marker exactly (full match), so a note that merely begins with the marker is never swept.
    {"kind": "restore", "vcenter": NAME, "run_id": ..., "restore_id": HEX, "description": TEXT,
     "action": ACTION, ...action fields}
    {"kind": "restore", "phase": "done", "restore_id": HEX, "run_id": ...}   # the run's undo ran

    ACTION "cluster_ha":       "cluster": moid of the ClusterComputeResource, "ha": bool, "drs": bool|null
                               -> ReconfigureComputeResource_Task back to those settings (null: unchanged)
    ACTION "default_provider": "provider_id": str|null -> MarkDefault(provider) / SetDefaultKmsCluster(None)
    ACTION "entity_default_provider": "entity": moid of the ClusterComputeResource, "provider_id": str|null
                               -> SetDefaultKmsCluster(entity=cluster, clusterId=provider or none) (KMS-DEFAULT-*;
                               the current value read from ListKmipServers' useAsEntityDefault)

    {"kind": "change", "vcenter": NAME, "run_id": ..., "restore_id": HEX, "action": ACTION,
     "before": {...action fields}, "after": {...action fields} | null}   # written just before the change

A restore entry without a known "action" is reported ("cannot restore automatically") and
skipped. Restores are applied only when the current value differs from the recorded one.

Proof (issue 21): a ledger is a file anyone can edit, so a line alone proves nothing.
- A line is read only from its own run's folder (the run id of the folder's lease, else the folder
  name); a line naming another run is left alone.
- A restore is honoured only when paired with its change line (same run, restore id, vCenter and
  action), and it restores the value *that change line* recorded as "before"; when the change line
  also recorded "after", only while the vCenter still shows that value (else someone changed it
  since). Forged or unpaired lines are reported ("left alone: ...") and skipped.
- A run whose owner is alive (harness/run/lease.py: pid and start time on this host, heartbeat
  from another) is never swept; with --all-runs neither is a run with no lease under the reports
  folder (it may be running elsewhere). `force` overrides both.
- "uncertain" lines (a mutating call that may or may not have run, harness.vsphere.errors.
  OutcomeUnknown) are reported for a human: whatever such a call created carries the marker.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pyVmomi import vim, vmodl

from harness.run.cleanup import Ledger, run_id_of
from harness.run.lease import LEASE_FILE, owner_state, read_lease
from harness.run.markers import is_run_provider, valid_run_id
from harness.safety import MutationGate, MutationRefused
from harness.vsphere import default_providers, find, hosts, keys, vms
from harness.vsphere.errors import TargetLacks, TaskFailed
from harness.vsphere.props import retrieve_all

VM_PATHS = ["name", "config.annotation", "runtime.powerState", "config.template"]
# The fields of each restore action: the value a change recorded before, and what a restore sets.
ACTION_FIELDS: dict[str, tuple[str, ...]] = {"cluster_ha": ("cluster", "ha", "drs"),
                                             "default_provider": ("provider_id",),
                                             # Issue 25 family 3: a cluster's own default key provider
                                             "entity_default_provider": ("entity", "provider_id")}
RESTORE_ACTIONS = tuple(ACTION_FIELDS)


@dataclass(frozen=True)
class Selection:
    """Which runs to sweep: the given run IDs, or every marked object (run_ids None); `force` also
    sweeps runs whose owner is alive or unknown (harness/run/lease.py)."""
    run_ids: frozenset[str] | None
    force: bool = False

    def wants(self, run_id: str | None) -> bool:
        """A run id in the selection; ids outside the safe charset are never wanted (harness.run.markers)."""
        return valid_run_id(run_id) and (self.run_ids is None or run_id in self.run_ids)

    def describe(self) -> str:
        what = "all runs" if self.run_ids is None else "run " + ", ".join(sorted(self.run_ids))
        return what + (" (--force: live runs too)" if self.force else "")


class RunOwners:
    """Which selected runs may be swept: only those whose owner is proven gone (see module docstring)."""

    def __init__(self, reports: Path, selection: Selection) -> None:
        self.reports = Path(reports)
        self.selection = selection
        self.refused: dict[str, str] = {}
        self._decided: dict[str, bool] = {}
        self._leases: dict[str, Any] = {}
        for path in sorted(self.reports.glob(f"*/{LEASE_FILE}")):
            lease = read_lease(path.parent)
            if lease is not None and not path.parent.is_symlink():
                if owner_state(self._leases.get(lease.run_id))[0] != "alive":   # any live lease wins
                    self._leases[lease.run_id] = lease

    def allows(self, run_id: str | None) -> bool:
        if not self.selection.wants(run_id):
            return False
        assert run_id is not None
        if run_id not in self._decided:
            self._decided[run_id] = self._decide(run_id)
        return self._decided[run_id]

    def _decide(self, run_id: str) -> bool:
        if self.selection.force:
            return True
        state, why = owner_state(self._leases.get(run_id))
        if state == "alive":
            self.refused[run_id] = f"run {run_id} is alive ({why}): left alone; sweep it once it ended, or --force"
            return False
        if state == "unknown" and self.selection.run_ids is None:
            self.refused[run_id] = (f"run {run_id} has {why} under {self.reports}, so it may be running elsewhere: "
                                    f"left alone; name it with --run-id {run_id}, or --force")
            return False
        return True


@dataclass
class SweepReport:
    actions: list[str] = field(default_factory=list)     # done, or "would ..." with dry_run
    skipped: list[str] = field(default_factory=list)     # deliberately left alone
    remaining: list[str] = field(default_factory=list)   # marked objects of the selection still there
    problems: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)     # runs named with --run-id that were not swept

    @property
    def exit_code(self) -> int:
        return 1 if self.remaining or self.problems or self.refused else 0


def read_ledgers(reports: Path) -> list[dict[str, Any]]:
    """Every entry of every reports/*/ledger.jsonl (torn lines skipped), oldest first; each carries
    "_folder_run": the run that owns the folder (its lease's run id, else the folder name)."""
    entries: list[dict[str, Any]] = []
    for path in sorted(Path(reports).glob("*/ledger.jsonl")):
        if path.parent.is_symlink():  # reports/latest: the same run again
            continue
        lease = read_lease(path.parent)
        owner = lease.run_id if lease is not None else path.parent.name
        entries.extend({**e, "_folder_run": owner} for e in Ledger(path).entries() if isinstance(e, dict))
    return sorted(entries, key=lambda e: e.get("time", 0) if isinstance(e.get("time"), (int, float)) else 0)


def _values(entry: dict[str, Any], action: str) -> dict[str, Any]:
    return {k: entry.get(k) for k in ACTION_FIELDS[action]}


def unpaired(restore: dict[str, Any], change: dict[str, Any] | None) -> str | None:
    """Why a restore line is not proven by the change this run recorded (None: it is)."""
    action = restore.get("action")
    if change is None:
        return "the ledger holds no record of the change this run made (a forged or unpaired line)"
    if change.get("action") != action or change.get("vcenter") != restore.get("vcenter"):
        return "its change record is for another action or vCenter (a forged or unpaired line)"
    before = change.get("before")
    if not isinstance(before, dict) or _values(before, action) != _values(restore, action):
        return (f"it would set {_values(restore, action)}, but the change this run recorded had "
                f"{before} before (a forged or altered line)")
    return None


def _moid_number(moid: str) -> int:
    match = re.search(r"(\d+)$", moid)
    return int(match.group(1)) if match else 0


class _VCenterSweep:
    def __init__(self, client: Any, entries: list[dict[str, Any]], owners: RunOwners, dry_run: bool,
                 report: SweepReport, echo: Callable[[str], None], name_prefix: str = "vcrypt-") -> None:
        self.client = client
        self.name_prefix = name_prefix
        self.entries = [e for e in entries if e.get("vcenter") in (None, client.name)]
        self.selection = owners   # .allows(run_id): selected, and its owner proven gone
        self.dry_run = dry_run
        self.report = report
        self.echo = echo

    def act(self, text: str, fn: Callable[[], Any]) -> bool:
        line = f"{self.client.name}: {'would ' if self.dry_run else ''}{text}"
        self.echo(line)
        if self.dry_run:
            self.report.actions.append(line)
            return True
        try:
            fn()
        except (vmodl.MethodFault, TaskFailed, TargetLacks, MutationRefused) as err:
            self.report.problems.append(f"{self.client.name}: {text}: {err}")
            self.echo(f"{self.client.name}: FAILED {text}: {err}")
            return False
        self.report.actions.append(line)
        return True

    # ---- VMs ---------------------------------------------------------------------------------
    def marked_vms(self) -> list[tuple[Any, dict[str, Any], str]]:
        """(vm, props, run id) of every VM carrying the marker of a selected run: one retrieve_all."""
        found = retrieve_all(self.client, vim.VirtualMachine, VM_PATHS)
        self._all = found
        return [(vm, props, run_id_of(props.get("config.annotation")))
                for vm, props in found.values() if self.selection.allows(run_id_of(props.get("config.annotation")))]

    def _ledger_unmarked(self, marked: set[str]) -> None:
        for entry in self.entries:
            if entry.get("kind") != "vm" or not self.selection.allows(entry.get("run_id")):
                continue
            moid = entry.get("moid")
            if moid and moid in self._all and moid not in marked:
                props = self._all[moid][1]
                self.report.skipped.append(f"{self.client.name}: VM {props.get('name')} ({moid}) is in the ledger of "
                                           f"run {entry['run_id']} but its annotation lacks the harness marker: left alone")

    def vms(self) -> None:
        marked = self.marked_vms()
        self._ledger_unmarked({vm._moId for vm, _, _ in marked})
        created = {e["moid"]: e.get("time", 0) for e in self.entries if e.get("kind") == "vm" and e.get("moid")}
        marked.sort(key=lambda m: (created.get(m[0]._moId, 0), _moid_number(m[0]._moId)), reverse=True)
        for vm, props, run_id in marked:
            if props.get("runtime.powerState") == "poweredOn":
                self.act(f"power off VM {props.get('name')} ({vm._moId}, run {run_id})",
                         lambda vm=vm: vms.power_off(self.client, vm))
        failed = []
        for vm, props, run_id in marked:
            what = "template" if props.get("config.template") else "VM"
            if not self._destroy(vm, f"destroy {what} {props.get('name')} ({vm._moId}, run {run_id})", quiet=True):
                failed.append((vm, props, run_id))
        for vm, props, run_id in failed:  # a dependency (linked clone) may have gone first: try once more
            self._destroy(vm, f"destroy VM {props.get('name')} ({vm._moId}, run {run_id}) (retry)", quiet=False)

    def _destroy(self, vm: Any, text: str, quiet: bool) -> bool:
        if not quiet or self.dry_run:
            return self.act(text, lambda: self._destroy_call(vm))
        try:
            self._destroy_call(vm)
        except (vmodl.MethodFault, TaskFailed) as err:
            self.echo(f"{self.client.name}: {text}: {err} (will retry)")
            return False
        line = f"{self.client.name}: {text}"
        self.echo(line)
        self.report.actions.append(line)
        return True

    def _destroy_call(self, vm: Any) -> None:
        vms.remove(self.client, vm)  # already gone (a linked clone's parent went first): nothing to do

    # ---- key providers -------------------------------------------------------------------------
    def _providers_added(self) -> list[tuple[str, str]]:
        """(provider id, run id) a selected run added and did not remove; ambiguous ones are reported."""
        state: dict[tuple[str, str], str] = {}
        for entry in self.entries:
            if entry.get("kind") == "key_provider" and self.selection.allows(entry.get("run_id")):
                key = (entry["provider_id"], entry["run_id"])
                phase = entry.get("phase", "creating")
                if phase != "creating" or key not in state:
                    state[key] = phase
        for (provider, run_id), phase in sorted(state.items()):
            if phase == "created" and not is_run_provider(provider, self.name_prefix, run_id):
                state[(provider, run_id)] = "not-ours"
                self.report.skipped.append(f"{self.client.name}: the ledger of run {run_id} lists key provider "
                                           f"{provider}, but its id is not one run {run_id} would register "
                                           f"({self.name_prefix}{run_id}-<worker>-<n>-<label>): left alone")
            if phase == "creating" and is_run_provider(provider, self.name_prefix, run_id):
                # Its register call may or may not have run (a kill, or OutcomeUnknown), but no one else
                # registers an id in this run's exact pattern: it is the run's, whichever way the call went.
                state[(provider, run_id)] = "created"
            elif phase == "creating":
                self.report.skipped.append(f"{self.client.name}: run {run_id} was registering key provider {provider} "
                                           "when it stopped; the ledger does not show it added it: left alone")
        return [key for key, phase in sorted(state.items()) if phase == "created"]

    def providers(self) -> list[str]:
        """Remove providers the runs added; returns those still registered afterwards."""
        wanted = self._providers_added()
        if not wanted:
            return []
        try:
            present = keys.list_providers(self.client)
        except TargetLacks as err:
            self.report.problems.append(f"{self.client.name}: cannot list key providers ({err})")
            return [p for p, _ in wanted]
        for provider, run_id in wanted:
            if provider in present:
                self.act(f"remove key provider {provider} (added by run {run_id})",
                         lambda p=provider: keys.remove_provider(self.client, p))
        if self.dry_run:
            return [p for p, _ in wanted if p in present]
        after = keys.list_providers(self.client)
        return [p for p, _ in wanted if p in after]

    # ---- restores --------------------------------------------------------------------------------
    def restores(self) -> None:
        mine = [e for e in self.entries if e.get("vcenter") == self.client.name]
        done = {e.get("restore_id") for e in self.entries if e.get("kind") == "restore" and e.get("phase") == "done"}
        changes = {(e.get("run_id"), e.get("restore_id")): e for e in mine if e.get("kind") == "change"}
        pending = [e for e in mine if e.get("kind") == "restore" and e.get("phase") != "done"
                   and self.selection.allows(e.get("run_id")) and e.get("restore_id") not in done]
        for entry in reversed(pending):  # LIFO, like the run's own cleanup
            action = entry.get("action")
            what = f"{self.client.name}: run {entry.get('run_id')}: {entry.get('description', '?')!r}"
            if action not in ACTION_FIELDS:
                self.report.skipped.append(f"{self.client.name}: cannot restore automatically (run {entry.get('run_id')}): "
                                           f"{entry.get('description', '?')}")
                continue
            change = changes.get((entry.get("run_id"), entry.get("restore_id")))
            why = unpaired(entry, change)
            if why or change is None:
                self.report.skipped.append(f"{what}: {why}: left alone")
                continue
            after = change.get("after") if isinstance(change.get("after"), dict) else None
            before = _values(change["before"], action)
            if action == "cluster_ha":
                self._restore_cluster(what, entry["run_id"], before, after)
            elif action == "entity_default_provider":
                self._restore_entity_default(what, entry["run_id"], before, after)
            else:
                self._restore_default(what, entry["run_id"], before, after)

    def _changed_since(self, what: str, current: dict[str, Any], before: dict[str, Any],
                       after: dict[str, Any] | None) -> bool:
        """True (and reported) when the value is neither what the run found nor what it set."""
        if after is None or all(current.get(k) == after.get(k) for k in after if after.get(k) is not None):
            return False
        self.report.skipped.append(f"{what}: now {current}, not the {after} this run set (changed since by someone "
                                   f"else; the run found {before}): left alone")
        return True

    def _restore_cluster(self, what: str, run_id: str, before: dict[str, Any], after: dict[str, Any] | None) -> None:
        cluster = find.by_moid(self.client, vim.ClusterComputeResource, before["cluster"])
        ha, drs = hosts.cluster_settings(self.client, cluster)
        want_ha, want_drs = before.get("ha"), before.get("drs")
        if (want_ha is None or want_ha == ha) and (want_drs is None or want_drs == drs):
            return
        if self._changed_since(what, {"cluster": before["cluster"], "ha": ha, "drs": drs}, before, after):
            return
        self.act(f"restore cluster {before['cluster']} HA={want_ha} DRS={want_drs} (run {run_id})",
                 lambda: hosts.set_cluster(self.client, cluster, ha=want_ha, drs=want_drs))

    def _restore_default(self, what: str, run_id: str, before: dict[str, Any], after: dict[str, Any] | None) -> None:
        want = before.get("provider_id")
        self._put_back(what, keys.default_provider(self.client), want, after, "the default key provider",
                       f"restore default key provider {want or '(none)'} (run {run_id})",
                       lambda: keys.set_default(self.client, want))

    def _restore_entity_default(self, what: str, run_id: str, before: dict[str, Any],
                                after: dict[str, Any] | None) -> None:
        """A cluster's own default key provider back to what the run found (read from ListKmipServers, not
        from GetDefaultKmsCluster: the value a sweep trusts does not rest on the method the rules test)."""
        cluster = find.by_moid(self.client, vim.ClusterComputeResource, before["entity"])
        want = before.get("provider_id")
        self._put_back(what, default_providers.listed_entity_default(self.client, cluster), want, after,
                       f"the default key provider of cluster {before['entity']}",
                       f"restore the default key provider of cluster {before['entity']} to {want or '(none)'} "
                       f"(run {run_id})",
                       lambda: default_providers.set_entity_default(self.client, cluster, want))

    def _put_back(self, what: str, current: str | None, want: str | None, after: dict[str, Any] | None,
                  subject: str, action_text: str, action: Callable[[], Any]) -> None:
        """A default provider back to `want`, unless it already is, or it is no longer what the run set
        (someone changed it since: theirs to keep)."""
        if current == want:
            return
        if after is not None and current != after.get("provider_id"):
            self.report.skipped.append(f"{what}: {subject} is now {current or '(none)'}, not the "
                                       f"{after.get('provider_id') or '(none)'} this run set (changed since by "
                                       "someone else): left alone")
            return
        self.act(action_text, action)

    def uncertain(self) -> None:
        for entry in self.entries:
            if entry.get("kind") == "uncertain" and entry.get("vcenter") == self.client.name \
                    and self.selection.allows(entry.get("run_id")):
                self.report.skipped.append(f"{self.client.name}: run {entry.get('run_id')}: {entry.get('description')} "
                                           "(recorded as uncertain; what it created carries the marker): check by hand")

    # ---- all -------------------------------------------------------------------------------------
    def run(self) -> None:
        self.vms()
        providers_left = self.providers()
        self.restores()
        self.uncertain()
        for vm, props, run_id in self.marked_vms():
            self.report.remaining.append(f"{self.client.name}: VM {props.get('name')} ({vm._moId}, run {run_id})")
        for provider in providers_left:
            self.report.remaining.append(f"{self.client.name}: key provider {provider}")


def sweep(env: Any, selection: Selection, reports: Path = Path("reports"), dry_run: bool = False,
          vcenter: str | None = None, echo: Callable[[str], None] = print) -> SweepReport:
    """Sweep the selected runs' leftovers from every vCenter of an open Environment (or the named one)."""
    from harness.evidence.recorder import Recorder, reset_recorder, use_recorder
    from harness.vsphere.client import VCenterClient
    inventory = env.inventory
    report = SweepReport()
    entries = _proven_entries(read_ledgers(reports), selection, report)
    names = {vc.name for vc in inventory.vcenters}
    for other in sorted({e.get("vcenter") for e in entries if e.get("vcenter") and e.get("vcenter") not in names}):
        report.skipped.append(f"ledger names vCenter {other}, which this inventory lacks: not swept")
    owners = RunOwners(reports, selection)
    for run_id in sorted(selection.run_ids or ()):   # a named run is judged even when nothing of it is found
        owners.allows(run_id)
    token = use_recorder(Recorder(test_id="sweep"))
    try:
        for entry in [inventory.vcenter(vcenter)] if vcenter else inventory.vcenters:
            client = VCenterClient(entry.name, env.service_instance(entry.name), inventory.timeouts, entry.target,
                                   gate=MutationGate.for_inventory(inventory))
            _VCenterSweep(client, entries, owners, dry_run, report, echo, inventory.safety.name_prefix).run()
    finally:
        reset_recorder(token)
    for run_id, why in sorted(owners.refused.items()):
        report.skipped.insert(0, why)
        if selection.run_ids is not None:
            report.refused.append(why)
    return report


def _subject(entry: dict[str, Any]) -> str:
    """What a ledger line is about, for the line that reports it."""
    for key in ("provider_id", "name", "moid", "description"):
        if entry.get(key):
            return str(entry[key])
    return "?"


def _proven_entries(entries: list[dict[str, Any]], selection: Selection, report: SweepReport) -> list[dict[str, Any]]:
    """The selected runs' lines that can be attributed: from the run's own folder, and (for changes and
    restores) naming their vCenter. The others are reported once and dropped."""
    kept = []
    for entry in entries:
        run_id = entry.get("run_id")
        if not selection.wants(run_id):
            continue
        if run_id != entry.get("_folder_run"):
            report.skipped.append(f"a ledger line in run {entry.get('_folder_run')}'s folder names run {run_id} "
                                  f"({entry.get('kind')} {_subject(entry)}): left alone")
            continue
        if entry.get("kind") in ("restore", "change") and entry.get("phase") != "done" and not entry.get("vcenter"):
            report.skipped.append(f"run {run_id}: {entry.get('description', '?')!r}: names no vCenter, and the ledger "
                                  "holds no record of the change this run made there (a forged or unpaired line): "
                                  "left alone")
            continue
        kept.append(entry)
    return kept
