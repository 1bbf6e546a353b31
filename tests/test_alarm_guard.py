"""Alarm state a test changes is restored or acknowledged, and the evidence says which (issue 21 point 5).

A key provider at an address where no KMS answers turns vCenter's KMS-health alarm red on the root
folder: a lab-wide alarm every operator sees. After such a test the harness waits (bounded) for the
alarm to return to the status it had before; if it does not, it acknowledges it (AcknowledgeAlarm)
and the test's evidence names the outcome per alarm.

Reproduced first: before the guard, the KMS-STATUS unreachable-provider test's evidence said nothing
about the alarm it changed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.vsphere import events, keys
from harness.vsphere.alarm_guard import AlarmGuard

REPO = Path(__file__).resolve().parents[1]
UNREACHABLE_STATUS_TEST = "7b9b494b-a81a-46b9-a317-cc292751a8d9"


def _kms_state(env: Any) -> Any:
    fake = env.fake_vcenter("vc-a")
    return [s for s in fake.alarms.states.values() if s.status != "green"]


def test_an_alarm_that_stays_red_is_acknowledged(env, client):
    from harness.kms.server import free_port
    guard = AlarmGuard.watch(client, events.KMS_UNREACHABLE)
    keys.register_unreachable_provider(client, "vcrypt-alarm-red", free_port("127.0.0.1"))
    alarm = guard.alarms[0]
    assert events.wait_for_alarm_status(client, alarm, "red", 5) == "red", "the positive control: the alarm went red"

    outcome = guard.restore(timeout=0.3)

    assert list(outcome.values()) == ["acknowledged (still red after 0.3 s; AcknowledgeAlarm)"], outcome
    [state] = _kms_state(env)
    assert state.acknowledged and state.acknowledged_by
    keys.remove_provider(client, "vcrypt-alarm-red")


def test_an_alarm_that_clears_is_reported_restored(env, client):
    from harness.kms.server import free_port
    guard = AlarmGuard.watch(client, events.KMS_UNREACHABLE)
    before = guard.before
    keys.register_unreachable_provider(client, "vcrypt-alarm-back", free_port("127.0.0.1"))
    live = env.kms_endpoints["shared"]
    assert events.wait_for_alarm_status(client, guard.alarms[0], "red", 5) == "red"
    keys.move_server(client, "vcrypt-alarm-back", "vcrypt-alarm-back-server", live.address, live.port)
    keys.remove_provider(client, "vcrypt-alarm-back")

    outcome = guard.restore(timeout=5)

    assert set(outcome.values()) == {f"restored ({before[guard.alarms[0]._moId]} again)"}, outcome
    assert not _kms_state(env)


def test_the_unreachable_provider_tests_evidence_says_what_became_of_the_alarm(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", "run", "--test-id",
                           UNREACHABLE_STATUS_TEST, "--run-id", "alarm-evidence"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    [evidence] = (tmp_path / "reports" / "alarm-evidence" / "evidence").glob("*.json")
    notes = {n["label"]: n["value"] for n in json.loads(evidence.read_text())["notes"]}
    outcome = notes.get("alarms after the test (restored or acknowledged)")
    assert outcome, sorted(notes)
    assert "Key Management Server Health Status" in str(outcome) and "restored" in str(outcome), outcome
