"""harness/run/kms_reads.py: a KMS-side check the harness may not make is never a pass and never a failure
(issue 22): a passed test with such a read becomes a capability skip naming the KMS; a failed one stays failed
(its vCenter-side checks failed); `key_absent` keeps negative checks from failing on an unobservable read."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.evidence.recorder import Recorder, reset_recorder, use_recorder
from harness.run.kms_reads import KmsEvidence, NotObservable, mark_not_observable

ITEM = SimpleNamespace(path=Path("suites/test_kms.py"), location=("suites/test_kms.py", 9, "test_x"))
REASON = "capability: KMS 127.0.0.1:5696 (shared) gives the harness no read identity (read_identity: none)"


def report(outcome: str) -> pytest.TestReport:
    return pytest.TestReport(nodeid="suites/test_kms.py::test_x", location=ITEM.location, keywords={},
                             outcome=outcome, longrepr=None if outcome == "passed" else "AssertionError", when="call")


def test_a_passed_test_with_an_unobservable_kms_read_is_a_capability_skip_naming_the_kms() -> None:
    rep = report("passed")
    mark_not_observable(rep, ITEM, Recorder(not_observable=[REASON]))
    assert rep.skipped and rep.longrepr[2].startswith(f"Skipped: {REASON}: the KMS-side checks of this test are "
                                                      "not observable")


@pytest.mark.parametrize(("outcome", "reasons"), [("failed", [REASON]), ("passed", [])])
def test_a_failure_stays_a_failure_and_an_observed_pass_stays_a_pass(outcome: str, reasons: list[str]) -> None:
    rep = report(outcome)
    mark_not_observable(rep, ITEM, Recorder(not_observable=reasons))
    assert rep.outcome == outcome


def test_reads_without_a_read_identity_are_recorded_not_made() -> None:
    endpoint = SimpleNamespace(role="shared", provider_id="p", address="127.0.0.1", port=5696, read_identity="none",
                               kmip_client=lambda **_: pytest.fail("no KMIP read may be made"))
    kms = KmsEvidence({"shared": endpoint})
    recorder = Recorder()
    token = use_recorder(recorder)
    try:
        exists, absent, state = kms.key_exists(("p", "7")), kms.key_absent(("p", "7")), kms.key_state(("p", "7"))
    finally:
        reset_recorder(token)
    assert all(isinstance(a, NotObservable) and a for a in (exists, absent, state))
    assert not kms.observed(state)
    assert recorder.not_observable == [REASON]
    assert [r["op"] for r in recorder.kmip] == ["exists", "absent", "state"]


def test_a_multi_server_provider_is_read_from_the_server_that_answers() -> None:
    """KMS-MULTI: the harness fails over as vCenter does, names the server that answered, and asks one server
    only when told to (a stopped one is then an outage, not a missing key)."""
    from harness.kms.client import KmsUnreachable

    class Client:
        def __init__(self, state: str | None, up: bool) -> None:
            self.state, self.up = state, up

        def key_state(self, key_id: str) -> str | None:
            if not self.up:
                raise KmsUnreachable.at("127.0.0.1:1", "connection refused")
            return self.state

    def endpoint(name: str, port: int, client: Client) -> SimpleNamespace:
        return SimpleNamespace(role="multi", provider_id="m", server_name=name, address="127.0.0.1", port=port,
                               read_identity=None, kmip_client=lambda **_: client)

    down, up = endpoint("multi-1", 1, Client(None, up=False)), endpoint("multi-2", 2, Client("ACTIVE", up=True))
    kms = KmsEvidence({})
    kms.add_cluster("m", [down, up])
    recorder = Recorder()
    token = use_recorder(recorder)
    try:
        assert kms.key_exists(("m", "9")) is True
        assert kms.key_exists_on(("m", "9"), "multi-2") is True
        with pytest.raises(KmsUnreachable):
            kms.key_state_on(("m", "9"), "multi-1")
    finally:
        reset_recorder(token)
    assert [r["server"] for r in recorder.kmip] == ["127.0.0.1:2", "127.0.0.1:2"]
