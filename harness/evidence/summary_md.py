"""summary.md: a run in a few lines of Markdown, for a CI job summary, a chat message or a mail.

Banners first (compliance FAIL/PASS, seeded fake defects), then what needs attention worst first
(harness/evidence/attention.py: verdict, deciding test, fault class, the cause in full), then the
counts. A CI job summary is shown outside the run folder, so a relative `report.html#...` link
would be dead there: links are absolute when the folder's published address is known
(VCRYPT_REPORT_BASE_URL, e.g. the CI artifact's URL) and left out otherwise.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from urllib.parse import quote, urlsplit

from harness.evidence.attention import attention, banners, rank
from harness.evidence.verdicts import (NOTHING_DEMONSTRATED, demonstrated_nothing, load_catalogue, load_results,
                                       load_run, rule_verdicts, run_interrupted, status_counts)

FILENAME = "summary.md"
BASE_URL_ENV = "VCRYPT_REPORT_BASE_URL"
_MARKDOWN = re.compile(r"([\\`*_\[\]<>|#!~])")


def escape(text: str) -> str:
    """Plain text as Markdown text: no character of a fault message becomes markup or HTML."""
    return _MARKDOWN.sub(r"\\\1", text)


def base_url(value: str | None = None) -> str | None:
    """The run folder's published address (http/https only), or None: then summary.md carries no links."""
    value = (value if value is not None else os.environ.get(BASE_URL_ENV, "")).strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return quote(value.rstrip("/"), safe=":/?&=%@+,;~") + "/"  # a space or parenthesis would end the link


def _link(text: str, base: str | None, target: str) -> str:
    return f"[{text}]({base}{quote(target, safe='/#-._')})" if base else text


def render_summary(run_dir: Path, base: str | None = None) -> str:
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    tests = load_results(run_dir)
    verdicts = rule_verdicts(load_catalogue(), tests)
    filtered = any(a.split("=", 1)[0] in ("--rules", "--test-id") for a in run.pytest_args)
    items = attention(verdicts, run_dir, selected_only=filtered)
    by_verdict = Counter(v.verdict for v in verdicts.values())
    counts = status_counts(tests)
    worrying = [i for i in items if rank(i.verdict) < rank("not run")]
    overall = "needs attention" if worrying or run.exit_status else "no failures"
    if run_interrupted(run, tests):
        overall = "interrupted: needs attention"
    if demonstrated_nothing(tests):
        overall = NOTHING_DEMONSTRATED.split(":")[0]
    vcenters = ", ".join(f"{v.name} {v.version}".strip() for v in run.vcenters) or "-"
    lines = [f"# vcrypt run `{run.run_id}`: {overall}", ""]
    for banner in banners(run, verdicts):
        mark = "🟢" if not banner.bad else "🔴"
        lines += [f"> {mark} **{escape(banner.text)}**", ""]
    lines += [f"Target **{escape(run.target or '?')}** ({escape(vcenters)}), inventory "
              f"`{Path(run.inventory).name or '?'}`; {len(tests)} tests in {run.duration_s or 0:.1f} s; "
              f"exit status {run.exit_status}.", ""]
    if items:
        lines += [f"## What needs attention: {len(items)} rule(s), worst first", ""]
        for item in items:
            test = f"`{item.test.nodeid}`" if item.test else "no test ran"
            fault = f" — fault `{item.fault_class}`" if item.fault_class else ""
            lines.append(f"- {_link(f'**{item.rule_id}**', base, item.link())} {escape(item.label)} — "
                         f"deciding test {test}{fault}")
            cause = item.cause.splitlines() or [""]
            lines.append(f"  cause: {escape(cause[0])}")
            lines += [f"  {escape(line)}" for line in cause[1:]]  # in full, never cut
        lines.append("")
    lines += ["| rule verdict | rules |", "|---|---:|"]
    lines += [f"| {escape(v)} | {n} |" for v, n in sorted(by_verdict.items(), key=lambda kv: rank(kv[0]))]
    lines += ["", f"Tests: {counts.get('passed', 0)} passed, {counts.get('failed', 0)} product failures, "
                  f"{counts.get('error', 0)} environment errors, {counts.get('skipped', 0)} skipped"
                  + "".join(f", {counts[k]} {k}" for k in ("deviation", "interrupted", "not run") if counts.get(k))
                  + ".", ""]
    if demonstrated_nothing(tests):
        lines += [f"**{NOTHING_DEMONSTRATED[0].upper() + NOTHING_DEMONSTRATED[1:]}.** Exit status 5; `reports/latest` "
                  "was not moved to this run.", ""]
    report = _link("report.html", base, "report.html")
    where = "" if base else " in the run folder"
    lines += ["## Report", "", f"{report}{where} · JUnit `junit.xml` · integrity `manifest.sha256` "
                               "(`vcrypt verify-evidence`)", ""]
    return "\n".join(lines)


def write_summary_md(run_dir: Path) -> Path | None:
    """Write run_dir/summary.md; a run that wrote no results gets none (there is nothing to sum up)."""
    run_dir = Path(run_dir)
    if not (run_dir / "results.json").exists() or not (run_dir / "run.json").exists():
        return None
    path = run_dir / FILENAME
    path.write_text(render_summary(run_dir, base_url()), encoding="utf-8")
    return path
