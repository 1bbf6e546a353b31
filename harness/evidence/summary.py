"""The per-rule table `vcrypt run` prints at the end: rule, verdict, tests."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import click

from harness.evidence.verdicts import load_catalogue, load_results, rule_verdicts, status_counts

_COLOURS = {"passed": "green", "failed": "red", "error": "yellow", "skipped": None, "not run": None}


def print_run_summary(run_dir: Path, seconds: float, filtered: bool = False) -> None:
    """The rule table, wrapped to the terminal; a filtered run counts its unselected rules in one line."""
    if not (run_dir / "results.json").exists():
        click.echo(f"no results were written to {run_dir} (the run stopped before the suites ran)", err=True)
        return
    tests = load_results(run_dir)
    verdicts = rule_verdicts(load_catalogue(), tests)
    width = max(60, shutil.get_terminal_size((100, 24)).columns)
    click.echo("")
    click.echo(f"{'rule':26} {'verdict':9} tests")
    unselected = 0
    for rule_id, verdict in verdicts.items():
        if filtered and verdict.verdict == "not run":
            unselected += 1
            continue
        names = ", ".join(sorted({t.name for t in verdict.tests})) or "-"
        reason = f"  ({verdict.reasons[0]})" if verdict.verdict == "skipped" and verdict.reasons else ""
        lines = textwrap.wrap(names + reason, width=width - 37, break_long_words=True) or ["-"]
        label = click.style(f"{verdict.verdict:9}", fg=_COLOURS.get(verdict.verdict))
        click.echo(f"{rule_id:26} {label} {lines[0]}")
        for line in lines[1:]:
            click.echo(f"{'':37}{line}")
    if unselected:
        click.echo(f"{unselected} rule(s) outside this run's selection (not run)")
    counts = status_counts(tests)
    click.echo("")
    click.echo(f"{counts.get('passed', 0)} passed, {counts.get('failed', 0)} product failures, "
               f"{counts.get('error', 0)} environment errors, {counts.get('skipped', 0)} skipped "
               f"in {seconds:.1f} s")
    click.echo(f"report: {run_dir / 'report.html'}")
