"""summary.md as a CI job summary (issue 24): banners first, what needs attention with full causes, links that work
outside the run folder (absolute with a known base URL, none without)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from harness.evidence.summary_md import render_summary, write_summary_md
from tests.evidence.conftest import INJECTED

LONG = "the ciphertext of disk 2000 changed after a shallow recrypt; " * 6 + "end of cause"


def _long_cause(run_dir: Path) -> None:
    results = json.loads((run_dir / "results.json").read_text())
    results["tests"][1]["message"] = LONG + "\nsecond line " + INJECTED
    (run_dir / "results.json").write_text(json.dumps(results))


def test_banners_come_first(run_dir: Path) -> None:
    run = json.loads((run_dir / "run.json").read_text())
    run["provenance"] = {"fake_defects": ["op-state-ignored"]}
    (run_dir / "run.json").write_text(json.dumps(run))
    lines = [line for line in render_summary(run_dir).splitlines() if line.strip()]
    assert lines[1].startswith("> 🔴 **Compliance: FAIL — REKEY-SHALLOW, DATA-AT-REST, KMS-STATUS, CLONE-KEEP")
    assert lines[2].startswith("> 🔴 **Seeded fake defects: op-state-ignored")


def test_causes_are_never_cut_and_never_markup(run_dir: Path) -> None:
    _long_cause(run_dir)
    text = render_summary(run_dir)
    assert "end of cause" in text and "second line" in text
    assert "<script>" not in text and r"\<script\>" in text
    block = text[text.index("## What needs attention"):]
    assert [m for m in re.findall(r"^- \*\*([A-Z0-9-]+)\*\*", block, re.M)][:4] == [
        "REKEY-SHALLOW", "DATA-AT-REST", "KMS-STATUS", "CLONE-KEEP"]
    assert "deciding test `suites/test_rekey.py::test_shallow_rekey_keeps_ciphertext` — fault " \
           "`vim.fault.GenericVmConfigFault`" in block


def test_links_are_absolute_with_a_base_url_and_absent_without(run_dir: Path, monkeypatch) -> None:
    monkeypatch.delenv("VCRYPT_REPORT_BASE_URL", raising=False)
    plain = (write_summary_md(run_dir) or Path()).read_text()
    assert "](" not in plain and "report.html in the run folder" in plain
    monkeypatch.setenv("VCRYPT_REPORT_BASE_URL", "https://ci.example.com/artifacts/run 7")
    linked = (write_summary_md(run_dir) or Path()).read_text()
    targets = re.findall(r"\]\(([^)]+)\)", linked)
    assert targets and all(t.startswith("https://ci.example.com/artifacts/run%207/report.html") for t in targets)
    assert "https://ci.example.com/artifacts/run%207/report.html#rule-REKEY-SHALLOW" in targets
    monkeypatch.setenv("VCRYPT_REPORT_BASE_URL", "javascript:alert(1)")
    assert "](" not in (write_summary_md(run_dir) or Path()).read_text()
