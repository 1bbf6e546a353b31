"""Allure 2 (allure-commandline) and Allure 3 (the `allure` npm package) both render a real run's results
with its categories, history and attachments (issue 24).

The tools: $ALLURE2 / $ALLURE3, else an `allure` on PATH of that major version, else the ones `.ci/run`
installs into .ci/allure/ (npm). Missing: skipped with a capability reason.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VCRYPT = [sys.executable, "-c", "from harness.cli import main; main()"]
RULES = "OP-STATE,SNAP-PRE7,XVC-MIGRATE-NO-DECRYPT"  # refusals (steps), a version skip (a category), a passing rule
CI_TOOLS = ROOT / ".ci" / "allure" / "node_modules"


def _version(binary: str) -> str:
    try:
        return subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=120).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _tool(major: str) -> str:
    candidates = [os.environ.get(f"ALLURE{major}"), shutil.which("allure"),
                  str(CI_TOOLS / ".bin" / "allure"), str(CI_TOOLS / "allure-commandline" / "dist" / "bin" / "allure")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and _version(candidate).startswith(f"{major}."):
            return candidate
    pytest.skip(f"capability: Allure {major} is not installed (set ALLURE{major}, or run .ci/run's npm install)")


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs of the same suite (the second carries the first's history)."""
    reports = tmp_path_factory.mktemp("allure-tools") / "reports"
    for run_id in ("t1", "t2"):
        proc = subprocess.run([*VCRYPT, "run", "--reports", str(reports), "--run-id", run_id, "--rules", RULES],
                              cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return reports


def _copy(run: Path, tmp_path: Path) -> Path:
    """Render a copy: a report written into the run folder would be a file its manifest does not list."""
    target = tmp_path / run.name
    shutil.copytree(run, target)
    return target


def test_allure_2_shows_categories_history_and_attachments(reports: Path, tmp_path: Path) -> None:
    allure = _tool("2")
    run = _copy(reports / "t2", tmp_path)
    out = tmp_path / "allure2"
    subprocess.run([allure, "generate", str(run / "allure-results"), "-o", str(out), "--clean"], check=True,
                   capture_output=True, timeout=600)
    names = {c["name"] for c in json.loads((out / "widgets" / "categories.json").read_text())["items"]}
    assert "Version skips" in names, names
    trend = json.loads((out / "widgets" / "history-trend.json").read_text())
    assert [(t["buildOrder"], t["reportName"]) for t in trend] == [(2, "vcrypt-harness run t2"), (1, "vcrypt-harness run t1")]
    assert any((out / "data" / "attachments").iterdir())
    env = {e["name"]: e["values"] for e in json.loads((out / "widgets" / "environment.json").read_text())}
    assert env["Seeded.Defects"] == ["none"] and env["Compliance"] == ["not requested"]


def test_allure_3_shows_categories_history_and_attachments(reports: Path, tmp_path: Path) -> None:
    allure = _tool("3")
    run = _copy(reports / "t2", tmp_path)
    subprocess.run([allure, "generate", "allure-results"], cwd=run, check=True, capture_output=True, timeout=600)
    out = run / "allure-report-3"  # where allurerc.json sends it
    categories = json.loads((out / "widgets" / "categories.json").read_text())
    names = {node.get("name") for node in categories["nodes"].values()}
    assert "Version skips" in names, names
    assert [json.loads(p.read_text())["name"] for p in (out / "data" / "history").iterdir()] == ["vcrypt-harness run t1"]
    assert json.loads((out / "summary.json").read_text())["newTests"] == []  # every test known from t1's point
    assert any((out / "data" / "attachments").iterdir())
