"""Base classes for the fake's managed objects.

Each managed object kind has one model class (one module per kind, as govmomi's simulator keeps
one file per object). A model stores its properties as real pyVmomi data objects; computed
properties are methods named ``p_<property>``. Methods callable through the API are named by
their WSDL name and take ``(self, ctx, **params)``; the API methods that apply rules are not
here but in behaviours/, registered in dispatch.py HANDLERS.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

from pyVmomi import vim, vmodl


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
class CallContext:
    """Who is calling, on which fake vCenter (a server.FakeVCenter: that module sits on this one,
    so the vCenter is untyped throughout the model)."""
    vc: Any
    session: Session | None

    @property
    def user(self) -> str:
        return self.session.user if self.session else ""


def invalid_property(name: str) -> vmodl.query.InvalidProperty:
    return vmodl.query.InvalidProperty(name=name, msg=f"Invalid property: {name}")


class MO:
    """A managed object of the fake: a moId, a type, properties and methods."""

    vim_type: ClassVar[type] = vim.ManagedObject
    moid_prefix: ClassVar[str] = "mo"
    _counter: ClassVar[itertools.count] = itertools.count(1)

    def __init__(self, vc: Any, moid: str | None = None) -> None:
        self.vc = vc
        self.moid = moid or vc.new_moid(self.moid_prefix)
        vc.register(self)

    @property
    def ref(self) -> Any:
        return self.vim_type(self.moid)

    def property_names(self) -> list[str]:
        return [p.name for p in self.vim_type._GetPropertyList()]

    def fetch(self, path: str) -> Any:
        """The value at a property path (``config.keyId``), as a vCenter would serve it."""
        head, _, rest = path.partition(".")
        if head not in self.property_names():
            raise invalid_property(path)
        getter = getattr(self, f"p_{head}", None)
        value = getter() if getter else getattr(self, head, None)
        for part in rest.split(".") if rest else ():
            if value is None:
                return None
            try:
                value = getattr(value, part)
            except AttributeError:
                raise invalid_property(path) from None
        if isinstance(value, list) and not hasattr(type(value), "Item"):
            value = self._declared_type(path)(value)
        return value

    def _declared_type(self, path: str) -> type:
        """The VMODL type of a property path, so plain Python lists go on the wire as typed arrays."""
        typ = self.vim_type
        for part in path.split("."):
            if hasattr(typ, "Item") and not hasattr(typ, "_GetPropertyInfo"):
                typ = typ.Item
            typ = typ._GetPropertyInfo(part).type
        return typ

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.moid}>"


class ManagedEntity(MO):
    """An inventory object with a name, a parent and permissions."""

    vim_type = vim.ManagedEntity

    def __init__(self, vc: Any, name: str, parent: "ManagedEntity | None" = None,
                 moid: str | None = None) -> None:
        super().__init__(vc, moid)
        self.name = name
        self.parent_mo = parent
        self.overallStatus = "green"
        self.configStatus = "green"
        self.triggeredAlarmState: list = []
        self.declaredAlarmState: list = []
        self.alarmActionsEnabled = True

    def p_parent(self) -> Any:
        return self.parent_mo.ref if self.parent_mo else None

    def p_permission(self) -> list:
        return self.vc.authz.permissions_on(self) if hasattr(self.vc, "authz") else []

    def p_triggeredAlarmState(self) -> list:
        return self.vc.alarms.triggered_on(self) if hasattr(self.vc, "alarms") else []

    def ancestors(self) -> list["ManagedEntity"]:
        """This entity and every parent up to the root folder (for permission and event recursion)."""
        chain: list[ManagedEntity] = []
        node: ManagedEntity | None = self
        while node is not None:
            chain.append(node)
            node = node.parent_mo
        return chain

    def children(self) -> list["ManagedEntity"]:
        return []
