"""OSCAL an assessment tool can follow (issue 24): the results import a plan that resolves (file + SHA-256),
lab-wide uuids shared by two runs of the same lab, reviewed controls only those assessed, run-level files
referenced from the result, and `trestle validate` without a warning."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from trestle.oscal import assessment_plan, assessment_results

from harness.evidence.html_report import write_html_report
from harness.evidence.oscal import FILENAME, write_oscal_results
from harness.evidence.oscal_plan import FILENAME as PLAN
from harness.evidence.verdicts import load_catalogue

from .conftest import RUN_ID


def _docs(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    write_oscal_results(run_dir)
    return (json.loads((run_dir / FILENAME).read_text())["assessment-results"],
            json.loads((run_dir / PLAN).read_text())["assessment-plan"])


def _resources(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["uuid"]: r for r in doc["back-matter"]["resources"]}


def test_the_results_import_a_plan_that_resolves_to_a_hashed_file_and_the_pair_loads(run_dir: Path) -> None:
    ar, _ = _docs(run_dir)
    resource = _resources(ar)[ar["import-ap"]["href"].removeprefix("#")]
    (rlink,) = resource["rlinks"]
    plan_file = run_dir / rlink["href"]
    assert hashlib.sha256(plan_file.read_bytes()).hexdigest() == rlink["hashes"][0]["value"]
    results = assessment_results.AssessmentResults.model_validate(ar)
    plan = assessment_plan.Model.model_validate(json.loads(plan_file.read_text())).assessment_plan
    reviewed = {c.control_id for c in results.results[0].reviewed_controls.control_selections[0].include_controls}
    assert {c.control_id for c in plan.reviewed_controls.control_selections[0].include_controls} == reviewed
    ssp = _resources(json.loads(plan_file.read_text())["assessment-plan"])[plan.import_ssp.href.removeprefix("#")]
    assert ssp["title"].startswith("No system security plan")


def _second_run(run_dir: Path, tmp_path: Path) -> Path:
    other = tmp_path / "reports" / "second-run"
    shutil.copytree(run_dir, other)
    run = json.loads((other / "run.json").read_text())
    run.update(run_id="second-run", started_at="2026-01-02T12:00:00+00:00", finished_at="2026-01-02T12:03:00+00:00")
    (other / "run.json").write_text(json.dumps(run))
    return other


def test_two_runs_of_the_same_lab_share_party_component_and_inventory_item_uuids(run_dir: Path, tmp_path: Path) -> None:
    first, first_plan = _docs(run_dir)
    second, second_plan = _docs(_second_run(run_dir, tmp_path))

    def lasting(ar: dict[str, Any]) -> dict[str, list[str]]:
        local = ar["results"][0]["local-definitions"]
        return {"parties": [p["uuid"] for p in ar["metadata"]["parties"]],
                "components": [c["uuid"] for c in local["components"]],
                "inventory-items": [i["uuid"] for i in local["inventory-items"]]}

    assert lasting(first) == lasting(second) and all(lasting(first).values())
    assert first["uuid"] != second["uuid"] and first["results"][0]["uuid"] != second["results"][0]["uuid"]
    activities = {a["title"]: a["uuid"] for a in first_plan["local-definitions"]["activities"]}
    assert activities == {a["title"]: a["uuid"] for a in second_plan["local-definitions"]["activities"]}


def test_reviewed_controls_are_only_those_with_a_finding(run_dir: Path) -> None:
    """Every rule but CLONE-ENCRYPT skipped by version: only CLONE-ENCRYPT's controls were assessed."""
    results = json.loads((run_dir / "results.json").read_text())
    tests = [t for t in results["tests"] if t["rules"] == ["CLONE-ENCRYPT"]]
    for i, rule in enumerate(r.id for r in load_catalogue() if r.id != "CLONE-ENCRYPT"):
        tests.append({"nodeid": f"suites/x.py::test_{i}", "test_id": f"x-{i}", "name": f"test_{i}", "rules": [rule],
                      "outcome": "skipped", "category": "version_skip", "message": "version: not 7.0"})
    (run_dir / "results.json").write_text(json.dumps({"tests": tests}))
    ar, _ = _docs(run_dir)
    result = ar["results"][0]
    reviewed = {c["control-id"] for c in result["reviewed-controls"]["control-selections"][0]["include-controls"]}
    found = {p["value"] for f in result["findings"] for p in f["target"]["props"] if p["name"] == "control-id"}
    assert reviewed == found and found


def test_run_level_files_are_resources_the_result_links_to(run_dir: Path) -> None:
    (run_dir / "inventory.redacted.yaml").write_text("vcenters: []\n")
    write_html_report(run_dir)
    ar, _ = _docs(run_dir)
    resources = _resources(ar)
    linked = {resources[link["href"].removeprefix("#")]["rlinks"][0]["href"] for link in ar["results"][0]["links"]}
    assert linked == {"report.html", "run.json", "results.json", "junit.xml", "inventory.redacted.yaml"}


def test_trestle_validate_reports_nothing(run_dir: Path, tmp_path: Path) -> None:
    trestle = shutil.which("trestle")
    if trestle is None:
        pytest.skip("capability: the trestle command line is not installed")
    ar, plan = _docs(run_dir)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    subprocess.run([trestle, "init"], cwd=workspace, check=True, capture_output=True, timeout=120)
    for kind, name, doc in (("assessment-results", "assessment-results", {"assessment-results": ar}),
                            ("assessment-plans", "assessment-plan", {"assessment-plan": plan})):
        (workspace / kind / RUN_ID).mkdir(parents=True)
        (workspace / kind / RUN_ID / f"{name}.json").write_text(json.dumps(doc))
    proc = subprocess.run([trestle, "validate", "-a"], cwd=workspace, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and output.count("VALID: Model") == 2, output
    assert "WARNING" not in output, output
