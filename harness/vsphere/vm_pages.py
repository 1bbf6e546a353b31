"""Every VM's posture record, page by page: fetched by the parent, parsed in worker processes.

Why: on a large inventory `vcrypt audit` spent ~90% of its time in pyVmomi turning device lists into
objects, in one process, after holding every VM's objects at once (269 MiB for 10,000 VMs). Here
the parent sends RetrievePropertiesEx / ContinueRetrievePropertiesEx and hands each raw page to a
worker (`page_parsers.py`), which parses it with pyVmomi's deserializer and returns the VMs'
records (`vm_posture.py`); the next page is fetched meanwhile. No pyVmomi object of a page outlives
its parse, and at most workers + 1 raw pages are held. The properties read are `posture.VM_PATHS`,
each of which the audit reports.

One page (a small inventory) is parsed in-process: starting workers would cost more than it saves.
`workers=0` parses every page in-process (the reference the tests compare the workers against). A
stub that cannot hand over raw replies (`raw_soap.raw_invoker` is None) is read through pyVmomi as before.
"""
from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Iterator

from pyVmomi import vim

from harness.vsphere.page_parsers import PageParsers
from harness.vsphere.props import PAGE, PC, container_spec, retrieve_all
from harness.vsphere.raw_soap import continuation_token, parse_reply, raw_invoker
from harness.vsphere.vm_posture import page_postures, vm_posture

PARSE_WORKERS = 2
_RETRIEVE = PC._GetMethodInfo("RetrievePropertiesEx")
_CONTINUE = PC._GetMethodInfo("ContinueRetrievePropertiesEx")


def vm_postures(client: Any, paths: list[str], page_size: int = PAGE,
                workers: int = PARSE_WORKERS) -> list[dict[str, Any]]:
    """The posture record of every VM (inventory order), reading `paths` `page_size` VMs a reply."""
    if page_size < 1:
        raise ValueError(f"page size must be at least 1, got {page_size}")
    content = client.content
    pc = content.propertyCollector
    invoke = raw_invoker(pc._stub)
    if invoke is None:
        return [vm_posture(moid, props) for moid, (_, props)
                in retrieve_all(client, vim.VirtualMachine, paths, page_size=page_size).items()]
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        spec = container_spec(view, vim.VirtualMachine, paths)
        pages = _raw_pages(invoke, pc, spec, page_size)
        return _parsed(pages, pc._stub.version, workers, paths)
    finally:
        view.DestroyView()


def _raw_pages(invoke: Any, pc: Any, spec: Any, page_size: int) -> Iterator[tuple[bytes, bool]]:
    """(raw reply, more pages follow) for each page; the next page is fetched only when asked for."""
    raw = invoke(pc, _RETRIEVE, [[spec], PC.RetrieveOptions(maxObjects=page_size)])
    while True:
        token = continuation_token(raw)
        yield raw, token is not None
        if token is None:
            return
        raw = invoke(pc, _CONTINUE, [token])


def _parsed(pages: Iterator[tuple[bytes, bool]], version: str, workers: int, paths: list[str]) -> list[dict[str, Any]]:
    first, more = next(pages)
    if workers < 1 or not more:
        records = _parse_here(first, version, paths)
        for raw, _ in pages:
            records.extend(_parse_here(raw, version, paths))
        return records
    with PageParsers(workers) as pool:
        futures: list[Future] = [pool.submit(version, first)]
        del first
        for raw, _ in pages:            # submit blocks while workers + 1 pages are in flight
            futures.append(pool.submit(version, raw))
            del raw
        return [record for future in futures for record in _result(future, paths)]


def _parse_here(raw: bytes, version: str, paths: list[str]) -> list[dict[str, Any]]:
    try:
        return page_postures(parse_reply(raw, version, PC.RetrieveResult))
    except KeyError as err:
        raise _unparseable(err, paths) from None


def _result(future: Future, paths: list[str]) -> list[dict[str, Any]]:
    try:
        return future.result()
    except KeyError as err:
        raise _unparseable(err, paths) from None


def _unparseable(err: KeyError, paths: list[str]) -> Exception:
    """As `props._collect` names it: the unknown type and what was being read, never a bare KeyError."""
    from harness.vsphere.errors import UnparseableReply, unknown_type_name
    return UnparseableReply(f"the target sent a type pyVmomi does not know ({unknown_type_name(err)}) "
                            f"reading {', '.join(sorted(paths))}")

