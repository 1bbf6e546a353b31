"""Inputs that cannot escape or exhaust: run ids, inventory size, vcsim bind flags, URLs; and the
small product pieces (diff, work folders) checked directly."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.commands.diff import diff_runs
from harness.inventory.schema import InventoryError, load_inventory
from harness.inventory.checks import MAX_INVENTORY_BYTES, MAX_VCENTERS
from harness.run.runids import MAX_RUN_ID, RunIdError, fresh_run_dir, new_run_id, validate_run_id
from harness.vcsim.process import VcsimProcess
from harness.workdirs import OWNER_FILE, make_workdir, stale_workdirs, sweep_workdirs


# ---- run ids -------------------------------------------------------------------------------------
@pytest.mark.parametrize("run_id", ["..", ".", "../x", "a/b", "/abs", ".hidden", "-rf", "", "a b", "x\x00",
                                    "x" * (MAX_RUN_ID + 1), "é", "latest"])
def test_a_run_id_that_could_be_a_path_or_exhaust_a_name_is_refused(run_id):
    with pytest.raises(RunIdError):
        validate_run_id(run_id)


def test_generated_and_ordinary_run_ids_are_valid_and_a_reused_one_is_refused(tmp_path):
    assert validate_run_id(new_run_id()) and validate_run_id("nightly-2026.12.03_a") == "nightly-2026.12.03_a"
    assert fresh_run_dir(tmp_path, "r1") == tmp_path / "r1"
    (tmp_path / "r1").mkdir()
    with pytest.raises(RunIdError, match="already exists"):
        fresh_run_dir(tmp_path, "r1")


# ---- inventory size and checks -------------------------------------------------------------------
def test_an_oversized_inventory_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("vcenters: []\n#" + "x" * MAX_INVENTORY_BYTES)
    began = time.monotonic()
    with pytest.raises(InventoryError, match=r"\(file\): larger than"):
        load_inventory(path)
    assert time.monotonic() - began < 1.0


def test_too_many_vcenters_are_refused_and_duplicate_names_are_found_in_linear_time(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump({"vcenters": [{"name": f"vc{i}", "target": "fake"} for i in range(MAX_VCENTERS + 1)]}))
    with pytest.raises(InventoryError, match=f"vcenters: {MAX_VCENTERS + 1} entries; at most {MAX_VCENTERS}"):
        load_inventory(path)
    names = [f"vc{i}" for i in range(MAX_VCENTERS - 1)] + ["vc7"]
    path.write_text(yaml.safe_dump({"vcenters": [{"name": n, "target": "fake"} for n in names]}))
    with pytest.raises(InventoryError, match="duplicate vCenter name 'vc7'"):
        load_inventory(path)


@pytest.mark.parametrize("args", [["-l", "0.0.0.0:8989"], ["--l=0.0.0.0:1"], ["-l=127.0.0.2:0"],
                                  ["-httptest.serve=0.0.0.0:80"], ["-vm", "3", "--l", "10.0.0.1:443"]])
def test_vcsim_extra_args_cannot_choose_the_listen_address(tmp_path, args):
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump({"vcenters": [{"name": "sim", "target": "vcsim", "vcsim": {"extra_args": args}}]}))
    with pytest.raises(InventoryError, match="sim.vcsim.extra_args: .*listen address"):
        load_inventory(path)
    with pytest.raises(ValueError, match="listen address"):
        VcsimProcess(tmp_path, extra_args=args)


def test_the_harness_own_listen_flag_comes_last_on_the_vcsim_command_line(tmp_path):
    command = VcsimProcess(tmp_path, extra_args=["-trace"]).command(Path("/usr/bin/vcsim"))
    assert command[-2:] == ["-l", "127.0.0.1:0"] and command.count("-l") == 1  # Go's flag package: last wins


@pytest.mark.parametrize("target, url, ok", [
    ("real", "https://vc.lab.example/sdk", True), ("real", "file:///etc/passwd", False),
    ("real", "http://vc.lab.example/sdk", False), ("real", "https://:443/sdk", False),
    ("vcsim", "https://127.0.0.1:8989/sdk", True), ("vcsim", "https://10.1.1.1:8989/sdk", False),
])
def test_a_url_must_be_https_with_a_host_and_loopback_for_vcsim(tmp_path, target, url, ok):
    entry = {"name": "v", "target": target, "url": url}
    if target == "real":
        entry["password_env"] = "VC_PW"
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump({"vcenters": [entry]}))
    if ok:
        assert load_inventory(path).vcenters[0].url == url
    else:
        with pytest.raises(InventoryError, match=r"vcenters\.v\.url: "):
            load_inventory(path)


# ---- vcrypt diff ---------------------------------------------------------------------------------
def _run_folder(folder: Path, outcomes: dict[str, tuple[str, str]]) -> Path:
    """outcomes: test id -> (rule, outcome)."""
    folder.mkdir(parents=True)
    tests = [{"nodeid": f"suites/t.py::{tid}", "test_id": tid, "name": tid, "rules": [rule], "outcome": outcome,
              "category": {"failed": "product_failure", "error": "environment_error"}.get(outcome)}
             for tid, (rule, outcome) in outcomes.items()]
    (folder / "results.json").write_text(json.dumps({"tests": tests}))
    (folder / "run.json").write_text(json.dumps({"run_id": folder.name}))  # a finished run writes both
    return folder


def test_diff_lists_new_failures_first_then_fixes_and_ignores_what_the_second_run_did_not_select(tmp_path):
    a = _run_folder(tmp_path / "a", {"t1": ("OP-STATE", "passed"), "t2": ("KMS-STATUS", "failed"),
                                     "t3": ("KMS-GENERATE", "passed")})
    b = _run_folder(tmp_path / "b", {"t1": ("OP-STATE", "failed"), "t2": ("KMS-STATUS", "passed")})
    result = diff_runs(a, b)
    assert result.exit_code == 1
    assert [(c.kind, c.key) for c in result.regressions] == [("rule", "OP-STATE"), ("test", "t1")]
    lines = result.lines(a, b)
    assert lines[1] == "new failures (2):" and "fixed (2):" in lines
    assert result.dropped == 2  # KMS-GENERATE and t3 ran only in a
    assert [c.key for c in diff_runs(b, a).regressions] == ["KMS-STATUS", "t2"]
    assert diff_runs(a, a).changes == [] and diff_runs(a, a).exit_code == 0


def test_diff_counts_an_environment_error_and_a_new_failing_test_as_regressions(tmp_path):
    a = _run_folder(tmp_path / "a", {"t1": ("OP-STATE", "skipped"), "t0": ("KMS-STATUS", "passed")})
    b = _run_folder(tmp_path / "b", {"t1": ("OP-STATE", "error"), "t9": ("OP-STATE", "failed"),
                                     "t0": ("KMS-STATUS", "passed")})
    keys = [c.key for c in diff_runs(a, b).regressions]
    assert keys == ["OP-STATE", "t1", "t9"]


# ---- work folders ------------------------------------------------------------------------------
def test_a_work_folder_is_private_and_removed_by_sweep_only_once_its_owner_is_gone(tmp_path):
    code = ("import os, sys; from harness.workdirs import make_workdir; "
            "print(make_workdir('vcrypt-unit-', 'unit-run'), flush=True); os.kill(os.getpid(), 9)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "TMPDIR": str(tmp_path)})
    dead = Path(proc.stdout.strip())
    mine = make_workdir("vcrypt-live-", "unit-run")
    try:
        assert dead.parent == tmp_path and (dead.stat().st_mode & 0o777) == 0o700
        assert [s.path for s in stale_workdirs(tmp_path)] == [dead]
        assert sweep_workdirs(frozenset({"other-run"}), root=tmp_path) == [] and dead.exists()
        assert sweep_workdirs(frozenset({"unit-run"}), dry_run=True, root=tmp_path)[0].startswith("would remove")
        lines = sweep_workdirs(frozenset({"unit-run"}), root=tmp_path)
        assert len(lines) == 1 and not dead.exists()
        (tmp_path / "vcrypt-foreign").mkdir()  # no owner file: never touched
        assert sweep_workdirs(None, root=tmp_path) == [] and (tmp_path / "vcrypt-foreign").exists()
        assert (mine / OWNER_FILE).exists()  # a live owner's folder is not stale
        assert mine not in [s.path for s in stale_workdirs(mine.parent)]
    finally:
        import shutil
        shutil.rmtree(mine, ignore_errors=True)


def test_sweep_reads_each_ledger_once_although_reports_latest_links_to_a_run(tmp_path):
    from harness.run.runfolders import update_latest
    from harness.commands.sweep import read_ledgers
    run = tmp_path / "r1"
    run.mkdir()
    (run / "ledger.jsonl").write_text(json.dumps({"kind": "vm", "moid": "vm-1", "run_id": "r1", "time": 1}) + "\n")
    update_latest(tmp_path, run)
    assert (tmp_path / "latest").resolve() == run.resolve()
    assert [e["moid"] for e in read_ledgers(tmp_path)] == ["vm-1"]


def test_newest_run_is_by_start_time_not_by_name(tmp_path):
    from harness.run.runfolders import newest_run, run_folders
    for name, started in (("zz-old", "2026-01-01T00:00:00+00:00"), ("aa-new", "2026-06-01T00:00:00+00:00")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text('{"tests": []}')
        (tmp_path / name / "run.json").write_text(json.dumps({"run_id": name, "started_at": started}))
    assert newest_run(tmp_path).name == "aa-new"
    assert [p.name for p in run_folders(tmp_path)] == ["zz-old", "aa-new"]


def test_newest_run_skips_a_run_that_demonstrated_nothing(tmp_path):
    """`--last-failed` and `vcrypt rules` read the newest run that showed something, as reports/latest does."""
    from harness.run.runfolders import newest_run
    for name, started, status in (("good", "2026-01-01T00:00:00+00:00", 1), ("empty", "2026-06-01T00:00:00+00:00", 5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text('{"tests": []}')
        (tmp_path / name / "run.json").write_text(json.dumps({"run_id": name, "started_at": started,
                                                              "exit_status": status}))
    assert newest_run(tmp_path).name == "good"


def test_the_defect_names_read_from_source_are_exactly_the_registered_ones():
    from harness.fakevc.catalogue import load_all
    from harness.inventory.checks import defect_names
    assert defect_names() == set(load_all())


def test_diff_of_a_folder_that_is_not_a_run_is_one_line_exit_2(tmp_path):
    from click.testing import CliRunner

    from harness import cli
    run = _run_folder(tmp_path / "run", {"t1": ("OP-STATE", "passed")})
    result = CliRunner().invoke(cli.main, ["diff", str(run), str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip() == f"vcrypt: {tmp_path}: not a run folder (no results.json)"
