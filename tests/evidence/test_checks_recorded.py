"""Checks are recorded as sentences (what, expected, observed) and fail when they do not hold."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pyVmomi import vim, vmodl

from harness import checks
from harness.evidence.html_report import render_html
from harness.evidence.recorder import Recorder, reset_recorder, summarize, use_recorder

NEW, OLD = ("vcrypt-shared-kms", "100128"), ("vcrypt-shared-kms", "100127")


@pytest.fixture
def recorder():
    rec = Recorder(test_id="t-checks", nodeid="suites/x.py::test_x")
    token = use_recorder(rec)
    yield rec
    reset_recorder(token)


def _sentences(rec: Recorder) -> list[str]:
    return [f"{c['what']}: expected {c['expected']}, observed {c['observed']}" for c in rec.checks]


def test_a_key_check_reads_as_a_sentence_with_the_keys_roles(recorder):
    checks.check_on_key("snapshot s2 key", NEW, NEW, {"new": NEW, "old": OLD})
    assert _sentences(recorder) == ["snapshot s2 key: expected 100128 (new), observed 100128 (new)"]
    assert recorder.checks[0]["passed"] is True


def test_a_failed_key_check_is_recorded_and_raises_naming_both_keys(recorder):
    with pytest.raises(AssertionError, match=r"snapshot s3 key: expected 100128 \(new\), observed 100127 \(old\)"):
        checks.check_on_key("snapshot s3 key", NEW, OLD, {"new": NEW, "old": OLD})
    assert recorder.checks[0]["passed"] is False


def test_a_key_on_another_provider_is_not_the_same_key(recorder):
    with pytest.raises(AssertionError, match="key provider other-kms, expected vcrypt-shared-kms"):
        checks.check_on_key("VM home key", NEW, ("other-kms", "100128"))


def test_check_each_records_every_item_before_failing(recorder):
    with pytest.raises(AssertionError) as err:
        checks.check_each_on_key([("s1", NEW), ("s2", OLD), ("s3", OLD)], NEW, {"new": NEW, "old": OLD})
    assert [c["passed"] for c in recorder.checks] == [True, False, False]
    assert "s2" in str(err.value) and "s3" in str(err.value)


def test_hosts_holding_a_key_record_one_check_per_host_and_focus_the_grid(recorder):
    recorder.record_host_keys({"esx-1": ["vcrypt-shared-kms/100128", "k/1"], "esx-2": ["k/1"]})
    caches = {"host-1": {NEW, ("k", "1")}, "host-2": {("k", "1")}}
    with pytest.raises(AssertionError, match="hosts without key 100128 .*: esx-2"):
        checks.check_hosts_hold_key({"host-1": "esx-1", "host-2": "esx-2"}, caches, NEW, {"the VM's key": NEW})
    assert [c["passed"] for c in recorder.checks] == [True, False]
    assert recorder.host_keys["focus"] == ["vcrypt-shared-kms/100128"]


def test_refused_and_unchanged_record_their_checks(recorder):
    def refuse():
        raise vmodl.fault.NotSupported(msg="no decrypt across vCenters")

    checks.refused(refuse, "migration with a decrypt spec")
    checks.unchanged(("a", 1), ("a", 1), "migration with a decrypt spec")
    refusal, state = recorder.checks
    assert refusal["passed"] and "refused with vmodl.fault.NotSupported: no decrypt across vCenters" in refusal["observed"]
    assert state["what"].endswith("state after the refusal") and state["observed"] == "unchanged"
    with pytest.raises(checks.NotRefused):
        checks.refused(lambda: None, "a decrypt that must be refused")
    assert recorder.checks[-1]["passed"] is False and recorder.checks[-1]["observed"] == "the operation succeeded"


def test_checks_come_first_in_the_tests_section_of_the_report(recorder, run_dir: Path):
    checks.check_on_key("snapshot s2 key", NEW, NEW, {"new": NEW})
    data = json.loads((run_dir / "evidence" / "0b6f3a52-0000-4000-8000-000000000001.json").read_text())
    data["checks"] = recorder.to_json()["checks"]
    (run_dir / "evidence" / "0b6f3a52-0000-4000-8000-000000000001.json").write_text(json.dumps(data))
    html = render_html(run_dir)
    section = html[html.index("suites/test_clone.py::test_clone_encrypts_destination</span>"):]
    section = section[: section.index("</details>\n</div>") if "</details>\n</div>" in section else 20000]
    assert section.index("What was checked") < section.index("Observed properties") < section.index("vSphere API calls")
    assert re.search(r"<td>snapshot s2 key<td>100128 \(new\)<td>100128 \(new\)", section)


def test_nested_data_objects_keep_their_fields_instead_of_a_type_name():
    key = vim.encryption.CryptoKeyId(keyId="100057", providerId=vim.encryption.KeyProviderId(id="vcrypt-shared-kms"))
    backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(keyId=key)
    for _ in range(4):  # a snapshot chain: each delta's parent is the previous backing
        backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(keyId=key, parent=backing)
    spec = vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(
        device=vim.vm.device.VirtualDisk(backing=backing))])
    text = json.dumps(summarize(spec))
    assert '"providerId": "vim.encryption.KeyProviderId"' not in text
    assert '"keyId": "vim.encryption.CryptoKeyId"' not in text
    assert text.count('"id": "vcrypt-shared-kms"') == 5  # every backing of the chain, to the deepest
