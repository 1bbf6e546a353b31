"""Turn a finished run folder into the evidence bundle auditors receive.

Called once at the end of a run (by the plugin or the CLI). Order matters: every writer
adds files, the manifest must be written after all of them so that it covers them, and the
signature (when the run has a signing key) is made over the finished manifest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from harness.evidence.allure_extras import write_allure_extras
from harness.evidence.html_report import write_html_report
from harness.evidence.manifest import write_manifest
from harness.evidence.oscal import write_oscal_results
from harness.evidence.readme import write_readme
from harness.evidence.signing import SigningKey, sign_manifest, signing_summary
from harness.evidence.summary_md import write_summary_md


def finalize_run_folder(run_dir: Path, signing_key: SigningKey | None = None,
                        before_manifest: Callable[[Path], None] | None = None) -> None:
    """Write Allure extras, report.html, the OSCAL results, README.txt, summary.md, manifest.sha256, its signature.

    `before_manifest` (vcrypt merge) may add to what the writers wrote; the manifest then covers it.
    """
    run_dir = Path(run_dir)
    record_signing(run_dir, signing_key)
    write_allure_extras(run_dir)
    write_html_report(run_dir)
    write_oscal_results(run_dir)
    write_readme(run_dir, signing_key)
    write_summary_md(run_dir)
    if before_manifest is not None:
        before_manifest(run_dir)
    write_manifest(run_dir)
    if signing_key is not None:
        sign_manifest(run_dir, signing_key)


def record_signing(run_dir: Path, signing_key: SigningKey | None) -> None:
    """Put how the manifest will be signed into run.json, so every writer states the same."""
    path = run_dir / "run.json"
    if not path.is_file():
        return
    run = json.loads(path.read_text(encoding="utf-8"))
    run.setdefault("provenance", {})["signing"] = signing_summary(signing_key)
    path.write_text(json.dumps(run, indent=1, default=str), encoding="utf-8")
