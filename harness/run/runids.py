"""Run ids: a run folder's name, so never a path, never reused.

A run id names `reports/<run-id>/`; anything that could climb out of reports/ (`..`, `/`),
hide (a leading dot) or exhaust a file name is refused before any folder is made.
"""
from __future__ import annotations

import datetime
import re
import secrets
from pathlib import Path

MAX_RUN_ID = 64
RESERVED = "latest"  # reports/latest: the link to the newest run (harness/run/runfolders.py)
# The one definition of a run id, also used by the exact marker parser (harness/run/markers.py).
RUN_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_RUN_ID = re.compile(RUN_ID_PATTERN)


class RunIdError(ValueError):
    """A run id the harness refuses, phrased for the user."""


def new_run_id() -> str:
    """A sortable, practically unique id: local time plus 4 random hex digits."""
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def validate_run_id(run_id: str) -> str:
    """The id itself, or RunIdError: letters, digits, `.`, `_`, `-`; starts alphanumeric; <= 64 chars."""
    if not isinstance(run_id, str):
        raise RunIdError(f"run id {run_id!r}: not a text")
    if len(run_id) > MAX_RUN_ID:
        raise RunIdError(f"run id: {len(run_id)} characters; at most {MAX_RUN_ID} allowed")
    if not _RUN_ID.fullmatch(run_id):
        raise RunIdError(f"run id {run_id!r}: use letters, digits, '.', '_' and '-' only, starting with a "
                         "letter or digit (a run id names a folder under reports/, never a path)")
    if run_id == RESERVED:
        raise RunIdError(f"run id {run_id!r} is reserved: reports/{RESERVED} points at the newest run")
    return run_id


def fresh_run_dir(reports: Path, run_id: str) -> Path:
    """reports/<run_id>, which must not exist yet (a reused id would mix two runs' evidence)."""
    run_dir = Path(reports) / validate_run_id(run_id)
    if run_dir.exists() or run_dir.is_symlink():
        raise RunIdError(f"run id {run_id!r}: {run_dir} already exists; choose a new run id")
    return run_dir


# What a run leaves in its folder; a folder holding any of them is a run, not a place for a new one.
RUN_OUTPUTS = ("results.json", "run.json", "manifest.sha256", "ledger.jsonl", "targets.json")


def unused_run_dir(run_dir: Path) -> Path:
    """`pytest --run-dir`: a new or empty folder (vcrypt run makes it empty), never an existing run's,
    whose evidence and manifest a second session would merge into and rewrite."""
    run_dir = Path(run_dir)
    if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
        raise RunIdError(f"--run-dir {run_dir}: not a folder; give a new folder for the run")
    found = [name for name in RUN_OUTPUTS if (run_dir / name).exists()] if run_dir.is_dir() else []
    if found:
        raise RunIdError(f"--run-dir {run_dir}: already holds a run ({found[0]}); choose a new folder, "
                         "as for a reused run id")
    return run_dir
