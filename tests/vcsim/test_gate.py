"""The nightly gate: below the floor, an unlisted failure or a stale deviation each turn it red."""
from __future__ import annotations

import json
from pathlib import Path

from harness.vcsim.gate import main, problems


def _run(tmp_path: Path, *tests: tuple[str, str, str]) -> Path:
    rows = [{"nodeid": f"t{i}", "test_id": f"id{i}", "rules": [rule], "outcome": outcome, "message": message}
            for i, (rule, outcome, message) in enumerate(tests)]
    (tmp_path / "results.json").write_text(json.dumps({"tests": rows}))
    return tmp_path


def test_a_run_at_the_floor_with_deviations_and_skips_is_green(tmp_path):
    run = _run(tmp_path, ("A", "passed", ""), ("B", "passed", ""), ("C", "deviation", "deviation: x"),
               ("D", "skipped", "capability: lacks y"))
    assert problems(run, 2) == [] and main([str(run), "--floor", "2", "--summary", str(tmp_path / "s.md")]) == 0
    assert "Demonstrated rules: **2**" in (tmp_path / "s.md").read_text()


def test_a_rule_with_one_passing_and_one_skipped_test_is_not_demonstrated(tmp_path):
    run = _run(tmp_path, ("A", "passed", ""), ("A", "skipped", "capability: z"))
    assert main([str(run), "--floor", "1"]) == 1


def test_unlisted_failures_and_stale_deviations_are_named(tmp_path):
    run = _run(tmp_path, ("A", "passed", ""), ("B", "failed", "AssertionError: no"),
               ("C", "failed", "[XPASS(strict)] deviation: x"))
    found = problems(run, 1)
    assert any(p.startswith("unlisted failure: id1") for p in found)
    assert any(p.startswith("stale deviation") and "id2" in p for p in found)
    assert main([str(run), "--floor", "1"]) == 1


def test_not_a_run_folder_exits_2(tmp_path):
    assert main([str(tmp_path), "--floor", "1"]) == 2


def test_the_nightly_example_uses_the_gate_with_the_floor_the_project_tests():
    import yaml

    from tests.test_run_vcsim import NIGHTLY_FLOOR
    root = Path(__file__).resolve().parents[2]
    workflow = yaml.safe_load((root / "examples" / "nightly-vcsim.yml").read_text())
    assert int(workflow["env"]["FLOOR"]) == NIGHTLY_FLOOR
    steps = " ".join(str(step.get("run", "")) for step in workflow["jobs"]["current-vcsim"]["steps"])
    assert "python -m harness.vcsim.gate" in steps and "inventories/vcsim.yaml" in steps
    assert "vcsim-debian.yaml" in " ".join(str(s.get("run", "")) for s in workflow["jobs"]["debian-vcsim"]["steps"])
