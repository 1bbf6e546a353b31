"""A small pool of `page_worker` processes: raw pages in, VM posture records out, in submission order.

Why processes and not threads: pyVmomi's deserializer is pure Python under the GIL; a worker parses
one page while the audit's process parses another and a thread fetches the next (`vm_pages.py`).
Why not multiprocessing: its spawn/forkserver children re-import the caller's `__main__` (the whole
`vcrypt` CLI) and a fork copies the parent's heap; a worker here starts from `python -m` with only
pyVmomi, so the audit's process tree stays small. At most `len(workers) + 1` pages are in flight
(submit blocks beyond that), so memory is bounded by the page size, not by the inventory.
"""
from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from concurrent.futures import Future
from typing import Any

from harness.vsphere import page_worker

_STOP = None


class PageParseError(RuntimeError):
    """A worker could not parse a page (or died): the audit reports it like an in-process failure."""


class PageParsers:
    """`with PageParsers(2) as pool: future = pool.submit(version, raw)`; `future.result()` is the records."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"need at least one page worker, got {workers}")
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._in_flight = threading.BoundedSemaphore(workers + 1)
        self._count_lock = threading.Lock()
        self._busy = 0                  # pages submitted and not yet answered
        self._procs: list[subprocess.Popen[bytes]] = []
        self._threads: list[threading.Thread] = []
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        for index in range(workers):
            proc = subprocess.Popen([sys.executable, "-m", page_worker.__name__], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, env=env)
            self._procs.append(proc)
            thread = threading.Thread(target=self._serve, args=(proc,), name=f"page-parser-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def idle(self) -> bool:
        """Whether a worker is free now (a submitted page would start parsing at once)."""
        with self._count_lock:
            return self._busy < len(self._procs)

    def submit(self, version: str, raw: bytes) -> Future:
        """Queue a page (blocks while `workers + 1` pages are already in flight)."""
        self._in_flight.acquire()
        with self._count_lock:
            self._busy += 1
        future: Future = Future()
        self._jobs.put((version, raw, future))
        return future

    def _serve(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        while (job := self._jobs.get()) is not _STOP:
            version, raw, future = job
            del job
            try:
                page_worker.send_page(proc.stdin, version, raw)
                del raw
                answer = page_worker.receive(proc.stdout)
            except OSError as err:
                answer = ("error", f"page worker {proc.pid} is gone: {err}")
            if answer is None:
                answer = ("error", f"page worker {proc.pid} exited (status {proc.poll()})")
            with self._count_lock:
                self._busy -= 1
            self._in_flight.release()
            kind, value = answer
            if kind == "ok":
                future.set_result(value)
            elif kind == "unknown-type":
                future.set_exception(KeyError(value))
            else:
                future.set_exception(PageParseError(value))

    def close(self) -> None:
        """Stop every worker (EOF on its stdin; killed if it does not exit within 10 s)."""
        for _ in self._threads:
            self._jobs.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=10)
        for proc in self._procs:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> "PageParsers":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
