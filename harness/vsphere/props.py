"""Reads through the PropertyCollector with explicit property paths.

One round trip for many objects, and robust against simulators that send whole properties
pyVmomi cannot parse (we never ask for `vm.runtime`, only `runtime.powerState`).
"""
from __future__ import annotations

from typing import Any

from pyVmomi import vim, vmodl

PC = vmodl.query.PropertyCollector
PAGE = 500


def _collect(pc: Any, spec: Any, page_size: int = PAGE) -> list[Any]:
    try:
        return _collect_pages(pc, spec, page_size)
    except KeyError as err:  # pyVmomi met a type it does not know: name it, never a bare KeyError
        from harness.vsphere.errors import UnparseableReply, unknown_type_name
        paths = sorted({p for ps in spec.propSet for p in ps.pathSet or []})
        raise UnparseableReply(f"the target sent a type pyVmomi does not know ({unknown_type_name(err)}) "
                               f"reading {', '.join(paths)}") from None


def _collect_pages(pc: Any, spec: Any, page_size: int = PAGE) -> list[Any]:
    """RetrievePropertiesEx asking for at most `page_size` objects a reply, then
    ContinueRetrievePropertiesEx while the server hands back a token (a server may page smaller)."""
    result = pc.RetrievePropertiesEx([spec], PC.RetrieveOptions(maxObjects=page_size))
    objects: list[Any] = []
    while result is not None:
        objects.extend(result.objects or [])
        if not result.token:
            break
        result = pc.ContinueRetrievePropertiesEx(result.token)
    return objects


def _to_dict(contents: list[Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for content in contents:
        props = {p.name: p.val for p in content.propSet or []}
        out[content.obj._moId] = props
    return out


def retrieve(client: Any, objs: list[Any], vim_type: type, paths: list[str]) -> dict[str, dict[str, Any]]:
    """`paths` of each object in `objs` (all of `vim_type`), keyed by moId; unset paths are absent."""
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=o, skip=False) for o in objs],
                         propSet=[PC.PropertySpec(type=vim_type, pathSet=list(paths))])
    return _to_dict(_collect(client.content.propertyCollector, spec))


def container_spec(view: Any, vim_type: type, paths: list[str]) -> Any:
    """A FilterSpec for `paths` of every object a container view shows (the view itself skipped)."""
    return PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[
            PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)])],
        propSet=[PC.PropertySpec(type=vim_type, pathSet=list(paths))])


def retrieve_all(client: Any, vim_type: type, paths: list[str], root: Any = None,
                 page_size: int = PAGE) -> dict[str, tuple[Any, dict[str, Any]]]:
    """Every object of `vim_type` under `root` (the root folder by default) with `paths`, in one pass.

    A container view plus one RetrievePropertiesEx (paged): the round trips do not grow with the
    number of objects beyond one per page (`page_size` objects, the RetrieveOptions.maxObjects).
    """
    if page_size < 1:
        raise ValueError(f"page size must be at least 1, got {page_size}")
    content = client.content
    view = content.viewManager.CreateContainerView(root or content.rootFolder, [vim_type], True)
    try:
        contents = _collect(content.propertyCollector, container_spec(view, vim_type, paths), page_size)
    finally:
        view.DestroyView()
    return {c.obj._moId: (c.obj, {p.name: p.val for p in c.propSet or []}) for c in contents}
