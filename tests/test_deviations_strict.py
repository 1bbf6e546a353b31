"""A deviation entry covers exactly the failure it names, on the govmomi versions it was seen on (issue 23)."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.run.deviations import DEVIATION_KEY, Deviation, load
from harness.vcsim.pinned import GOVMOMI_VERSION

pytest_plugins = ["pytester"]

ENTRY = {"rule": "CLONE-KEEP", "test": "9e48ab40-f429-4e59-987b-52022c61d756", "vcsim_does": "a clone has no key",
         "source": "simulator/virtual_machine.go:CloneVMTask", "govmomi": ["v0.56.0"],
         "fails_with": {"message": "clone key None differs from the source's"}}


def _xfailed(message: str) -> tuple[SimpleNamespace, SimpleNamespace]:
    report = SimpleNamespace(when="call", outcome="skipped", skipped=True, failed=False, wasxfail="deviation: x",
                             longrepr="...")
    call = SimpleNamespace(excinfo=SimpleNamespace(typename="AssertionError", value=AssertionError(message)))
    return report, call


def _judge(entry: dict, report, call, running=("v0.56.0",), checks=()):  # noqa: ANN001, ANN202
    from harness.run.deviations import judge
    item = SimpleNamespace(stash={DEVIATION_KEY: Deviation.model_validate(entry)})
    return judge(item, call, report, list(running), list(checks))


def test_every_listed_entry_names_the_failure_it_expects_and_the_versions_it_was_seen_on():
    loaded = load("vcsim")
    assert loaded is not None
    for entry in loaded.listed.deviations:
        assert entry.fails_with.message or (entry.fails_with.check and entry.fails_with.observed), entry
        assert GOVMOMI_VERSION in entry.govmomi, entry


@pytest.mark.parametrize("broken", [{}, {"message": "x", "check": "y", "observed": "z"}, {"check": "only"},
                                    {"message": "("}])
def test_an_entry_without_one_clear_expected_failure_is_refused(broken):
    with pytest.raises(ValueError):
        Deviation.model_validate({**ENTRY, "fails_with": broken})


def test_the_failure_the_entry_names_is_a_deviation():
    report, call = _xfailed("clone key None differs from the source's ('p', 'k')")
    assert _judge(ENTRY, report, call) is None
    assert report.outcome == "skipped" and hasattr(report, "wasxfail")


def test_any_other_failure_of_a_listed_test_is_a_product_failure():
    report, call = _xfailed("clone: powered off, expected powered on")
    note = _judge(ENTRY, report, call)
    assert report.outcome == "failed" and not hasattr(report, "wasxfail")
    assert note.startswith("not the failure deviation entry 9e48ab40") and "powered off" in note


def test_a_failed_check_row_can_be_the_expected_failure():
    entry = {**ENTRY, "fails_with": {"check": "^snapshot s\\d key$", "observed": "\\(old\\)$"}}
    report, call = _xfailed("snapshot s1 key: expected k2 (new), observed k1 (old)")
    rows = [{"what": "snapshot s1 key", "observed": "k1 (old)", "passed": False}]
    assert _judge(entry, report, call, checks=rows) is None and report.outcome == "skipped"
    report, call = _xfailed("anything")
    assert _judge(entry, report, call, checks=[{**rows[0], "observed": "k3 (newer)"}]) is not None
    assert report.outcome == "failed"


@pytest.mark.parametrize("running", [("v0.57.0",), (None,), ()])
def test_on_an_unlisted_or_unknown_govmomi_the_entry_is_not_applied_and_says_so(running):
    report, call = _xfailed("clone key None differs from the source's ('p', 'k')")
    note = _judge(ENTRY, report, call, running=running)
    assert report.outcome == "failed" and "not applied" in note
    xpass = SimpleNamespace(when="call", outcome="failed", skipped=False, failed=True,
                            longrepr="[XPASS(strict)] deviation: x")
    assert "not applied" in _judge(ENTRY, xpass, SimpleNamespace(excinfo=None), running=running)
    assert xpass.outcome == "passed"


def test_a_progress_line_says_deviation_not_skipped(pytester, tmp_path):
    from tests.test_plugin import _inventory
    pytester.makepyfile(test_suite=(
        'import pytest\n@pytest.mark.rule("KMS-GENERATE")\n@pytest.mark.test_id("55555555-0000-4000-8000-000000000001")\n'
        '@pytest.mark.xfail(strict=True, reason="deviation: vcsim creates no key")\n'
        'def test_dev(): raise AssertionError("no key")\n'))
    result = pytester.runpytest_subprocess("--inventory", str(_inventory(tmp_path)), "--run-dir",
                                           str(pytester.path / "run"), "--progress", "lines", "-p", "no:cacheprovider")
    lines = [line for line in result.outlines if line.startswith("[1/1]")]
    assert lines and lines[0].split()[1] == "deviation", result.outlines


def test_summary_md_gives_the_reason_of_the_test_that_decided_the_verdict(tmp_path):
    from harness.evidence.summary_md import render_summary
    tests = [{"nodeid": "a", "name": "a", "rules": ["OP-STATE"], "outcome": "skipped", "category": "capability_skip",
              "message": "capability: lacks snapshots"},
             {"nodeid": "b", "name": "b", "rules": ["OP-STATE"], "outcome": "failed", "category": "product_failure",
              "message": "decrypt of a powered-on VM: expected a refusal, but the operation succeeded"}]
    (tmp_path / "results.json").write_text(json.dumps({"tests": tests}))
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "r", "exit_status": 1}))
    lines = render_summary(tmp_path).splitlines()
    at = next(i for i, x in enumerate(lines) if "OP-STATE" in x)
    entry = " ".join([lines[at]] + [x for x in lines[at + 1:at + 3] if x.startswith("  ")])  # the rule and its cause
    assert "deciding test `b`" in entry and "expected a refusal" in entry and "capability" not in entry, entry


@pytest.mark.parametrize(("change", "says"), [
    ({"govmomi": ["v0.1.0"]}, "not applied: the running vcsim is govmomi v0.56.0"),
    ({"fails_with": {"message": "a failure vcsim never shows"}}, "not the failure deviation entry"),
])
def test_on_a_real_vcsim_an_entry_for_another_version_or_failure_leaves_a_product_failure(tmp_path, change, says):
    from tests.test_run_vcsim import _deviations_copy, _run, _tests
    from tests.vcsim.conftest import require_current_vcsim
    require_current_vcsim()
    test_id = ENTRY["test"]

    def edit(entries: list[dict]) -> None:
        next(e for e in entries if e["test"] == test_id).update(change)
    code, output, run_dir = _run(tmp_path, "0", "CLONE-KEEP", deviations=_deviations_copy(tmp_path, edit))
    assert code == 1, output
    [test] = [t for t in _tests(run_dir) if t["test_id"] == test_id]
    assert test["outcome"] == "failed" and test["category"] == "product_failure", test
    assert says in test["deviation_note"] and says in " ".join(output.split()), output   # lines wrap at the width
