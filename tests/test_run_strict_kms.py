"""The default suites against the strict second KMS (github.com/ovh/kmip-go) in every mode (issue 22).

A KMS's own behaviour is never a product failure: with keys created Active, owner-only reads, a
credential required, KMIP 1.0/1.1 only, Transparent keys, idle disconnects (each alone and all at
once), every rule passes or is honestly not demonstrated (a `capability:` skip naming the KMS);
with a KMS that answers every operation with a result reason nobody expects ("chaos"), every test
that needs it is an environment error naming it, and none a product failure.

What runs, to stay fast on 2 cores (the full default run takes ~40 s with -n 2; a few rules ~18 s
with -n 0, where -n 2 would spend more on starting two workers' fakes than on the tests): the full
default run for `strictest` (the union of the behaviours) and `chaos`; each single behaviour on six
rules whose tests make vCenter create and fetch keys and read them on the KMS, on one and two
vCenters, which is where each behaviour bites. About 2 minutes with -n 2 (4.5 with -n 0).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kms.strict import strict_lab

ROOT = Path(__file__).resolve().parent.parent
VCRYPT = [sys.executable, "-c", "from harness.cli import main; main()"]
# Rules whose tests make vCenter create and fetch keys (Create/Activate/Get) and read them on the KMS
# (GetAttributes), on one and on two vCenters.
KMS_RULES = "KMS-GENERATE,KMS-SHARED,CLONE-ENCRYPT,REKEY-SHALLOW,REKEY-DEEP,XVC-MIGRATE"
SINGLE = ["plain", "active-keys", "owner-only", "credential", "kmip-1.1", "transparent", "idle-disconnect"]


def run(tmp: Path, mode: str, *args: str, read_identity: str = "reader") -> tuple[subprocess.CompletedProcess[str],
                                                                                 list[dict], Path]:
    with strict_lab(tmp, mode, read_identity=read_identity) as inventory:
        proc = subprocess.run([*VCRYPT, "run", "-i", str(inventory), "--reports", str(tmp / "reports"), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=900, env=dict(os.environ))
        addresses = [line.split("(", 1)[1].split(")", 1)[0] for line in proc.stdout.splitlines()
                     if line.startswith("preflight: kms.")]
    runs = [p for p in (tmp / "reports").iterdir() if p.name != "latest"] if (tmp / "reports").exists() else []
    assert runs, proc.stdout[-3000:] + proc.stderr[-3000:]
    tests = json.loads((runs[0] / "results.json").read_text())["tests"]
    (tmp / "kms-addresses").write_text("\n".join(addresses))
    return proc, tests, tmp


def product_failures(tests: list[dict]) -> list[str]:
    return [f"{t['nodeid']}: {str(t.get('message'))[:300]}" for t in tests
            if t["outcome"] == "failed" or t.get("category") == "product_failure"]


def check_honest(proc: subprocess.CompletedProcess[str], tests: list[dict]) -> None:
    """0 product failures, 0 errors; every test passed or skipped with its reason; exit 0."""
    assert not product_failures(tests), product_failures(tests)
    odd = [(t["nodeid"], t["outcome"], t.get("message")) for t in tests if t["outcome"] not in ("passed", "skipped")]
    assert not odd, odd
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert any(t["outcome"] == "passed" for t in tests)


@pytest.mark.parametrize("mode", SINGLE)
def test_each_kms_behaviour_alone_gives_no_product_failure(tmp_path: Path, mode: str) -> None:
    proc, tests, _ = run(tmp_path, mode, "-n", "0", "--rules", KMS_RULES)
    check_honest(proc, tests)
    skipped_for_kms = [t for t in tests if t["outcome"] == "skipped" and "not observable" in str(t.get("message"))]
    if mode == "owner-only":   # the harness reads with its own identity: the KMS-side checks are not observable
        assert skipped_for_kms and all("PERMISSION_DENIED" in t["message"] for t in skipped_for_kms)
    else:
        assert not skipped_for_kms, skipped_for_kms
    if mode == "kmip-1.1":
        assert "KMIP 1.1 negotiated" in proc.stdout
    if mode == "credential":
        assert "KMIP credential sent" in proc.stdout
        password = (tmp_path / "kms-shared.password").read_text()
        run_dir = next(p for p in (tmp_path / "reports").iterdir() if p.name != "latest")
        leaks = [f for f in run_dir.rglob("*") if f.is_file() and password.encode() in f.read_bytes()]
        assert not leaks and password not in proc.stdout + proc.stderr, leaks


def test_all_behaviours_at_once_on_the_full_default_run(tmp_path: Path) -> None:
    proc, tests, _ = run(tmp_path, "strictest", "-n", "2")
    check_honest(proc, tests)
    assert sum(t["outcome"] == "passed" for t in tests) >= 80, len(tests)


def test_a_kms_answering_every_operation_with_an_unexpected_reason_gives_no_product_failure(tmp_path: Path) -> None:
    proc, tests, tmp = run(tmp_path, "chaos", "-n", "2")
    assert not product_failures(tests), product_failures(tests)
    errors = [t for t in tests if t["outcome"] == "error"]
    assert errors and proc.returncode == 1
    addresses = (tmp / "kms-addresses").read_text().split()
    assert all(any(a in str(t.get("message")) for a in addresses) for t in errors), \
        [t["message"] for t in errors if not any(a in str(t.get("message")) for a in addresses)][:3]
    assert any("INDEX_OUT_OF_BOUNDS" in str(t.get("message")) for t in errors)


def test_without_a_read_identity_the_kms_side_checks_are_not_observable_and_the_rest_still_runs(tmp_path: Path) -> None:
    """`read_identity: none`: no KMIP read is made; tests whose only unobservable part is the KMS side are
    skipped naming the KMS, after their vCenter-side checks ran (the evidence holds their calls)."""
    proc, tests, _ = run(tmp_path, "plain", "-n", "0", "--rules", "KMS-GENERATE,CLONE-ENCRYPT,CLONE-DECRYPT",
                         read_identity="none")
    check_honest(proc, tests)
    unobservable = [t for t in tests if "not observable" in str(t.get("message"))]
    assert unobservable and all("gives the harness no read identity (read_identity: none)" in t["message"]
                                and t["category"] == "capability_skip" for t in unobservable)
    run_dir = next(p for p in (tmp_path / "reports").iterdir() if p.name != "latest")
    for test in unobservable:
        evidence = json.loads((run_dir / test["evidence_file"]).read_text())
        assert evidence["not_observable"] and evidence["calls"], test["name"]   # vCenter was driven all the same
        assert all(read["result"].startswith("not observable") for read in evidence["kmip"])
