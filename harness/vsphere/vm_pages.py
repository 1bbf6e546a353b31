"""Every VM's posture record, page by page: fetched by one thread, parsed in this process and in workers.

Why: on a large inventory `vcrypt audit` spent ~90% of its time in pyVmomi turning device lists into
objects, in one process, after holding every VM's objects at once (269 MiB for 10,000 VMs). Here a
thread sends RetrievePropertiesEx / ContinueRetrievePropertiesEx and queues each raw page; the audit's
own process and `workers` worker processes (`page_parsers.py`) parse pages as they come, with
pyVmomi's deserializer handing over one VM at a time (`raw_soap.parse_objects`), into plain records
(`vm_posture.py`); the next page is fetched meanwhile. No VM's pyVmomi objects outlive its record,
and at most a few raw pages are held. The properties read are `posture.VM_PATHS`, each reported.

Page i goes to a worker unless every worker is busy, then the audit's process parses it itself:
with 1 worker (the default) two pages are parsed at once on 2 cores for one extra process of ~30 MiB.
One page (a small inventory) is parsed in-process, no worker started; `workers=0` parses every page
in-process, fetching in turn (the reference the tests compare the workers against). A stub that
cannot hand over raw replies (`raw_soap.raw_invoker` is None) is read through pyVmomi as before.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any, Iterator

from pyVmomi import vim

from harness.vsphere.page_parsers import PageParsers
from harness.vsphere.props import PAGE, PC, container_spec, retrieve_all
from harness.vsphere.raw_soap import continuation_token, raw_invoker
from harness.vsphere.vm_posture import page_records, vm_posture

PARSE_WORKERS = 1
_RETRIEVE = PC._GetMethodInfo("RetrievePropertiesEx")
_CONTINUE = PC._GetMethodInfo("ContinueRetrievePropertiesEx")
_END = object()


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
        return _parsed(_raw_pages(invoke, pc, spec, page_size), pc._stub.version, workers, paths)
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
        del first
        for raw, _ in pages:
            records.extend(_parse_here(raw, version, paths))
            del raw
        return records
    fetched: queue.Queue[Any] = queue.Queue(maxsize=1)   # a raw page fetched ahead of the parsers
    stop = threading.Event()
    fetcher = threading.Thread(target=_fetch_ahead, args=(first, pages, fetched, stop), name="vm-pages-fetch",
                               daemon=True)
    del first
    parts: list[Future | list[dict[str, Any]]] = []
    with PageParsers(workers) as pool:
        fetcher.start()
        try:
            while (page := fetched.get()) is not _END:
                if isinstance(page, BaseException):
                    raise page
                if pool.idle():
                    parts.append(pool.submit(version, page))
                else:                    # every worker busy: this process parses the page itself
                    parts.append(_parse_here(page, version, paths))
                del page
        finally:
            stop.set()
            _drain(fetched, fetcher)
        return [record for part in parts for record in (part if isinstance(part, list) else _result(part, paths))]


def _fetch_ahead(first: bytes, pages: Iterator[tuple[bytes, bool]], out: queue.Queue[Any],
                 stop: threading.Event) -> None:
    """The fetch thread: every raw page into `out` (blocking while one waits), then _END or the error;
    `stop` (the parsing side failed) ends it before the next fetch."""
    try:
        out.put(first)
        del first
        while not stop.is_set():
            page = next(pages, None)
            if page is None:
                break
            out.put(page[0])
            del page
        out.put(_END)
    except BaseException as err:  # noqa: BLE001 - handed to the parsing thread, which raises it
        out.put(err)


def _drain(fetched: queue.Queue[Any], fetcher: threading.Thread) -> None:
    """Let the fetch thread end (after an error it stops before its next fetch) before the view goes."""
    while fetcher.is_alive():
        try:
            fetched.get(timeout=0.1)
        except queue.Empty:
            pass
    fetcher.join()


def _parse_here(raw: bytes, version: str, paths: list[str]) -> list[dict[str, Any]]:
    try:
        return page_records(raw, version)
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
