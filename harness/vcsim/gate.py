"""The nightly's verdict on a vcsim run: enough rules demonstrated, nothing unlisted failed, no stale deviation.

    python -m harness.vcsim.gate reports/<run-id> --floor 7 [--summary "$GITHUB_STEP_SUMMARY"]

Why a gate of its own: a vcsim run whose every test skips exits 0, so "green" proves nothing. A rule
is demonstrated when every one of its tests passed. A stale deviation (a listed test vcsim now
passes) XPASSes strictly, which pytest reports as failed: it is named here as stale.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _tests(run_dir: Path) -> list[dict[str, Any]]:
    return json.loads((run_dir / "results.json").read_text(encoding="utf-8"))["tests"]


def demonstrated(tests: list[dict[str, Any]]) -> list[str]:
    by_rule: dict[str, set[str]] = {}
    for test in tests:
        for rule in test["rules"]:
            by_rule.setdefault(rule, set()).add(test["outcome"])
    return sorted(rule for rule, outcomes in by_rule.items() if outcomes == {"passed"})


def problems(run_dir: Path, floor: int) -> list[str]:
    tests = _tests(run_dir)
    found = []
    shown = demonstrated(tests)
    if len(shown) < floor:
        found.append(f"only {len(shown)} rules demonstrated, the floor is {floor}: {', '.join(shown) or 'none'}")
    for test in tests:
        if test["outcome"] in ("passed", "skipped", "deviation"):
            continue
        message = (test.get("message") or "").splitlines()[0] if test.get("message") else ""
        stale = "XPASS" in message or message.startswith("stale deviation")
        kind = "stale deviation (vcsim now complies; remove its entry)" if stale else "unlisted failure"
        found.append(f"{kind}: {test['test_id'] or test['nodeid']} ({', '.join(test['rules'])}): {message}"[:300])
    return found


def summary(run_dir: Path, floor: int) -> str:
    tests = _tests(run_dir)
    counts: dict[str, int] = {}
    for test in tests:
        counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
    lines = [f"## vcsim nightly: {run_dir.name}", "",
             f"Demonstrated rules: **{len(demonstrated(tests))}** (floor {floor}): {', '.join(demonstrated(tests))}", "",
             "| outcome | tests |", "|---|---|"] + [f"| {k} | {v} |" for k, v in sorted(counts.items())]
    found = problems(run_dir, floor)
    lines += ["", "**Problems:**" if found else "No unlisted failure, no stale deviation."] + [f"- {p}" for p in found]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.vcsim.gate", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--floor", type=int, required=True, help="fewest rules that must be demonstrated")
    parser.add_argument("--summary", type=Path, default=None, help="append a Markdown summary here")
    args = parser.parse_args(argv)
    if not (args.run_dir / "results.json").is_file():
        print(f"{args.run_dir}: no results.json (not a run folder)", file=sys.stderr)
        return 2
    if args.summary:
        with open(args.summary, "a", encoding="utf-8") as out:
            out.write(summary(args.run_dir, args.floor))
    found = problems(args.run_dir, args.floor)
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
