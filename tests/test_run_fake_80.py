"""The 8.0 fake as an 8.0 lab (issue 25): `vcrypt run --inventory inventories/fake-80.yaml` runs every rule that
applies to 8.0 with no failure, the pre-7 rules are not applicable, the fake reports vCenter and ESXi 8.0 Update 2
builds, and the PUSH-* verdicts rest on the documented per-host key status (GetCryptoKeyStatus), not on the
UNCONFIRMED ListKeys. One run, shared by every assertion here."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.rules import load_rules, version_tuple

ROOT = Path(__file__).resolve().parent.parent
VCRYPT = [sys.executable, "-c", "from harness.cli import main; main()"]
VERSION = "8.0.2"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    reports = tmp_path_factory.mktemp("eighty") / "reports"
    proc = subprocess.run([*VCRYPT, "run", "-i", "inventories/fake-80.yaml", "--reports", str(reports),
                           "--run-id", "r80"], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "100"})
    return proc, reports / "r80"


def _run_json(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "run.json").read_text())


def test_every_rule_for_80_passes_and_the_pre7_rules_are_not_applicable(run) -> None:
    proc, run_dir = run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    verdicts = _run_json(run_dir)["verdicts"]
    expected = {rule.id: "passed" if rule.applies_to(version_tuple(VERSION)) else "not applicable"
                for rule in load_rules().values()}
    assert verdicts == expected
    assert "not applicable" in expected.values() and "passed" in expected.values()


def test_the_80_fake_reports_80_u2_builds_and_api(run) -> None:
    _, run_dir = run
    vcenters = _run_json(run_dir)["vcenters"]
    assert {(vc["version"], vc["build"], vc["api_version"]) for vc in vcenters} == {(VERSION, "22385739", "8.0.2.0")}


def test_push_verdicts_rest_on_the_documented_per_host_key_status(run) -> None:
    _, run_dir = run
    tests = json.loads((run_dir / "results.json").read_text())["tests"]
    push = [t for t in tests if any(r in ("PUSH-HA", "PUSH-NO-HA", "PUSH-DRS") for r in t["rules"])]
    assert len(push) == 5, [t["name"] for t in push]
    for test in push:
        evidence = json.loads((run_dir / test["evidence_file"]).read_text())
        labels = [n["label"] for n in evidence["notes"]]
        assert "verdict rests on the documented per-host key status" in labels, (test["name"], labels)
        assert "host key caches read with GetCryptoKeyStatus" in labels and not any("UNCONFIRMED" in x for x in labels)
        methods = {c.get("method") for c in evidence["calls"]}
        assert "GetCryptoKeyStatus" in methods and "ListKeys" not in methods, (test["name"], methods)


def test_fake_80_differs_from_fake_only_in_version() -> None:
    from harness.inventory.schema import load_inventory
    fake, eighty = load_inventory(ROOT / "inventories" / "fake.yaml"), load_inventory(ROOT / "inventories" / "fake-80.yaml")
    assert [vc.version for vc in eighty.vcenters] == [VERSION, VERSION]
    for a, b in zip(fake.vcenters, eighty.vcenters, strict=True):
        assert a.model_dump(exclude={"version"}) == b.model_dump(exclude={"version"})
    assert fake.model_dump(exclude={"path", "vcenters"}) == eighty.model_dump(exclude={"path", "vcenters"})
