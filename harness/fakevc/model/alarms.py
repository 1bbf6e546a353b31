"""AlarmManager and Alarm: vCenter's default KMS alarms, driven by the events they watch.

The alarms are event alarms, as on vCenter: each `EventAlarmExpression` of an alarm's
`OrAlarmExpression` names an event id and the status it sets. When a matching event is posted on
the alarm's entity (or below it, for an entity of the expression's objectType) the alarm's state
on that entity takes the expression's status, and an AlarmStatusChangedEvent is posted.

Default alarms (on the root folder, names as the vSphere Client shows them; the systemNames are
the FAKE's own - the real ones are UNCONFIRMED, so tests find alarms by walking expressions):
- "Key Management Server Health Status": red on `com.vmware.vc.kms.crypto.Unreachable`, green on
  `com.vmware.vc.kms.crypto.Vendor` (what the fake posts when a KMS answers again; see kms_health).
- "KMS Server Certificate Status" / "KMS Client Certificate Status": yellow on
  `com.vmware.vc.vecs.KMS{Server,Client}CertExpirationEvent` (defined only: the fake never posts
  expiry events - its throwaway certificates live two days, under any real threshold).

Reading alarm state (GetAlarmState, the root folder's triggeredAlarmState) runs the lazy KMS
health check first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim, vmodl

from harness.fakevc.defects import defect
from harness.fakevc.kmip import kms_health
from harness.fakevc.model.base import MO, CallContext
from harness.fakevc.model.task import now

KMS_HEALTH_SYSTEM_NAME = "vcrypt-fake.alarm.KMSHealthStatus"
NEVER_RED = defect(
    "evt-kms-alarm-never-red", "EVT-KMS-UNREACHABLE",
    "the KMS health alarm ignores com.vmware.vc.kms.crypto.Unreachable and stays green while the KMS is down")
NEVER_CLEARS = defect(
    "evt-kms-alarm-never-clears", "EVT-KMS-UNREACHABLE",
    "the KMS health alarm stays red after the KMS is reachable again")


def _event_trigger(event_type_id: str, status: str) -> Any:
    return vim.alarm.EventAlarmExpression(eventType=vim.event.EventEx, eventTypeId=event_type_id,
                                          objectType=vim.Folder, status=status)


DEFAULT_ALARMS: tuple[tuple[str, str, str, tuple[tuple[str, str], ...], bool], ...] = (
    # (name, systemName, description, ((event id, status), ...), needs 7.0)
    ("Key Management Server Health Status", KMS_HEALTH_SYSTEM_NAME,
     "Default alarm that monitors the connection of vCenter Server to its key management servers. "
     "(fake vCenter: systemName is fake-specific; green on com.vmware.vc.kms.crypto.Vendor, which the fake "
     "posts when a KMS answers again)",
     (("com.vmware.vc.kms.crypto.Unreachable", "red"), ("com.vmware.vc.kms.crypto.Vendor", "green")), True),
    ("KMS Server Certificate Status", "vcrypt-fake.alarm.KMSServerCertificateStatus",
     "Default alarm that monitors whether the KMS server certificate is about to expire.",
     (("com.vmware.vc.vecs.KMSServerCertExpirationEvent", "yellow"),), False),
    ("KMS Client Certificate Status", "vcrypt-fake.alarm.KMSClientCertificateStatus",
     "Default alarm that monitors whether the vCenter Server KMS client certificate is about to expire.",
     (("com.vmware.vc.vecs.KMSClientCertExpirationEvent", "yellow"),), False),
)


class Alarm(MO):
    """One alarm definition on one entity."""
    vim_type = vim.alarm.Alarm
    moid_prefix = "alarm"

    def __init__(self, vc: Any, entity: MO, name: str, system_name: str, description: str,
                 triggers: tuple[tuple[str, str], ...]) -> None:
        super().__init__(vc)
        self.entity = entity
        self.name = name
        self.system_name = system_name
        self.description = description
        self.triggers = triggers
        self.enabled = True
        self.created = now()
        self.value: list = []
        self.availableField: list = []

    def expression(self) -> Any:
        shown = self.triggers
        if not self.vc.quirk("kms_alarm_watches_event"):   # a vCenter whose KMS health alarm is driven otherwise
            shown = tuple(t for t in shown if t[0] != "com.vmware.vc.kms.crypto.Unreachable")   # (API.md 6.2)
        return vim.alarm.OrAlarmExpression(expression=[_event_trigger(e, s) for e, s in shown])

    def p_info(self) -> Any:
        return vim.alarm.AlarmInfo(
            name=self.name, systemName=self.system_name, description=self.description, enabled=self.enabled,
            expression=self.expression(), setting=vim.alarm.AlarmSetting(toleranceRange=0, reportingFrequency=300),
            actionFrequency=0, key=self.moid, alarm=self.ref, entity=self.entity.ref, lastModifiedTime=self.created,
            lastModifiedUser="", creationEventId=0)

    def status_for(self, event_type_id: str) -> str | None:
        return next((status for eid, status in self.triggers if eid == event_type_id), None)


@dataclass
class _State:
    alarm: Alarm
    entity: MO
    status: str = "green"
    time: Any = None
    event_key: int | None = None
    acknowledged: bool = False
    acknowledged_by: str | None = None
    acknowledged_time: Any = None

    def to_vim(self) -> Any:
        return vim.alarm.AlarmState(
            key=f"{self.alarm.moid}.{self.entity.moid}", entity=self.entity.ref, alarm=self.alarm.ref,
            overallStatus=self.status, time=self.time or self.alarm.created, acknowledged=self.acknowledged,
            acknowledgedByUser=self.acknowledged_by, acknowledgedTime=self.acknowledged_time,
            eventKey=self.event_key, disabled=not self.alarm.enabled)


class AlarmManager(MO):
    vim_type = vim.alarm.AlarmManager
    moid_prefix = "AlarmManager"

    def __init__(self, vc: Any, moid: str | None = None) -> None:
        super().__init__(vc, moid)
        self.alarms: list[Alarm] = []
        self.states: dict[tuple[str, str], _State] = {}
        self.actions_enabled: dict[str, bool] = {}
        for name, system_name, description, triggers, needs7 in DEFAULT_ALARMS:
            if needs7 and vc.is_pre7:
                continue
            alarm = Alarm(vc, vc.root, name, system_name, description, triggers)
            self.alarms.append(alarm)
            self.states[(alarm.moid, vc.root.moid)] = _State(alarm, vc.root)
        self._publish(vc.root)

    # ---- event-driven state -----------------------------------------------------------------------
    def on_event(self, event: Any, entity: MO | None) -> None:
        """An event was posted: move every alarm watching it (on the entity or an ancestor)."""
        if entity is None or not isinstance(event, vim.event.EventEx):
            return
        lineage = {node.moid for node in entity.ancestors()} if hasattr(entity, "ancestors") else {entity.moid}
        for alarm in self.alarms:
            status = alarm.status_for(event.eventTypeId)
            if status is None or not alarm.enabled or alarm.entity.moid not in lineage:
                continue
            if not isinstance(entity.ref, vim.Folder):   # every default expression has objectType Folder
                continue
            if alarm.system_name == KMS_HEALTH_SYSTEM_NAME:
                if status == "red" and self.vc.world.defects.on(NEVER_RED):
                    continue
                if status == "green" and self.vc.world.defects.on(NEVER_CLEARS):
                    continue
            self._set(alarm, entity, status, event)

    def _set(self, alarm: Alarm, entity: MO, status: str, event: Any | None) -> None:
        state = self.states.setdefault((alarm.moid, entity.moid), _State(alarm, entity))
        before = state.status
        if before == status:
            return
        state.status, state.time, state.event_key = status, now(), event.key if event is not None else None
        state.acknowledged, state.acknowledged_by, state.acknowledged_time = False, None, None
        self._publish(entity)
        change = vim.event.AlarmStatusChangedEvent(
            alarm=vim.event.AlarmEventArgument(name=alarm.name, alarm=alarm.ref),
            source=vim.event.ManagedEntityEventArgument(name=alarm.entity.name, entity=alarm.entity.ref),
            entity=vim.event.ManagedEntityEventArgument(name=getattr(entity, "name", ""), entity=entity.ref),
            to=status, fullFormattedMessage=f"Alarm '{alarm.name}' on {getattr(entity, 'name', '')} changed "
                                            f"from {before.capitalize()} to {status.capitalize()}")
        setattr(change, "from", before)
        self.vc.events.record(change, entity)

    def clear_kms_health(self) -> None:
        """The condition behind a red KMS health alarm is gone without a KMS event (see kms_health.forget)."""
        if self.vc.world.defects.on(NEVER_CLEARS):
            return
        for state in list(self.states.values()):
            if state.alarm.system_name == KMS_HEALTH_SYSTEM_NAME and state.status != "green":
                self._set(state.alarm, state.entity, "green", None)

    def _publish(self, entity: MO) -> None:
        """Mirror an entity's alarm states into its declaredAlarmState and overallStatus."""
        states = [s for s in self.states.values() if s.entity is entity]
        entity.declaredAlarmState = [s.to_vim() for s in states]
        worst = max((s.status for s in states), key=["gray", "green", "yellow", "red"].index, default="green")
        entity.overallStatus = "green" if worst == "gray" else worst

    def triggered_on(self, entity: MO) -> list:
        """ManagedEntity.triggeredAlarmState: the red and yellow alarm states on the entity."""
        if entity is self.vc.root:
            self._look_at_kms()
        return [s.to_vim() for s in self.states.values()
                if s.entity is entity and s.status in ("red", "yellow")]

    def _look_at_kms(self) -> None:
        kms_health.check(self.vc)

    # ---- API --------------------------------------------------------------------------------------
    def p_defaultExpression(self) -> list:
        return [vim.alarm.StateAlarmExpression(operator="isEqual", type=vim.VirtualMachine,
                                               statePath="runtime.powerState", red="poweredOff"),
                vim.alarm.EventAlarmExpression(eventType=vim.event.EventEx)]

    def p_description(self) -> Any:
        def enum(values: list[str]) -> list:
            return [vim.ElementDescription(key=v, label=v, summary=v) for v in values]
        return vim.alarm.AlarmDescription(
            expr=[vim.TypeDescription(key="EventAlarmExpression", label="Event", summary="Event alarm expression")],
            stateOperator=enum(["isEqual", "isUnequal"]), metricOperator=enum(["isAbove", "isBelow"]),
            hostSystemConnectionState=enum(["connected", "notResponding", "disconnected"]),
            virtualMachinePowerState=enum(["poweredOff", "poweredOn", "suspended"]),
            datastoreConnectionState=enum(["connected", "disconnected"]),
            hostSystemPowerState=enum(["poweredOn", "poweredOff", "standBy", "unknown"]),
            virtualMachineGuestHeartbeatStatus=enum(["gray", "green", "yellow", "red"]),
            entityStatus=enum(["gray", "green", "yellow", "red"]), action=[])

    def GetAlarm(self, ctx: CallContext, entity: Any = None) -> list:
        if entity is None:
            return [a.ref for a in self.alarms]
        target = self.vc.lookup(entity)
        return [a.ref for a in self.alarms if a.entity is target]

    def GetAlarmState(self, ctx: CallContext, entity: Any) -> list:
        target = self.vc.lookup(entity)
        if target is self.vc.root:
            self._look_at_kms()
        return [s.to_vim() for s in self.states.values() if s.entity is target]

    def AcknowledgeAlarm(self, ctx: CallContext, alarm: Any, entity: Any) -> None:
        state = self.states.get((alarm._moId, self.vc.lookup(entity).moid))
        if state is None:
            raise vmodl.fault.InvalidArgument(invalidProperty="alarm", msg="The alarm is not instantiated on the entity")
        state.acknowledged, state.acknowledged_by, state.acknowledged_time = True, ctx.user, now()
        self._publish(state.entity)

    def ClearTriggeredAlarms(self, ctx: CallContext, filter: Any) -> None:  # noqa: A002 - VMODL name
        """Reset triggered alarms to green (the vSphere Client's "Reset to green").

        Every default alarm is an event alarm on the root folder, so typeEntity host/VM and
        typeTrigger metric select none of them.
        """
        statuses = set(filter.status or []) if filter is not None else set()
        if filter is not None and (filter.typeEntity in ("entityTypeHost", "entityTypeVm")
                                   or filter.typeTrigger == "triggerTypeMetric"):
            return
        for state in list(self.states.values()):
            if state.status in ("red", "yellow") and (not statuses or state.status in statuses):
                self._set(state.alarm, state.entity, "green", None)

    def AreAlarmActionsEnabled(self, ctx: CallContext, entity: Any) -> bool:
        return self.actions_enabled.get(self.vc.lookup(entity).moid, True)

    def EnableAlarmActions(self, ctx: CallContext, entity: Any, enabled: bool) -> None:
        self.actions_enabled[self.vc.lookup(entity).moid] = enabled
