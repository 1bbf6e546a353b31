"""The plugin's gates and classification, seen from a pytest run of small suites (pytester)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
import re
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
    assert result.ret == 5  # issue 23: every test skipped, nothing was demonstrated: not a success
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


def test_deviations_unconfirmed_skips_and_partly_demonstrated_rules_agree_everywhere_and_fail_compliance(
        pytester, tmp_path):
    source = '''import pytest
@pytest.mark.rule("OP-STATE")
@pytest.mark.test_id("00000000-0000-4000-8000-0000000000a1")
def test_shown(): pass
@pytest.mark.rule("OP-STATE")
@pytest.mark.test_id("00000000-0000-4000-8000-0000000000a2")
def test_unconfirmed(): pytest.skip("unconfirmed: the target answered, but the harness cannot read the result")
@pytest.mark.rule("KMS-GENERATE")
@pytest.mark.test_id("00000000-0000-4000-8000-0000000000a3")
@pytest.mark.xfail(strict=True, reason="deviation: vcsim creates no key")
def test_deviating(): assert False, "no key"
@pytest.mark.rule("KMS-STATUS")
@pytest.mark.test_id("00000000-0000-4000-8000-0000000000a4")
@pytest.mark.xfail(strict=True, reason="deviation: vcsim reports no status")
def test_stale(): pass
@pytest.mark.rule("CLONE-PRE7")
@pytest.mark.test_id("00000000-0000-4000-8000-0000000000a5")
def test_pre7(): raise AssertionError
'''
    pytester.makepyfile(test_contracts=source)
    run_dir = pytester.path / "run"
    result = pytester.runpytest_subprocess("--inventory", str(_inventory(tmp_path)), "--run-dir", str(run_dir),
                                           "--compliance", "--junitxml", str(run_dir / "junit.xml"),
                                           "-p", "no:cacheprovider")
    assert result.ret == 1
    tests = {t["name"]: t for t in json.loads((run_dir / "results.json").read_text())["tests"]}
    assert tests["test_unconfirmed"]["category"] == "unconfirmed_skip"
    deviating = tests["test_deviating"]
    assert (deviating["outcome"], deviating["category"], deviating["message"]) == (
        "deviation", "known_deviation", "deviation: vcsim creates no key")
    stale = tests["test_stale"]
    assert (stale["outcome"], stale["category"]) == ("failed", "product_failure")
    assert stale["message"].startswith("stale deviation: vcsim reports no status")

    gaps = json.loads((run_dir / "run.json").read_text())["compliance_gaps"]
    assert "OP-STATE: partly demonstrated (unconfirmed: the target answered, but the harness cannot read the result)" in gaps
    assert "KMS-GENERATE: deviation (deviation: vcsim creates no key)" in gaps
    assert not any(g.startswith("CLONE-PRE7") for g in gaps)  # not applicable to 7.0.3: out of scope, no gap

    junit = (run_dir / "junit.xml").read_text()
    assert 'name="verdict:OP-STATE" value="partly demonstrated"' in junit  # the verdict alone, the reason apart
    assert 'name="reason:OP-STATE" value="test_unconfirmed: skipped (unconfirmed:' in junit
    assert 'name="verdict:KMS-GENERATE" value="deviation"' in junit
    assert 'name="reason:KMS-GENERATE" value="test_deviating: deviation' in junit
    assert 'name="verdict:CLONE-PRE7" value="not applicable"' in junit
    assert 'name="reason:CLONE-PRE7"' not in junit
    # issue 24: the compliance verdict is a property and a failing test case, so a CI panel is not green
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["compliance"].startswith("FAIL: ") and "OP-STATE" in props["compliance"]
    assert props["seeded_defects"] == "none"
    case = next(tc for tc in suite.iter("testcase") if tc.get("name") == "compliance")
    assert case.find("failure").get("message").startswith("Compliance: FAIL — ")
    assert "KMS-GENERATE: deviation (deviation: vcsim creates no key)" in case.find("failure").text
    assert int(suite.get("failures")) >= 1 and int(suite.get("tests")) == len(list(suite.iter("testcase")))
    assert 'name="category" value="known_deviation"' in junit

    html = (run_dir / "report.html").read_text()
    rows = dict(re.findall(r'data-rule="([A-Z0-9-]+)" data-verdict="([a-z ]+)"', html))
    assert (rows["OP-STATE"], rows["KMS-GENERATE"], rows["KMS-STATUS"], rows["CLONE-PRE7"]) == (
        "partly demonstrated", "deviation", "failed", "not applicable")
    assert f"yes – {len(gaps)} rule(s) not demonstrated, so the run fails (exit status 1)" in html
    assert "known deviation: not demonstrated on this target" in html

    oscal = json.loads((run_dir / "oscal-assessment-results.json").read_text())["assessment-results"]["results"][0]
    findings = {p["value"]: f for f in oscal["findings"] for p in f["props"] if p["name"] == "rule-id"}
    assert "CLONE-PRE7" not in findings and "CLONE-PRE7" in oscal["remarks"]
    for rule_id in ("OP-STATE", "KMS-GENERATE"):
        assert findings[rule_id]["target"]["status"]["state"] == "not-satisfied"
    assert "deviation: vcsim creates no key" in findings["KMS-GENERATE"]["target"]["status"]["remarks"]


def test_a_key_generation_failure_is_an_environment_error_exactly_when_its_kms_is_down(pytester, tmp_path):
    source = ('import pytest\nfrom harness.vsphere.keys import KeyGenerationFailed\n'
              'MESSAGE = "GenerateKey on p failed: the KMS of key provider p is unreachable: no answer within 3 s"\n'
              '@pytest.mark.rule("KMS-GENERATE")\n@pytest.mark.test_id("00000000-0000-4000-8000-0000000000b1")\n'
              'def test_claims_an_outage_while_the_kms_answers(environment): raise KeyGenerationFailed(MESSAGE)\n'
              '@pytest.mark.rule("KMS-GENERATE")\n@pytest.mark.test_id("00000000-0000-4000-8000-0000000000b2")\n'
              'def test_fails_while_the_kms_is_down(environment):\n'
              '    environment.kms.servers["shared"].stop()\n'
              '    raise KeyGenerationFailed(MESSAGE)\n')
    result, tests = _run(pytester, source, _inventory(tmp_path))
    claims, down = tests["test_claims_an_outage_while_the_kms_answers"], tests["test_fails_while_the_kms_is_down"]
    assert (claims["outcome"], claims["category"]) == ("failed", "product_failure")
    assert (down["outcome"], down["category"]) == ("error", "environment_error")
    assert "KMS 127.0.0.1:" in down["message"] and "connection refused" in down["message"]
    result.assert_outcomes(failed=1, errors=1)


def test_a_deviation_test_that_fails_because_its_kms_is_down_is_an_environment_error(pytester, tmp_path):
    source = ('import pytest\nfrom harness.kms.client import KmsUnreachable\n'
              '@pytest.mark.rule("KMS-GENERATE")\n@pytest.mark.test_id("00000000-0000-4000-8000-0000000000c1")\n'
              '@pytest.mark.xfail(strict=True, reason="deviation: no key on this target")\n'
              'def test_dev(): raise KmsUnreachable.at("127.0.0.1:1", "connection refused")\n')
    result, tests = _run(pytester, source, _inventory(tmp_path))
    assert (tests["test_dev"]["outcome"], tests["test_dev"]["category"]) == ("error", "environment_error")
    assert "connection refused" in tests["test_dev"]["message"]
    result.assert_outcomes(errors=1)


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


def test_an_outage_in_the_call_phase_is_an_error_on_an_honest_call_report(pytester, tmp_path):
    """pytest made a call report for a test that raised in its body: every plugin (Allure, xdist, JUnit)
    must see that call report as pytest made it (when="call"), yet terminal, JUnit and results.json
    call it an environment error, never a product failure."""
    pytester.makeconftest('import json\n'
                          'def pytest_runtest_logreport(report):\n'
                          '    if report.failed:\n'
                          '        with open("reports.jsonl", "a") as out:\n'
                          '            out.write(json.dumps([report.nodeid.split("::")[-1], report.when]) + "\\n")\n')
    source = ('import pytest\nfrom harness.vsphere.errors import TaskTimeout\n'
              '@pytest.mark.rule("OP-STATE")\n@pytest.mark.test_id("00000000-0000-4000-8000-0000000000d1")\n'
              'def test_timeout(): raise TaskTimeout("a task", "task", 1.0, "running")\n'
              '@pytest.mark.rule("OP-STATE")\n@pytest.mark.test_id("00000000-0000-4000-8000-0000000000d2")\n'
              'def test_product(): assert 1 == 2\n')
    pytester.makepyfile(test_suite=source)
    run_dir = pytester.path / "run"
    result = pytester.runpytest_subprocess("--inventory", str(_inventory(tmp_path)), "--run-dir", str(run_dir),
                                           "--junitxml", str(run_dir / "junit.xml"), "-p", "no:cacheprovider")
    seen = [tuple(json.loads(line)) for line in (pytester.path / "reports.jsonl").read_text().splitlines()]
    assert sorted(seen) == [("test_product", "call"), ("test_timeout", "call")]
    result.assert_outcomes(failed=1, errors=1)
    assert "ERROR test_suite.py::test_timeout" in result.stdout.str()
    tests = {t["name"]: t for t in json.loads((run_dir / "results.json").read_text())["tests"]}
    assert (tests["test_timeout"]["outcome"], tests["test_timeout"]["category"]) == ("error", "environment_error")
    assert (tests["test_product"]["outcome"], tests["test_product"]["category"]) == ("failed", "product_failure")
    import xml.etree.ElementTree as ET
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    cases = {case.get("name"): [child.tag for child in case] for case in suite.iter("testcase")}
    assert "error" in cases["test_timeout"] and "failure" not in cases["test_timeout"]
    assert "failure" in cases["test_product"] and "error" not in cases["test_product"]
    assert (suite.get("errors"), suite.get("failures")) == ("1", "1")
