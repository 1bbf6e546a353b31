"""OSCAL assessment results: schema-valid (trestle), complete, reproducible."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from trestle.oscal import assessment_results  # the project's test extra: a missing one must fail

from harness.evidence.oscal import (
    FILENAME,
    OSCAL_VERSION,
    PROP_NS,
    UUID_NS,
    load_controls,
    objective_id,
    oscal_control_id,
    stable_uuid,
    write_oscal_results,
)
from harness.evidence.verdicts import load_catalogue, load_results

from .conftest import EXPECTED, RUN_ID, T_CLONE, T_KMS, T_PUSH


@pytest.fixture
def doc(run_dir: Path) -> dict[str, Any]:
    return json.loads(write_oscal_results(run_dir).read_text(encoding="utf-8"))


@pytest.fixture
def result(doc: dict[str, Any]) -> dict[str, Any]:
    (only,) = doc["assessment-results"]["results"]
    return only


def test_validates_with_trestle(doc: dict[str, Any]) -> None:
    model = assessment_results.AssessmentResults.model_validate(doc["assessment-results"])
    assert model.metadata.oscal_version.root.root == OSCAL_VERSION
    assert assessment_results.Model.model_validate(doc).assessment_results.uuid == model.uuid


def test_metadata_and_plan(doc: dict[str, Any], run_dir: Path) -> None:
    ar = doc["assessment-results"]
    assert (run_dir / FILENAME).is_file()
    resources = {r["uuid"]: r for r in ar["back-matter"]["resources"]}
    plan = resources[ar["import-ap"]["href"].removeprefix("#")]  # points at a resource that exists
    assert ar["import-ap"]["href"].startswith("#") and "assessment plan" in plan["title"]
    assert ar["metadata"]["oscal-version"].startswith("1.1.")
    assert RUN_ID in ar["metadata"]["title"]
    assert ar["metadata"]["last-modified"] == "2026-01-01T12:03:12+00:00"


def test_one_observation_per_test(result: dict[str, Any], run_dir: Path) -> None:
    tests = load_results(run_dir)
    observations = result["observations"]
    assert len(observations) == len(tests)
    by_test = {p["value"]: o for o in observations for p in o["props"] if p["name"] == "test-id"}
    assert set(by_test) == {t.test_id for t in tests}
    clone = by_test[T_CLONE]
    assert clone["methods"] == ["TEST"]
    assert clone["relevant-evidence"][0]["href"] == f"evidence/{T_CLONE}.json"
    assert (run_dir / clone["relevant-evidence"][0]["href"]).is_file()
    assert clone["collected"] == "2026-01-01T12:00:02+00:00"  # last recorded call
    assert [s["title"] for s in clone["subjects"]] == ["vCenter vc-a"]
    # no evidence file: points at results.json and names every vCenter of the run
    assert by_test[T_KMS]["relevant-evidence"][0]["href"] == "results.json"
    assert [s["title"] for s in by_test[T_KMS]["subjects"]] == ["vCenter vc-a", "vCenter vc-b"]
    items = {i["uuid"] for i in result["local-definitions"]["inventory-items"]}
    assert all(s["subject-uuid"] in items for o in observations for s in o["subjects"])


def test_findings_target_the_objectives_of_each_rules_mapped_controls(result: dict[str, Any]) -> None:
    catalogue = load_catalogue()
    mapping = load_controls()
    findings = result["findings"]
    # a rule outside the target's version is outside the assessed scope: no finding, named in the result
    expected = [(r.id, objective_id(c)) for r in catalogue if EXPECTED.get(r.id) != "not applicable"
                for c in mapping.controls_for(r.id)]
    got = [(_prop(f, "rule-id"), f["target"]["target-id"]) for f in findings]
    assert got == expected
    assert {"name": "out-of-scope-rule", "ns": PROP_NS, "value": "SNAP-PRE7"} in result["props"]
    assert "SNAP-PRE7" in result["remarks"]
    rule_ids = {r.id for r in catalogue}
    obs_uuids = {o["uuid"] for o in result["observations"]}
    for finding in findings:
        target = finding["target"]
        assert target["type"] == "objective-id" and target["target-id"] not in rule_ids
        assert re.fullmatch(r"[a-z]{2}-\d+(\.\d+)?_obj", target["target-id"])
        assert _prop(finding, "rule-id") in rule_ids  # the rule is a prop, not the objective
        verdict = _prop(finding, "verdict")
        assert target["status"]["state"] == ("satisfied" if verdict == "passed" else "not-satisfied")
        assert all(r["observation-uuid"] in obs_uuids for r in finding.get("related-observations", []))
    by_rule = {}
    for f in findings:
        by_rule.setdefault(_prop(f, "rule-id"), []).append(f)
    for rule_id, expected_verdict in EXPECTED.items():
        if expected_verdict == "not applicable":
            assert rule_id not in by_rule
            continue
        assert {_prop(f, "verdict") for f in by_rule[rule_id]} == {expected_verdict}
    assert all("related-observations" not in f for f in by_rule["KMS-REQUIRED"])  # not run: nothing to relate
    assert all(len(f["related-observations"]) == 2 for f in by_rule["PUSH-HA"])


def _prop(obj: dict[str, Any], name: str) -> str:
    return next(p["value"] for p in obj["props"] if p["name"] == name)


def test_reviewed_controls_are_the_mapped_controls(result: dict[str, Any]) -> None:
    mapping = load_controls()
    expected = {oscal_control_id(c) for r in load_catalogue() for c in mapping.controls_for(r.id)}
    (selection,) = result["reviewed-controls"]["control-selections"]
    assert {c["control-id"] for c in selection["include-controls"]} == expected


def test_uuids_are_deterministic(run_dir: Path, doc: dict[str, Any], result: dict[str, Any]) -> None:
    first = (run_dir / FILENAME).read_bytes()
    assert write_oscal_results(run_dir).read_bytes() == first
    assert doc["assessment-results"]["uuid"] == str(uuid.uuid5(UUID_NS, f"{RUN_ID}/assessment-results"))
    obs = {p["value"]: o["uuid"] for o in result["observations"] for p in o["props"] if p["name"] == "test-id"}
    assert obs[T_PUSH] == stable_uuid(RUN_ID, "test", T_PUSH)
    findings = {(_prop(f, "rule-id"), f["target"]["target-id"]): f["uuid"] for f in result["findings"]}
    control = load_controls().controls_for("PUSH-HA")[0]
    push_ha = findings[("PUSH-HA", objective_id(control))]
    assert push_ha == stable_uuid(RUN_ID, "rule", "PUSH-HA", control)
    assert uuid.UUID(push_ha).version == 5
    all_uuids = [doc["assessment-results"]["uuid"], result["uuid"], *obs.values(), *findings.values()]
    assert len(set(all_uuids)) == len(all_uuids)


def test_other_run_gets_other_uuids(run_dir: Path, doc: dict[str, Any]) -> None:
    run = json.loads((run_dir / "run.json").read_text())
    run["run_id"] = "another-run"
    (run_dir / "run.json").write_text(json.dumps(run))
    other = json.loads(write_oscal_results(run_dir).read_text())
    assert other["assessment-results"]["uuid"] != doc["assessment-results"]["uuid"]


def test_multiline_and_naive_values_still_validate(run_dir: Path) -> None:
    run = json.loads((run_dir / "run.json").read_text())
    run["started_at"] = "2026-01-01T12:00:00"  # naive: taken as UTC
    run.pop("finished_at")
    run["harness_version"] = ""
    (run_dir / "run.json").write_text(json.dumps(run))
    results = json.loads((run_dir / "results.json").read_text())
    results["tests"][0]["name"] = "  multi\nline  "
    results["tests"][0]["message"] = "line one\n  line two  "
    (run_dir / "results.json").write_text(json.dumps(results))
    doc = json.loads(write_oscal_results(run_dir).read_text())
    assessment_results.AssessmentResults.model_validate(doc["assessment-results"])
    assert doc["assessment-results"]["results"][0]["end"] == "2026-01-01T12:00:00+00:00"


@pytest.mark.parametrize(("display", "oscal"), [("SC-28", "sc-28"), ("SC-12(1)", "sc-12.1"), ("AC-6(7)", "ac-6.7")])
def test_control_id_conversion(display: str, oscal: str) -> None:
    assert oscal_control_id(display) == oscal


def test_control_id_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        oscal_control_id("SC 28")
