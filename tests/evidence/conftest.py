"""A synthetic run folder with every kind of outcome, as the plugin would leave it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

RUN_ID = "20260101T120000Z-ab12cd"
INJECTED = "<script>alert('pwned')</script>"

T_CLONE = "0b6f3a52-0000-4000-8000-000000000001"
T_REKEY = "0b6f3a52-0000-4000-8000-000000000002"
T_KMS = "0b6f3a52-0000-4000-8000-000000000003"
T_PUSH = "0b6f3a52-0000-4000-8000-000000000004"
T_PUSH_SKIP = "0b6f3a52-0000-4000-8000-000000000005"
T_NOHA = "0b6f3a52-0000-4000-8000-000000000006"
T_PRE7 = "0b6f3a52-0000-4000-8000-000000000007"
T_EVT = "0b6f3a52-0000-4000-8000-000000000008"
T_KEEP_OK = "0b6f3a52-0000-4000-8000-000000000009"
T_KEEP_ERR = "0b6f3a52-0000-4000-8000-00000000000a"
T_ORPHAN = "0b6f3a52-0000-4000-8000-00000000000b"

# Expected verdicts of the rules the synthetic tests touch; every other rule is "not run".
EXPECTED = {
    "CLONE-ENCRYPT": "passed",
    "REKEY-SHALLOW": "failed",
    "DATA-AT-REST": "failed",
    "KMS-STATUS": "error",
    "PUSH-HA": "partly demonstrated",  # one pass and one capability skip: not every test passed
    "PUSH-NO-HA": "skipped",
    "SNAP-PRE7": "not applicable",  # its only test was skipped by version: outside the target's scope
    "EVT-KMS-UNREACHABLE": "skipped",
    "CLONE-KEEP": "error",  # one pass and one environment error: not decided
    "KMS-REQUIRED": "not run",
}


def _test(
    test_id: str,
    nodeid: str,
    rules: list[str],
    outcome: str,
    category: str | None = None,
    message: str | None = None,
    evidence: bool = False,
) -> dict[str, Any]:
    module, _, name = nodeid.partition("::")
    return {
        "nodeid": nodeid,
        "test_id": test_id,
        "name": name,
        "module": module,
        "area": rules[0].split("-")[0].lower() if rules else "",
        "rules": rules,
        "outcome": outcome,
        "category": category,
        "message": message,
        "duration_s": 1.25,
        "evidence_file": f"evidence/{test_id}.json" if evidence else None,
    }


def _call(
    seq: int,
    method: str,
    target: str,
    outcome: str = "ok",
    fault: dict[str, str] | None = None,
    task: str | None = None,
    args: dict[str, str] | None = None,
    vcenter: str = "vc-a",
) -> dict[str, Any]:
    return {
        "seq": seq,
        "vcenter": vcenter,
        "method": method,
        "target": target,
        "args": args or {},
        "task": task,
        "outcome": outcome,
        "result": "vim.VirtualMachine:vm-101" if outcome == "ok" and task else None,
        "fault": fault,
        "duration_ms": 12.5 * seq,
        "started_at": f"2026-01-01T12:00:{seq:02d}+00:00",
    }


def _evidence(test_id: str, nodeid: str, **parts: Any) -> dict[str, Any]:
    return {
        "test_id": test_id,
        "nodeid": nodeid,
        "calls": [],
        "observations": [],
        "kmip": [],
        "notes": [],
        "host_keys": None,
        **parts,
    }


def make_run_folder(run_dir: Path) -> Path:
    """Write run.json, results.json, evidence/, junit.xml and allure-results/ into run_dir."""
    (run_dir / "evidence").mkdir(parents=True)
    (run_dir / "allure-results").mkdir()
    run = {
        "run_id": RUN_ID,
        "harness_version": "0.1.0",
        "started_at": "2026-01-01T12:00:00+00:00",
        "finished_at": "2026-01-01T12:03:12+00:00",
        "duration_s": 192.4,
        "startup_s": 3.1,
        "inventory": "inventories/fake.yaml",
        "target": "fake",
        "vcenters": [
            {
                "name": "vc-a",
                "target": "fake",
                "url": "https://vc-a.lab.local/sdk",
                "api_version": "8.0.3.0",
                "version": "8.0.3",
                "build": "24022515",
                "instance_uuid": "5f0a6c1e-1111-4222-8333-444455556666",
                "tls_mode": "insecure (verification off)",
            },
            {
                "name": "vc-b",
                "target": "fake",
                "url": "https://vc-b.lab.local/sdk",
                "api_version": "8.0.3.0",
                "version": "8.0.3",
                "build": "24022515",
                "instance_uuid": "5f0a6c1e-aaaa-4bbb-8ccc-ddddeeeeffff",
                "tls_mode": "pinned SHA-256 thumbprint",
            },
        ],
        "kms": {
            "embedded": True,
            "servers": [{"name": "kms-1", "address": "127.0.0.1:5696", "provider_id": "vcrypt-kms"}],
        },
        "compliance": True,
        "compliance_gaps": ["KMS-REQUIRED: not run", "PUSH-NO-HA: skipped"],
        "pytest_args": ["suites", "-m", "not destructive"],
        "exit_status": 1,
    }
    tests = [
        _test(
            T_CLONE, "suites/test_clone.py::test_clone_encrypts_destination", ["CLONE-ENCRYPT"], "passed", evidence=True
        ),
        _test(
            T_REKEY,
            "suites/test_rekey.py::test_shallow_rekey_keeps_ciphertext",
            ["REKEY-SHALLOW", "DATA-AT-REST"],
            "failed",
            "product_failure",
            f"disk ciphertext changed {INJECTED}",
            evidence=True,
        ),
        _test(
            T_KMS,
            "suites/test_kms.py::test_status_green",
            ["KMS-STATUS"],
            "error",
            "environment_error",
            "KMS unreachable: connection refused (127.0.0.1:5696)",
        ),
        _test(T_PUSH, "suites/test_push.py::test_ha_pushes_keys_to_all_hosts", ["PUSH-HA"], "passed", evidence=True),
        _test(
            T_PUSH_SKIP,
            "suites/test_push.py::test_ha_pushes_keys_powered_on",
            ["PUSH-HA"],
            "skipped",
            "capability_skip",
            "skipped: fake lacks powered-on key push",
        ),
        _test(
            T_NOHA,
            "suites/test_push.py::test_no_ha_limits_keys",
            ["PUSH-NO-HA"],
            "skipped",
            "capability_skip",
            "skipped: vcsim lacks host key caches",
        ),
        _test(
            T_PRE7,
            "suites/test_snapshots.py::test_pre7_shallow_needs_no_snapshots",
            ["SNAP-PRE7"],
            "skipped",
            "version_skip",
            "rule applies before vSphere 7.0; target is 8.0.3",
        ),
        _test(
            T_EVT,
            "suites/test_events.py::test_kms_unreachable_alarm",
            ["EVT-KMS-UNREACHABLE"],
            "skipped",
            "safety_skip",
            "destructive tests are not allowed by the inventory",
        ),
        _test(T_KEEP_OK, "suites/test_clone.py::test_clone_keeps_key", ["CLONE-KEEP"], "passed"),
        _test(
            T_KEEP_ERR,
            "suites/test_clone.py::test_clone_keeps_key_cross_host",
            ["CLONE-KEEP"],
            "failed",
            "environment_error",
            "Timeout waiting for task-77 (last state: running, 300 s)",
        ),
        _test(T_ORPHAN, "suites/test_misc.py::test_unknown_rule", ["NOT-A-RULE"], "passed"),
    ]
    (run_dir / "run.json").write_text(json.dumps(run, indent=2))
    (run_dir / "results.json").write_text(json.dumps({"tests": tests}, indent=2))

    evidences = {
        T_CLONE: _evidence(
            T_CLONE,
            tests[0]["nodeid"],
            calls=[
                _call(
                    1,
                    "CloneVM_Task",
                    "vim.VirtualMachine:vm-12",
                    task="task-41",
                    args={"name": "vcrypt-ab12-clone", "spec": "VirtualMachineCloneSpec(profile=VM Encryption Policy)"},
                ),
                _call(2, "RetrievePropertiesEx", "vim.PropertyCollector:propertyCollector"),
            ],
            observations=[
                {
                    "label": "destination after clone",
                    "vcenter": "vc-a",
                    "object": "vim.VirtualMachine:vm-101",
                    "phase": "after",
                    "properties": {"config.keyId": {"keyId": "7", "providerId": "vcrypt-kms"}},
                }
            ],
            kmip=[{"op": "Get", "server": "kms-1", "uid": "7", "result": "AES-256, active"}],
            notes=[{"label": "storage policy", "value": "VM Encryption Policy"}],
        ),
        T_REKEY: _evidence(
            T_REKEY,
            tests[1]["nodeid"],
            calls=[
                _call(1, "CryptoManagerKmip.GenerateKey", "vim.encryption.CryptoManagerKmip:CryptoManager"),
                _call(
                    2,
                    "ReconfigVM_Task",
                    "vim.VirtualMachine:vm-12",
                    outcome="fault",
                    task="task-42",
                    fault={"class": "vim.fault.GenericVmConfigFault", "message": f"rekey failed {INJECTED}"},
                    args={"spec": "crypto=CryptoSpecShallowRecrypt"},
                ),
            ],
            notes=[{"label": "ciphertext sha256 before/after", "value": ["ab01", "cd02"]}],
        ),
        T_PUSH: _evidence(
            T_PUSH,
            tests[3]["nodeid"],
            calls=[_call(1, "ReconfigureComputeResource_Task", "vim.ClusterComputeResource:domain-c7", task="task-50")],
            host_keys={
                "hosts": ["esx-01", "esx-02", "esx-03"],
                "keys": ["vcrypt-kms/7", "vcrypt-kms/8"],
                "holds": {"esx-01": ["vcrypt-kms/7", "vcrypt-kms/8"], "esx-02": ["vcrypt-kms/7"], "esx-03": []},
            },
        ),
    }
    for test_id, data in evidences.items():
        (run_dir / "evidence" / f"{test_id}.json").write_text(json.dumps(data, indent=2))
    (run_dir / "junit.xml").write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="vcrypt" tests="11"/></testsuites>\n'
    )
    (run_dir / "allure-results" / "0000-result.json").write_text('{"name": "test_clone_encrypts_destination"}\n')
    return run_dir


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run_folder(tmp_path / "reports" / RUN_ID)
