"""The ledger survives torn writes and concurrent appends; cleanup runs LIFO and keeps going."""
from __future__ import annotations

import threading

from pyVmomi import vmodl

from harness.run.cleanup import Cleanup, Ledger, annotation, run_id_of


def test_annotation_round_trips_the_run_id_and_ignores_foreign_text():
    assert run_id_of(annotation("20260101-000000-abcd", "t")) == "20260101-000000-abcd"
    assert run_id_of("my own VM, vcrypt-harness run=x") is None
    assert run_id_of(None) is None


def test_ledger_appends_from_threads_and_skips_a_torn_line(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    threads = [threading.Thread(target=lambda i=i: ledger.append(kind="vm", n=i)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(ledger.path, "a") as handle:
        handle.write('{"kind": "vm", "n"')  # a kill mid-write
    entries = ledger.entries()
    assert sorted(e["n"] for e in entries) == list(range(20))


def test_cleanup_runs_newest_first_tolerates_not_found_and_reports_other_problems():
    order: list[str] = []
    cleanup = Cleanup()
    cleanup.push("first", lambda: order.append("first"))

    def gone() -> None:
        raise vmodl.fault.ManagedObjectNotFound()

    def broken() -> None:
        raise RuntimeError("boom")

    cleanup.push("gone", gone)
    cleanup.push("broken", broken)
    cleanup.push("last", lambda: order.append("last"))
    problems = cleanup.run()
    assert order == ["last", "first"]
    assert problems == ["broken: RuntimeError: boom"]
