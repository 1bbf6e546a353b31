"""One fake vCenter: the registry of its managed objects, its sessions, and method dispatch.

The stub adapter (adapter.py) calls `FakeVCenter.invoke` with already-decoded arguments; this
module finds the model object, checks the session, and runs the method under the world lock.
"""
from __future__ import annotations

import itertools
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from pyVmomi import vim, vmodl

from harness.fakevc.model.base import MO, CallContext

if TYPE_CHECKING:
    from harness.fakevc.world import FakeWorld

# Methods a client may call before logging in, as on vCenter.
_ANONYMOUS = {"RetrieveServiceContent", "Login", "CurrentTime", "LoginByToken", "Fetch"}
_ANONYMOUS_FETCH_TYPES = (vim.ServiceInstance,)


@dataclass
class Session:
    key: str
    user: str
    expired: bool = False
    login_time: float = 0.0


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
        self.objects.pop(mo.moid, None)

    def lookup(self, ref: Any) -> MO:
        """The model behind a MoRef, or ManagedObjectNotFound as vCenter says."""
        moid = ref if isinstance(ref, str) else ref._moId
        mo = self.objects.get(moid)
        if mo is None or (not isinstance(ref, str) and not isinstance(mo.ref, type(ref))
                          and not issubclass(mo.vim_type, type(ref))):
            raise vmodl.fault.ManagedObjectNotFound(obj=ref if not isinstance(ref, str) else None,
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
    def add_user(self, name: str, password: str) -> User:
        user = User(name, password)
        self.users[name.lower()] = user
        return user

    def check_login(self, name: str, password: str) -> User:
        user = self.users.get((name or "").lower())
        if user is None or not secrets.compare_digest(user.password, password or ""):
            raise vim.fault.InvalidLogin(msg="Cannot complete login due to an incorrect user name or password.")
        return user

    def open_session(self, user: User) -> Session:
        import time
        session = Session(key=str(uuid.uuid4()), user=user.name, login_time=time.time())
        self.sessions[session.key] = session
        return session

    def expire_sessions(self) -> None:
        """Fault injection: every open session becomes invalid (as after a vCenter restart)."""
        for session in self.sessions.values():
            session.expired = True

    def session_for(self, key: str | None) -> Session | None:
        session = self.sessions.get(key or "")
        return session if session and not session.expired else None

    # ---- dispatch ------------------------------------------------------------------------------
    def invoke(self, session_key: str | None, moid: str, method: str, kwargs: dict[str, Any],
               endpoint: str = "vim") -> Any:
        """Run one API method on one object; raises the vmodl fault a vCenter would send."""
        with self.lock:
            if self.drop_next_calls > 0:
                self.drop_next_calls -= 1
                raise ConnectionResetError(f"fake vCenter {self.name}: connection dropped (injected)")
            self.call_log.append((moid, method))
            mo = (self.pbm_objects if endpoint == "pbm" else self.objects).get(moid)
            if mo is None:
                raise vmodl.fault.ManagedObjectNotFound(
                    msg=f"The object '{moid}' has already been deleted or has not been completely created")
            session = self.session_for(session_key)
            anonymous_ok = method in _ANONYMOUS and (method != "Fetch" or isinstance(mo.ref, _ANONYMOUS_FETCH_TYPES))
            if session is None and not anonymous_ok:
                raise vim.fault.NotAuthenticated(object=mo.ref, privilegeId="System.View",
                                                 msg="The session is not authenticated.")
            ctx = CallContext(vc=self, session=session)
            if method == "Fetch":
                return mo.fetch(kwargs["prop"])
            handler = getattr(mo, method, None)
            if handler is None:
                raise vmodl.fault.MethodNotFound(receiver=mo.ref, method=method,
                                                 msg=f"Method {method} not implemented by the fake vCenter")
            result = handler(ctx, **kwargs)
            self.lock.notify_all()  # property-collector waiters re-check for changes
            return result
