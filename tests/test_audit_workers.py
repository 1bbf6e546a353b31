"""vcrypt audit with VM pages parsed in worker processes: the same report as one process, nothing lost.

The workers (harness/vsphere/page_parsers.py) parse raw RetrievePropertiesEx pages while the parent
fetches the next; these tests hold them to the in-process parse of the same pages, VM for VM and
disk for disk (an encrypted disk on an unencrypted VM included), and to leaving no process behind.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from harness.commands.audit import run_audit
from harness.run.cleanup import annotation
from harness.targets.environment import Environment
from harness.vsphere import find, page_parsers, vm_pages, vms
from harness.vsphere.client import VCenterClient
from harness.vsphere.raw_soap import continuation_token

PROVIDER = "vcrypt-workers-provider"


def _encrypted_disks(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((vm["moid"], disk["label"], disk["key"]["key"])
                  for vm in report["vcenters"][0]["vms"]["items"] for disk in vm["disks"] if disk["key"])


@pytest.fixture(scope="module")
def planted(env: Environment, client: VCenterClient) -> set[tuple[str, str]]:
    """Six VMs of three disks; keys set in the fake's state directly: homes and disks, and disks of
    VMs whose home is not encrypted (a product defect's result, which the audit must still show)."""
    place = find.placement(client, "DC0", "DC0_C0")
    for i in range(6):
        vms.create_vm(client, place, f"vcrypt-audit-workers-{i}", annotation("r-audit-workers"), disks_count=3)
    fake = env.fake_vcenter("vc-a")
    planted: set[tuple[str, str]] = set()
    with fake.lock:
        for model in fake.vms():
            if not model.name.startswith("vcrypt-audit-workers-"):
                continue
            index = int(model.name.rsplit("-", 1)[1])
            if index % 2 == 0:
                model.key = (PROVIDER, f"home-{index}")
            for disk in model.disks[index % 3:]:
                disk.chain[-1].key = (PROVIDER, f"disk-{index}-{disk.key}")
                planted.add((model.name, f"disk-{index}-{disk.key}"))
    return planted


def test_worker_parsed_pages_give_the_in_process_report(env: Environment, planted: set[tuple[str, str]],
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[list[int]] = []
    submitted: list[int] = []

    class Recording(page_parsers.PageParsers):
        def __init__(self, workers: int) -> None:
            super().__init__(workers)
            started.append(self.pids)

        def submit(self, version: str, raw: bytes) -> Any:
            submitted.append(len(raw))
            return super().submit(version, raw)

    monkeypatch.setattr(vm_pages, "PageParsers", Recording)
    here = run_audit(env, "vc-a", tmp_path / "here", page_size=2, workers=0).report
    assert not started, "workers=0 parses in the audit's own process"
    one = run_audit(env, "vc-a", tmp_path / "one-worker", page_size=2, workers=1).report
    workers = run_audit(env, "vc-a", tmp_path / "workers", page_size=2, workers=2).report

    assert [len(pids) for pids in started] == [1, 2], "one, then two worker processes were started"
    assert len(submitted) >= 2, "the first page of each audit goes to an idle worker"
    assert one["vcenters"][0]["vms"] == here["vcenters"][0]["vms"]
    assert workers["vcenters"][0]["vms"] == here["vcenters"][0]["vms"]
    assert workers["vcenters"][0]["hosts"] == here["vcenters"][0]["hosts"]
    names = {vm["moid"]: vm["name"] for vm in workers["vcenters"][0]["vms"]["items"]}
    found = {(names[moid], key) for moid, _, key in _encrypted_disks(workers)}
    assert found == planted, "every encrypted disk, on encrypted and unencrypted VMs, is reported"
    unencrypted_homes = [vm for vm in workers["vcenters"][0]["vms"]["items"]
                         if vm["name"].startswith("vcrypt-audit-workers-") and not vm["encrypted"]]
    assert unencrypted_homes and all(any(d["key"] for d in vm["disks"]) for vm in unencrypted_homes)
    for pid in started[0] + started[1]:
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in Path(f"/proc/{pid}/status").read_text().lower(), \
            f"page worker {pid} still runs after the audit"


def test_one_page_is_parsed_without_starting_workers(env: Environment, planted: set[tuple[str, str]],
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(workers: int) -> None:
        raise AssertionError("a single page needs no worker process")

    monkeypatch.setattr(vm_pages, "PageParsers", refuse)
    report = run_audit(env, "vc-a", tmp_path / "one", page_size=10_000, workers=2).report
    assert len(_encrypted_disks(report)) == len(planted)


def test_a_worker_that_cannot_parse_fails_the_audit_loudly() -> None:
    with page_parsers.PageParsers(1) as pool:
        future = pool.submit("vim.version.v7_0_3_0", b"<not soap")
        with pytest.raises(page_parsers.PageParseError):
            future.result(timeout=60)


@pytest.mark.parametrize("raw, token", [
    (b'<?xml version="1.0"?><soapenv:Envelope><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25">'
     b'<returnval><token>1&amp;2</token><objects><obj type="VirtualMachine">vm-1</obj></objects></returnval>'
     b'</RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>', "1&2"),
    (b'<soapenv:Envelope><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>'
     b'<objects><obj type="VirtualMachine">vm-1</obj><propSet><name>name</name><val>&lt;token&gt;x</val>'
     b'</propSet></objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>', None),
    (b'<soapenv:Envelope><soapenv:Body><ContinueRetrievePropertiesExResponse xmlns="urn:vim25">'
     b'</ContinueRetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>', None),
])
def test_the_continuation_token_is_read_from_the_reply_head(raw: bytes, token: str | None) -> None:
    assert continuation_token(raw) == token


def test_the_streamed_report_files_are_the_whole_string_ones(env: Environment, planted: set[tuple[str, str]],
                                                             tmp_path: Path) -> None:
    """audit.json and audit.html are written chunk by chunk; the bytes are what one string would give."""
    import json

    from harness.commands.audit import render_html
    outcome = run_audit(env, "vc-a", tmp_path / "files", page_size=2, workers=2)
    assert (outcome.folder / "audit.json").read_text(encoding="utf-8") == \
        json.dumps(outcome.report, indent=1, default=str)
    assert (outcome.folder / "audit.html").read_text(encoding="utf-8") == render_html(outcome.report)
