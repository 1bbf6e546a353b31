"""One fake vCenter: the registry of its managed objects, its sessions, and method dispatch.

The stub adapter (adapter.py) calls `FakeVCenter.invoke` with already-decoded arguments; this
module finds the model object, checks the session, and runs the method under the world lock.
"""
from __future__ import annotations

import itertools
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from pyVmomi import vim, vmodl

from harness.fakevc.model.base import MO, CallContext

if TYPE_CHECKING:
    from harness.fakevc.world import FakeWorld

# Methods a client may call before logging in, as on vCenter (PBM's content is anonymous too).
_ANONYMOUS = {"RetrieveServiceContent", "Login", "CurrentTime", "LoginByToken", "Fetch", "PbmRetrieveServiceContent"}
# Anonymous property reads: the service content, and the session manager (currentSession is
# unset without a session: pyVmomi's "is my session alive" check relies on it).
_ANONYMOUS_FETCH = {vim.ServiceInstance: None,
                    vim.SessionManager: {"currentSession", "defaultLocale", "supportedLocaleList", "message"}}


def _anonymous_fetch(mo: MO, prop: str) -> bool:
    for typ, props in _ANONYMOUS_FETCH.items():
        if isinstance(mo.ref, typ):
            return props is None or prop.split(".")[0] in props
    return False


@dataclass
class Session:
    key: str
    user: str
    expired: bool = False
    login_time: float = 0.0
    last_active: float = 0.0
    call_count: int = 0
    locale: str = "en"


@dataclass
class User:
    name: str
    password: str
    groups: list[str] = field(default_factory=list)


class FakeVCenter:
    """A vCenter's state: objects by moId, users, sessions, and a version."""

    def __init__(self, world: "FakeWorld", name: str, url: str, version: str = "7.0.3",
                 build: str = "19193900") -> None:
        self.world = world
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
        self.drop_next_calls = 0                  # injected dropped connections
        self._local = threading.local()           # the call being served on this thread
        self.trust_peers = True                   # False: no shared trust with other fakes (locators need sslThumbprint)
        self.strict_policies = False              # True: datastore-type requirement policies do not fit VMFS
        self._certificate_der: bytes | None = None

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
        from harness.fakevc.model.vm import VirtualMachine
        return self.find(VirtualMachine)

    def hosts(self) -> list[Any]:
        from harness.fakevc.model.host import HostSystem
        return self.find(HostSystem)

    @property
    def api_version(self) -> str:
        return "7.0.3.0" if self.version.startswith("7") else "6.7.3"

    @property
    def pyvmomi_version(self) -> str:
        """The pyVmomi version string a client negotiates with this vCenter."""
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

    def expire_sessions(self) -> None:
        """Fault injection: every open session becomes invalid (as after a vCenter restart)."""
        for session in self.sessions.values():
            session.expired = True

    def session_for(self, key: str | None) -> Session | None:
        session = self.sessions.get(key or "")
        return session if session and not session.expired else None

    # ---- dispatch ------------------------------------------------------------------------------
    def invoke(self, session_key: str | None, moid: str, method: str, kwargs: dict[str, Any],
               endpoint: str = "vim", privilege: str | None = None, mo_type: type | None = None) -> Any:
        """Run one API method on one object; raises the vmodl fault a vCenter would send.

        `privilege` is the method's VMODL privilege (checked before the method runs); a fault a
        privilege check deferred (a half-applied defect) is raised after the method ran.
        """
        with self.lock:
            if self.drop_next_calls > 0:
                self.drop_next_calls -= 1
                raise ConnectionResetError(f"fake vCenter {self.name}: connection reset by peer (injected)")
            self.call_log.append((moid, method))
            if endpoint == "pbm":
                from harness.fakevc.model.pbm import install
                install(self)
            mo = (self.pbm_objects if endpoint == "pbm" else self.objects).get(moid)
            if mo is None:
                raise vmodl.fault.ManagedObjectNotFound(
                    obj=(mo_type or vmodl.ManagedObject)(moid),
                    msg=f"The object '{moid}' has already been deleted or has not been completely created")
            session = self.session_for(session_key)
            anonymous_ok = method in _ANONYMOUS and (method != "Fetch" or _anonymous_fetch(mo, kwargs.get("prop", "")))
            if session is None and not anonymous_ok:
                raise vim.fault.NotAuthenticated(object=mo.ref, privilegeId="System.View",
                                                 msg="The session is not authenticated.")
            if session is not None:
                session.last_active = time.time()
                session.call_count += 1
            ctx = CallContext(vc=self, session=session)
            previous = getattr(self._local, "ctx", None)
            self._local.ctx = ctx
            log = getattr(self.world, "request_log", None)
            try:
                if log is not None:   # the fake's own record of what it served (request_log.py)
                    return log.call(self, moid, method, lambda: self._dispatch(ctx, mo, method, kwargs, privilege))
                return self._dispatch(ctx, mo, method, kwargs, privilege)
            finally:
                self._local.ctx = previous
                self.lock.notify_all()  # property-collector waiters re-check for changes

    def _dispatch(self, ctx: CallContext, mo: MO, method: str, kwargs: dict[str, Any], privilege: str | None) -> Any:
        if method == "Fetch":
            return mo.fetch(kwargs["prop"])
        handler = getattr(mo, method, None)
        if handler is None:
            raise vmodl.fault.MethodNotFound(receiver=mo.ref, method=method,
                                             msg=f"Method {method} not implemented by the fake vCenter")
        authz = getattr(self, "authz", None)
        if authz is not None and privilege:
            authz.require_method(ctx, mo, privilege)
        result = handler(ctx, **kwargs)
        deferred = getattr(ctx, "deferred_fault", None)
        if deferred is not None:
            task = self.objects.get(getattr(result, "_moId", None) or "")
            if task is not None and hasattr(task, "fail"):
                task.info.result = None
                task.fail(deferred)   # the work ran; the task reports the fault anyway
            else:
                raise deferred
        return result
