"""vcrypt sweep: removes marked leftovers of aborted runs (from ledgers and from markers alone),
never an unmarked VM, removes only providers a run added, and redoes recorded restores.

The fake lives in the test's process, so sweeps run through harness.commands.sweep against an Environment
opened here; the click command's argument handling is tested separately. One test sweeps a vcsim.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest
from click.testing import CliRunner

from harness.commands.audit import READ_METHODS
from harness.run.cleanup import Ledger, annotation
from harness.cli import main
from harness.targets.environment import Environment, open_environment
from harness.inventory.schema import parse_inventory
from harness.run.markers import provider_id
from harness.safety import MutationGate
from harness.commands.sweep import Selection, sweep
from harness.vsphere import find, hosts, keys, snapshots, vms
from harness.vsphere.client import VCenterClient
from harness.vsphere.props import retrieve_all
from tests.conftest import require_toolchain as _require_toolchain

REPO = Path(__file__).resolve().parents[1]
FAKE = REPO / "inventories" / "fake.yaml"


@pytest.fixture(scope="module")
def env() -> Iterator[Environment]:
    with open_environment(FAKE) as environment:
        yield environment


def _client(env: Environment, name: str = "vc-a") -> VCenterClient:
    entry = env.inventory.vcenter(name)
    return VCenterClient(entry.name, env.service_instance(entry.name), env.inventory.timeouts, entry.target,
                         gate=MutationGate.for_inventory(env.inventory))


@pytest.fixture(scope="module")
def client(env: Environment) -> VCenterClient:
    return _client(env)


@pytest.fixture(scope="module")
def place(client: VCenterClient) -> find.Placement:
    return find.placement(client, "DC0", "DC0_C0")


def inventory_vms(client: VCenterClient) -> dict[str, tuple[str, str, bool]]:
    """name -> (annotation, power state, template), read through pyVmomi."""
    found = retrieve_all(client, vms.vim.VirtualMachine,
                         ["name", "config.annotation", "runtime.powerState", "config.template"])
    return {p["name"]: (p.get("config.annotation") or "", p.get("runtime.powerState"), bool(p.get("config.template")))
            for _, p in found.values()}


def make_vm(client: VCenterClient, place: find.Placement, name: str, note: str, on: bool = False,
            snaps: int = 0, template: bool = False, ledger: Ledger | None = None, run_id: str = "") -> Any:
    vm = vms.create_vm(client, place, name, note)
    for i in range(snaps):
        snapshots.create(client, vm, f"snap-{i}")
    if template:
        vms.mark_as_template(client, vm)
    if on:
        vms.power_on(client, vm)
    if ledger is not None:
        ledger.append(kind="vm", vcenter=client.name, moid=vm._moId, name=name, run_id=run_id, phase="created")
    return vm


def quiet(_: str) -> None:
    """Sweep output is asserted through the report, not the console."""


# ---- fake: dry run, then the real sweep ---------------------------------------------------------
def test_dry_run_changes_nothing_then_sweep_removes_only_marked(env: Environment, client: VCenterClient,
                                                               place: find.Placement, tmp_path: Path) -> None:
    run = "r-dry"
    ledger = Ledger(tmp_path / run / "ledger.jsonl")
    marked = {f"vcrypt-{run}-on": dict(on=True), f"vcrypt-{run}-snaps": dict(snaps=2),
              f"vcrypt-{run}-tmpl": dict(template=True), f"vcrypt-{run}-plain": {}}
    for name, opts in marked.items():
        make_vm(client, place, name, annotation(run, "T-1"), ledger=ledger, run_id=run, **opts)
    # Look-alikes: the run's name prefix, and the marker text not at the start (not the marker).
    lookalike = make_vm(client, place, f"vcrypt-{run}-lookalike", f"copied from {annotation(run)}", on=True)
    make_vm(client, place, f"vcrypt-{run}-bare", "")
    ledger.append(kind="vm", vcenter="vc-a", moid=lookalike._moId, name=f"vcrypt-{run}-lookalike", run_id=run,
                  phase="created")  # even the ledger naming it does not make it sweepable
    before = inventory_vms(client)
    fake = env.fake_vcenter("vc-a")
    start = len(fake.call_log)

    dry = sweep(env, Selection(frozenset({run})), tmp_path, dry_run=True, echo=quiet)

    assert inventory_vms(client) == before
    assert {m for _, m in fake.call_log[start:]} <= READ_METHODS, "a dry run invoked a mutating method"
    assert dry.exit_code == 1 and len(dry.remaining) == 4
    assert any("would power off VM vcrypt-r-dry-on" in a for a in dry.actions)
    assert any("would destroy template vcrypt-r-dry-tmpl" in a for a in dry.actions)
    assert not any("lookalike" in a or "bare" in a for a in dry.actions)

    done = sweep(env, Selection(frozenset({run})), tmp_path, echo=quiet)

    after = inventory_vms(client)
    assert done.exit_code == 0, done.remaining + done.problems
    assert not set(marked) & set(after), "marked VMs (incl. template and snapshots) must be gone"
    assert after[f"vcrypt-{run}-lookalike"] == before[f"vcrypt-{run}-lookalike"]
    assert after[f"vcrypt-{run}-bare"] == before[f"vcrypt-{run}-bare"]
    assert any("lookalike" in s and "lacks the harness marker" in s for s in done.skipped)
    assert {n for n in before if n.startswith("DC0_")} <= set(after), "the lab's own VMs survive"


def test_marker_only_without_ledger_and_run_filter(env: Environment, client: VCenterClient,
                                                  place: find.Placement, tmp_path: Path) -> None:
    empty = tmp_path / "no-reports"
    for run in ("r-go", "r-keep"):
        make_vm(client, place, f"vcrypt-{run}-a", annotation(run), on=True)
        make_vm(client, place, f"vcrypt-{run}-b", annotation(run, "T-2"), snaps=1)
    make_vm(client, place, "vcrypt-r-go-unmarked", "vcrypt-harness")  # the marker word, but no run=

    first = sweep(env, Selection(frozenset({"r-go"})), empty, echo=quiet)

    left = inventory_vms(client)
    assert first.exit_code == 0
    assert "vcrypt-r-go-a" not in left and "vcrypt-r-go-b" not in left
    assert {"vcrypt-r-keep-a", "vcrypt-r-keep-b", "vcrypt-r-go-unmarked"} <= set(left)

    everything = sweep(env, Selection(None, force=True), empty, echo=quiet)  # no leases: only with force

    left = inventory_vms(client)
    assert everything.exit_code == 0
    assert not [n for n, (note, _, _) in left.items() if note.startswith("vcrypt-harness run=")]
    assert "vcrypt-r-go-unmarked" in left


def test_providers_and_restores_from_the_ledger(env: Environment, client: VCenterClient, tmp_path: Path) -> None:
    run = "r-prov"
    ledger = Ledger(tmp_path / run / "ledger.jsonl")
    endpoint = env.kms_endpoints["shared"]
    added = provider_id("vcrypt-", run, "main", "kms", n=1)  # an id that carries the run's mark
    assert keys.register_provider(client, endpoint, added, make_default=False)
    ledger.append(kind="key_provider", vcenter="vc-a", provider_id=added, run_id=run, phase="creating")
    ledger.append(kind="key_provider", vcenter="vc-a", provider_id=added, run_id=run, phase="created")
    # The run only got as far as "creating" for the lab's shared provider: it must survive.
    ledger.append(kind="key_provider", vcenter="vc-a", provider_id=endpoint.provider_id, run_id=run, phase="creating")

    cluster = find.by_name(client, vms.vim.ClusterComputeResource, "DC0_C0")
    ha, drs = hosts.cluster_settings(client, cluster)
    ledger.record_change({"action": "cluster_ha", "vcenter": "vc-a", "cluster": cluster._moId, "ha": ha, "drs": drs},
                         "HA back", run, "T-1", "r1")
    hosts.set_cluster(client, cluster, ha=not ha)
    default = keys.default_provider(client)
    ledger.record_change({"action": "default_provider", "vcenter": "vc-a", "provider_id": default,
                          "after": {"provider_id": "vcrypt-dedicated-kms"}}, "default back", run, "T-1", "r2")
    keys.set_default(client, "vcrypt-dedicated-kms")
    ledger.record_change({"action": "default_provider", "vcenter": "vc-a", "provider_id": None},
                         "already undone", run, "T-1", "r3")
    ledger.append(kind="restore", phase="done", restore_id="r3", run_id=run)
    ledger.append(kind="restore", vcenter="vc-a", run_id=run, restore_id="r4", description="stop the KMS again")

    dry = sweep(env, Selection(frozenset({run})), tmp_path, dry_run=True, echo=quiet)

    assert added in keys.list_providers(client) and hosts.cluster_settings(client, cluster)[0] == (not ha)
    assert dry.exit_code == 1 and any(added in r for r in dry.remaining)
    assert any(f"would remove key provider {added}" in a for a in dry.actions)

    done = sweep(env, Selection(frozenset({run})), tmp_path, echo=quiet)

    providers = keys.list_providers(client)
    assert done.exit_code == 0, done.remaining + done.problems
    assert added not in providers and endpoint.provider_id in providers
    assert hosts.cluster_settings(client, cluster) == (ha, drs)
    assert keys.default_provider(client) == default, "the done restore (r3, to no default) must not be redone"
    assert any(endpoint.provider_id in s and "left alone" in s for s in done.skipped)
    assert any("cannot restore automatically" in s and "stop the KMS again" in s for s in done.skipped)


def test_scratch_writes_what_sweep_reads(env: Environment, client: VCenterClient, tmp_path: Path) -> None:
    """Scratch.restore/provider entries round-trip: a finished run's undos are not redone."""
    from harness.run.fixtures import Scratch
    state = SimpleNamespace(ledger=Ledger(tmp_path / "r-scr" / "ledger.jsonl"), run_id="r-scr",
                            inventory=env.inventory, names=itertools.count(1))
    scratch = Scratch(state, "T-9", "tests::x", "main")
    undone: list[str] = []
    scratch.restore("note only", lambda: undone.append("x"), {"action": "default_provider", "vcenter": "vc-a",
                                                              "provider_id": keys.default_provider(client)})
    scratch.provider(client, env.kms_endpoints["shared"], scratch.name("kms"))
    entries = state.ledger.entries()
    assert [e.get("phase") for e in entries if e["kind"] == "key_provider"] == ["creating", "created"]
    assert scratch.cleanup.run() == [] and undone == ["x"]
    phases = [(e["kind"], e.get("phase")) for e in state.ledger.entries()]
    assert ("restore", "done") in phases and ("key_provider", "removed") in phases

    report = sweep(env, Selection(frozenset({"r-scr"})), tmp_path, echo=quiet)

    assert report.exit_code == 0 and report.actions == [] and report.skipped == []


# ---- CLI argument handling ------------------------------------------------------------------------
@pytest.mark.parametrize("args", [[], ["--run-id", "x", "--all-runs"]])
def test_cli_needs_exactly_one_selection(args: list[str]) -> None:
    result = CliRunner().invoke(main, ["sweep", "--inventory", str(FAKE), *args])
    assert result.exit_code == 2
    assert "--run-id" in result.output and "--all-runs" in result.output
    assert "Traceback" not in result.output


def test_cli_bad_inventory_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("vcenters: [{name: x, target: nope}]\n")
    result = CliRunner().invoke(main, ["sweep", "--inventory", str(bad), "--all-runs"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and str(bad) in result.output


def test_cli_sweeps_a_clean_target(tmp_path: Path) -> None:
    """The command end to end (it builds its own fake): nothing marked, exit 0."""
    result = CliRunner().invoke(main, ["sweep", "--inventory", str(FAKE), "--all-runs", "--dry-run",
                                       "--reports", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "nothing to sweep" in result.output


# ---- vcsim: its state lives in another process, as after a SIGKILL -----------------------------------
def test_sweep_on_vcsim(tmp_path: Path) -> None:
    _require_toolchain()
    from harness.vcsim import VcsimProcess, build_launcher
    with VcsimProcess(tmp_path / "sim", binary=build_launcher(), api_version="7.0.3.0") as sim:
        data = {"vcenters": [{"name": "sim", "target": "vcsim", "url": sim.url, "user": "u", "tls": {"insecure": True},
                              "datacenter": "DC0", "cluster": "DC0_C0"}],
                "safety": {"allow_mutations": True}}
        inventory = parse_inventory(data, tmp_path / "vcsim.yaml")
        with open_environment(inventory, workdir=tmp_path / "env") as environment:
            sim_client = _client(environment, "sim")
            sim_place = find.placement(sim_client, "DC0", "DC0_C0")
            make_vm(sim_client, sim_place, "vcrypt-r-sim-a", annotation("r-sim"), on=True)
            make_vm(sim_client, sim_place, "vcrypt-r-sim-b", annotation("r-sim"), snaps=1)
            make_vm(sim_client, sim_place, "vcrypt-r-sim-unmarked", "")
            before = inventory_vms(sim_client)

            report = sweep(environment, Selection(frozenset({"r-sim"})), tmp_path / "reports", echo=quiet)

            after = inventory_vms(sim_client)
        assert report.exit_code == 0, report.remaining + report.problems
        assert "vcrypt-r-sim-a" not in after and "vcrypt-r-sim-b" not in after
        assert set(before) - {"vcrypt-r-sim-a", "vcrypt-r-sim-b"} == set(after)


# ---- exact markers (issue 12, item 3): reproduce each defect, then the fix ----------------------------
def _provider_snapshot(client: VCenterClient, provider_id: str) -> str | None:
    from pyVmomi import SoapAdapter
    info = keys.list_providers(client).get(provider_id)
    return SoapAdapter.Serialize(info).decode() if info is not None else None


def test_a_vm_whose_annotation_merely_starts_with_the_marker_is_never_swept(
        client: VCenterClient, place: find.Placement, tmp_path: Path) -> None:
    run = "r-prod"
    make_vm(client, place, "prod-db-01", f"{annotation(run)}\nowner: DBA team - production, do not delete")
    make_vm(client, place, "prod-db-02", f"{annotation(run)} (copied when this VM was cloned from a test VM)")
    make_vm(client, place, f"vcrypt-{run}-real", annotation(run, "T-3"))
    before = inventory_vms(client)

    report = sweep_env(client, Selection(frozenset({run})), tmp_path)

    after = inventory_vms(client)
    assert after["prod-db-01"] == before["prod-db-01"] and after["prod-db-02"] == before["prod-db-02"]
    assert f"vcrypt-{run}-real" not in after, "the exactly marked VM is the positive control"
    assert report.exit_code == 0


def test_a_run_id_with_a_space_is_not_cut_at_the_space(client: VCenterClient, place: find.Placement,
                                                       tmp_path: Path) -> None:
    make_vm(client, place, "vcrypt-spaced", "vcrypt-harness run=r-sp ace")
    before = inventory_vms(client)

    sweep_env(client, Selection(frozenset({"r-sp"})), tmp_path)
    sweep_env(client, Selection(None), tmp_path)

    assert inventory_vms(client)["vcrypt-spaced"] == before["vcrypt-spaced"]


@pytest.mark.parametrize("run_id", ["r sp", "r\tx", "../r", "", "-r", "r" * 65, "r;rm"])
def test_cli_refuses_a_run_id_outside_the_safe_charset(run_id: str) -> None:
    result = CliRunner().invoke(main, ["sweep", "--inventory", str(FAKE), "--run-id", run_id, "--dry-run"])
    assert result.exit_code == 2, result.output
    assert "run id" in result.output and "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0


def test_a_forged_ledger_line_alone_never_removes_a_provider(env: Environment, client: VCenterClient,
                                                             tmp_path: Path) -> None:
    """One ledger line saying a run created the fake's seeded provider must not remove it."""
    seeded = env.kms_endpoints["shared"].provider_id
    before = _provider_snapshot(client, seeded)
    ledger = Ledger(tmp_path / "r-forge" / "ledger.jsonl")
    for run in ("r-forge", "shared"):  # "shared": vcrypt-<run>- would prefix vcrypt-shared-kms
        ledger.append(kind="key_provider", vcenter="vc-a", provider_id=seeded, run_id=run, phase="created")

    report = sweep_env(client, Selection(None), tmp_path)

    assert before is not None and _provider_snapshot(client, seeded) == before
    assert any(seeded in s and "left alone" in s for s in report.skipped)


def test_a_provider_is_removed_only_with_the_runs_id_and_its_ledger_entry(env: Environment, client: VCenterClient,
                                                                          tmp_path: Path) -> None:
    endpoint = env.kms_endpoints["shared"]
    run = "r-own"
    ours = provider_id("vcrypt-", run, "main", "kms-own", n=1)
    unledgered = provider_id("vcrypt-", run, "gw1", "kms-not-in-ledger", n=2)
    for pid in (ours, unledgered):
        assert keys.register_provider(client, endpoint, pid, make_default=False)
    Ledger(tmp_path / run / "ledger.jsonl").append(kind="key_provider", vcenter="vc-a", provider_id=ours,
                                                   run_id=run, phase="created")

    report = sweep_env(client, Selection(frozenset({run})), tmp_path)

    present = keys.list_providers(client)
    assert ours not in present, report.problems
    assert unledgered in present
    keys.remove_provider(client, unledgered)


def sweep_env(client: VCenterClient, selection: Selection, reports: Path) -> Any:
    """Sweep the module's fake (the environment behind `client`)."""
    return sweep(_ENV["env"], selection, reports, echo=quiet)


_ENV: dict[str, Environment] = {}


@pytest.fixture(autouse=True)
def _remember_env(env: Environment) -> None:
    _ENV["env"] = env


# ---- issue 21, point 3: sweep acts only on proof ------------------------------------------------------
# Reproduced first on the code before the fix: the forged restore line below set the default key
# provider of both vCenters to none (exit 0), and --all-runs destroyed a live run's VMs.
FORGED_RESTORE = {"kind": "restore", "run_id": "r-forged", "restore_id": "f00d", "action": "default_provider",
                  "provider_id": None, "description": "restore the default key provider", "time": 1}


def test_a_forged_restore_line_alone_changes_no_vcenter(env: Environment, tmp_path: Path) -> None:
    import json
    run = tmp_path / "r-forged"
    run.mkdir()
    (run / "ledger.jsonl").write_text(json.dumps(FORGED_RESTORE) + "\n")
    clients = {name: _client(env, name) for name in ("vc-a", "vc-b")}
    before = {name: keys.default_provider(c) for name, c in clients.items()}
    assert all(before.values()), "the positive control: both vCenters have a default provider to lose"

    report = sweep(env, Selection(frozenset({"r-forged"})), tmp_path, echo=quiet)

    assert {name: keys.default_provider(c) for name, c in clients.items()} == before
    assert not report.actions, report.actions
    assert any("restore the default key provider" in s and "no record of the change" in s for s in report.skipped), \
        report.skipped


def test_cli_reports_a_forged_restore_line_and_leaves_it(tmp_path: Path) -> None:
    import json
    run = tmp_path / "r-forged"
    run.mkdir()
    (run / "ledger.jsonl").write_text(json.dumps(FORGED_RESTORE) + "\n")
    result = CliRunner().invoke(main, ["sweep", "--inventory", str(FAKE), "--run-id", "r-forged",
                                       "--reports", str(tmp_path)])
    assert "restore default key provider" not in result.output, result.output
    assert "left alone:" in result.output and "no record of the change" in result.output
    assert "Traceback" not in result.output


def _lease(folder: Path, run_id: str, **fields: Any) -> None:
    """A lease file as a running session writes it (harness/run/lease.py), written by hand."""
    import json
    import os
    import socket
    import time
    from harness.workdirs import process_start_ticks
    folder.mkdir(parents=True, exist_ok=True)
    lease = {"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(),
             "start": process_start_ticks(os.getpid()), "heartbeat": time.time(), "interval": 30.0, "ended": None}
    lease.update(fields)
    (folder / "lease.json").write_text(json.dumps(lease))


def test_all_runs_leaves_the_vms_of_a_live_run_alone(client: VCenterClient, place: find.Placement,
                                                     tmp_path: Path) -> None:
    run = "r-live"
    _lease(tmp_path / run, run)  # this very process owns it: alive
    make_vm(client, place, f"vcrypt-{run}-a", annotation(run, "T-4"), on=True)
    make_vm(client, place, f"vcrypt-{run}-b", annotation(run))
    before = inventory_vms(client)

    report = sweep_env(client, Selection(None), tmp_path)

    after = inventory_vms(client)
    assert after[f"vcrypt-{run}-a"] == before[f"vcrypt-{run}-a"] and after[f"vcrypt-{run}-b"] == before[f"vcrypt-{run}-b"]
    assert any(run in s and "alive" in s for s in report.skipped), report.skipped

    forced = sweep(_ENV["env"], Selection(None, force=True), tmp_path, echo=quiet)

    assert f"vcrypt-{run}-a" not in inventory_vms(client), forced.problems


def test_a_named_live_run_is_swept_only_with_force(client: VCenterClient, place: find.Placement,
                                                   tmp_path: Path) -> None:
    run = "r-live-named"
    _lease(tmp_path / run, run)
    make_vm(client, place, f"vcrypt-{run}-a", annotation(run))

    report = sweep_env(client, Selection(frozenset({run})), tmp_path)

    assert f"vcrypt-{run}-a" in inventory_vms(client)
    assert report.exit_code == 1 and any("alive" in s for s in report.skipped)
    sweep(_ENV["env"], Selection(frozenset({run}), force=True), tmp_path, echo=quiet)
    assert f"vcrypt-{run}-a" not in inventory_vms(client)


@pytest.mark.parametrize("lease_fields,swept", [
    ({"pid": 2 ** 22 + 7}, True),                                        # this host, pid gone
    ({"start": -1}, True),                                               # this host, pid reused by a later process
    ({"ended": 1.0}, True),                                              # the run ended normally
    ({"host": "elsewhere", "heartbeat": 1.0}, True),                     # another host, heartbeats stopped long ago
    ({"host": "elsewhere"}, False),                                      # another host, fresh heartbeat
    (None, False),                                                       # no lease: cannot be proven dead
], ids=["pid-gone", "pid-reused", "ended", "other-host-stale", "other-host-fresh", "no-lease"])
def test_all_runs_sweeps_a_run_only_when_its_owner_is_proven_gone(client: VCenterClient, place: find.Placement,
                                                                 tmp_path: Path, lease_fields: Any,
                                                                 swept: bool) -> None:
    run = "r-owner"
    if lease_fields is not None:
        _lease(tmp_path / run, run, **lease_fields)
    make_vm(client, place, f"vcrypt-{run}-x", annotation(run))

    report = sweep_env(client, Selection(None), tmp_path)

    assert (f"vcrypt-{run}-x" not in inventory_vms(client)) == swept, report.skipped
    if not swept:
        assert any(run in s for s in report.skipped)
        sweep(_ENV["env"], Selection(None, force=True), tmp_path, echo=quiet)


def test_a_restore_sets_only_the_value_its_change_recorded_and_only_over_the_runs_own_value(
        env: Environment, client: VCenterClient, tmp_path: Path) -> None:
    run = "r-pair"
    ledger = Ledger(tmp_path / run / "ledger.jsonl")
    default = keys.default_provider(client)
    assert default, "the positive control needs a default provider"
    # An altered restore line: its change recorded `default` before, the line would clear it.
    ledger.append(kind="change", vcenter="vc-a", run_id=run, restore_id="a1", action="default_provider",
                  before={"provider_id": default}, after=None, description="altered")
    ledger.append(kind="restore", vcenter="vc-a", run_id=run, restore_id="a1", action="default_provider",
                  provider_id=None, description="altered")
    # A paired change whose value someone else changed since: the run set "vcrypt-x", the vCenter shows `default`.
    ledger.record_change({"action": "default_provider", "vcenter": "vc-a", "provider_id": None,
                          "after": {"provider_id": "vcrypt-x"}}, "changed since", run, "T-1", "a2")
    # A line in this run's folder that names another run.
    Ledger(tmp_path / "r-other" / "ledger.jsonl").append(
        kind="change", vcenter="vc-a", run_id=run, restore_id="a3", action="default_provider",
        before={"provider_id": None}, description="elsewhere")

    report = sweep(env, Selection(frozenset({run})), tmp_path, echo=quiet)

    assert keys.default_provider(client) == default and not report.actions, report.actions
    assert any("altered" in s and "forged or altered" in s for s in report.skipped), report.skipped
    assert any("changed since" in s and "vcrypt-x" in s for s in report.skipped), report.skipped
    assert any("run r-other's folder names run r-pair" in s for s in report.skipped), report.skipped


def test_cli_names_a_live_run_exits_1_and_force_sweeps_it(tmp_path: Path) -> None:
    _lease(tmp_path / "r-cli-live", "r-cli-live")
    live = CliRunner().invoke(main, ["sweep", "--inventory", str(FAKE), "--run-id", "r-cli-live", "--dry-run",
                                     "--reports", str(tmp_path)])
    assert live.exit_code == 1, live.output
    assert "left alone: run r-cli-live is alive" in live.output and "Traceback" not in live.output
    forced = CliRunner().invoke(main, ["sweep", "--inventory", str(FAKE), "--run-id", "r-cli-live", "--dry-run",
                                       "--force", "--reports", str(tmp_path)])
    assert forced.exit_code == 0 and "alive" not in forced.output, forced.output


def test_a_provider_whose_registration_outcome_is_unknown_is_removed_when_it_carries_the_runs_mark(
        env: Environment, client: VCenterClient, tmp_path: Path) -> None:
    """A RegisterKmipServer that may or may not have run (OutcomeUnknown) leaves only a "creating" line.
    An id in the run's exact pattern can only be that run's, so sweep removes it; any other id stays."""
    run = "r-unsure"
    ledger = Ledger(tmp_path / run / "ledger.jsonl")
    endpoint = env.kms_endpoints["shared"]
    unsure = provider_id("vcrypt-", run, "main", "kms", n=1)
    assert keys.register_provider(client, endpoint, unsure, make_default=False)   # it did run, after all
    ledger.append(kind="key_provider", vcenter="vc-a", provider_id=unsure, run_id=run, phase="creating")
    ledger.append(kind="key_provider", vcenter="vc-a", provider_id=endpoint.provider_id, run_id=run, phase="creating")

    report = sweep(env, Selection(frozenset({run}), force=True), tmp_path, echo=quiet)

    present = keys.list_providers(client)
    assert unsure not in present, report
    assert endpoint.provider_id in present, "a creating line for another id must not remove the lab's provider"
    assert any(endpoint.provider_id in s and "left alone" in s for s in report.skipped), report.skipped
