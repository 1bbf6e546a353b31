"""Allure Trend across runs: executor.json and history carried from the previous run of the same suite.

`allure generate` draws the Trend, Duration and Categories-trend charts and each test's History
tab from `allure-results/history/*.json`, which it normally finds only if somebody copied the
previous *report's* history there. Runs land in sibling folders (reports/<run-id>/), so each run
carries it itself: from the previous run's `allure-report/history` when that run was rendered,
else from its `allure-results/history` plus that run's own results (format as Allure 2 writes it:
history-trend.json, duration-trend.json, categories-trend.json, retry-trend.json, history.json).
Allure 3 (the `allure` npm package) reads neither: it takes history from the JSON-lines file its
config names (`historyPath`, @allurereport/core's AllureLocalHistory), one data point per report,
so each run also writes `allure-history.jsonl` (the previous run's lines plus that run's point).

Only a run of the same suite (inventory content, target, test selection) counts as "previous":
a 6.7 run's results in a 7.0 trend would be noise. Build order is an integer that grows by one
per run of that suite (Allure sorts and labels the trend by it), not a timestamp.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import uuid
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


_SELECTION = ("--rules", "--test-id", "-k", "-m")
MAX_BUILD_ORDER = 10**6  # larger values are start times written by older harness versions


def suite_key(run_dir: Path) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """What makes two runs comparable: the inventory's content (its path when unrecorded), the
    target kind and the test selection options."""
    run = _read_json(Path(run_dir) / "run.json", {})
    args = [str(a) for a in run.get("pytest_args") or []]
    selection = []
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name in _SELECTION:
            selection.append((name, value if eq else (args[i + 1] if i + 1 < len(args) else "")))
    inventory = ((run.get("provenance") or {}).get("inventory") or {}).get("sha256") or str(run.get("inventory") or "")
    return inventory, str(run.get("target") or ""), tuple(selection)


def previous_run(run_dir: Path) -> Path | None:
    """The sibling run folder of the same suite that started last before this one (None for a first run)."""
    run_dir = Path(run_dir).resolve()
    mine, key = _started(run_dir), suite_key(run_dir)
    candidates = []
    for sibling in run_dir.parent.iterdir():
        if sibling.is_symlink() or sibling == run_dir or not (sibling / "run.json").is_file():  # reports/latest
            continue
        started = _started(sibling)
        if started and (not mine or started < mine) and suite_key(sibling) == key:
            candidates.append((started, sibling))
    return max(candidates)[1] if candidates else None


def build_order(run_dir: Path) -> int:
    """1 for a suite's first run, then the previous run's build order plus one."""
    own = _read_json(Path(run_dir) / "allure-results" / "executor.json", {}).get("buildOrder")
    if isinstance(own, int) and 0 < own < MAX_BUILD_ORDER:
        return own
    previous = previous_run(run_dir)
    if previous is None:
        return 1
    return build_order(previous) + 1


def executor(run_dir: Path, statement: str = "") -> dict[str, Any]:
    """executor.json: integer build order; the report name carries the compliance and seeded-defect statement."""
    run_id = Path(run_dir).name
    return {"name": "vcrypt-harness", "type": "vcrypt", "buildName": run_id, "buildOrder": build_order(run_dir),
            "reportName": f"vcrypt-harness run {run_id}" + (f" ({statement})" if statement else "")}


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


ALLURE3_HISTORY = "allure-history.jsonl"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 - Allure 3's id scheme, not security


def allure3_ids(result: dict[str, Any]) -> tuple[str, str]:
    """(test case id, history id) as Allure 3 computes them from an Allure 2 result
    (@allurereport/core dist/store/convert.js calculateTestId / calculateHistoryId): md5 of
    "ALLURE_ID=<id>" for an ALLURE_ID/AS_ID label, else of testCaseId, else of fullName; the history
    id adds md5 of the sorted, not excluded "name:value" parameters."""
    labels = {str(label.get("name")): str(label.get("value")) for label in result.get("labels") or []}
    allure_id = labels.get("ALLURE_ID") or labels.get("AS_ID")
    case = (_md5(f"ALLURE_ID={allure_id}") if allure_id and allure_id != "-1"
            else _md5(str(result["testCaseId"])) if result.get("testCaseId") else _md5(str(result.get("fullName") or "")))
    params = sorted((str(p.get("name")), str(p.get("value", ""))) for p in result.get("parameters") or []
                    if p.get("name") and not p.get("excluded"))
    return case, f"{case}.{_md5(','.join(f'{name}:{value}' for name, value in params))}"


def allure3_point(run_dir: Path) -> dict[str, Any]:
    """One Allure 3 history data point for a finished run (the shape @allurereport/core's createHistory makes)."""
    run_dir = Path(run_dir)
    results = _results(run_dir / "allure-results")
    try:
        timestamp = int(datetime.fromisoformat(_started(run_dir)).timestamp() * 1000)
    except ValueError:
        timestamp = 0
    items, cases = {}, set()
    for r in results:
        if not (r.get("testCaseId") or r.get("fullName")):
            continue
        case, history_id = allure3_ids(r)
        cases.add(case)
        details = r.get("statusDetails") or {}
        items[history_id] = {
            "id": _md5(str(r.get("uuid", ""))), "name": r.get("name", ""), "fullName": r.get("fullName", ""),
            "environment": "default", "status": r.get("status", "unknown"), "message": details.get("message"),
            "trace": details.get("trace"), "start": r.get("start"), "stop": r.get("stop"),
            "duration": max(0, (r.get("stop") or 0) - (r.get("start") or 0)), "labels": r.get("labels") or [],
            "url": "", "historyId": history_id, "reportLinks": []}
    return {"uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"vcrypt-harness:run:{run_dir.name}")),
            "name": f"vcrypt-harness run {run_dir.name}", "timestamp": timestamp,
            "knownTestCaseIds": sorted(cases),
            "testResults": items, "metrics": {}, "url": ""}


def carry_allure3_history(run_dir: Path) -> Path | None:
    """Write allure-history.jsonl: the previous same-suite run's lines, then that run's own point."""
    previous = previous_run(run_dir)
    if previous is None:
        return None
    lines = []
    try:
        lines = [line for line in (previous / ALLURE3_HISTORY).read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError:
        pass
    point = allure3_point(previous)
    lines = [line for line in lines if f'"uuid": "{point["uuid"]}"' not in line]
    lines = (lines + [json.dumps(point)])[-MAX_BUILDS:]
    path = Path(run_dir) / ALLURE3_HISTORY
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
