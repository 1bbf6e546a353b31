"""One fake vCenter: the registry of its managed objects, its users and sessions.

The state of one vCenter, below the behaviours: dispatch.py `invoke` (called by the stub adapter
with already-decoded arguments) finds the model object here, checks the session, and runs the
method under the world lock.
"""
from __future__ import annotations

import contextlib
import itertools
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from pyVmomi import vim, vmodl

from harness.fakevc.model.base import MO, CallContext, Session  # noqa: F401 (Session: server.Session for callers)

@dataclass
class User:
    name: str
    password: str
    groups: list[str] = field(default_factory=list)


class FakeVCenter:
    """A vCenter's state: objects by moId, users, sessions, and a version."""

    # Set by build.py: the inventory and the managers, model objects (declared so behaviours type-check).
    root: Any
    tasks: Any
    events: Any
    alarms: Any
    authz: Any
    crypto: Any
    managers: dict[str, Any]
    service_instance: Any
    datacenter: Any
    cluster: Any
    rekey_failure_after: int | None = None   # fault injection (behaviours/snapshots.py inject_rekey_failure)

    def __init__(self, world: Any, name: str, url: str, version: str = "7.0.3",
                 build: str = "19193900") -> None:
        self.world = world   # its world.FakeWorld (lock, defects, other vCenters): above this module, so untyped here
        self.name = name
        self.url = url
        self.version = version
        self.build = build
        self.instance_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"vcrypt-fake:{name}:{url}"))
        self.objects: dict[str, MO] = {}
        self.pbm_objects: dict[str, MO] = {}   # the PBM endpoint (/pbm/sdk) has its own moId space
        self.sessions: dict[str, Session] = {}
        self.users: dict[str, User] = {}
        self._ids = itertools.count(1)
        self.call_log: list[tuple[str, str]] = []  # (moId, method): lets tests prove what was invoked
        self.drop_next_calls = 0                  # injected dropped connections (reset before the model saw the call)
        self.drop_next_replies = 0                # injected drops after the model ran the call (the reply is lost)
        self.refuse_next_calls = 0                # injected refused connections (the request never left the client)
        self._local = threading.local()           # the call being served on this thread
        self.trust_peers = True                   # False: no shared trust with other fakes (locators need sslThumbprint)
        self.strict_policies = False              # True: datastore-type requirement policies do not fit VMFS
        self.quirks: Any = None                   # inventory RealQuirks: a real vCenter's open behaviours (quirk())
        self._certificate_der: bytes | None = None

    def quirk(self, name: str) -> Any:
        """One of the inventory's `fake.real_quirks` (its default when none were given)."""
        if self.quirks is None:
            from harness.inventory.schema import RealQuirks
            return getattr(RealQuirks(), name)
        return getattr(self.quirks, name)

    @property
    def certificate_der(self) -> bytes:
        """This vCenter's own TLS certificate (harness/fakevc/certificate.py), made on first use."""
        if self._certificate_der is None:
            from harness.fakevc.certificate import self_signed_der
            self._certificate_der = self_signed_der(self.url, self.name)
        return self._certificate_der

    # ---- registry -------------------------------------------------------------------------
    @property
    def lock(self) -> threading.Condition:
        return self.world.lock

    def new_moid(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def register(self, mo: MO) -> None:
        registry = self.pbm_objects if getattr(mo, "endpoint", "vim") == "pbm" else self.objects
        registry[mo.moid] = mo

    def unregister(self, mo: MO) -> None:
        registry = self.pbm_objects if getattr(mo, "endpoint", "vim") == "pbm" else self.objects
        registry.pop(mo.moid, None)

    def lookup(self, ref: Any) -> MO:
        """The model behind a MoRef, or ManagedObjectNotFound as vCenter says."""
        moid = ref if isinstance(ref, str) else ref._moId
        mo = self.objects.get(moid)
        if mo is None or (not isinstance(ref, str) and not isinstance(mo.ref, type(ref))
                          and not issubclass(mo.vim_type, type(ref))):
            raise vmodl.fault.ManagedObjectNotFound(obj=ref if not isinstance(ref, str) else vmodl.ManagedObject(moid),
                                                     msg=f"The object '{moid}' has already been deleted or has not been completely created")
        return mo

    def find(self, kind: type, predicate: Callable[[Any], bool] = lambda _: True) -> list[Any]:
        return [mo for mo in self.objects.values() if isinstance(mo, kind) and predicate(mo)]

    def vms(self) -> list[Any]:
        """The VirtualMachine models (found by their vim type: the model sits above this module)."""
        return [mo for mo in self.objects.values() if issubclass(mo.vim_type, vim.VirtualMachine)]

    def hosts(self) -> list[Any]:
        return [mo for mo in self.objects.values() if issubclass(mo.vim_type, vim.HostSystem)]

    @property
    def api_version(self) -> str:
        if self.version.startswith("8"):   # vTPM family: 8.0 knob (tpmProvisionPolicy is vSphere API 8.0.0.1)
            return "8.0.3.0"
        return "7.0.3.0" if self.version.startswith("7") else "6.7.3"

    @property
    def pyvmomi_version(self) -> str:
        """The pyVmomi version string a client negotiates with this vCenter."""
        if self.version.startswith("8"):   # vTPM family: an 8.0 fake speaks 8.0U3's API
            return "vim.version.v8_0_3_0"
        return "vim.version.v7_0_3_0" if self.version.startswith("7") else "vim.version.version13"

    @property
    def is_pre7(self) -> bool:
        return not self.version.startswith(("7", "8", "9"))

    # ---- users and sessions ------------------------------------------------------------------
    def add_user(self, name: str, password: str, groups: list[str] | None = None) -> User:
        """Test hook: a local user that can log in (real vCenter users come from SSO)."""
        user = User(name, password, list(groups or []))
        self.users[name.lower()] = user
        return user

    def check_login(self, name: str, password: str) -> User:
        user = self.users.get((name or "").lower())
        if user is None or not secrets.compare_digest(user.password, password or ""):
            raise vim.fault.InvalidLogin(msg="Cannot complete login due to an incorrect user name or password.")
        return user

    def open_session(self, user: User, locale: str | None = None) -> Session:
        moment = time.time()
        session = Session(key=str(uuid.uuid4()), user=user.name, login_time=moment, last_active=moment,
                          locale=locale or "en")
        self.sessions[session.key] = session
        return session

    def current_context(self) -> CallContext | None:
        """The context of the call this thread is serving (computed properties such as
        SessionManager.currentSession depend on the caller)."""
        return getattr(self._local, "ctx", None)

    @contextlib.contextmanager
    def serving(self, ctx: CallContext) -> Iterator[None]:
        """While inside: `ctx` is the call this thread serves (`current_context`)."""
        previous = getattr(self._local, "ctx", None)
        self._local.ctx = ctx
        try:
            yield
        finally:
            self._local.ctx = previous

    def expire_sessions(self) -> None:
        """Fault injection: every open session becomes invalid (as after a vCenter restart)."""
        for session in self.sessions.values():
            session.expired = True

    def session_for(self, key: str | None) -> Session | None:
        session = self.sessions.get(key or "")
        return session if session and not session.expired else None
