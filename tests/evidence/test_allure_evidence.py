"""Allure results carry the evidence: attachments, step parameters, executor, history, categories.

The end-to-end test runs two short `vcrypt run`s into one reports folder and reads the second
run's allure-results; if the Allure command line is installed it also renders the report and
checks that the Trend has both runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.evidence.allure_extras import categories, write_allure_extras
from harness.evidence.allure_history import carry_history, previous_run
from harness.evidence.recorder import register_secret

ROOT = Path(__file__).resolve().parents[2]
VCRYPT = [sys.executable, "-c", "from harness.cli import main; main()"]
SNAP = "single_snapshot_chain"


def _matching(cats: list[dict], status: str, message: str) -> list[str]:
    return [c["name"] for c in cats if status in c["matchedStatuses"]
            and re.fullmatch(c.get("messageRegex", "(?s).*"), message)]


def test_categories_are_the_same_for_every_run(run_dir: Path):
    first = categories()
    write_allure_extras(run_dir)
    assert json.loads((run_dir / "allure-results" / "categories.json").read_text()) == first
    text = json.dumps(first)
    assert "CLONE-PRE7" not in text and "vcsim lacks" not in text  # no run's own messages


@pytest.mark.parametrize(("status", "message", "category"), [
    ("skipped", "Skipped: version: rule SNAP-PRE7 describes vSphere 6.5 to 6.7; target vc-a reports 7.0.3",
     "Version skips"),
    ("skipped", "Skipped: capability: target vc-a lacks host_key_cache (not declared)", "Capability skips"),
    ("skipped", "Skipped: safety: destructive test; inventory does not allow it", "Safety skips"),
    ("skipped", "Skipped: unconfirmed: the fault class is not documented", "Unconfirmed behaviour skips"),
    ("skipped", "Skipped: capability: target lacks a version probe", "Capability skips"),  # prefix beats words
    ("failed", "AssertionError: snapshot s2 key: expected 100128 (new), observed 100127 (old)", "Product failures"),
    ("broken", "environment error: KMS shared-kms unreachable\n(the test's own failure follows)", "Environment errors"),
    ("failed", "KmsUnreachable: no answer within 3 s", "Environment errors"),
    ("broken", "AttributeError: 'NoneType' object has no attribute 'config'", "Test or harness errors"),
])
def test_each_message_lands_in_exactly_one_category(status, message, category):
    assert _matching(categories(), status, message) == [category]


def test_history_comes_from_the_previous_run_folder(tmp_path: Path):
    reports = tmp_path / "reports"
    for name, started, statuses in (("r1", "2026-01-01T10:00:00+00:00", ["passed", "failed"]),
                                    ("r2", "2026-01-01T11:00:00+00:00", ["passed", "passed"])):
        (reports / name / "allure-results").mkdir(parents=True)
        (reports / name / "run.json").write_text(json.dumps({"run_id": name, "started_at": started}))
        for i, status in enumerate(statuses):
            (reports / name / "allure-results" / f"{i}-result.json").write_text(json.dumps(
                {"uuid": f"{name}-{i}", "historyId": f"h{i}", "status": status, "start": 1000, "stop": 1500}))
    assert previous_run(reports / "r2") == (reports / "r1").resolve() and previous_run(reports / "r1") is None
    history = carry_history(reports / "r2")
    trend = json.loads((history / "history-trend.json").read_text())
    assert [t["reportName"] for t in trend] == ["vcrypt-harness run r1"]
    assert trend[0]["data"]["failed"] == 1 and trend[0]["data"]["total"] == 2
    per_test = json.loads((history / "history.json").read_text())
    assert per_test["h1"]["items"][0]["status"] == "failed"
    # the third run sees both earlier runs: r2's own results plus the history r2 carried
    (reports / "r3" / "allure-results").mkdir(parents=True)
    (reports / "r3" / "run.json").write_text(json.dumps({"run_id": "r3", "started_at": "2026-01-01T12:00:00+00:00"}))
    trend = json.loads((carry_history(reports / "r3") / "history-trend.json").read_text())
    assert [t["reportName"] for t in trend] == ["vcrypt-harness run r2", "vcrypt-harness run r1"]


def test_history_and_build_order_come_only_from_runs_of_the_same_suite_and_inventory(tmp_path: Path):
    """Issue 24: a 6.7 run between two 7.0 runs is not part of the 7.0 trend, nor a --rules run of a full one."""
    reports = tmp_path / "reports"
    runs = (("a", "7.0", [], "10"), ("b", "6.7", [], "11"), ("c", "7.0", ["--rules", "OP-STATE"], "12"),
            ("d", "7.0", [], "13"))
    for name, inventory, args, hour in runs:
        (reports / name / "allure-results").mkdir(parents=True)
        (reports / name / "run.json").write_text(json.dumps({
            "run_id": name, "started_at": f"2026-01-01T{hour}:00:00+00:00", "target": "fake",
            "inventory": f"inventories/fake-{inventory}.yaml", "pytest_args": ["suites", *args],
            "provenance": {"inventory": {"sha256": inventory * 10}}}))
        (reports / name / "allure-results" / "0-result.json").write_text(json.dumps(
            {"uuid": f"{name}-0", "historyId": "h0", "testCaseId": "t0", "status": "passed", "start": 1, "stop": 2}))
        write_allure_extras(reports / name)
    assert previous_run(reports / "d") == (reports / "a").resolve()
    assert previous_run(reports / "b") is None and previous_run(reports / "c") is None
    orders = {n: json.loads((reports / n / "allure-results" / "executor.json").read_text())["buildOrder"] for n in "abcd"}
    assert orders == {"a": 1, "b": 1, "c": 1, "d": 2}
    trend = json.loads((reports / "d" / "allure-results" / "history" / "history-trend.json").read_text())
    assert [t["reportName"] for t in trend] == ["vcrypt-harness run a"]
    points = [json.loads(line) for line in (reports / "d" / "allure-history.jsonl").read_text().splitlines()]
    assert [p["name"] for p in points] == ["vcrypt-harness run a"]
    assert list(points[0]["testResults"]) == [f"{hashlib.md5(b't0').hexdigest()}.{hashlib.md5(b'').hexdigest()}"]
    rc = json.loads((reports / "d" / "allurerc.json").read_text())
    assert rc["historyPath"] == "allure-history.jsonl" and rc["categories"] and not rc["appendHistory"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reports = tmp_path_factory.mktemp("allure") / "reports"
    for run_id in ("a1", "a2"):
        proc = subprocess.run([*VCRYPT, "run", "--reports", str(reports), "--run-id", run_id, "--rules",
                               "SNAP-SHALLOW,PUSH-HA,XVC-MIGRATE-NO-DECRYPT"],
                              cwd=ROOT, capture_output=True, text=True, timeout=900, env=os.environ.copy())
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return reports


def _result(reports: Path, run_id: str, name_part: str) -> tuple[dict, Path]:
    folder = reports / run_id / "allure-results"
    for path in folder.glob("*-result.json"):
        data = json.loads(path.read_text())
        if name_part in data["name"]:
            return data, folder
    raise AssertionError(f"no Allure result for {name_part}")


def test_each_result_has_its_evidence_attached(two_runs: Path):
    result, folder = _result(two_runs, "a2", SNAP)
    attachments = {a["name"]: (folder / a["source"]).read_text() for a in result["attachments"]}
    assert {"checks (expected, observed)", "observed keys", "evidence"} <= set(attachments)
    assert re.search(r"PASS  snapshot s2 key: expected \d+ \(new\), observed \d+ \(new\)",
                     attachments["checks (expected, observed)"])
    assert json.loads(attachments["evidence"])["checks"]
    push, folder = _result(two_runs, "a2", "every_host_of_the_cluster_is_crypto_safe")
    grid = next((folder / a["source"]).read_text() for a in push["attachments"] if a["name"] == "host-by-key grid")
    assert "columns: this test's keys" in grid


def test_steps_carry_parameters_and_status(two_runs: Path):
    result, _ = _result(two_runs, "a2", SNAP)
    steps = result["steps"]
    generate = next(s for s in steps if "GenerateKey" in s["name"])
    assert generate["status"] == "passed"
    assert {p["name"]: p["value"] for p in generate["parameters"]} == {"keyProvider": "vcrypt-shared-kms"}
    decrypt, _ = _result(two_runs, "a2", "can_not_decrypt")
    relocations = [(s["status"], s["name"]) for s in decrypt["steps"] if "RelocateVM_Task" in s["name"]]
    # the positive control (a twin migrates) passed; the expected refusal is a passed step naming its fault
    # (issue 24: not a red Error step inside a passed test)
    assert decrypt["status"] == "passed" and {status for status, _ in relocations} == {"passed"}, relocations
    assert any(re.match(r"refused as expected: (vim|vmodl)\.fault\.\w+ \(", name) for _, name in relocations), relocations


def test_step_parameters_are_redacted(tmp_path: Path):
    from allure_commons import plugin_manager

    from harness.evidence.allure_evidence import api_step

    seen = []

    class Listener:
        from allure_commons import hookimpl

        @hookimpl
        def start_step(self, uuid, title, params):
            seen.append((title, params))

    listener = Listener()
    plugin_manager.register(listener)
    try:
        register_secret("canary-Secret-1234")
        with api_step("vc-a: Login canary-Secret-1234", {"userName": "admin", "note": "pw canary-Secret-1234"}):
            pass
    finally:
        plugin_manager.unregister(listener)
    assert seen == [("vc-a: Login ***", {"userName": "admin", "note": "pw ***"})]


def test_executor_and_history_let_allure_draw_a_trend(two_runs: Path, tmp_path: Path):
    results = two_runs / "a2" / "allure-results"
    executor = json.loads((results / "executor.json").read_text())
    first = json.loads((two_runs / "a1" / "allure-results" / "executor.json").read_text())
    assert (executor["buildName"], executor["buildOrder"], first["buildOrder"]) == ("a2", 2, 1)  # integers, not epochs
    trend = json.loads((results / "history" / "history-trend.json").read_text())
    assert [t["reportName"] for t in trend] == ["vcrypt-harness run a1"]
    allure = shutil.which("allure") or os.environ.get("ALLURE")
    if not allure:
        pytest.skip("capability: the Allure command line is not installed; history files checked above")
    out = tmp_path / "allure-report"
    subprocess.run([allure, "generate", str(results), "-o", str(out), "--clean"], check=True, capture_output=True,
                   timeout=300)
    widget = json.loads((out / "widgets" / "history-trend.json").read_text())
    assert [w["reportName"] for w in widget] == ["vcrypt-harness run a2", "vcrypt-harness run a1"]
