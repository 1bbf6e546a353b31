"""What `vcrypt run` prints at the end: the rule table (harness/evidence/terminal_table.py) and the manifest digest."""
from __future__ import annotations

from pathlib import Path

import click

from harness.evidence.verdicts import (NOT_APPLICABLE, NOTHING_DEMONSTRATED, compliance_gaps, demonstrated_nothing,
                                       load_catalogue, load_results, load_run, rule_verdicts, run_interrupted,
                                       status_counts)

def print_run_summary(run_dir: Path, seconds: float, filtered: bool = False) -> None:
    """Banners, one line per rule fitted to the terminal, FAILED/ERROR lines, what needs attention
    (harness/evidence/terminal_table.py); a filtered run counts its unselected rules in one line."""
    if not (run_dir / "results.json").exists():
        click.echo(f"no results were written to {run_dir} (the run stopped before the suites ran)", err=True)
        return
    from harness.evidence.terminal_table import render, terminal_width, wrap
    tests = load_results(run_dir)
    run = load_run(run_dir) if (run_dir / "run.json").exists() else None
    verdicts = rule_verdicts(load_catalogue(), tests)
    width = terminal_width()

    def say(text: str, colour: str | None = None) -> None:
        for line in wrap(text, width):
            click.echo(click.style(line, fg=colour) if colour else line)

    render(run, tests, verdicts, status_counts(tests), seconds, run_dir, selected_only=filtered, width=width)
    if run is not None and run_interrupted(run, tests):
        say("run interrupted: it was stopped before every test finished; the rules of unfinished tests are "
            "'not run' or 'partly demonstrated'", "red")
    for note in sorted({t.deviation_note for t in tests if t.deviation_note}):
        say(note, "magenta")
    torn = [t for t in tests if t.teardown_error]
    if torn:  # the teardown's own errors: named, and no rule's verdict rests on them
        say(f"{len(torn)} teardown error(s) (no rule's verdict changed):", "yellow")
        for t in torn:
            say(f"  {t.name or t.nodeid}: {(t.teardown_error or '').splitlines()[0][:200]}")
    if demonstrated_nothing(tests):
        say(NOTHING_DEMONSTRATED, "red")
    if run is not None and run.compliance:
        gaps = compliance_gaps(verdicts)
        if gaps:
            text = f"compliance mode: {len(gaps)} rule(s) not demonstrated, so the run fails (exit status {run.exit_status})"
        else:
            na = sum(1 for v in verdicts.values() if v.verdict == NOT_APPLICABLE)
            text = f"compliance mode: every applicable rule demonstrated ({na} not applicable to the target's version)"
        say(text, "red" if gaps else "green")
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
