"""The ledger survives torn writes and concurrent appends; cleanup runs LIFO and keeps going."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

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


def test_a_ctrl_c_while_the_created_line_is_written_still_removes_the_vm(tmp_path):
    """The CI race of test_ctrl_c_cleans_up_stops_the_kms_and_exits_130: KeyboardInterrupt between a VM's
    ledger line and its undo left the VM behind; the undo is now registered first."""
    import itertools
    from types import SimpleNamespace

    from harness.run.cleanup import Ledger
    from harness.run.fixtures import Scratch
    from harness.safety import MutationGate
    from harness.targets.environment import open_environment
    from harness.vsphere import find
    from harness.vsphere.clones import find_vm
    from harness.vsphere.client import VCenterClient

    class InterruptedLedger(Ledger):
        def append(self, **entry):
            super().append(**entry)
            if entry.get("phase") == "created":
                raise KeyboardInterrupt  # Ctrl-C right after the fsync'd line

    root = Path(__file__).resolve().parent.parent
    with open_environment(root / "inventories" / "fake.yaml") as env:
        entry = env.inventory.vcenter("vc-a")
        client = VCenterClient(entry.name, env.service_instance(entry.name), env.inventory.timeouts, entry.target,
                               gate=MutationGate.for_inventory(env.inventory))
        state = SimpleNamespace(ledger=InterruptedLedger(tmp_path / "ledger.jsonl"), run_id="r-race",
                                inventory=env.inventory, names=itertools.count(1))
        scratch = Scratch(state, "T-race", "tests::race", "main")
        with pytest.raises(KeyboardInterrupt):
            scratch.vm(client, find.placement_for(client, entry), "race")
        name = [e["name"] for e in state.ledger.entries() if e.get("phase") == "created"][0]
        assert scratch.cleanup.run() == []
        assert find_vm(client, name) is None, "the VM created before the Ctrl-C was left behind"
