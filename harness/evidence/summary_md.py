"""summary.md: a run in a few lines of Markdown, for a CI job summary, a chat message or a mail.

Verdict counts, the rules that need attention with a one-line reason each, and links into
report.html (anchors `#rule-<id>`, `#problems`, `#skips` from templates/report.html.j2). Verdicts
come from harness.evidence.verdicts, so new verdict kinds show up here without a change: any
verdict other than the "nothing wrong" ones below is listed as needing attention.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.evidence.verdicts import (NOTHING_DEMONSTRATED, VERDICTS, demonstrated_nothing, load_catalogue,
                                       load_results, load_run, rule_verdicts, run_interrupted, status_counts)

FILENAME = "summary.md"
QUIET_VERDICTS = ("passed", "skipped", "not run", "not applicable")
MAX_REASON = 160


def _one_line(text: str | None) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    line = line.replace("|", "\\|").replace("`", "'")
    return line if len(line) <= MAX_REASON else line[:MAX_REASON - 1] + "…"


def render_summary(run_dir: Path) -> str:
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    tests = load_results(run_dir)
    verdicts = rule_verdicts(load_catalogue(), tests)
    by_verdict = Counter(v.verdict for v in verdicts.values())
    attention = {rid: v for rid, v in verdicts.items() if v.verdict not in QUIET_VERDICTS}
    counts = status_counts(tests)
    overall = "needs attention" if attention or run.exit_status else "all selected rules passed or were skipped"
    if run_interrupted(run, tests):
        overall = "interrupted: needs attention"
    if demonstrated_nothing(tests):
        overall = NOTHING_DEMONSTRATED.split(":")[0]
    vcenters = ", ".join(f"{v.name} {v.version}".strip() for v in run.vcenters) or "-"
    lines = [
        f"# vcrypt run `{run.run_id}`: {overall}",
        "",
        f"Target **{run.target or '?'}** ({vcenters}), inventory `{Path(run.inventory).name or '?'}`; "
        f"{len(tests)} tests in {run.duration_s or 0:.1f} s; exit status {run.exit_status}.",
        "",
        "| rule verdict | rules |",
        "|---|---:|",
    ]
    order = list(VERDICTS) + sorted(set(by_verdict) - set(VERDICTS))
    lines += [f"| {verdict} | {by_verdict[verdict]} |" for verdict in order if by_verdict[verdict]]
    lines += ["", f"Tests: {counts.get('passed', 0)} passed, {counts.get('failed', 0)} product failures, "
                  f"{counts.get('error', 0)} environment errors, {counts.get('skipped', 0)} skipped"
                  + "".join(f", {counts[k]} {k}" for k in ("deviation", "interrupted", "not run") if counts.get(k)) + ".", ""]
    if demonstrated_nothing(tests):
        lines += [f"**{NOTHING_DEMONSTRATED[0].upper() + NOTHING_DEMONSTRATED[1:]}.** Exit status 5; `reports/latest` "
                  "was not moved to this run.", ""]
    if attention:
        lines += [f"## Rules that need attention ({len(attention)})", ""]
        for rid, verdict in attention.items():
            reason = verdict.deciding.message if verdict.deciding is not None else None  # the test that decided it
            lines.append(f"- [{rid}](report.html#rule-{rid}) **{verdict.verdict}**: {_one_line(reason) or 'no reason recorded'}")
        lines.append("")
    lines += ["## Report", "",
              "[report.html](report.html) · [problems](report.html#problems) · [skips](report.html#skips) · "
              "JUnit `junit.xml` · integrity `manifest.sha256` (`vcrypt verify-evidence`)", ""]
    return "\n".join(lines)


def write_summary_md(run_dir: Path) -> Path | None:
    """Write run_dir/summary.md; a run that wrote no results gets none (there is nothing to sum up)."""
    run_dir = Path(run_dir)
    if not (run_dir / "results.json").exists() or not (run_dir / "run.json").exists():
        return None
    path = run_dir / FILENAME
    path.write_text(render_summary(run_dir), encoding="utf-8")
    return path
