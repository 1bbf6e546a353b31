"""Events and alarms: query by event type id, find alarms by what they watch (never by name)."""
from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

KMS_UNREACHABLE = "com.vmware.vc.kms.crypto.Unreachable"
KEY_GENERATE_FAIL = "com.vmware.vc.kms.crypto.KeyGenerateFail"
NO_DISK_SPACE = "com.vmware.vc.vm.crypto.NoDiskSpace"
REKEY_FAIL = "com.vmware.vc.vm.crypto.RekeyFail"
MIXED_KEYS = "com.vmware.vc.vm.crypto.DiskchainUsingMixedKeys"
CORE_DUMPED = {kind: f"esx.problem.{kind}.core.dumped.encrypted" for kind in ("hostd", "vpxa", "application")}


@dataclass(frozen=True)
class SeenEvent:
    type_id: str
    severity: str | None
    message: str
    created: datetime.datetime
    arguments: dict[str, str]


def server_time(client: Any) -> datetime.datetime:
    return client.invoke(client.si, "CurrentTime")


def known_event_ids(client: Any) -> set[str]:
    """Event ids the target declares (EventEx ids are the part of fullFormat before '|')."""
    infos = client.read(client.content.eventManager, ["description.eventInfo"]).get("description.eventInfo") or []
    ids = set()
    for info in infos:
        ids.add(info.key)
        if info.fullFormat and "|" in info.fullFormat:
            ids.add(info.fullFormat.split("|", 1)[0])
    return ids


def query(client: Any, type_ids: list[str], since: datetime.datetime | None = None, entity: Any = None) -> list[SeenEvent]:
    spec = vim.event.EventFilterSpec(eventTypeId=list(type_ids))
    if since is not None:
        spec.time = vim.event.EventFilterSpec.ByTime(beginTime=since)
    if entity is not None:
        spec.entity = vim.event.EventFilterSpec.ByEntity(entity=entity, recursion="all")
    events = client.invoke(client.content.eventManager, "QueryEvents", filter=spec) or []
    out = []
    for event in events:
        out.append(SeenEvent(type_id=getattr(event, "eventTypeId", None) or type(event).__name__,
                             severity=getattr(event, "severity", None), message=event.fullFormattedMessage or "",
                             created=event.createdTime,
                             arguments={a.key: str(a.value) for a in getattr(event, "arguments", None) or []}))
    client.recorder.note(f"events {', '.join(type_ids)}", [e.__dict__ for e in out])
    return out


def wait_for_event(client: Any, type_id: str | list[str], since: datetime.datetime, timeout: float,
                   entity: Any = None) -> list[SeenEvent]:
    """Events of a type (or of any of several) since a time, waiting up to `timeout` for the first
    (bounded, backing off; returns at once when one is there)."""
    type_ids = [type_id] if isinstance(type_id, str) else list(type_id)
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        found = query(client, type_ids, since, entity)
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 1.0)


def _watches(expression: Any, type_id: str) -> bool:
    if isinstance(expression, vim.alarm.EventAlarmExpression):
        return expression.eventTypeId == type_id
    children = getattr(expression, "expression", None)
    return any(_watches(e, type_id) for e in children or [])


def all_alarms(client: Any) -> list[Any]:
    """The alarms defined on the root folder (AlarmManager.GetAlarm)."""
    return list(client.invoke(client.content.alarmManager, "GetAlarm", entity=client.content.rootFolder) or [])


def alarms_watching(client: Any, type_id: str) -> list[Any]:
    """Alarms whose expression watches `type_id`, found by walking GetAlarm (API.md 6.2)."""
    alarms = all_alarms(client)
    infos = client.read_many(alarms, vim.alarm.Alarm, ["info.expression", "info.name"]) if alarms else {}
    return [a for a in alarms if _watches(infos.get(a._moId, {}).get("info.expression"), type_id)]


def alarm_status(client: Any, alarm: Any, entity: Any = None) -> str:
    """The alarm's triggered status on an entity (the root folder by default); 'green' if not triggered."""
    entity = entity or client.content.rootFolder
    states = client.invoke(client.content.alarmManager, "GetAlarmState", entity=entity) or []
    for state in states:
        if state.alarm._moId == alarm._moId:
            return state.overallStatus
    return "green"


def wait_for_alarm_status(client: Any, alarm: Any, wanted: str, timeout: float, entity: Any = None) -> str:
    """The alarm's status once it is `wanted`, or the last status seen when `timeout` runs out (bounded)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        status = alarm_status(client, alarm, entity)
        if status == wanted or time.monotonic() >= deadline:
            client.recorder.note(f"alarm {alarm._moId} status (wanted {wanted})", status)
            return status
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 1.0)


def alarm_names(client: Any, alarms: list[Any]) -> dict[str, str]:
    """alarm moId -> its name (for evidence and messages; alarms are never selected by name)."""
    infos = client.read_many(alarms, vim.alarm.Alarm, ["info.name"]) if alarms else {}
    return {a._moId: infos.get(a._moId, {}).get("info.name", a._moId) for a in alarms}
