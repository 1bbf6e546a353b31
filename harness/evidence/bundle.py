"""Turn a finished run folder into the evidence bundle auditors receive.

Called once at the end of a run (by the plugin or the CLI). Order matters: every writer
adds files, and the manifest must be written last so that it covers all of them.
"""

from __future__ import annotations

from pathlib import Path

from harness.evidence.allure_extras import write_allure_extras
from harness.evidence.html_report import write_html_report
from harness.evidence.manifest import write_manifest
from harness.evidence.oscal import write_oscal_results
from harness.evidence.summary_md import write_summary_md


def finalize_run_folder(run_dir: Path) -> None:
    """Write Allure extras, report.html, the OSCAL results, summary.md, then manifest.sha256."""
    run_dir = Path(run_dir)
    write_allure_extras(run_dir)
    write_html_report(run_dir)
    write_oscal_results(run_dir)
    write_summary_md(run_dir)
    write_manifest(run_dir)
