"""`vcrypt run` on inventories/fake-nkp.yaml (issue 25 family 5): the suites on a declared Native Key Provider.

The NKP is every vCenter's provider (restored on vc-b), so: nothing fails or errors; a test whose KMS-side
checks read an NKP key is skipped naming the Native Key Provider (never passed); the NKP rules pass, except
NKP-XVC-MISSING, whose destination cannot lack the NKP here (a capability skip). One run of the KMS,
operations and NKP suites, shared here.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_run_fake import _run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def nkp_run(tmp_path_factory: pytest.TempPathFactory):
    return _run(tmp_path_factory.mktemp("fake-nkp"), "-n", "2", "--inventory", str(ROOT / "inventories" / "fake-nkp.yaml"),
                "--", "-k", "test_kms or test_operations or native_key_provider")


def _tests(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "results.json").read_text())["tests"]


def test_the_suites_on_a_native_key_provider_neither_fail_nor_error(nkp_run):
    proc, run_dir = nkp_run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    bad = [(t["name"], t["outcome"], t["message"]) for t in _tests(run_dir) if t["outcome"] in ("failed", "error")]
    assert not bad, bad


def test_kms_side_checks_on_an_nkp_key_are_skipped_naming_it_never_passed(nkp_run):
    _, run_dir = nkp_run
    tests = _tests(run_dir)
    generate = [t for t in tests if "KMS-GENERATE" in t["rules"]]
    assert generate and all(t["outcome"] == "skipped" and t["message"].startswith("capability:")
                            and "Native Key Provider" in t["message"] for t in generate), generate
    outcomes = {t["name"].split("[")[0]: t["outcome"] for t in tests if any(r.startswith("NKP-") for r in t["rules"])}
    assert outcomes == {
        "test_a_native_key_provider_is_listed_as_native_and_encrypts_a_vm_with_a_key_vcenter_made": "passed",
        "test_an_nkp_encrypted_vm_cannot_go_to_a_vcenter_without_that_native_key_provider": "skipped",
        "test_with_the_native_key_provider_restored_on_the_destination_an_nkp_encrypted_vm_crosses_on_its_key": "passed",
        "test_a_native_key_provider_encrypts_only_once_it_has_been_backed_up": "passed"}
