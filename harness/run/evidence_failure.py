"""A reports filesystem that is full or read-only: one line, exit 70, nothing signed or called complete.

Why: a full disk used to give a 245-line traceback, a 0-byte junit.xml and a truncated report.html
beside a manifest that verified the truncated files "intact". Once any evidence write fails, the
run folder is withdrawn as evidence: its manifest and signature (if any got written) are removed,
nothing more is written or signed, `reports/latest` is not moved, and the run exits 70.
"""
from __future__ import annotations

import sys
from pathlib import Path

from harness.evidence.manifest import MANIFEST, SIGNATURE

EXIT_EVIDENCE_WRITE = 70


def withdraw(run_dir: Path) -> None:
    """Remove what would call the folder complete (unlinking needs no free space)."""
    for name in (SIGNATURE, MANIFEST):
        try:
            (Path(run_dir) / name).unlink(missing_ok=True)
        except OSError:
            pass


def message(run_dir: Path, err: OSError) -> str:
    reason = err.strerror or str(err)
    return (f"vcrypt: {run_dir}: cannot write evidence: {reason}; the run folder is incomplete "
            "(not signed, no manifest) and is not evidence")


def report(run_dir: Path, err: OSError) -> None:
    """Withdraw the folder and say so in one line on stderr."""
    withdraw(run_dir)
    from harness.printable import printable
    print(printable(message(run_dir, err)), file=sys.stderr, flush=True)  # noqa: T201 - the one line


def withdrawn(run_dir: Path) -> bool:
    """True when a run folder holds results but no manifest: `vcrypt run` then prints no summary."""
    return not (Path(run_dir) / MANIFEST).exists()
