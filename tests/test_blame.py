"""Blame where the check failed (issue 23, point 3): a test of two rules fails only the rule whose step
failed; a teardown error is the teardown's, never a rule's; teardown after an outage obeys the breaker."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.test_plugin import _inventory, _run

pytest_plugins = ["pytester"]

TWO_RULES = '''
import pytest
from harness.checks import check_that, for_rule

@pytest.mark.rule("REKEY-DEEP", "REKEY-SHALLOW")
@pytest.mark.test_id("44444444-0000-4000-8000-000000000001")
def test_shallow_then_deep():
    with for_rule("REKEY-SHALLOW"):
        check_that("shallow recrypt: VM key", False, "new key", "old key")
    with for_rule("REKEY-DEEP"):
        check_that("deep recrypt: VM key", True, "newer key", "newer key")
'''

TEARDOWN = '''
import pytest

@pytest.fixture
def leaves_a_mess():
    yield
    raise RuntimeError("could not remove scratch VM vm-42")

@pytest.mark.rule("OP-STATE")
@pytest.mark.test_id("44444444-0000-4000-8000-000000000002")
def test_passes(leaves_a_mess):
    assert True
'''


def test_a_test_of_two_rules_fails_only_the_rule_whose_step_failed(pytester, tmp_path):
    result, tests = _run(pytester, TWO_RULES, _inventory(tmp_path))
    assert result.ret == 1
    entry = tests["test_shallow_then_deep"]
    assert entry["outcome"] == "failed" and entry["blamed_rules"] == ["REKEY-SHALLOW"], entry
    verdicts = json.loads((pytester.path / "run" / "run.json").read_text())["verdicts"]
    assert verdicts["REKEY-SHALLOW"] == "failed"
    assert verdicts["REKEY-DEEP"] == "not run"  # its own step never ran: not demonstrated, not failed
    evidence = json.loads((pytester.path / "run" / entry["evidence_file"]).read_text())
    assert [c.get("rule") for c in evidence["checks"]] == ["REKEY-SHALLOW"]


def test_every_check_of_a_single_rule_test_carries_its_rule(pytester, tmp_path):
    source = ('import pytest\nfrom harness.checks import check_that\n@pytest.mark.rule("OP-STATE")\n'
              '@pytest.mark.test_id("44444444-0000-4000-8000-000000000003")\n'
              'def test_one():\n    check_that("power state", True, "on", "on")\n')
    _, tests = _run(pytester, source, _inventory(tmp_path))
    evidence = json.loads((pytester.path / "run" / tests["test_one"]["evidence_file"]).read_text())
    assert [c.get("rule") for c in evidence["checks"]] == ["OP-STATE"]


def test_a_teardown_error_is_named_as_such_and_changes_no_rule_verdict(pytester, tmp_path):
    result, tests = _run(pytester, TEARDOWN, _inventory(tmp_path))
    entry = tests["test_passes"]
    assert entry["outcome"] == "passed", entry
    assert "teardown" in entry["teardown_error"] and "vm-42" in entry["teardown_error"], entry
    run = json.loads((pytester.path / "run" / "run.json").read_text())
    assert run["verdicts"]["OP-STATE"] == "passed"
    assert result.ret == 1  # the run still says something went wrong: in the teardown


def test_the_session_providers_teardown_does_not_call_a_vcenter_the_breaker_knows_is_down(monkeypatch):
    from harness.run import session_providers
    from harness.targets.outage import Endpoint, OutageWatch
    calls: list[str] = []
    monkeypatch.setattr(session_providers.keys, "register_provider", lambda *a, **k: calls.append("register") or True)
    monkeypatch.setattr(session_providers.keys, "remove_provider", lambda *a, **k: calls.append("remove"))
    ledger: list[dict] = []
    outages = OutageWatch()
    state = SimpleNamespace(run_id="r1", outages=outages, ledger=SimpleNamespace(append=lambda **e: ledger.append(e)),
                            inventory=SimpleNamespace(safety=SimpleNamespace(name_prefix="vcrypt-")))
    endpoint = SimpleNamespace(provider_id="vcrypt-r1-gw0-kms-shared", server_name="kms", address="127.0.0.1", port=1)
    environment = SimpleNamespace(kms_endpoints={"shared": endpoint},
                                  inventory=SimpleNamespace(features={}))
    client = SimpleNamespace(name="vc-a")
    gen = session_providers._register_own(state, "gw0", client, environment, endpoint, "shared")
    assert next(gen) == "vcrypt-r1-gw0-kms-shared"
    outages.down[Endpoint("vcenter", "vc-a")] = "vCenter vc-a does not answer; down since t"
    with pytest.warns(UserWarning, match="circuit breaker"), pytest.raises(StopIteration):
        next(gen)
    assert calls == ["register"]
    assert ledger[-1]["phase"] == "created"  # so `vcrypt sweep` removes it once the vCenter is back
