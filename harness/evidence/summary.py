"""The per-rule table `vcrypt run` prints at the end: rule, verdict, tests."""
from __future__ import annotations

from pathlib import Path

import click

from harness.evidence.verdicts import load_catalogue, load_results, rule_verdicts, status_counts

_COLOURS = {"passed": "green", "failed": "red", "error": "yellow", "skipped": None, "not run": None}


def print_run_summary(run_dir: Path, seconds: float) -> None:
    if not (run_dir / "results.json").exists():
        click.echo(f"no results were written to {run_dir} (the run stopped before the suites ran)", err=True)
        return
    tests = load_results(run_dir)
    verdicts = rule_verdicts(load_catalogue(), tests)
    click.echo("")
    click.echo(f"{'rule':26} {'verdict':9} tests")
    for rule_id, verdict in verdicts.items():
        label = click.style(f"{verdict.verdict:9}", fg=_COLOURS.get(verdict.verdict))
        names = ", ".join(sorted({t.name for t in verdict.tests})) or "-"
        reason = f"  ({verdict.reasons[0]})" if verdict.verdict == "skipped" and verdict.reasons else ""
        click.echo(f"{rule_id:26} {label} {names}{reason}")
    counts = status_counts(tests)
    click.echo("")
    click.echo(f"{counts.get('passed', 0)} passed, {counts.get('failed', 0)} product failures, "
               f"{counts.get('error', 0)} environment errors, {counts.get('skipped', 0)} skipped "
               f"in {seconds:.1f} s")
    click.echo(f"report: {run_dir / 'report.html'}")


def print_manifest_digest(run_dir: Path) -> None:
    """The manifest's own SHA-256 (write it down or publish it) and whether the run is signed."""
    from harness.evidence.manifest import MANIFEST, SIGNATURE
    from harness.evidence.signing import UNSIGNED, manifest_digest
    if not (run_dir / MANIFEST).is_file():
        click.echo(f"no {MANIFEST} was written to {run_dir}", err=True)
        return
    signed = "signed: " + SIGNATURE if (run_dir / SIGNATURE).is_file() else UNSIGNED
    click.echo(f"evidence manifest: {run_dir / MANIFEST} sha256 {manifest_digest(run_dir)} ({signed})")
