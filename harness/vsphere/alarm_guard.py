"""Put back the alarm state a test changed: wait for it to return, else acknowledge it, and say which.

Why: a key provider registered at an address where no KMS answers turns vCenter's KMS-health alarm
red on the root folder (and posts critical events): every operator of the lab sees it. A test that
does this must not leave the alarm raised. Events cannot be taken back; alarm state can:

- restored: the alarm is back at the status it had before the test (vCenter cleared it once the
  provider answered again or was removed), within a bounded wait;
- acknowledged: it is still raised after the wait, so the harness acknowledges it
  (AlarmManager.AcknowledgeAlarm(alarm, entity), vSphere Web Services API since 4.0; govmomi
  alarm/manager.go `Manager.AcknowledgeAlarm` sends the same call). Acknowledging keeps the alarm's
  status and history (no "reset to green" that would hide a real outage) and marks it seen;
- failed: the acknowledge call itself failed (named).

The outcome per alarm (by name) goes into the test's evidence, so a reader knows which it was.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vmodl

from harness.vsphere import events
from harness.vsphere.errors import TargetLacks, TaskFailed

EVIDENCE_LABEL = "alarms after the test (restored or acknowledged)"


@dataclass
class AlarmGuard:
    """The alarms watching one event id, and their status on the root folder before a test."""
    client: Any
    alarms: list[Any]
    before: dict[str, str] = field(default_factory=dict)
    unavailable: str | None = None   # why alarms could not be read on this target (then nothing is restored)

    @classmethod
    def watch(cls, client: Any, event_type_id: str) -> "AlarmGuard":
        try:
            alarms = events.alarms_watching(client, event_type_id)
            return cls(client, alarms, {a._moId: events.alarm_status(client, a) for a in alarms})
        except (TargetLacks, vmodl.MethodFault) as err:   # a target without alarms (vcsim): nothing to restore
            return cls(client, [], unavailable=f"alarms not readable on {client.name}: {err}")

    def restore(self, timeout: float) -> dict[str, str]:
        """Wait up to `timeout` for each alarm to return to its status before; acknowledge the ones that
        do not. Returns (and records as evidence) alarm name -> what became of it."""
        names = events.alarm_names(self.client, self.alarms) if self.alarms else {}
        outcome: dict[str, str] = {}
        for alarm in self.alarms:
            before = self.before.get(alarm._moId, "green")
            now = events.wait_for_alarm_status(self.client, alarm, before, timeout)
            if now == before:
                outcome[names.get(alarm._moId, alarm._moId)] = f"restored ({before} again)"
                continue
            outcome[names.get(alarm._moId, alarm._moId)] = self._acknowledge(alarm, now, timeout)
        self.client.recorder.note(EVIDENCE_LABEL, outcome or self.unavailable or "no alarm watches the event here")
        return outcome

    def _acknowledge(self, alarm: Any, status: str, waited: float) -> str:
        manager = self.client.content.alarmManager
        try:
            self.client.invoke(manager, "AcknowledgeAlarm", alarm=alarm, entity=self.client.content.rootFolder)
        except (vmodl.MethodFault, TaskFailed) as err:
            return f"still {status} after {waited:g} s; AcknowledgeAlarm failed: {type(err).__name__}: {err}"
        return f"acknowledged (still {status} after {waited:g} s; AcknowledgeAlarm)"
