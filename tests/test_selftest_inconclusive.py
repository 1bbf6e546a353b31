"""A defect whose tests errored for environment reasons is `inconclusive` and re-run once, never `MISSED`.

Issue 23: on a loaded 2-core machine `vcrypt selftest` printed `snap-branches-half MISSED -`: the
rule's only test had ended as an environment error (a deadline passed under load), which is not a
product failure, so the defect counted as missed, and nothing said why. These tests script the
sessions (a pool that writes results.json as a session would) so no fake or KMS is started.
"""
from __future__ import annotations

import json
from pathlib import Path

from harness.commands import selftest
from tests.burners import cpu_burners  # noqa: F401 - fixture

NODE = "suites/test_rekey_snapshots.py::test_a_shallow_recrypt_of_a_vm_whose_snapshots_form_a_tree_is_refused"
ENV_ERROR = {"outcome": "error", "category": "environment_error",
             "message": "KMS 127.0.0.1:5696 unreachable (no answer within 2 s); down since t::a"}
FAILED = {"outcome": "failed", "category": "product_failure",
          "message": "AssertionError: state changed although the operation was refused"}
PASSED = {"outcome": "passed", "category": None, "message": None}


class ScriptedPool:
    """Stands in for the worker pool: each session writes the next scripted results.json."""

    def __init__(self, *sessions: dict[str, object] | list[dict[str, object]] | None) -> None:
        self.sessions = list(sessions)
        self.calls = 0
        self.rules_asked: list[str] = []

    def run(self, args: list[str]) -> dict[str, object]:
        scripted = self.sessions[self.calls]
        self.calls += 1
        run_dir = Path(args[args.index("--run-dir") + 1])
        if scripted is None:  # the session wrote nothing (a worker that died)
            return {"exit": -1, "output": "worker died"}
        run_dir.mkdir(parents=True, exist_ok=True)
        self.rules_asked.append(args[args.index("--rules") + 1])
        entries = scripted if isinstance(scripted, list) else [{"nodeid": NODE, "rules": ["SNAP-BRANCHES"], **scripted}]
        (run_dir / "results.json").write_text(json.dumps({"tests": entries}), encoding="utf-8")
        return {"exit": 1, "output": ""}


def _check(pool: ScriptedPool, tmp_path: Path) -> selftest.Outcome:
    return selftest.check_defect("SNAP-BRANCHES", "snap-branches-half", tmp_path, Path("suites"), pool)  # type: ignore[arg-type]


def test_an_environment_error_makes_the_defect_inconclusive_and_it_is_rerun_once_and_then_caught(tmp_path):
    pool = ScriptedPool(ENV_ERROR, FAILED)
    outcome = _check(pool, tmp_path)
    assert pool.calls == 2, "an environment-errored defect was not re-run"
    assert outcome.caught and getattr(outcome, "verdict", None) == "caught"
    assert outcome.failed_tests == [NODE]


def test_a_defect_errored_twice_is_inconclusive_never_missed(tmp_path):
    pool = ScriptedPool(ENV_ERROR, ENV_ERROR)
    outcome = _check(pool, tmp_path)
    assert pool.calls == 2
    assert not outcome.caught
    assert getattr(outcome, "verdict", None) == "inconclusive"


def test_a_session_that_wrote_no_results_is_inconclusive_and_rerun(tmp_path):
    pool = ScriptedPool(None, FAILED)
    outcome = _check(pool, tmp_path)
    assert pool.calls == 2 and outcome.caught


def test_a_defect_whose_tests_all_passed_is_missed_at_once_without_a_rerun(tmp_path):
    pool = ScriptedPool(PASSED)
    outcome = _check(pool, tmp_path)
    assert pool.calls == 1
    assert getattr(outcome, "verdict", None) == "missed"


def test_a_defect_not_caught_is_printed_with_each_tests_outcome_and_message(tmp_path):
    outcome = _check(ScriptedPool(ENV_ERROR, ENV_ERROR), tmp_path)
    lines = selftest.outcome_lines(outcome)
    assert "INCONCLUSIVE" in lines[0] and "MISSED" not in "\n".join(lines)
    assert any("error" in line and "no answer within 2 s" in line and NODE.split("::")[-1] in line for line in lines[1:])


def test_an_imitating_defect_caught_as_an_error_is_caught_not_inconclusive(tmp_path):
    """`xvc-decrypt-refusal-is-login-failure` is caught exactly by an environment error."""
    pool = ScriptedPool(ENV_ERROR)
    outcome = selftest.check_defect("XVC-MIGRATE-NO-DECRYPT", "xvc-decrypt-refusal-is-login-failure", tmp_path,
                                    Path("suites"), pool)  # type: ignore[arg-type]
    assert pool.calls == 1 and outcome.caught


def test_with_cpu_burners_beside_it_the_selftest_still_catches_the_tree_defect_it_once_missed(
        cpu_burners, tmp_path):  # noqa: F811 - fixture
    """The finding itself, end to end: snap-branches-half with two (or one per core) busy loops running."""
    from tests.burners import burner_count
    pool = selftest.WorkerPool(1, tmp_path)
    try:
        outcome = selftest.check_defect("SNAP-BRANCHES", "snap-branches-half", tmp_path, selftest.ROOT / "suites", pool)
    finally:
        pool.close()
    assert len(cpu_burners) == burner_count() >= 2
    assert outcome.verdict == "caught", "\n".join(selftest.outcome_lines(outcome))


def test_a_baseline_test_that_errored_for_environment_reasons_is_rerun_once_with_its_rules_only(tmp_path):
    """Without a defect every test must pass; an environment error is re-run (its rules only), a failure is not."""
    first = [{"nodeid": "a::t1", "rules": ["OP-STATE"], **ENV_ERROR}, {"nodeid": "b::t2", "rules": ["SNAP-BRANCHES"], **PASSED}]
    pool = ScriptedPool(first, [{"nodeid": "a::t1", "rules": ["OP-STATE"], **PASSED}])
    outcome = selftest.check_baseline(["OP-STATE", "SNAP-BRANCHES"], tmp_path, Path("suites"), pool)  # type: ignore[arg-type]
    assert pool.rules_asked == ["OP-STATE,SNAP-BRANCHES", "OP-STATE"]
    assert outcome.caught and outcome.attempts == 2

    failing = [{"nodeid": "a::t1", "rules": ["OP-STATE"], **FAILED}]
    pool = ScriptedPool(failing)
    (tmp_path / "second").mkdir()
    outcome = selftest.check_baseline(["OP-STATE"], tmp_path / "second", Path("suites"), pool)  # type: ignore[arg-type]
    assert pool.calls == 1 and not outcome.caught and "a::t1: failed" in outcome.problem


def test_the_selftest_exits_3_when_a_defect_stays_inconclusive_and_1_when_one_is_missed(tmp_path):
    """Inconclusive is the machine's problem (exit 3, like a lab that did not answer), missed the harness's (1)."""
    for name in "abc":
        (tmp_path / name).mkdir()
    caught = _check(ScriptedPool(FAILED), tmp_path / "a")
    inconclusive = _check(ScriptedPool(ENV_ERROR, ENV_ERROR), tmp_path / "b")
    missed = _check(ScriptedPool(PASSED), tmp_path / "c")
    lines, code = selftest.summary([], [caught, inconclusive], [], 12.0)
    assert code == 3 and "1/2 defects caught (1 inconclusive" in lines[-1]
    assert any("INCONCLUSIVE" in line for line in lines) and not any("MISSED" in line for line in lines)
    assert selftest.summary([], [caught, inconclusive, missed], [], 12.0)[1] == 1
    assert selftest.summary([], [caught], ["R-X"], 12.0)[1] == 1
    assert selftest.summary([], [caught], [], 12.0)[1] == 0
