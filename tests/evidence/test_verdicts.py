"""Verdict aggregation and the tolerant run-folder loaders."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from harness.evidence import verdicts as v

from .conftest import EXPECTED, INJECTED, RUN_ID, T_PUSH, T_REKEY


def _t(outcome: str, category: str | None = None, rules: tuple[str, ...] = ("R-1",), message: str | None = None):
    return v.TestResult(
        nodeid=f"t::{outcome}-{category}", rules=rules, outcome=outcome, category=category, message=message
    )


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([], "not run"),
        ([("passed", None)], "passed"),
        ([("skipped", "capability_skip")], "skipped"),
        ([("skipped", "capability_skip"), ("passed", None)], "partly demonstrated"),  # every test must pass
        ([("skipped", "unconfirmed_skip"), ("passed", None)], "partly demonstrated"),
        ([("skipped", "safety_skip"), ("passed", None)], "partly demonstrated"),
        ([("skipped", "version_skip"), ("passed", None)], "passed"),  # a version skip is out of scope
        ([("skipped", "version_skip")], "not applicable"),
        ([("skipped", "version_skip"), ("skipped", "capability_skip")], "skipped"),
        ([("skipped", "unconfirmed_skip")], "skipped"),
        ([("deviation", "known_deviation"), ("passed", None)], "deviation"),
        ([("deviation", "known_deviation"), ("failed", "product_failure")], "failed"),
        ([("interrupted", "interrupted"), ("passed", None)], "partly demonstrated"),  # issue 23: a pass beside an unfinished test
        ([("not run", "not run"), ("passed", None)], "partly demonstrated"),  # selected, never started
        ([("not run", "not run")], "not run"),
        ([("interrupted", "interrupted")], "not run"),
        ([("interrupted", "interrupted"), ("error", "environment_error")], "error"),
        ([("passed", None), ("error", "environment_error")], "error"),
        ([("passed", None), ("error", "environment_error"), ("failed", "product_failure")], "failed"),
        ([("failed", "environment_error"), ("passed", None)], "error"),  # category refines the outcome
        ([("error", "product_failure")], "failed"),
        ([("failed", None)], "failed"),
        ([("xpassed?", None)], "error"),  # unknown outcomes never pass
    ],
)
def test_verdict_strongest_status_wins(outcomes: list[tuple[str, str | None]], expected: str) -> None:
    catalogue = [v.Rule(id="R-1"), v.Rule(id="R-2")]
    verdicts = v.rule_verdicts(catalogue, [_t(o, c) for o, c in outcomes])
    assert verdicts["R-1"].verdict == expected
    assert verdicts["R-2"].verdict == "not run"
    assert verdicts["R-2"].tests == ()


def test_partly_demonstrated_names_what_was_not_shown_and_fails_compliance() -> None:
    tests = [
        v.TestResult(nodeid="a::shown", name="shown", rules=("R-1",), outcome="passed"),
        v.TestResult(nodeid="a::gap", name="gap", rules=("R-1",), outcome="skipped", category="capability_skip",
                     message="capability: target lacks fault_injection"),
        v.TestResult(nodeid="a::old", name="old", rules=("R-2",), outcome="skipped", category="version_skip",
                     message="version: rule R-2 describes vSphere 6.5 to 6.7"),
        v.TestResult(nodeid="a::dev", name="dev", rules=("R-3",), outcome="deviation", category="known_deviation",
                     message="deviation: vcsim posts no event"),
    ]
    verdicts = v.rule_verdicts([v.Rule(id="R-1"), v.Rule(id="R-2"), v.Rule(id="R-3"), v.Rule(id="R-4")], tests)
    assert verdicts["R-1"].verdict == "partly demonstrated"
    assert verdicts["R-1"].gaps == ("gap: skipped (capability: target lacks fault_injection)",)
    assert verdicts["R-2"].verdict == "not applicable" and verdicts["R-2"].compliant
    assert verdicts["R-3"].label == "known deviation: not demonstrated on this target"
    assert v.compliance_gaps(verdicts) == [
        "R-1: partly demonstrated (capability: target lacks fault_injection)",
        "R-3: deviation (deviation: vcsim posts no event)",
        "R-4: not run",
    ]
    assert v.status_counts(tests) == {"passed": 1, "failed": 0, "error": 0, "skipped": 2, "deviation": 1}


def test_every_verdict_has_a_label_and_an_explanation() -> None:
    assert set(v.VERDICT_ORDER) == set(v.VERDICTS) == set(v.VERDICT_LABELS) == set(v.VERDICT_EXPLANATIONS)


def test_skipped_rule_keeps_reasons() -> None:
    tests = [
        _t("skipped", "capability_skip", message="vcsim lacks host key caches"),
        _t("skipped", "version_skip", message="applies before 7.0"),
    ]
    verdict = v.rule_verdicts([v.Rule(id="R-1")], tests)["R-1"]
    assert verdict.verdict == "skipped"
    assert verdict.reasons == ("vcsim lacks host key caches", "applies before 7.0")


def test_test_counted_once_per_rule_even_if_listed_twice() -> None:
    verdict = v.rule_verdicts([v.Rule(id="R-1")], [_t("passed", rules=("R-1", "R-1"))])["R-1"]
    assert len(verdict.tests) == 1


def test_run_folder_verdicts(run_dir: Path) -> None:
    catalogue = v.load_catalogue()
    verdicts = v.rule_verdicts(catalogue, v.load_results(run_dir))
    assert list(verdicts) == [r.id for r in catalogue]
    for rule_id, expected in EXPECTED.items():
        assert verdicts[rule_id].verdict == expected, rule_id
    unmapped = v.unmapped_tests(catalogue, v.load_results(run_dir))
    assert [t.rules for t in unmapped] == [("NOT-A-RULE",)]


def test_load_run_and_results(run_dir: Path) -> None:
    run = v.load_run(run_dir)
    assert run.run_id == RUN_ID
    assert [vc.tls_mode for vc in run.vcenters] == ["insecure (verification off)", "pinned SHA-256 thumbprint"]
    assert len(run.compliance_gaps) == 2
    assert run.kms_embedded is True and run.kms_servers[0].address == "127.0.0.1:5696"
    tests = v.load_results(run_dir)
    assert v.status_counts(tests) == {"passed": 4, "failed": 1, "error": 2, "skipped": 4}
    rekey = next(t for t in tests if t.test_id == T_REKEY)
    assert INJECTED in (rekey.message or "")


def test_load_evidence(run_dir: Path) -> None:
    tests = {t.test_id: t for t in v.load_results(run_dir)}
    evidence, problem = v.load_evidence(run_dir, tests[T_REKEY])
    assert problem is None and evidence is not None
    fault = evidence.calls[1]
    assert (fault.outcome, fault.fault_class) == ("fault", "vim.fault.GenericVmConfigFault")
    push, _ = v.load_evidence(run_dir, tests[T_PUSH])
    assert push is not None and push.host_keys is not None
    assert push.host_keys.hosts == ("esx-01", "esx-02", "esx-03")
    assert push.host_keys.holds["esx-02"] == frozenset({"vcrypt-kms/7"})


def test_loaders_tolerate_minimal_files(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text("{}")
    (tmp_path / "results.json").write_text(
        json.dumps({"tests": [{"nodeid": "a::b", "outcome": "passed", "evidence_file": "evidence/x.json"}]})
    )
    run = v.load_run(tmp_path)
    assert run.run_id == tmp_path.name and run.vcenters == () and run.kms_embedded is None
    (test,) = v.load_results(tmp_path)
    assert test.rules == () and test.status == "passed"
    evidence, problem = v.load_evidence(tmp_path, test)
    assert evidence is None and problem == "evidence file missing: evidence/x.json"
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "x.json").write_text(
        json.dumps({"calls": [{"method": "M"}], "host_keys": {"holds": {"h": ["k"]}}})
    )
    evidence, problem = v.load_evidence(tmp_path, test)
    assert problem is None and evidence is not None
    assert evidence.calls[0].seq == 1 and evidence.calls[0].fault_class is None
    assert evidence.host_keys is not None and evidence.host_keys.hosts == ("h",) and evidence.host_keys.keys == ("k",)


def test_evidence_path_cannot_escape_run_folder(tmp_path: Path) -> None:
    (tmp_path / "secret.json").write_text("{}")
    run = tmp_path / "run"
    run.mkdir()
    test = v.TestResult(nodeid="a", evidence_file="../secret.json")
    assert v.evidence_path(run, test) is None
    assert v.load_evidence(run, test) == (None, "evidence path outside the run folder: ../secret.json")


def test_catalogue_from_yaml_has_every_rule() -> None:
    catalogue = v.load_catalogue()
    assert len(catalogue) == len({r.id for r in catalogue}) >= 51
    rule = next(r for r in catalogue if r.id == "KMS-REQUIRED")
    assert rule.area_title == "KMS and keys" and rule.since == "6.5" and rule.kind == "safe"


@pytest.mark.parametrize("shape", ["dicts", "objects", "mapping"])
def test_catalogue_prefers_harness_rules_loader(monkeypatch: pytest.MonkeyPatch, shape: str) -> None:
    rows = [
        {
            "id": "X-1",
            "area": "x",
            "area_title": "X things",
            "since": "7.0",
            "until": None,
            "kind": "safe",
            "kind_note": "safe",
            "text": "t",
            "observe": "o",
        }
    ]
    data: object = {
        "dicts": rows,
        "objects": [types.SimpleNamespace(**rows[0])],
        "mapping": {"X-1": types.SimpleNamespace(**rows[0])},
    }[shape]
    fake = types.ModuleType("harness.rules")
    fake.load_rules = lambda: data  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "harness.rules", fake)
    assert v.load_catalogue() == [
        v.Rule(
            id="X-1", area="x", area_title="X things", since="7.0", kind="safe", kind_note="safe", text="t", observe="o"
        )
    ]


def test_reads_what_the_recorder_writes(tmp_path: Path) -> None:
    """Contract with harness/evidence/recorder.py: its JSON loads without loss."""
    recorder_mod = pytest.importorskip("harness.evidence.recorder")
    rec = recorder_mod.Recorder(test_id="t-1", nodeid="suites/x.py::t")
    call = rec.start_call("vc-a", "ReconfigVM_Task", "vim.VirtualMachine:vm-1", {"spec": "s"})
    call.finish_ok({"state": "success"}, 0.25)
    rec.observe("after", "vc-a", "vim.VirtualMachine:vm-1", "after", {"config.keyId": "k"})
    rec.kmip_read("Get", "kms-1", "7", "ok")
    rec.note("n", "value")
    rec.record_host_keys({"esx-1": ["k1"], "esx-2": []})
    evidence = v.parse_evidence(json.loads(rec.write(tmp_path / "e.json").read_text()))
    assert evidence.calls[0].method == "ReconfigVM_Task" and evidence.calls[0].outcome == "ok"
    assert evidence.calls[0].result == '{"state": "success"}'
    assert evidence.observations[0].properties == {"config.keyId": "k"}
    assert evidence.kmip[0].uid == "7" and evidence.notes[0].value == "value"
    assert evidence.host_keys is not None and evidence.host_keys.holds["esx-1"] == frozenset({"k1"})
