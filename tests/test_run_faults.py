"""Runs that meet trouble: a KMS stopping mid-run, Ctrl-C, and a secret canary in every artifact."""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.procs import leftover_servers

ROOT = Path(__file__).resolve().parent.parent
VCRYPT = [sys.executable, "-c", "from harness.cli import main; main()"]
SCENARIOS = ROOT / "tests" / "scenarios"


def _kms_processes() -> list[str]:
    return leftover_servers(grace=1.0)  # a stopped KMS's worker process exits within a second of its parent


def _latest_run(reports: Path) -> Path:
    return sorted(reports.iterdir())[-1]


def test_a_kms_that_stops_mid_run_gives_environment_errors_naming_it_and_the_run_goes_on(tmp_path):
    reports = tmp_path / "reports"
    proc = subprocess.run([*VCRYPT, "run", "--reports", str(reports), "--suites", str(SCENARIOS / "scenario_kms_down.py")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    tests = {t["name"]: t for t in json.loads((_latest_run(reports) / "results.json").read_text())["tests"]}
    down = tests["test_an_encrypt_while_the_kms_is_down"]
    assert down["outcome"] == "error" and down["category"] == "environment_error", down
    assert "KMS 127.0.0.1:" in down["message"] and "unreachable" in down["message"]
    assert tests["test_the_run_goes_on_with_what_does_not_need_the_kms"]["outcome"] == "passed"
    assert "0 product failures, 1 environment errors" in proc.stdout
    junit = (_latest_run(reports) / "junit.xml").read_text()
    assert "<error" in junit and "<failure" not in junit
    assert not _kms_processes()


def test_ctrl_c_cleans_up_stops_the_kms_and_exits_130(tmp_path):
    reports = tmp_path / "reports"
    proc = subprocess.Popen([*VCRYPT, "run", "--reports", str(reports), "--suites", str(SCENARIOS / "scenario_hang.py")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    ledger = None
    while time.monotonic() < deadline:
        runs = sorted(reports.iterdir()) if reports.exists() else []
        ledger = runs[-1] / "ledger.jsonl" if runs else None
        if ledger and ledger.exists() and ledger.read_text().count('"phase": "created"') >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out[-3000:]
    removed = [e for e in map(json.loads, ledger.read_text().splitlines()) if e.get("phase") == "removed"]
    assert len(removed) == 2, "scratch VMs were not removed on Ctrl-C"
    assert not _kms_processes()


def test_a_canary_password_and_client_key_never_reach_any_file_of_the_run(tmp_path):
    from harness.kms.server import EmbeddedKms
    password = "canary-" + secrets.token_hex(12)
    with EmbeddedKms(tmp_path / "kms") as kms:
        client_key = kms.client_cert.key_pem()
        inventory = yaml.safe_load((ROOT / "inventories" / "fake.yaml").read_text())
        for entry in inventory["vcenters"]:
            entry["password_env"] = "VCRYPT_CANARY_PASSWORD"
        inventory["kms"] = {"embedded": False, "shared": {
            "provider_id": "canary-kms", "address": kms.servers["shared"].host, "port": kms.servers["shared"].port,
            "ca": str(kms.ca.ca_path), "client_cert": str(kms.client_cert.cert_path),
            "client_key": str(kms.client_cert.key_path)}}
        path = tmp_path / "canary.yaml"
        path.write_text(yaml.safe_dump(inventory))
        reports = tmp_path / "reports"
        proc = subprocess.run([*VCRYPT, "run", "--inventory", str(path), "--reports", str(reports)], cwd=ROOT,
                              capture_output=True, text=True, timeout=900,
                              env={**os.environ, "VCRYPT_CANARY_PASSWORD": password})
    run_dir = _latest_run(reports)
    assert (run_dir / "results.json").exists(), proc.stdout[-3000:]
    key_lines = [line for line in client_key.splitlines() if "-----" not in line and len(line) >= 16]
    hits = []
    for file in run_dir.rglob("*"):
        if file.is_file():
            data = file.read_bytes().decode("utf-8", "replace")
            if password in data or any(line in data for line in key_lines):
                hits.append(str(file.relative_to(run_dir)))
    assert not hits, f"secrets found in: {hits}"
    assert password not in proc.stdout + proc.stderr


@pytest.mark.parametrize(("workers", "how"), [([], "sigterm"), (["-n", "2"], "ctrl-c"), (["-n", "2"], "sigterm")])
def test_a_test_interrupted_in_its_body_is_not_a_pass_and_the_run_says_interrupted(tmp_path, workers, how):
    reports, flag = tmp_path / "reports", tmp_path / "in-body"
    proc = subprocess.Popen([*VCRYPT, "run", "--reports", str(reports), *workers,
                             "--suites", str(SCENARIOS / "scenario_interrupt.py")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "VCRYPT_SCENARIO_FLAG": str(flag)})
    deadline = time.monotonic() + 120
    while not flag.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert flag.exists(), "the scenario never reached the test body"
    time.sleep(0.5)
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-3000:]
    run_dir = _latest_run(reports)
    tests = {t["name"]: t for t in json.loads((run_dir / "results.json").read_text())["tests"]}
    assert tests["test_passes_before_the_interruption"]["outcome"] == "passed"
    hung = tests["test_is_interrupted_in_its_body"]
    assert hung["outcome"] == "interrupted" and "interrupted" in hung["message"], hung
    assert json.loads((run_dir / "run.json").read_text())["interrupted"] is True
    findings = json.loads((run_dir / "oscal-assessment-results.json").read_text())["assessment-results"]["results"][0]["findings"]
    generate = next(f for f in findings if f["target"]["target-id"] == "KMS-GENERATE"
                    or any(p["value"] == "KMS-GENERATE" for p in f.get("props", []) if p["name"] == "rule-id"))
    assert generate["target"]["status"]["state"] == "not-satisfied"
    summary = out[out.index("rule "):]
    assert re.search(r"KMS-GENERATE\s+not run", summary), summary
    assert "interrupted" in summary.lower()
    html = (run_dir / "report.html").read_text()
    assert 'id="interrupted"' in html
    allure = [json.loads(p.read_text()) for p in (run_dir / "allure-results").glob("*-result.json")]
    statuses = {r["name"]: r.get("status") for r in allure}
    assert statuses.get("test_is_interrupted_in_its_body") != "passed", statuses
    assert not _kms_processes()


def test_a_refusal_test_cannot_pass_while_its_kms_is_dead(tmp_path):
    reports = tmp_path / "reports"
    proc = subprocess.run([*VCRYPT, "run", "--reports", str(reports), "--suites", str(SCENARIOS / "scenario_kms_killed.py")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    tests = {t["name"]: t for t in json.loads((_latest_run(reports) / "results.json").read_text())["tests"]}
    for name in ("test_evt_key_create", "test_kms_generate_refusal", "test_a_naive_refusal_test_that_only_checks_the_failure"):
        assert tests[name]["outcome"] == "error" and tests[name]["category"] == "environment_error", (name, tests[name])
        assert "KMS 127.0.0.1:" in tests[name]["message"], tests[name]
    assert "passed, but a pass seen while a KMS" in tests["test_a_naive_refusal_test_that_only_checks_the_failure"]["message"]
    assert proc.returncode != 0
    assert "0 product failures, 3 environment errors" in proc.stdout
    assert not _kms_processes()


def test_a_hung_kms_gives_environment_errors_naming_it_in_seconds(tmp_path):
    reports, pgid_file = tmp_path / "reports", tmp_path / "kms.pgid"
    started = time.monotonic()
    try:
        proc = subprocess.run([*VCRYPT, "run", "--reports", str(reports), "--suites", str(SCENARIOS / "scenario_kms_hung.py")],
                              cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "VCRYPT_SCENARIO_PGID": str(pgid_file)})
    finally:
        if pgid_file.exists():  # whatever happened: never leave a stopped KMS behind
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.killpg(int(pgid_file.read_text()), sig)
                except ProcessLookupError:
                    pass
    elapsed = time.monotonic() - started
    tests = {t["nodeid"].split("::")[-1]: t for t in json.loads((_latest_run(reports) / "results.json").read_text())["tests"]}
    needing_kms = [n for n in tests if n.startswith(("test_a_key", "test_a_vm", "test_more_keys"))]
    assert len(needing_kms) == 6
    for name in needing_kms:
        assert tests[name]["outcome"] == "error" and tests[name]["category"] == "environment_error", (name, tests[name])
        assert "KMS 127.0.0.1:" in tests[name]["message"] or "KMS shared" in tests[name]["message"], tests[name]
    tripped = [n for n in needing_kms if "circuit breaker" in tests[n]["message"]]
    assert len(tripped) >= 4, {n: tests[n]["message"] for n in needing_kms}
    assert tests["test_what_needs_no_kms_still_passes"]["outcome"] == "passed"
    assert "0 product failures, 6 environment errors" in proc.stdout, proc.stdout[-3000:]
    assert elapsed < 90, f"a hung KMS held the run for {elapsed:.0f} s"
    assert not _kms_processes()


def test_a_canary_password_in_pytests_own_failure_text_with_showlocals_reaches_no_file(tmp_path):
    password = "canary-" + secrets.token_hex(12)
    inventory = yaml.safe_load((ROOT / "inventories" / "fake.yaml").read_text())
    for entry in inventory["vcenters"]:
        entry["password_env"] = "VCRYPT_CANARY_PASSWORD"
    path = tmp_path / "canary.yaml"
    path.write_text(yaml.safe_dump(inventory))
    reports = tmp_path / "reports"
    proc = subprocess.run([*VCRYPT, "run", "--inventory", str(path), "--reports", str(reports),
                           "--suites", str(SCENARIOS / "scenario_secret_locals.py"), "--", "-l", "-rA"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "VCRYPT_CANARY_PASSWORD": password})
    run_dir = _latest_run(reports)
    tests = {t["name"]: t for t in json.loads((run_dir / "results.json").read_text())["tests"]}
    failing = tests["test_a_failing_cross_vcenter_test_with_a_credential_in_its_locals"]
    assert failing["outcome"] == "failed", failing  # it ran and failed with the credential in hand
    hits = [str(f.relative_to(run_dir)) for f in run_dir.rglob("*")
            if f.is_file() and password in f.read_bytes().decode("utf-8", "replace")]
    assert not hits, f"the canary password is in: {hits}"
    junit = (run_dir / "junit.xml").read_text()
    assert "credential" in junit and "***" in junit  # pytest's text is there, scrubbed
    assert list((run_dir / "allure-results").glob("*-result.json"))
    assert password not in proc.stdout + proc.stderr
