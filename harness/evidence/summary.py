"""The per-rule table `vcrypt run` prints at the end: rule, verdict, tests."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import click

from harness.evidence.verdicts import (NOT_APPLICABLE, NOTHING_DEMONSTRATED, compliance_gaps, demonstrated_nothing,
                                       load_catalogue, load_results, load_run, rule_verdicts, run_interrupted,
                                       status_counts)

_COLOURS = {"passed": "green", "failed": "red", "error": "yellow", "skipped": None, "not run": None,
            "partly demonstrated": "yellow", "deviation": "magenta", NOT_APPLICABLE: None}
_SHOW_REASON = {"skipped", "partly demonstrated", "deviation", "not run"}


def print_run_summary(run_dir: Path, seconds: float, filtered: bool = False) -> None:
    """The rule table, wrapped to the terminal; a filtered run counts its unselected rules in one line."""
    if not (run_dir / "results.json").exists():
        click.echo(f"no results were written to {run_dir} (the run stopped before the suites ran)", err=True)
        return
    tests = load_results(run_dir)
    run = load_run(run_dir) if (run_dir / "run.json").exists() else None
    verdicts = rule_verdicts(load_catalogue(), tests)
    width = max(60, shutil.get_terminal_size((100, 24)).columns)
    click.echo("")
    click.echo(f"{'rule':26} {'verdict':19} tests")
    unselected = 0
    for rule_id, verdict in verdicts.items():
        if filtered and verdict.verdict == "not run" and not verdict.tests:  # selected-but-unstarted tests show
            unselected += 1
            continue
        names = ", ".join(sorted({t.name for t in verdict.tests})) or "-"
        gaps = verdict.gaps if verdict.verdict in _SHOW_REASON else ()
        reason = f"  ({gaps[0]}{'; ...' if len(gaps) > 1 else ''})" if gaps else ""
        lines = textwrap.wrap(names + reason, width=width - 47, break_long_words=True) or ["-"]
        label = click.style(f"{verdict.verdict:19}", fg=_COLOURS.get(verdict.verdict))
        click.echo(f"{rule_id:26} {label} {lines[0]}")
        for line in lines[1:]:
            click.echo(f"{'':47}{line}")
    if unselected:
        click.echo(f"{unselected} rule(s) outside this run's selection (not run)")
    counts = status_counts(tests)
    extra = "".join(f", {counts[k]} {k}" for k in ("deviation", "interrupted", "not run") if counts.get(k))
    click.echo("")
    click.echo(f"{counts.get('passed', 0)} passed, {counts.get('failed', 0)} product failures, "
               f"{counts.get('error', 0)} environment errors, {counts.get('skipped', 0)} skipped{extra} "
               f"in {seconds:.1f} s")
    by_verdict: dict[str, int] = {}
    for verdict in verdicts.values():
        by_verdict[verdict.verdict] = by_verdict.get(verdict.verdict, 0) + 1
    click.echo("rules: " + ", ".join(f"{n} {v}" for v, n in by_verdict.items()))
    if run is not None and run_interrupted(run, tests):
        click.echo(click.style("run interrupted: it was stopped before every test finished; the rules of "
                               "unfinished tests are 'not run'", fg="red"))
    notes = sorted({t.deviation_note for t in tests if t.deviation_note})
    for note in notes:
        click.echo(click.style(note, fg="magenta"))
    torn = [t for t in tests if t.teardown_error]
    if torn:  # the teardown's own errors: named, and no rule's verdict rests on them
        click.echo(click.style(f"{len(torn)} teardown error(s) (no rule's verdict changed):", fg="yellow"))
        for t in torn:
            click.echo(f"  {t.name or t.nodeid}: {(t.teardown_error or '').splitlines()[0][:200]}")
    if demonstrated_nothing(tests):
        click.echo(click.style(NOTHING_DEMONSTRATED, fg="red"))
    if run is not None and run.compliance:
        gaps = compliance_gaps(verdicts)
        if gaps:
            click.echo(click.style(f"compliance mode: {len(gaps)} rule(s) not demonstrated, so the run fails "
                                   f"(exit status {run.exit_status})", fg="red"))
        else:
            click.echo(f"compliance mode: every applicable rule demonstrated "
                       f"({by_verdict.get(NOT_APPLICABLE, 0)} not applicable to the target's version)")
    click.echo(f"report: {run_dir / 'report.html'}")


def print_manifest_digest(run_dir: Path) -> None:
    """The manifest's own SHA-256 (write it down or publish it) and whether the run is signed."""
    from harness.evidence.manifest import MANIFEST, SIGNATURE
    from harness.evidence.signing import UNSIGNED, manifest_digest
    if not (run_dir / MANIFEST).is_file():
        click.echo(f"no {MANIFEST} was written to {run_dir}", err=True)
        return
    signed = "signed: " + SIGNATURE if (run_dir / SIGNATURE).is_file() else UNSIGNED
    click.echo(f"evidence manifest: {run_dir / MANIFEST}")
    click.echo(f"  sha256 {manifest_digest(run_dir)}")
    click.echo(f"  {signed}")
