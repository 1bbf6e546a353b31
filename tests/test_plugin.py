"""The plugin's gates and classification, seen from a pytest run of small suites (pytester)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


def _inventory(tmp: Path, **changes: object) -> Path:
    data = yaml.safe_load((ROOT / "inventories" / "fake.yaml").read_text())
    for section, value in changes.items():
        data[section] = {**data.get(section, {}), **value} if isinstance(value, dict) else value
    path = tmp / "inventory.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(pytester: pytest.Pytester, source: str, inventory: Path) -> tuple[pytest.RunResult, dict]:
    pytester.makepyfile(test_suite=source)
    run_dir = pytester.path / "run"
    result = pytester.runpytest_subprocess("--inventory", str(inventory), "--run-dir", str(run_dir), "-rs",
                                           "-p", "no:cacheprovider")
    results = json.loads((run_dir / "results.json").read_text()) if (run_dir / "results.json").exists() else {}
    return result, {t["name"]: t for t in results.get("tests", [])}


def test_an_unknown_rule_id_is_a_collection_error(pytester, tmp_path):
    pytester.makepyfile(test_x='import pytest\n@pytest.mark.rule("NO-SUCH-RULE")\ndef test_a(): pass\n')
    result = pytester.runpytest_subprocess("--inventory", str(_inventory(tmp_path)), "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown rule id 'NO-SUCH-RULE'" in result.stderr.str()


def test_an_undeclared_capability_skips_with_its_name(pytester, tmp_path):
    inventory = _inventory(tmp_path, features={"instant_clone": False})
    source = ('import pytest\n@pytest.mark.rule("IC-INHERIT")\n@pytest.mark.requires("instant_clone")\n'
              '@pytest.mark.test_id("00000000-0000-4000-8000-000000000001")\ndef test_ic(): pass\n')
    result, tests = _run(pytester, source, inventory)
    assert result.ret == 0
    assert tests["test_ic"]["outcome"] == "skipped" and tests["test_ic"]["category"] == "capability_skip"
    assert "lacks instant_clone" in tests["test_ic"]["message"]


def test_destructive_tests_need_the_inventory_to_allow_them(pytester, tmp_path):
    inventory = _inventory(tmp_path, safety={"allow_destructive": False})
    source = ('import pytest\n@pytest.mark.rule("PUSH-HA")\n@pytest.mark.destructive\n'
              '@pytest.mark.test_id("00000000-0000-4000-8000-000000000002")\ndef test_d(): raise AssertionError\n')
    _, tests = _run(pytester, source, inventory)
    assert tests["test_d"]["category"] == "safety_skip"


def test_without_mutations_scratch_skips_and_says_why(pytester, tmp_path):
    inventory = _inventory(tmp_path, safety={"allow_mutations": False, "allow_destructive": False})
    source = ('import pytest\n@pytest.mark.rule("OP-STATE")\n@pytest.mark.test_id("00000000-0000-4000-8000-000000000003")\n'
              'def test_s(scratch): raise AssertionError\n')
    _, tests = _run(pytester, source, inventory)
    assert tests["test_s"]["outcome"] == "skipped"
    assert "allow_mutations" in tests["test_s"]["message"]


def test_rules_outside_the_targets_version_skip_by_version(pytester, tmp_path):
    source = ('import pytest\n@pytest.mark.rule("CLONE-PRE7")\n@pytest.mark.test_id("00000000-0000-4000-8000-000000000004")\n'
              'def test_pre7(): raise AssertionError\n')
    _, tests = _run(pytester, source, _inventory(tmp_path))
    assert tests["test_pre7"]["category"] == "version_skip"
    assert "7.0.3" in tests["test_pre7"]["message"]


def test_a_failing_assertion_is_a_product_failure_and_an_outage_is_an_environment_error(pytester, tmp_path):
    source = ('import pytest\nfrom harness.vsphere.errors import TaskTimeout\n'
              '@pytest.mark.rule("OP-STATE")\n@pytest.mark.test_id("00000000-0000-4000-8000-000000000005")\n'
              'def test_product(): assert 1 == 2\n'
              '@pytest.mark.rule("OP-STATE")\n@pytest.mark.test_id("00000000-0000-4000-8000-000000000006")\n'
              'def test_timeout(): raise TaskTimeout("a task", "task", 1.0, "running")\n')
    result, tests = _run(pytester, source, _inventory(tmp_path))
    assert tests["test_product"]["outcome"] == "failed" and tests["test_product"]["category"] == "product_failure"
    assert tests["test_timeout"]["outcome"] == "error" and tests["test_timeout"]["category"] == "environment_error"
    result.assert_outcomes(passed=0, failed=1, errors=1)


def test_compliance_mode_fails_a_run_with_skipped_or_missing_rules(pytester, tmp_path):
    pytester.makepyfile(test_c='import pytest\n@pytest.mark.rule("OP-STATE")\n'
                               '@pytest.mark.test_id("00000000-0000-4000-8000-000000000007")\ndef test_ok(): pass\n')
    run_dir = pytester.path / "run"
    result = pytester.runpytest_subprocess("--inventory", str(_inventory(tmp_path)), "--run-dir", str(run_dir),
                                           "--compliance", "-p", "no:cacheprovider")
    assert result.ret == 1
    run = json.loads((run_dir / "run.json").read_text())
    assert "KMS-GENERATE: not run" in run["compliance_gaps"]


def test_the_rules_option_selects_only_the_tests_of_those_rules(pytester, tmp_path):
    source = ('import pytest\n@pytest.mark.rule("OP-STATE")\n@pytest.mark.test_id("00000000-0000-4000-8000-000000000008")\n'
              'def test_state(): pass\n@pytest.mark.rule("KMS-GENERATE")\n'
              '@pytest.mark.test_id("00000000-0000-4000-8000-000000000009")\ndef test_other(): pass\n')
    pytester.makepyfile(test_sel=source)
    result = pytester.runpytest_subprocess("--inventory", str(_inventory(tmp_path)), "--rules", "OP-STATE",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, deselected=1)


def test_a_version_skip_wins_over_a_session_fixture_that_errors(pytester, tmp_path):
    """A rule outside the declared version skips by version even if a session fixture it uses fails."""
    inventory = _inventory(tmp_path, vcenters=[{**yaml.safe_load((ROOT / "inventories" / "vcsim.yaml").read_text())[
        "vcenters"][0], "url": "https://127.0.0.1:9/sdk"}])
    source = ('import pytest\n@pytest.fixture(scope="session")\ndef broken(): raise RuntimeError("provider")\n'
              '@pytest.mark.rule("SNAP-PRE7")\n@pytest.mark.test_id("00000000-0000-4000-8000-00000000000a")\n'
              'def test_pre7(broken): raise AssertionError\n')
    _, tests = _run(pytester, source, inventory)
    assert tests["test_pre7"]["category"] == "version_skip", tests
    assert "is declared as 7.0.3" in tests["test_pre7"]["message"]
