"""finalize_run_folder writes every artefact and seals them with the manifest."""

from __future__ import annotations

import json
from pathlib import Path

from trestle.oscal.assessment_results import AssessmentResults

from harness.evidence.bundle import finalize_run_folder
from harness.evidence.manifest import MANIFEST, verify_manifest


def test_finalize_writes_all_and_manifest_covers_them(run_dir: Path) -> None:
    finalize_run_folder(run_dir)
    for name in (
        "report.html",
        "oscal-assessment-results.json",
        "allure-results/environment.properties",
        "allure-results/categories.json",
        MANIFEST,
    ):
        assert (run_dir / name).is_file(), name
    listed = {line.split("  ", 1)[1] for line in (run_dir / MANIFEST).read_text().splitlines()}
    assert {"report.html", "oscal-assessment-results.json", "allure-results/categories.json"} <= listed
    assert verify_manifest(run_dir) == []


def test_finalize_twice_is_stable(run_dir: Path) -> None:
    finalize_run_folder(run_dir)
    first = (run_dir / MANIFEST).read_bytes()
    finalize_run_folder(run_dir)
    assert (run_dir / MANIFEST).read_bytes() == first


def test_finalize_on_a_run_with_no_tests(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "empty", "target": "vcsim"}))
    (tmp_path / "results.json").write_text(json.dumps({"tests": []}))
    finalize_run_folder(tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert "not demonstrated" in html
    doc = json.loads((tmp_path / "oscal-assessment-results.json").read_text())
    AssessmentResults.model_validate(doc["assessment-results"])
    result = doc["assessment-results"]["results"][0]
    assert "observations" not in result and len(result["findings"]) >= 51
    assert verify_manifest(tmp_path) == []
