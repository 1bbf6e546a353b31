"""Allure Trend across runs: executor.json and history carried from the previous run folder.

`allure generate` draws the Trend, Duration and Categories-trend charts and each test's History
tab from `allure-results/history/*.json`, which it normally finds only if somebody copied the
previous *report's* history there. Runs land in sibling folders (reports/<run-id>/), so each run
carries it itself: from the previous run's `allure-report/history` when that run was rendered,
else from its `allure-results/history` plus that run's own results (format as Allure 2 writes it:
history-trend.json, duration-trend.json, categories-trend.json, retry-trend.json, history.json).
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

HISTORY_FILES = ("history.json", "history-trend.json", "duration-trend.json", "categories-trend.json",
                 "retry-trend.json")
MAX_BUILDS = 20  # Allure keeps 20 entries per trend by default
STATUSES = ("failed", "broken", "skipped", "passed", "unknown")


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def _started(run_dir: Path) -> str:
    return str(_read_json(run_dir / "run.json", {}).get("started_at") or "")


def build_order(run_dir: Path) -> int:
    """A number that grows from run to run: the run's start time in seconds."""
    try:
        return int(datetime.fromisoformat(_started(run_dir)).timestamp())
    except ValueError:
        return 0


def previous_run(run_dir: Path) -> Path | None:
    """The sibling run folder that started last before this one (None for a first run)."""
    run_dir = Path(run_dir).resolve()
    mine = _started(run_dir)
    candidates = []
    for sibling in run_dir.parent.iterdir():
        if sibling.is_symlink() or sibling == run_dir or not (sibling / "run.json").is_file():  # reports/latest
            continue
        started = _started(sibling)
        if started and (not mine or started < mine):
            candidates.append((started, sibling))
    return max(candidates)[1] if candidates else None


def executor(run_dir: Path) -> dict[str, Any]:
    run_id = Path(run_dir).name
    return {"name": "vcrypt-harness", "type": "vcrypt", "buildName": run_id, "buildOrder": build_order(run_dir),
            "reportName": f"vcrypt-harness run {run_id}"}


def _results(results_dir: Path) -> list[dict[str, Any]]:
    return [r for r in (_read_json(p, None) for p in sorted(results_dir.glob("*-result.json"))) if isinstance(r, dict)]


def _statistic(statuses: list[str]) -> dict[str, int]:
    counts = {s: statuses.count(s) for s in STATUSES}
    counts["total"] = len(statuses)
    return counts


def _category_counts(results: list[dict[str, Any]], categories: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        message = str((result.get("statusDetails") or {}).get("message") or "")
        for category in categories:
            if result.get("status") in category.get("matchedStatuses", []):
                try:
                    if re.fullmatch(category.get("messageRegex", "(?s).*"), message):
                        counts[category["name"]] = counts.get(category["name"], 0) + 1
                        break
                except re.error:
                    continue
    return counts


def own_history(run_dir: Path, prior: dict[str, Any]) -> dict[str, Any]:
    """Add a finished run's own results to the history it was given (`prior`: file name -> data)."""
    results_dir = Path(run_dir) / "allure-results"
    results = _results(results_dir)
    order, name = build_order(run_dir), f"vcrypt-harness run {Path(run_dir).name}"
    point = {"buildOrder": order, "reportName": name, "reportUrl": ""}
    starts = [r.get("start", 0) for r in results if r.get("start")]
    stops = [r.get("stop", 0) for r in results if r.get("stop")]
    categories = _read_json(results_dir / "categories.json", [])

    def prepend(file: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        return ([{**point, "data": data}] + list(prior.get(file) or []))[:MAX_BUILDS]

    history = dict(prior.get("history.json") or {})
    for r in results:
        if not r.get("historyId"):
            continue
        entry = history.get(r["historyId"]) or {"statistic": _statistic([]), "items": []}
        item = {"uid": r.get("uuid", ""), "reportUrl": "", "status": r.get("status", "unknown"),
                "statusDetails": str((r.get("statusDetails") or {}).get("message") or "")[:500],
                "time": {"start": r.get("start", 0), "stop": r.get("stop", 0),
                         "duration": max(0, r.get("stop", 0) - r.get("start", 0))}}
        items = [item, *entry.get("items", [])][:MAX_BUILDS]
        history[r["historyId"]] = {"statistic": _statistic([i["status"] for i in items]), "items": items}
    return {
        "history.json": history,
        "history-trend.json": prepend("history-trend.json", _statistic([r.get("status", "unknown") for r in results])),
        "duration-trend.json": prepend("duration-trend.json",
                                       {"duration": (max(stops) - min(starts)) if starts and stops else 0}),
        "categories-trend.json": prepend("categories-trend.json", _category_counts(results, categories)),
        "retry-trend.json": prepend("retry-trend.json", {"run": len(results), "retry": 0}),
    }


def carry_history(run_dir: Path) -> Path | None:
    """Write allure-results/history/ from the previous run; None when there is no previous run."""
    previous = previous_run(run_dir)
    if previous is None:
        return None
    target = Path(run_dir) / "allure-results" / "history"
    rendered = previous / "allure-report" / "history"
    if (rendered / "history-trend.json").is_file():  # `allure generate` already folded that run in
        target.mkdir(parents=True, exist_ok=True)
        for name in HISTORY_FILES:
            if (rendered / name).is_file():
                shutil.copyfile(rendered / name, target / name)
        return target
    prior_dir = previous / "allure-results" / "history"
    prior = {name: _read_json(prior_dir / name, None) for name in HISTORY_FILES}
    data = own_history(previous, prior)
    target.mkdir(parents=True, exist_ok=True)
    for name, value in data.items():
        (target / name).write_text(json.dumps(value, indent=1), encoding="utf-8")
    return target
