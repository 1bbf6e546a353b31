"""Run folders under reports/: which is newest, `reports/latest`, and what a rerun should select.

"Newest" is by the time the run started (run.json), never by name: run ids are free text, so
the alphabetically last folder can be an old run.
"""
from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

from harness.evidence.exit_status import EXIT_NOTHING_DEMONSTRATED

LATEST = "latest"


def _started(run_dir: Path) -> float:
    """When the run started: run.json's started_at, else the folder's modification time."""
    try:
        text = json.loads((run_dir / "run.json").read_text(encoding="utf-8")).get("started_at", "")
        return datetime.datetime.fromisoformat(text).timestamp()
    except (OSError, ValueError, TypeError, AttributeError):
        try:
            return run_dir.stat().st_mtime
        except OSError:
            return 0.0


def run_folders(reports: Path) -> list[Path]:
    """Folders under `reports` holding a results.json, oldest first (the `latest` link excluded)."""
    if not Path(reports).is_dir():
        return []
    runs = [p.parent for p in Path(reports).glob("*/results.json") if not p.parent.is_symlink()]
    return sorted(runs, key=lambda p: (_started(p), p.name))


def _demonstrated_nothing(run_dir: Path) -> bool:
    """run.json's exit status 5: no test ran to a verdict (collect-only, all skipped; issue 23)."""
    try:
        return json.loads((run_dir / "run.json").read_text(encoding="utf-8")).get("exit_status") == EXIT_NOTHING_DEMONSTRATED
    except (OSError, ValueError, AttributeError):
        return False


def newest_run(reports: Path) -> Path | None:
    """The newest run that demonstrated something, as `reports/latest` points at (a run that ran nothing
    to a verdict never moves it), for `--last-failed` and `vcrypt rules`."""
    runs = [run for run in run_folders(reports) if not _demonstrated_nothing(run)]
    return runs[-1] if runs else None


def update_latest(reports: Path, run_dir: Path) -> None:
    """Point reports/latest at run_dir (a relative symlink, replaced atomically); never fails a run."""
    link = Path(reports) / LATEST
    if link.exists() and not link.is_symlink():
        return  # someone's own folder or file named "latest": leave it alone
    tmp = Path(reports) / f".{LATEST}.{os.getpid()}"
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(Path(run_dir).name, target_is_directory=True)
        tmp.replace(link)
    except OSError:
        tmp.unlink(missing_ok=True)


def rerun_selection(run_dir: Path) -> list[str]:
    """Permanent test ids (nodeids for tests without one) of the tests that failed or errored."""
    data = json.loads((Path(run_dir) / "results.json").read_text(encoding="utf-8"))
    tests = data.get("tests", []) if isinstance(data, dict) else []
    return [str(t.get("test_id") or t.get("nodeid")) for t in tests
            if isinstance(t, dict) and t.get("outcome") in ("failed", "error")]
