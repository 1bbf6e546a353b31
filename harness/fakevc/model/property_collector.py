"""PropertyCollector: retrievals with traversal specs, paging, and filters for WaitForUpdatesEx.

Waits are event-driven: every mutating call notifies the world lock's condition, and a waiting
`WaitForUpdatesEx` re-reads its filters' properties and returns only what changed.
"""
from __future__ import annotations

import itertools
import time
from typing import Any, Iterator

from pyVmomi import vim, vmodl

from harness.fakevc.model.base import MO, CallContext

PC = vmodl.query.PropertyCollector
_MAX_WAIT = 600.0


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _named_selections(spec: Any) -> dict[str, Any]:
    """Every named TraversalSpec reachable in a filter spec, for SelectionSpec references by name."""
    named: dict[str, Any] = {}

    def visit(selections: list) -> None:
        for sel in selections or []:
            if isinstance(sel, PC.TraversalSpec) and sel.name and sel.name not in named:
                named[sel.name] = sel
                visit(sel.selectSet)
            elif isinstance(sel, PC.TraversalSpec):
                visit(sel.selectSet)

    for obj_spec in spec.objectSet or []:
        visit(obj_spec.selectSet)
    return named


class FilterModel(MO):
    """A PropertyFilter created by CreateFilter; remembers what its last update reported."""
    vim_type = PC.Filter
    moid_prefix = "session[filter]"

    def __init__(self, vc: Any, collector: "PropertyCollector", spec: Any, partial: bool) -> None:
        super().__init__(vc)
        self.collector = collector
        self.spec = spec
        self.partialUpdates = partial
        self.reported: dict[str, dict[str, tuple[str, Any]]] = {}

    def DestroyPropertyFilter(self, ctx: CallContext) -> None:
        self.collector.filters.pop(self.moid, None)
        self.vc.unregister(self)


class PropertyCollector(MO):
    vim_type = PC
    moid_prefix = "propertyCollector"

    def __init__(self, vc: Any, moid: str | None = None) -> None:
        super().__init__(vc, moid)
        self.filters: dict[str, FilterModel] = {}
        self._tokens: dict[str, list] = {}
        self._token_ids = itertools.count(1)
        self._version = itertools.count(1)

    def p_filter(self) -> list:
        return [f.ref for f in self.filters.values()]

    # ---- traversal --------------------------------------------------------------------------
    def _collect(self, spec: Any) -> Iterator[MO]:
        """Every object a filter spec selects, once each, in traversal order."""
        named = _named_selections(spec)
        seen: set[str] = set()
        out: list[MO] = []

        def add(mo: MO) -> None:
            if mo.moid not in seen:
                seen.add(mo.moid)
                out.append(mo)

        def follow(mo: MO, selections: list, depth: int) -> None:
            if depth > 32:
                return
            for sel in selections or []:
                trav = sel if isinstance(sel, PC.TraversalSpec) else named.get(sel.name)
                if trav is None or not issubclass(mo.vim_type, trav.type):
                    continue
                try:
                    targets = _as_list(mo.fetch(trav.path))
                except vmodl.query.InvalidProperty:
                    continue
                for ref in targets:
                    child = self.vc.objects.get(getattr(ref, "_moId", None))
                    if child is None:
                        continue
                    if not trav.skip:
                        add(child)
                    follow(child, trav.selectSet, depth + 1)

        for obj_spec in spec.objectSet or []:
            start = self.vc.lookup(obj_spec.obj)
            if not obj_spec.skip:
                add(start)
            follow(start, obj_spec.selectSet, 0)
        return iter(out)

    def _paths_for(self, spec: Any, mo: MO) -> list[str] | None:
        paths: list[str] = []
        matched = False
        for prop_spec in spec.propSet or []:
            if not issubclass(mo.vim_type, prop_spec.type):
                continue
            matched = True
            if prop_spec.all:
                paths.extend(p for p in mo.property_names() if p not in paths)
            else:
                paths.extend(p for p in prop_spec.pathSet or [] if p not in paths)
        return paths if matched else None

    def _content(self, spec: Any) -> list[Any]:
        contents = []
        for mo in self._collect(spec):
            paths = self._paths_for(spec, mo)
            if paths is None:
                continue
            props, missing = [], []
            for path in paths:
                try:
                    value = mo.fetch(path)
                except vmodl.query.InvalidProperty:
                    raise
                except vmodl.MethodFault as fault:
                    missing.append(PC.MissingProperty(path=path, fault=fault))
                    continue
                if value is None or (isinstance(value, list) and not value):
                    continue
                props.append(vmodl.DynamicProperty(name=path, val=value))
            contents.append(PC.ObjectContent(obj=mo.ref, propSet=props, missingSet=missing))
        return contents

    # ---- retrievals -------------------------------------------------------------------------
    def RetrievePropertiesEx(self, ctx: CallContext, specSet: list, options: Any) -> Any:
        objects: list = []
        for spec in specSet:
            objects.extend(self._content(spec))
        return self._page(objects, getattr(options, "maxObjects", None))

    def RetrieveProperties(self, ctx: CallContext, specSet: list) -> list:
        objects: list = []
        for spec in specSet:
            objects.extend(self._content(spec))
        return objects

    def ContinueRetrievePropertiesEx(self, ctx: CallContext, token: str) -> Any:
        rest = self._tokens.pop(token, None)
        if rest is None:
            raise vmodl.query.InvalidCollectorVersion(msg=f"unknown token {token}")
        return self._page(rest, self._page_size(rest))

    def CancelRetrievePropertiesEx(self, ctx: CallContext, token: str) -> None:
        self._tokens.pop(token, None)

    def _page_size(self, rest: list) -> int:
        return getattr(self, "_last_page_size", len(rest)) or len(rest)

    def _page(self, objects: list, max_objects: int | None) -> Any:
        if not objects:
            return None
        if not max_objects or len(objects) <= max_objects:
            return PC.RetrieveResult(objects=objects)
        self._last_page_size = max_objects
        token = f"token-{next(self._token_ids)}"
        self._tokens[token] = objects[max_objects:]
        return PC.RetrieveResult(token=token, objects=objects[:max_objects])

    def CreatePropertyCollector(self, ctx: CallContext) -> Any:
        return PropertyCollector(self.vc, moid=self.vc.new_moid("session[collector]")).ref

    def DestroyPropertyCollector(self, ctx: CallContext) -> None:
        for flt in list(self.filters.values()):
            self.vc.unregister(flt)
        self.vc.unregister(self)

    # ---- filters and waits ------------------------------------------------------------------
    def CreateFilter(self, ctx: CallContext, spec: Any, partialUpdates: bool) -> Any:
        flt = FilterModel(self.vc, self, spec, partialUpdates)
        self.filters[flt.moid] = flt
        return flt.ref

    def _changes(self, flt: FilterModel, since_start: bool) -> list[Any]:
        updates = []
        current: dict[str, dict[str, tuple[str, Any]]] = {}
        try:
            contents = self._content(flt.spec)
        except vmodl.fault.ManagedObjectNotFound:
            contents = []
        for content in contents:
            current[content.obj._moId] = {p.name: (repr(p.val), p.val) for p in content.propSet}
        for moid, props in current.items():
            before = {} if since_start else flt.reported.get(moid)
            kind = "enter" if before is None or since_start else "modify"
            changes = [PC.Change(name=name, op="assign", val=val)
                       for name, (fp, val) in props.items() if before is None or before.get(name, (None,))[0] != fp]
            if before is not None:
                changes += [PC.Change(name=name, op="assign") for name in before
                            if name not in props and name != "__ref__"]   # now unset
            if changes or kind == "enter" and before is None:
                updates.append(PC.ObjectUpdate(kind=kind, obj=self.vc.objects[moid].ref, changeSet=changes))
        for moid in set(flt.reported) - set(current):
            ref = flt.reported[moid].get("__ref__", (None, None))[1]
            if ref is not None:
                updates.append(PC.ObjectUpdate(kind="leave", obj=ref))
        flt.reported = {moid: {**props, "__ref__": ("", self.vc.objects[moid].ref)} for moid, props in current.items()}
        return [u for u in updates if u.kind != "modify" or u.changeSet]

    def _update_set(self, since_start: bool) -> Any:
        filter_updates = []
        for flt in list(self.filters.values()):
            changes = self._changes(flt, since_start)
            if changes:
                filter_updates.append(PC.FilterUpdate(filter=flt.ref, objectSet=changes))
        if not filter_updates:
            return None
        return PC.UpdateSet(version=str(next(self._version)), filterSet=filter_updates)

    def WaitForUpdatesEx(self, ctx: CallContext, version: str | None, options: Any) -> Any:
        since_start = not version
        max_wait = getattr(options, "maxWaitSeconds", None)
        deadline = time.monotonic() + (_MAX_WAIT if max_wait is None else max_wait)
        while True:
            update = self._update_set(since_start)
            if update is not None:
                return update
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.vc.lock.wait(timeout=remaining)

    def WaitForUpdates(self, ctx: CallContext, version: str | None) -> Any:
        return self.WaitForUpdatesEx(ctx, version, None)

    def CheckForUpdates(self, ctx: CallContext, version: str | None) -> Any:
        return self._update_set(not version)

    def CancelWaitForUpdates(self, ctx: CallContext) -> None:
        self.vc.lock.notify_all()


def container_members(vc: Any, container: MO, types: list, recursive: bool) -> list[MO]:
    """The objects of the given types under a container, as a ContainerView lists them."""
    found: list[MO] = []

    def walk(node: MO, depth: int) -> None:
        for child in node.children() if hasattr(node, "children") else []:
            if not types or any(issubclass(child.vim_type, t) for t in types):
                found.append(child)
            if recursive:
                walk(child, depth + 1)

    walk(container, 0)
    return found


class ContainerView(MO):
    vim_type = vim.view.ContainerView
    moid_prefix = "session[view]"

    def __init__(self, vc: Any, container: MO, types: list, recursive: bool) -> None:
        super().__init__(vc)
        self.container_mo = container
        self.types = types
        self.recursive = recursive

    def p_container(self) -> Any:
        return self.container_mo.ref

    def p_type(self) -> list[str]:
        return [t._wsdlName for t in self.types]

    def p_view(self) -> list:
        return [mo.ref for mo in container_members(self.vc, self.container_mo, self.types, self.recursive)]

    def DestroyView(self, ctx: CallContext) -> None:
        self.vc.unregister(self)


class ViewManager(MO):
    vim_type = vim.view.ViewManager
    moid_prefix = "ViewManager"

    def CreateContainerView(self, ctx: CallContext, container: Any, type: list | None, recursive: bool) -> Any:  # noqa: A002
        return ContainerView(self.vc, self.vc.lookup(container), list(type or []), recursive).ref

    def p_viewList(self) -> list:
        return [mo.ref for mo in self.vc.find(ContainerView)]
