"""Events and alarms through plain pyVmomi: KMS outage and recovery, key creation failures, core dumps,
QueryEvents filters and event collectors.

Rules: EVT-KMS-UNREACHABLE, EVT-KEY-CREATE, EVT-COREDUMP. The KMS health alarm is always found by
walking `alarmManager.GetAlarm` expressions for the Unreachable event id, never by name. Outages
are real (the shared KMS process is stopped and started on the same port) or a test provider
points at a closed port; KMS faults are always undone in `finally`, providers removed.
"""
from __future__ import annotations

import datetime
from typing import Any, Iterator

import pytest
from pyVmomi import vim, vmodl

from harness.targets.environment import SHARED_PROVIDER, Environment
from harness.fakevc.behaviours import core_dumps
from harness.kms.server import free_port
from tests.fakevc.test_key_providers import (defect_world, new_provider_id, pid_ref, register, remove_provider)

UNREACHABLE = "com.vmware.vc.kms.crypto.Unreachable"
RECOVERED = "com.vmware.vc.kms.crypto.Vendor"
KEY_GENERATE_FAIL = "com.vmware.vc.kms.crypto.KeyGenerateFail"
CORE_DUMP_IDS = {kind: f"esx.problem.{kind}.core.dumped.encrypted" for kind in ("hostd", "vpxa", "application")}


# ---- helpers ---------------------------------------------------------------------------------------
def _event_ids(expression: Any) -> Iterator[str]:
    if isinstance(expression, (vim.alarm.OrAlarmExpression, vim.alarm.AndAlarmExpression)):
        for child in expression.expression or []:
            yield from _event_ids(child)
    elif isinstance(expression, vim.alarm.EventAlarmExpression) and expression.eventTypeId:
        yield expression.eventTypeId


def kms_alarm(si: Any) -> Any:
    """The alarm whose expression watches the KMS Unreachable event (found by walking, not by name)."""
    content = si.content
    found = [a for a in content.alarmManager.GetAlarm(entity=content.rootFolder)
             if UNREACHABLE in set(_event_ids(a.info.expression))]
    assert len(found) == 1, [a.info.name for a in found]
    return found[0]


def alarm_status(si: Any, alarm: Any) -> str:
    states = [s for s in si.content.alarmManager.GetAlarmState(entity=si.content.rootFolder)
              if s.alarm._moId == alarm._moId]
    return states[0].overallStatus if states else "green"


def triggered(si: Any, alarm: Any) -> list[str]:
    return [s.overallStatus for s in si.content.rootFolder.triggeredAlarmState if s.alarm._moId == alarm._moId]


def events(si: Any, since: datetime.datetime, *ids: str, **criteria: Any) -> list[Any]:
    spec = vim.event.EventFilterSpec(eventTypeId=list(ids) or None,
                                     time=vim.event.EventFilterSpec.ByTime(beginTime=since), **criteria)
    return list(si.content.eventManager.QueryEvents(filter=spec))


def argument(event: Any, key: str) -> str | None:
    return next((a.value for a in event.arguments or [] if a.key == key), None)


@pytest.fixture
def fresh_key(si_a: Any) -> tuple[str, str]:
    key = si_a.content.cryptoManager.GenerateKey().keyId
    return key.providerId.id, key.keyId


@pytest.fixture
def shared_kms_running(env: Environment) -> Iterator[Any]:
    """The shared KMS server, guaranteed running and accepting Create again after the test."""
    server = env.kms.servers["shared"]
    yield server
    server.refuse_create(False)
    if not server.running:
        server.start()


# ---- the catalogue -------------------------------------------------------------------------------
def test_event_info_lists_the_crypto_ids(si_a: Any) -> None:
    info = si_a.content.eventManager.description.eventInfo
    ids = {d.fullFormat.split("|", 1)[0]: d for d in info if d.key in (vim.event.EventEx, vim.event.ExtendedEvent)}
    for wanted in (UNREACHABLE, KEY_GENERATE_FAIL, RECOVERED, *CORE_DUMP_IDS.values(),
                   "com.vmware.vc.vm.crypto.NoDiskSpace", "com.vmware.vc.vm.crypto.RekeyFail",
                   "com.vmware.vc.vm.crypto.DiskchainUsingMixedKeys"):
        assert wanted in ids, wanted
    assert ids[UNREACHABLE].category == "error" and ids[KEY_GENERATE_FAIL].category == "error"
    assert ids[CORE_DUMP_IDS["hostd"]].category == "warning"
    assert ids[UNREACHABLE].fullFormat == f"{UNREACHABLE}|Key Management Server is unreachable"
    names = [a.name for a in si_a.content.eventManager.RetrieveArgumentDescription(eventTypeId=CORE_DUMP_IDS["hostd"])]
    assert names == ["1", "2", "3"]


def test_kms_alarm_is_defined_on_the_root_folder(si_a: Any, si_b: Any) -> None:
    for si in (si_a, si_b):
        alarm = kms_alarm(si)
        info = alarm.info
        assert info.entity._moId == si.content.rootFolder._moId and info.enabled
        (red,) = [e for e in info.expression.expression if e.eventTypeId == UNREACHABLE]
        assert red.status == "red" and red.eventType == vim.event.EventEx
        assert alarm_status(si, alarm) == "green" and not triggered(si, alarm)


# ---- EVT-KEY-CREATE --------------------------------------------------------------------------------
def test_key_creation_failure_posts_critical_event(si_a: Any, shared_kms_running: Any) -> None:
    since = si_a.CurrentTime()
    shared_kms_running.refuse_create(True)
    result = si_a.content.cryptoManager.GenerateKey()
    shared_kms_running.refuse_create(False)
    assert result.success is False and result.reason
    (event,) = events(si_a, since, KEY_GENERATE_FAIL)
    assert isinstance(event, vim.event.EventEx) and event.severity == "error"
    assert SHARED_PROVIDER in event.fullFormattedMessage and argument(event, "keyProvider") == SHARED_PROVIDER
    assert event.objectId == si_a.content.rootFolder._moId
    assert si_a.content.cryptoManager.GenerateKey().success
    assert not events(si_a, event.createdTime + datetime.timedelta(microseconds=1), KEY_GENERATE_FAIL)


# ---- EVT-KMS-UNREACHABLE ---------------------------------------------------------------------------
def test_provider_on_closed_port_turns_alarm_red_until_it_answers(env: Environment, si_a: Any) -> None:
    """The safe variant: a test-only provider pointing at a closed port, later moved to a live KMS."""
    alarm, provider_id = kms_alarm(si_a), new_provider_id()
    since = si_a.CurrentTime()
    register(si_a, provider_id, "127.0.0.1", free_port(), name="gone")
    try:
        assert triggered(si_a, alarm) == ["red"]
        assert alarm_status(si_a, alarm) == "red"
        assert si_a.content.rootFolder.overallStatus == "red"
        (down,) = events(si_a, since, UNREACHABLE)
        assert down.severity == "error" and provider_id in down.fullFormattedMessage
        changes = events(si_a, since, "AlarmStatusChangedEvent")
        assert [(getattr(c, "from"), c.to) for c in changes] == [("green", "red")]
        assert changes[0].alarm.alarm._moId == alarm._moId

        ep = env.kms_endpoints["shared"]
        si_a.content.cryptoManager.UpdateKmipServer(server=vim.encryption.KmipServerSpec(
            clusterId=pid_ref(provider_id), info=vim.encryption.KmipServerInfo(name="gone", address=ep.address, port=ep.port)))
        assert alarm_status(si_a, alarm) == "green" and not triggered(si_a, alarm)
        (back,) = events(si_a, since, RECOVERED)
        assert back.createdTime > down.createdTime and provider_id in back.fullFormattedMessage
    finally:
        remove_provider(si_a, provider_id)
    assert alarm_status(si_a, alarm) == "green"


def test_kms_stop_and_restart(env: Environment, si_a: Any, shared_kms_running: Any) -> None:
    """Stop the shared KMS: Unreachable event, alarm red, keys fail; restart on the same port: green."""
    alarm = kms_alarm(si_a)
    assert alarm_status(si_a, alarm) == "green"
    since = si_a.CurrentTime()
    port = shared_kms_running.port
    shared_kms_running.stop()
    assert triggered(si_a, alarm) == ["red"]
    (down,) = events(si_a, since, UNREACHABLE)
    assert down.severity == "error" and SHARED_PROVIDER in down.fullFormattedMessage
    failed = si_a.content.cryptoManager.GenerateKey()
    assert failed.success is False and "unreachable" in failed.reason
    assert events(si_a, since, KEY_GENERATE_FAIL)
    (cluster,) = si_a.content.cryptoManager.RetrieveKmipServersStatus_Task(
        clusters=[vim.encryption.KmipClusterInfo(clusterId=pid_ref(SHARED_PROVIDER), useAsDefault=False)]).info.result
    assert cluster.overallStatus == "red"
    assert len(events(si_a, since, UNREACHABLE)) == 1           # one event per outage, not per look

    shared_kms_running.start()
    assert shared_kms_running.port == port
    assert alarm_status(si_a, alarm) == "green" and not triggered(si_a, alarm)
    (back,) = events(si_a, since, RECOVERED)
    assert back.createdTime >= down.createdTime
    assert si_a.content.cryptoManager.GenerateKey().success
    changes = [(getattr(c, "from"), c.to) for c in reversed(events(si_a, since, "AlarmStatusChangedEvent"))]
    assert changes == [("green", "red"), ("red", "green")]


def test_removing_the_unreachable_provider_clears_the_alarm(si_a: Any) -> None:
    """The fake's choice (UNCONFIRMED on vCenter): the outage ends with the only provider that had it."""
    alarm, provider_id = kms_alarm(si_a), new_provider_id()
    since = si_a.CurrentTime()
    register(si_a, provider_id, "127.0.0.1", free_port())
    try:
        assert alarm_status(si_a, alarm) == "red"
    finally:
        remove_provider(si_a, provider_id)
    assert alarm_status(si_a, alarm) == "green"
    changes = [(getattr(c, "from"), c.to) for c in reversed(events(si_a, since, "AlarmStatusChangedEvent"))]
    assert changes == [("green", "red"), ("red", "green")]
    assert not events(si_a, since, RECOVERED)                    # nothing answered: no vendor event


def test_clear_triggered_alarms_resets_to_green(si_a: Any) -> None:
    alarm, provider_id = kms_alarm(si_a), new_provider_id()
    register(si_a, provider_id, "127.0.0.1", free_port())
    try:
        assert alarm_status(si_a, alarm) == "red"
        si_a.content.alarmManager.ClearTriggeredAlarms(filter=vim.alarm.AlarmFilterSpec())
        assert alarm_status(si_a, alarm) == "green" and not triggered(si_a, alarm)
        assert alarm_status(si_a, alarm) == "green"      # still down, but no new transition: no new event
    finally:
        remove_provider(si_a, provider_id)


# ---- EVT-COREDUMP ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["hostd", "vpxa", "application"])
def test_encrypted_core_dump_event(env: Environment, si_a: Any, fresh_key: tuple[str, str], kind: str) -> None:
    fake = env.fake_vcenter("vc-a")
    host = fake.cluster.hosts[1]
    since = si_a.CurrentTime()
    core_dumps.add_encrypted_core_dump(fake, host, kind, f"{kind}-zdump.000", key=fresh_key)
    (event,) = events(si_a, since, CORE_DUMP_IDS[kind])
    assert event.severity == "warning"
    assert f"{kind}-zdump.000" in event.fullFormattedMessage and "/var/core" in event.fullFormattedMessage
    assert f"/var/core/{kind}-zdump.000" in {a.value for a in event.arguments}
    assert fresh_key[1] in {a.value for a in event.arguments}
    assert event.objectId == host.moid and event.host.host._moId == host.moid
    assert event.datacenter.datacenter._moId == si_a.content.rootFolder.childEntity[0]._moId
    assert si_a.content.eventManager.latestEvent.key == event.key


def test_core_dump_needs_a_host_key(env: Environment) -> None:
    fake = env.fake_vcenter("vc-a")
    host = fake.legacy_host
    if host.host_key is None:
        with pytest.raises(ValueError):
            core_dumps.add_encrypted_core_dump(fake, host, "hostd", "x.zdump")


# ---- QueryEvents filters and collectors --------------------------------------------------------------
@pytest.fixture
def two_host_events(env: Environment, si_a: Any, fresh_key: tuple[str, str]) -> tuple[Any, Any, Any, Any]:
    """(since, host0 event, host1 event, fake) - two warning events on two hosts of the cluster."""
    fake = env.fake_vcenter("vc-a")
    since = si_a.CurrentTime()
    first = core_dumps.add_encrypted_core_dump(fake, fake.cluster.hosts[0], "vpxa", "vpxa-a.zdump", key=fresh_key)
    second = core_dumps.add_encrypted_core_dump(fake, fake.cluster.hosts[1], "vpxa", "vpxa-b.zdump", key=fresh_key)
    return since, first, second, fake


def _keys(found: list[Any]) -> set[int]:
    return {e.key for e in found}


def test_query_events_by_type_and_entity(si_a: Any, two_host_events: Any) -> None:
    since, first, second, fake = two_host_events
    vpxa = CORE_DUMP_IDS["vpxa"]
    by = vim.event.EventFilterSpec.ByEntity
    dc = si_a.content.rootFolder.childEntity[0]
    host0, host1 = (vim.HostSystem(h.moid, si_a._stub) for h in fake.cluster.hosts[:2])
    cluster = vim.ClusterComputeResource(fake.cluster.moid, si_a._stub)
    both = {first.key, second.key}

    assert _keys(events(si_a, since, vpxa)) == both
    assert not events(si_a, since, CORE_DUMP_IDS["hostd"])
    assert _keys(events(si_a, since, vpxa, entity=by(entity=host0, recursion="self"))) == {first.key}
    assert _keys(events(si_a, since, vpxa, entity=by(entity=host1, recursion="all"))) == {second.key}
    assert _keys(events(si_a, since, vpxa, entity=by(entity=cluster, recursion="children"))) == both
    assert not events(si_a, since, vpxa, entity=by(entity=dc.hostFolder, recursion="self"))
    assert _keys(events(si_a, since, vpxa, entity=by(entity=dc.hostFolder, recursion="children"))) == both
    assert _keys(events(si_a, since, vpxa, entity=by(entity=dc.hostFolder, recursion="all"))) == both
    assert _keys(events(si_a, since, vpxa, entity=by(entity=si_a.content.rootFolder, recursion="all"))) == both
    assert not events(si_a, since, vpxa, entity=by(entity=dc.vmFolder, recursion="all"))
    assert _keys(events(si_a, since, vpxa, category=["warning"])) == both
    assert not events(si_a, since, vpxa, category=["error"])


def test_query_events_by_time_count_and_user(si_a: Any, vm: Any, two_host_events: Any) -> None:
    since, first, second, _ = two_host_events
    vpxa = CORE_DUMP_IDS["vpxa"]
    em = si_a.content.eventManager
    by_time = vim.event.EventFilterSpec.ByTime
    window = vim.event.EventFilterSpec(eventTypeId=[vpxa], time=by_time(beginTime=since, endTime=first.createdTime))
    assert [e.key for e in em.QueryEvents(filter=window)] == [first.key]
    after = vim.event.EventFilterSpec(eventTypeId=[vpxa], time=by_time(
        beginTime=second.createdTime + datetime.timedelta(microseconds=1)))
    assert not em.QueryEvents(filter=after)
    (newest,) = em.QueryEvents(filter=vim.event.EventFilterSpec(eventTypeId=[vpxa], maxCount=1))
    assert newest.key == second.key
    assert [e.key for e in events(si_a, since, vpxa)] == [second.key, first.key]      # newest first

    em.LogUserEvent(entity=vm, msg="vcrypt was here")
    admin = si_a.content.sessionManager.currentSession.userName
    users = events(si_a, since, userName=vim.event.EventFilterSpec.ByUsername(systemUser=False, userList=[admin]))
    assert [type(e).__name__.split(".")[-1] for e in users] == ["GeneralUserEvent"]
    assert users[0].vm.vm._moId == vm._moId and users[0].userName == admin
    system = events(si_a, since, userName=vim.event.EventFilterSpec.ByUsername(systemUser=True))
    assert _keys(system) >= {first.key, second.key} and users[0].key not in _keys(system)
    muted = em.QueryEvents(filter=vim.event.EventFilterSpec(eventTypeId=[vpxa], maxCount=1, disableFullMessage=True))
    assert muted[0].fullFormattedMessage is None


def test_event_collector_pages(env: Environment, si_a: Any, fresh_key: tuple[str, str]) -> None:
    fake = env.fake_vcenter("vc-a")
    host = fake.cluster.hosts[2]
    since = si_a.CurrentTime()
    ids = [core_dumps.add_encrypted_core_dump(fake, host, "application", f"app-{i}.zdump", key=fresh_key).key
           for i in range(5)]
    em = si_a.content.eventManager
    spec = vim.event.EventFilterSpec(
        eventTypeId=[CORE_DUMP_IDS["application"]], maxCount=2, time=vim.event.EventFilterSpec.ByTime(beginTime=since),
        entity=vim.event.EventFilterSpec.ByEntity(entity=vim.HostSystem(host.moid, si_a._stub), recursion="self"))
    collector = em.CreateCollectorForEvents(filter=spec)
    try:
        assert [e.key for e in collector.latestPage] == [ids[4], ids[3]]          # newest first, a page of 2
        # a new collector stands just before its latest page
        assert [e.key for e in collector.ReadPreviousEvents(maxCount=10)] == [ids[2], ids[1], ids[0]]
        collector.RewindCollector()
        assert [e.key for e in collector.ReadNextEvents(maxCount=2)] == ids[0:2]
        assert [e.key for e in collector.ReadNextEvents(maxCount=10)] == ids[2:5]
        assert list(collector.ReadNextEvents(maxCount=10)) == []
        later = core_dumps.add_encrypted_core_dump(fake, host, "application", "app-late.zdump", key=fresh_key)
        assert [e.key for e in collector.ReadNextEvents(maxCount=10)] == [later.key]   # the view is live
        collector.ResetCollector()
        assert [e.key for e in collector.ReadNextEvents(maxCount=10)] == [ids[4], later.key]
        collector.SetCollectorPageSize(maxCount=3)
        assert [e.key for e in collector.latestPage] == [later.key, ids[4], ids[3]]
        with pytest.raises(vmodl.fault.InvalidArgument):
            collector.ReadNextEvents(maxCount=0)
    finally:
        collector.DestroyCollector()
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        collector.ReadNextEvents(maxCount=1)


def test_log_user_event_and_post_event(si_a: Any, vm: Any) -> None:
    since = si_a.CurrentTime()
    em = si_a.content.eventManager
    em.PostEvent(eventToPost=vim.event.EventEx(
        eventTypeId="com.vmware.vc.crypto.Operation", severity="info", key=0, chainId=0, createdTime=since,
        userName="", vm=vim.event.VmEventArgument(name=vm.name, vm=vm)))
    (posted,) = events(si_a, since, "com.vmware.vc.crypto.Operation")
    assert posted.vm.vm._moId == vm._moId and posted.key > 0 and posted.createdTime >= since


# ---- a 6.7 vCenter -----------------------------------------------------------------------------------
def test_pre7_vcenter_has_no_kms_unreachable_event_nor_alarm(env: Environment) -> None:
    with defect_world(env, version="6.7.3") as (_, sis):
        si = sis["vc-a"]
        info = si.content.eventManager.description.eventInfo
        ids = {d.fullFormat.split("|", 1)[0] for d in info}
        assert UNREACHABLE not in ids and KEY_GENERATE_FAIL not in ids and "com.vmware.vc.crypto.Operation" in ids
        watched = {eid for a in si.content.alarmManager.GetAlarm(entity=si.content.rootFolder)
                   for eid in _event_ids(a.info.expression)}
        assert UNREACHABLE not in watched


# ---- seeded defects of this area ---------------------------------------------------------------------
def _refused_generate(env: Environment, si: Any) -> tuple[Any, list[Any]]:
    server = env.kms.servers["shared"]
    since = si.CurrentTime()
    server.refuse_create(True)
    try:
        result = si.content.cryptoManager.GenerateKey()
    finally:
        server.refuse_create(False)
    return result, events(si, since, KEY_GENERATE_FAIL)


def test_defect_no_key_generate_fail_event(env: Environment) -> None:
    with defect_world(env, "evt-key-create-no-event") as (_, sis):
        result, posted = _refused_generate(env, sis["vc-a"])
    assert result.success is False and posted == []


def test_defect_key_generate_fail_as_info(env: Environment) -> None:
    with defect_world(env, "evt-key-create-info-severity") as (_, sis):
        _, posted = _refused_generate(env, sis["vc-a"])
    assert [e.severity for e in posted] == ["info"]


def _closed_port_then_back(env: Environment, si: Any) -> tuple[str, str, list[Any], list[Any]]:
    """(status while down, status after recovery, Unreachable events, recovery events) of a test provider."""
    alarm, provider_id = kms_alarm(si), new_provider_id()
    since = si.CurrentTime()
    register(si, provider_id, "127.0.0.1", free_port(), name="gone")
    down = alarm_status(si, alarm)
    ep = env.kms_endpoints["shared"]
    si.content.cryptoManager.UpdateKmipServer(server=vim.encryption.KmipServerSpec(
        clusterId=pid_ref(provider_id), info=vim.encryption.KmipServerInfo(name="gone", address=ep.address, port=ep.port)))
    up = alarm_status(si, alarm)
    remove_provider(si, provider_id)
    return down, up, events(si, since, UNREACHABLE), events(si, since, RECOVERED)


def test_defect_no_unreachable_event(env: Environment) -> None:
    with defect_world(env, "evt-kms-unreachable-no-event") as (_, sis):
        down, _, unreachable, _ = _closed_port_then_back(env, sis["vc-a"])
    assert down == "green" and unreachable == []


def test_defect_alarm_never_red(env: Environment) -> None:
    with defect_world(env, "evt-kms-alarm-never-red") as (_, sis):
        down, _, unreachable, _ = _closed_port_then_back(env, sis["vc-a"])
    assert len(unreachable) == 1 and down == "green"


def test_defect_alarm_never_clears(env: Environment) -> None:
    with defect_world(env, "evt-kms-alarm-never-clears") as (_, sis):
        down, up, _, recovered = _closed_port_then_back(env, sis["vc-a"])
    assert down == "red" and len(recovered) == 1 and up == "red"


def test_defect_core_dump_without_file_name(env: Environment, fresh_key: tuple[str, str]) -> None:
    with defect_world(env, "evt-coredump-no-filename") as (world, sis):
        si, fake = sis["vc-a"], world.vcenters["vc-a"]
        since = si.CurrentTime()
        core_dumps.add_encrypted_core_dump(fake, fake.cluster.hosts[0], "hostd", "hostd-secret.zdump", key=fresh_key)
        (event,) = events(si, since, CORE_DUMP_IDS["hostd"])
    assert "hostd-secret.zdump" not in event.fullFormattedMessage
    assert not any("hostd-secret.zdump" in a.value for a in event.arguments)


def test_defect_core_dump_wrong_severity(env: Environment, fresh_key: tuple[str, str]) -> None:
    with defect_world(env, "evt-coredump-wrong-severity") as (world, sis):
        si, fake = sis["vc-a"], world.vcenters["vc-a"]
        since = si.CurrentTime()
        core_dumps.add_encrypted_core_dump(fake, fake.cluster.hosts[0], "vpxa", "vpxa.zdump", key=fresh_key)
        (event,) = events(si, since, CORE_DUMP_IDS["vpxa"])
    assert event.severity == "info"
