"""EventManager and EventHistoryCollector: the crypto events a vCenter posts, and how to read them.

Behaviours post with `vc.events.post(type_id, entity=mo, severity=..., message=..., arguments={...})`
which records a `vim.event.EventEx` with the entity arguments filled in as vCenter does (vm, host,
computeResource, datacenter, ds, objectId/objectType/objectName). `description.eventInfo` lists
every EventEx id of CATALOGUE (texts and categories from the vCenter 7.0 U3 event list, API.md
6.1): an id posted but missing there is logged as a bug of the fake, never added silently.
On a 6.7 vCenter the ids that appeared in 7.0 are neither listed nor posted.

Reading events (QueryEvents, latestEvent, collectors) first runs the lazy KMS health check, so a
KMS that stopped answering shows up in the events a reader asks for.

Ordering follows vcsim: QueryEvents and latestPage are newest first; a collector starts just
before its latest page (ResetCollector's position), ReadNextEvents moves to newer events and
ReadPreviousEvents to older ones; RewindCollector goes to the oldest.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pyVmomi import vim, vmodl

from harness.fakevc.kmip import kms_health
from harness.fakevc.model.base import MO, CallContext
from harness.fakevc.model.task import now
from harness.fakevc.wire import complete

log = logging.getLogger(__name__)

QUERY_DEFAULT_MAX = 1000
PAGE_DEFAULT, PAGE_MAX = 10, 1000
MAX_COLLECTORS = 32           # vCenter's default event.maxCollectors
KEEP_EVENTS = 20000
_SEVERITY = {"critical": "error", "error": "error", "warning": "warning", "info": "info", "user": "user"}


@dataclass(frozen=True)
class EventType:
    """One event id the fake can post: its catalogue text, category, and argument names."""
    id: str
    text: str
    category: str                   # info | warning | error | user
    since7: bool = True             # first listed in 7.0 (absent from a 6.7 vCenter)
    args: tuple[str, ...] = ()


_CORE_ARGS = ("1", "2", "3", "4")
CATALOGUE: dict[str, EventType] = {e.id: e for e in (
    # Key providers
    EventType("com.vmware.vc.kms.crypto.KeyGenerateFail", "Key creation failed on key provider.", "error",
              args=("keyProvider", "reason")),
    EventType("com.vmware.vc.kms.crypto.Unreachable", "Key Management Server is unreachable", "error",
              args=("keyProvider", "servers", "cause")),
    EventType("com.vmware.vc.kms.crypto.Vendor", "Retrieved Key Management Server vendor information.", "info",
              args=("keyProvider", "vendor")),
    EventType("com.vmware.vc.kms.crypto.SendKeyError.KeyMissingOnKMS",
              "Failed to send keys because keys are missing on key provider.", "error"),
    EventType("com.vmware.vc.kms.crypto.SendKeyError.KMSClusterError",
              "Failed to send keys because of key provider error.", "error"),
    EventType("com.vmware.vc.vecs.KMSServerCertExpirationEvent", "KMS Server Certificate will expire soon.",
              "warning", since7=False),
    EventType("com.vmware.vc.vecs.KMSClientCertExpirationEvent", "KMS Client Certificate will expire soon.",
              "warning", since7=False),
    EventType("com.vmware.vc.TrustAuthority.KMSServerCertExpirationEvent",
              "The server certificate of Trusted Key Provider will expire soon.", "warning"),
    EventType("com.vmware.vc.TrustAuthority.KMSClientCertExpirationEvent",
              "The client certificate of Trusted Key Provider will expire soon.", "warning"),
    # Hosts
    EventType("com.vmware.vc.host.Crypto.Enabled", "Encryption mode is enabled on host.", "info", since7=False),
    EventType("com.vmware.vc.host.Crypto.HostCryptoDisabled",
              "The operation is not supported on hosts which have encryption disabled.", "error"),
    EventType("com.vmware.vc.host.Crypto.HostKey.NewKey.KeyMissingOnKMS",
              "Host key is being renewed because key was missing on the key provider.", "warning", since7=False),
    EventType("com.vmware.vc.host.Crypto.HostKey.NewKey.KMSClusterError",
              "Host key is being renewed because an error occurred on the key provider.", "warning", since7=False),
    EventType("com.vmware.vc.host.Crypto.ReqEnable.KeyMissingOnKMS",
              "Host requires encryption mode enabled and the key is not available on the key provider.", "error",
              since7=False),
    EventType("com.vmware.vc.host.Crypto.ReqEnable.KMSClusterError",
              "Host requires encryption mode enabled and the key provider is not available.", "error", since7=False),
    EventType("com.vmware.vc.host.Crypto.SendKeyError.HostError",
              "Failed to send keys to host because of host error.", "error"),
    EventType("com.vmware.vc.crypto.HostKeyUpdatedEvent", "Updating host encryption key", "info"),
    EventType("com.vmware.vc.crypto.Operation", "Crypto operation audit event", "info", since7=False),
    # Encrypted core dumps (ESXi)
    EventType("esx.problem.application.core.dumped.encrypted",
              "An application running on ESXi host has crashed and an encrypted core file was created.", "warning",
              args=_CORE_ARGS),
    EventType("esx.problem.hostd.core.dumped.encrypted",
              "Hostd crashed and an encrypted core file was created.", "warning", args=_CORE_ARGS[:3]),
    EventType("esx.problem.vpxa.core.dumped.encrypted",
              "Vpxa crashed and an encrypted core file was created.", "warning", args=_CORE_ARGS[:3]),
    EventType("esx.problem.application.core.dumped",
              "An application running on ESXi host has crashed and a core file was created.", "warning",
              since7=False, args=_CORE_ARGS),
    EventType("esx.problem.hostd.core.dumped", "Hostd crashed and a core file was created.", "warning",
              since7=False, args=_CORE_ARGS[:3]),
    EventType("esx.problem.vpxa.core.dumped", "Vpxa crashed and a core file was created.", "warning",
              since7=False, args=_CORE_ARGS[:3]),
    # Virtual machines
    EventType("com.vmware.vc.vm.crypto.NoDiskSpace",
              "Cryptographic operation failed due to insufficient disk space on datastore", "error"),
    EventType("com.vmware.vc.vm.crypto.RekeyFail", "com.vmware.vc.vm.crypto.RekeyFail", "error"),
    EventType("com.vmware.vc.vm.crypto.DiskchainUsingMixedKeys", "The disk device is encrypted with mixed keys.",
              "warning"),
    EventType("com.vmware.vc.vm.Crypto.VMLocked.KeyMissingOnHost",
              "Virtual machine is locked because keys were missing on the host.", "error"),
    EventType("com.vmware.vc.vm.Crypto.VMLocked.KeyMissingOnKMS",
              "Virtual machine is locked because keys were missing on the key provider.", "error"),
    EventType("com.vmware.vc.vm.Crypto.VMLocked.KMSClusterError",
              "Virtual machine is locked because an error occurred on the key provider.", "error"),
    EventType("com.vmware.vc.vm.Crypto.VMLocked.TAKeyMissingOnHost",
              "Virtual machine is locked because Trust Authority managed key(s) are missing on the required host.",
              "error"),
    EventType("com.vmware.vc.vm.Crypto.VMLocked.TAKMSClusterUnavaliable",
              "Virtual machine is locked because the required Trusted Key Provider(s) is unavailable.", "error"),
    EventType("com.vmware.vc.vm.Crypto.VMUnlocked", "Virtual machine is unlocked.", "info"),
    EventType("com.vmware.vim.vm.DiskCryptoResumeFailed", "com.vmware.vim.vm.DiskCryptoResumeFailed", "error"),
    EventType("com.vmware.vim.vm.CryptoResumeFailed", "com.vmware.vim.vm.CryptoResumeFailed", "error"),
    EventType("com.vmware.vc.vm.VmMigratingWithEncryptionEvent",
              "com.vmware.vc.vm.VmMigratingWithEncryptionEvent", "info"),
    EventType("com.vmware.vc.vm.VmHotMigratingWithEncryptionEvent",
              "Hot migrating virtual machine with encryption", "info"),
    EventType("com.vmware.vc.vm.SrcVmClonedEvent", "Virtual machine cloned successfully", "info"),
    EventType("com.vmware.vc.vm.DstVmClonedEvent", "Virtual machine cloned successfully", "info"),
    EventType("com.vmware.vc.vm.SrcVmCloneFailedEvent", "Virtual machine clone failed", "error"),
    EventType("com.vmware.vc.vm.SrcVmMigratedEvent", "Virtual machine migrated successfully", "info"),
    EventType("com.vmware.vc.vm.DstVmMigratedEvent", "Virtual machine migrated successfully", "info"),
    EventType("com.vmware.vc.vm.SrcVmMigrateFailedEvent", "Virtual machine migration failed", "error"),
    EventType("com.vmware.vc.VmInstantClonedEvent", "Instant Clone of VM has completed", "info"),
    EventType("com.vmware.vc.VmInstantCloneFailedEvent", "Cannot complete Instant Clone of VM", "error"),
)}

# Classic (non-EventEx) events the fake posts: (type, category, fullFormat).
STANDARD: tuple[tuple[Any, str, str], ...] = (
    (vim.event.AlarmStatusChangedEvent, "info",
     "Alarm '{alarm.name}' on {entity.name} changed from {from.@enum.ManagedEntity.Status} to "
     "{to.@enum.ManagedEntity.Status}"),
    (vim.event.GeneralUserEvent, "user", "User logged event: {message}"),
)


def _detail(key: Any, text: str, category: str, full: str) -> Any:
    return vim.event.EventDescription.EventDetail(
        key=key, description=text, category=category, formatOnDatacenter=full, formatOnComputeResource=full,
        formatOnHost=full, formatOnVm=full, fullFormat=full)


def principal(user: str) -> str:
    """A caller as vCenter prints it in events (`VSPHERE.LOCAL\\name`, as sessions show it)."""
    if not user:
        return ""
    try:
        from harness.fakevc.model.authorization import display_name
    except ImportError:       # pragma: no cover - the authorization model is another module's
        return user
    return display_name(user)


def _type_id(event: Any) -> str:
    return event.eventTypeId if isinstance(event, (vim.event.EventEx, vim.event.ExtendedEvent)) else type(event).__name__.split(".")[-1]


@dataclass
class _Stored:
    """A posted event and the inventory lineage of the entities it names (for entity recursion)."""
    event: Any
    type_id: str
    entities: dict[str, tuple[str, ...]]     # moId -> (moId, parent moId, grandparent ...)


class EventManager(MO):
    vim_type = vim.event.EventManager
    moid_prefix = "EventManager"

    def __init__(self, vc: Any, moid: str | None = None) -> None:
        super().__init__(vc, moid)
        self.events: list[_Stored] = []
        self._next_key = 1
        self.collectors: dict[str, "EventHistoryCollector"] = {}
        self.posting = False

    # ---- posting ------------------------------------------------------------------------------
    def post(self, type_id: str, *, entity: MO | None = None, severity: str = "info", message: str = "",
             arguments: dict[str, str] | None = None, user: str = "", fault: Any = None) -> Any:
        """Record an EventEx, as vCenter posts one for crypto conditions; returns it (None if this
        vCenter's version has no such event). `user` is the login name of the caller, if any."""
        known = CATALOGUE.get(type_id)
        if known is None:
            log.warning("fake vCenter %s posts event id %r that its eventInfo does not list", self.vc.name, type_id)
        elif known.since7 and self.vc.is_pre7:
            return None
        event = vim.event.EventEx(
            eventTypeId=type_id, severity=_SEVERITY.get(severity, severity), message=message or None,
            fullFormattedMessage=message or (known.text if known else type_id), userName=principal(user),
            arguments=[vmodl.KeyAnyValue(key=k, value=str(v)) for k, v in (arguments or {}).items()],
            fault=fault)
        if entity is not None:
            event.objectId, event.objectType, event.objectName = entity.moid, entity.vim_type, getattr(entity, "name", None)
        return self.record(event, entity)

    def record(self, event: Any, entity: MO | None) -> Any:
        """Give an event its key, time and entity arguments, store it, and let alarms see it."""
        event.key = event.chainId = self._next_key
        self._next_key += 1
        event.createdTime = now()
        event.userName = event.userName or ""
        lineage = self._fill_entity_arguments(event, entity)
        self.events.append(_Stored(complete(event), _type_id(event), lineage))
        del self.events[:-KEEP_EVENTS]
        alarms = getattr(self.vc, "alarms", None)
        if alarms is not None and not self.posting:
            self.posting = True
            try:
                alarms.on_event(event, entity)
            finally:
                self.posting = False
        return event

    def _fill_entity_arguments(self, event: Any, entity: MO | None) -> dict[str, tuple[str, ...]]:
        """vm / host / computeResource / datacenter / ds arguments for an entity, as vCenter fills them."""
        named: list[MO] = []
        if entity is not None:
            named.append(entity)
            if isinstance(entity.ref, vim.VirtualMachine) and getattr(entity, "host", None) is not None:
                named.append(entity.host)
            for node in list(named):
                if isinstance(node.ref, vim.HostSystem) and node.parent_mo is not None:
                    named.append(node.parent_mo)
            dc = next((n for n in entity.ancestors() if isinstance(n.ref, vim.Datacenter)), None) \
                if hasattr(entity, "ancestors") else None
            if dc is not None:
                named.append(dc)
        ev = vim.event
        for node in named:
            ref, name = node.ref, getattr(node, "name", "")
            if isinstance(ref, vim.VirtualMachine) and event.vm is None:
                event.vm = ev.VmEventArgument(name=name, vm=ref)
            elif isinstance(ref, vim.HostSystem) and event.host is None:
                event.host = ev.HostEventArgument(name=name, host=ref)
            elif isinstance(ref, vim.ComputeResource) and event.computeResource is None:
                event.computeResource = ev.ComputeResourceEventArgument(name=name, computeResource=ref)
            elif isinstance(ref, vim.Datacenter) and event.datacenter is None:
                event.datacenter = ev.DatacenterEventArgument(name=name, datacenter=ref)
            elif isinstance(ref, vim.Datastore) and event.ds is None:
                event.ds = ev.DatastoreEventArgument(name=name, datastore=ref)
        return {node.moid: tuple(n.moid for n in node.ancestors()) if hasattr(node, "ancestors") else (node.moid,)
                for node in named}

    # ---- reading ------------------------------------------------------------------------------
    def _look_at_kms(self) -> None:
        kms_health.check(self.vc)

    def matching(self, spec: Any) -> list[_Stored]:
        """Stored events that a filter spec selects, oldest first."""
        return [s for s in self.events if spec is None or self._matches(spec, s)]

    def _matches(self, spec: Any, stored: _Stored) -> bool:
        event = stored.event
        if spec.eventTypeId and stored.type_id not in spec.eventTypeId:
            return False
        if spec.type and not any(isinstance(event, t) for t in spec.type):
            return False
        if spec.category and self._category(stored) not in spec.category:
            return False
        if spec.eventChainId and event.chainId != spec.eventChainId:
            return False
        if spec.time is not None:
            if spec.time.beginTime is not None and event.createdTime < spec.time.beginTime:
                return False
            if spec.time.endTime is not None and event.createdTime > spec.time.endTime:
                return False
        if spec.userName is not None and not self._user_matches(spec.userName, event.userName):
            return False
        if spec.alarm is not None:
            arg = getattr(event, "alarm", None)
            if arg is None or arg.alarm._moId != spec.alarm._moId:
                return False
        if spec.entity is not None and not self._entity_matches(spec.entity, stored):
            return False
        return True

    @staticmethod
    def _category(stored: _Stored) -> str:
        if isinstance(stored.event, vim.event.EventEx):
            return stored.event.severity or "info"
        return next((cat for typ, cat, _ in STANDARD if isinstance(stored.event, typ)), "info")

    @staticmethod
    def _user_matches(by_user: Any, user: str) -> bool:
        names = {u.lower() for u in by_user.userList or []}
        if not user:
            return bool(by_user.systemUser)
        return user.lower() in names if names else not by_user.systemUser

    @staticmethod
    def _entity_matches(by_entity: Any, stored: _Stored) -> bool:
        wanted, recursion = by_entity.entity._moId, by_entity.recursion
        for moid, lineage in stored.entities.items():
            if moid == wanted:
                return True
            if recursion == "children" and len(lineage) > 1 and lineage[1] == wanted:
                return True
            if recursion == "all" and wanted in lineage:
                return True
        return False

    def QueryEvents(self, ctx: CallContext, filter: Any, eventViewSpec: Any = None) -> list:  # noqa: A002 - VMODL name
        self._look_at_kms()
        limit = filter.maxCount if filter.maxCount else QUERY_DEFAULT_MAX
        if limit < 0:
            raise vmodl.fault.InvalidArgument(invalidProperty="filter.maxCount", msg="maxCount must not be negative")
        found = [s.event for s in reversed(self.matching(filter))][:limit]
        return [self._view(e, filter) for e in found]

    @staticmethod
    def _view(event: Any, spec: Any) -> Any:
        if spec is not None and spec.disableFullMessage:
            copy = type(event)()
            for prop in event._GetPropertyList():
                setattr(copy, prop.name, getattr(event, prop.name))
            copy.fullFormattedMessage = None
            return copy
        return event

    def p_latestEvent(self) -> Any:
        self._look_at_kms()
        return self.events[-1].event if self.events else None

    def p_maxCollector(self) -> int:
        return MAX_COLLECTORS

    def p_description(self) -> Any:
        categories = [vim.ElementDescription(key=k, label=k.capitalize(), summary=s) for k, s in (
            ("info", "Information"), ("warning", "Warning"), ("error", "Error"), ("user", "User"))]
        details = [_detail(vim.event.EventEx, e.text, e.category, f"{e.id}|{e.text}")
                   for e in CATALOGUE.values() if not (e.since7 and self.vc.is_pre7)]
        details += [_detail(typ, full, cat, full) for typ, cat, full in STANDARD]
        return vim.event.EventDescription(category=categories, eventInfo=details)

    def RetrieveArgumentDescription(self, ctx: CallContext, eventTypeId: str) -> list:
        known = CATALOGUE.get(eventTypeId)
        if known is None or (known.since7 and self.vc.is_pre7):
            return []
        return [vim.event.EventDescription.EventArgDesc(
            name=arg, type="string", description=vim.ElementDescription(key=arg, label=arg, summary=arg))
            for arg in known.args]

    def CreateCollectorForEvents(self, ctx: CallContext, filter: Any) -> Any:  # noqa: A002 - VMODL name
        if len(self.collectors) >= MAX_COLLECTORS:
            raise vim.fault.InvalidState(msg=f"Too many event collectors (at most {MAX_COLLECTORS}) on {self.vc.name}")
        size = filter.maxCount or PAGE_DEFAULT
        if not 0 < size <= PAGE_MAX:
            raise vmodl.fault.InvalidArgument(invalidProperty="filter.maxCount", msg=f"Page size must be 1..{PAGE_MAX}")
        collector = EventHistoryCollector(self.vc, self, filter, size)
        self.collectors[collector.moid] = collector
        return collector.ref

    # ---- posting through the API ---------------------------------------------------------------
    def PostEvent(self, ctx: CallContext, eventToPost: Any, taskInfo: Any = None) -> None:
        entity = None
        for arg, attr in (("vm", "vm"), ("host", "host"), ("computeResource", "computeResource"),
                          ("datacenter", "datacenter"), ("ds", "datastore")):
            value = getattr(eventToPost, arg, None)
            if value is not None and getattr(value, attr, None) is not None:
                entity = self.vc.objects.get(getattr(value, attr)._moId)
                break
        eventToPost.userName = eventToPost.userName or principal(ctx.user)
        self.record(eventToPost, entity)

    def LogUserEvent(self, ctx: CallContext, entity: Any, msg: str) -> None:
        target = self.vc.lookup(entity)
        event = vim.event.GeneralUserEvent(
            message=msg, fullFormattedMessage=f"User logged event: {msg}", userName=principal(ctx.user),
            entity=vim.event.ManagedEntityEventArgument(name=getattr(target, "name", ""), entity=target.ref))
        self.record(event, target)


class EventHistoryCollector(MO):
    """A scrollable view of the events one filter selects (new matching events join it)."""
    vim_type = vim.event.EventHistoryCollector
    moid_prefix = "session[events]"

    def __init__(self, vc: Any, manager: EventManager, spec: Any, size: int) -> None:
        super().__init__(vc)
        self.manager = manager
        self.spec = spec
        self.size = size
        self.boundary = 0.0
        self._reset()

    def _items(self) -> list[_Stored]:
        return self.manager.matching(self.spec)

    def _reset(self) -> None:
        items = self._items()
        page = items[-self.size:]
        self.boundary = page[0].event.key - 0.5 if page else self.manager._next_key - 0.5

    def p_filter(self) -> Any:
        return self.spec

    def p_initialized(self) -> bool:
        return True

    def p_latestPage(self) -> list:
        self.manager._look_at_kms()
        return [s.event for s in reversed(self._items()[-self.size:])]

    def _count(self, maxCount: int) -> int:
        if maxCount is None or maxCount <= 0:
            raise vmodl.fault.InvalidArgument(invalidProperty="maxCount", msg="maxCount must be positive")
        return min(maxCount, PAGE_MAX)

    def ReadNextEvents(self, ctx: CallContext, maxCount: int) -> list:
        count = self._count(maxCount)
        self.manager._look_at_kms()
        taken = [s for s in self._items() if s.event.key > self.boundary][:count]
        if taken:
            self.boundary = taken[-1].event.key + 0.5
        return [s.event for s in taken]

    def ReadPreviousEvents(self, ctx: CallContext, maxCount: int) -> list:
        count = self._count(maxCount)
        self.manager._look_at_kms()
        taken = [s for s in reversed(self._items()) if s.event.key < self.boundary][:count]
        if taken:
            self.boundary = taken[-1].event.key - 0.5
        return [s.event for s in taken]

    def RewindCollector(self, ctx: CallContext) -> None:
        self.boundary = 0.0

    def ResetCollector(self, ctx: CallContext) -> None:
        self._reset()

    def SetCollectorPageSize(self, ctx: CallContext, maxCount: int) -> None:
        if maxCount is None or not 0 < maxCount <= PAGE_MAX:
            raise vmodl.fault.InvalidArgument(invalidProperty="maxCount", msg=f"Page size must be 1..{PAGE_MAX}")
        self.size = maxCount

    def DestroyCollector(self, ctx: CallContext) -> None:
        self.manager.collectors.pop(self.moid, None)
        self.vc.unregister(self)
