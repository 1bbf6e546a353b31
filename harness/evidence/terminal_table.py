"""The end of `vcrypt run` in a terminal: banners, one line per rule, FAILED/ERROR lines, what needs attention.

A reader sees the last screen first, so every line fits the terminal's width (cut at a word with
"…", never mid-word) and the rule table is one line per rule (`RULE  verdict  3/4 passed ·
deciding test: reason`); the full test lists stay in `vcrypt rules --run`. When the catalogue has
more rules than fit one screen (MAX_RULE_ROWS), the rules with nothing to act on (passed, not
applicable) are counted in one line per area that names them; every other rule keeps its own line. What did not pass is
then listed worst first with its deciding test, fault class and the cause in full (wrapped, not cut).
"""
from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import click

from harness.evidence.attention import AttentionItem, Banner, attention, banners, rank
from harness.evidence.verdicts import NOT_APPLICABLE, NOT_RUN, Run, RuleVerdict, TestResult, load_catalogue
from harness.printable import printable

COLOURS = {"passed": "green", "failed": "red", "error": "yellow", "partly demonstrated": "yellow",
           "deviation": "magenta"}
MIN_WIDTH = 40


def terminal_width() -> int:
    """The terminal's columns (COLUMNS wins, as for every CLI); never below MIN_WIDTH."""
    return max(MIN_WIDTH, shutil.get_terminal_size((100, 24)).columns)


def fit(text: str, width: int) -> str:
    """`text` cut to `width` at a word boundary with "…"; a single word longer than the line stays whole.
    Control and bidi characters (a server's fault text can carry them) are shown escaped."""
    text = printable(" ".join(text.split("\n")))
    if len(text) <= width:
        return text
    head = text[:width - 1]
    if not text[width - 1].isspace() and " " in head.strip():
        head = head[:head.rstrip().rindex(" ")]
    head = head.rstrip(" ,;:·")
    if not head.strip():
        return text
    return head if head.endswith("…") else head + "…"


def shorten_name(name: str, budget: int) -> str:
    """A long test name cut between its words (at "_") with "…", keeping its parameters: `test_a_b…[poweredOn]`."""
    if len(name) <= budget:
        return name
    base, bracket, params = name.partition("[")
    suffix = bracket + params
    words = base.split("_")
    kept = "_".join(words[:2])  # at least two words: "test_decrypting…", never a bare "test…"
    for word in words[2:]:
        if len(kept) + 1 + len(word) + 1 + len(suffix) > budget:
            break
        kept += "_" + word
    return f"{kept}…{suffix}"


def wrap(text: str, width: int, indent: str = "") -> list[str]:
    """Whole text over as many lines as it needs, broken only between words."""
    text = printable(" ".join(text.split("\n")))  # one paragraph; nothing in it rewrites the screen
    return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False) or [indent.rstrip()]


def _detail(verdict: RuleVerdict, item: AttentionItem | None, name_budget: int) -> str:
    tested = f"{verdict.count('passed')}/{len(verdict.tests)} passed"
    if item is None or item.test is None:
        if not verdict.tests:
            return "no test ran"
        # nothing to act on, but a bare "0/3 passed" hides whether a version gate or a capability decided
        why = verdict.reasons[0].splitlines()[0] if verdict.count("passed") < len(verdict.tests) and verdict.reasons else ""
        return f"{tested} · {why}" if why else tested
    reason = item.cause.splitlines()[0] if item.cause else ""
    name = shorten_name(item.test_name, name_budget)
    return f"{tested} · {name}: {reason}" if len(name) <= name_budget else f"{tested} · {reason}"


MAX_RULE_ROWS = 44   # a default run's last screen stays within 60 lines (issue 24) as the catalogue grows
QUIET = ("passed", NOT_APPLICABLE)   # verdicts nobody needs to act on


def _area_groups(shown: list[tuple[str, RuleVerdict]], by_rule: Mapping[str, AttentionItem],
                 areas: Mapping[str, str]) -> tuple[dict[str, tuple[str, str]], dict[tuple[str, str], list[str]]]:
    """Quiet rules grouped by (area, verdict): rule -> its group key, and each group's rules in order."""
    groups: dict[tuple[str, str], list[str]] = {}
    member: dict[str, tuple[str, str]] = {}
    for rid, verdict in shown:
        if verdict.verdict in QUIET and rid not in by_rule:
            key = (areas.get(rid, "other"), verdict.verdict)
            groups.setdefault(key, []).append(rid)
            member[rid] = key
    return member, groups


def rule_lines(verdicts: Mapping[str, RuleVerdict], items: Sequence[AttentionItem], width: int,
               selected_only: bool, areas: Mapping[str, str] | None = None,
               max_rows: int = MAX_RULE_ROWS) -> list[str]:
    """Header and one line per rule (unselected "not run" rules counted in one line); past `max_rows`
    rules, the quiet ones of an area share a line naming them (`areas`: rule id -> area title)."""
    by_rule = {item.rule_id: item for item in items}
    shown = [(rid, v) for rid, v in verdicts.items()
             if not (selected_only and v.verdict == NOT_RUN and not v.tests)]
    member: dict[str, tuple[str, str]] = {}
    groups: dict[tuple[str, str], list[str]] = {}
    if len(shown) > max_rows:
        member, groups = _area_groups(shown, by_rule, areas or {})
    rid_w = max([len(rid) for rid, _ in shown] + [4])
    verdict_w = max([len(v.verdict) for _, v in shown] + [7])
    lines = [fit(f"{'rule':{rid_w}}  {'verdict':{verdict_w}}  tests", width)]
    remaining = width - rid_w - verdict_w - 4 - len("99/99 passed · ")
    name_budget = max(12, min(40, remaining * 2 // 3))  # the rest is for the reason
    for rid, verdict in shown:
        if rid in member:
            key = member[rid]
            rids = groups.pop(key, None)
            if rids is not None:  # the group's line stands where its first rule would
                area, label = key
                text = printable(f"{area}: {len(rids)} rule{'s' if len(rids) != 1 else ''} {label} – {' '.join(rids)}")
                lines += textwrap.wrap(text, width=width, subsequent_indent="    ", break_long_words=False,
                                       break_on_hyphens=False)  # every rule named, none cut
            continue
        plain = fit(f"{rid:{rid_w}}  {verdict.verdict:{verdict_w}}  {_detail(verdict, by_rule.get(rid), name_budget)}", width)
        head = f"{rid:{rid_w}}  {verdict.verdict:{verdict_w}}"
        if plain.startswith(head) and verdict.verdict in COLOURS:
            plain = f"{rid:{rid_w}}  " + click.style(f"{verdict.verdict:{verdict_w}}", fg=COLOURS[verdict.verdict]) \
                + plain[len(head):]
        lines.append(plain)
    unselected = len(verdicts) - len(shown)
    if unselected:
        lines.append(fit(f"{unselected} rule(s) outside this run's selection (not run)", width))
    return lines


def short_lines(tests: Sequence[TestResult], width: int) -> list[str]:
    """pytest's FAILED/ERROR short lines, naming each test that failed or errored and why."""
    out = []
    for test in tests:
        word = {"failed": "FAILED", "error": "ERROR"}.get(test.status)
        if word:
            first = (test.message or "").strip().splitlines()[0] if (test.message or "").strip() else ""
            first = re.sub(r"^(?:[a-z_]\w*\.)+(?=[A-Z]\w*: )", "", first)  # harness.checks.NotRefused -> NotRefused
            module, _, name = test.nodeid.rpartition("::")
            ident = test.nodeid if len(word) + 1 + len(test.nodeid) <= width else \
                f"{Path(module).name}::{shorten_name(name, max(30, width // 2 - len(Path(module).name)))}"
            out.append(fit(f"{word} {ident}" + (f" - {first}" if first else ""), width))
    return out


def attention_lines(items: Sequence[AttentionItem], width: int, run_dir: Path) -> list[str]:
    """Each rule that did not pass, worst first: verdict, deciding test, fault class, cause in full, link."""
    if not items:
        return []
    lines = [click.style(fit(f"What needs attention ({len(items)} rule(s), worst first):", width), bold=True)]
    for item in items:
        lines.append(click.style(fit(f"{item.rule_id}  {item.label}", width), fg=COLOURS.get(item.verdict)))
        test = item.test.nodeid if item.test else item.test_name
        lines.append(f"    deciding test: {test if len(test) + 19 <= width else shorten_name(item.test_name, width - 19)}")
        if item.fault_class:
            lines += wrap(f"fault: {item.fault_class}", width, "    ")
        lines += wrap(f"cause: {item.cause}", width, "    ")
        lines.append(f"    {run_dir / item.link()}")
    return lines


def _fit_list(text: str, width: int) -> str:
    """`Compliance: FAIL — A, B, C, …` cut to the width between items, saying how many were left out."""
    if len(text) <= width or " — " not in text:
        return fit(text, width)
    head, _, rest = text.partition(" — ")
    items = rest.split(", ")
    for shown in range(len(items), 0, -1):
        line = f"{head} — {', '.join(items[:shown])}" + (f", … +{len(items) - shown} more" if shown < len(items) else "")
        if len(line) <= width:
            return line
    return fit(f"{head} — {len(items)} rules", width)


def banner_lines(found: Sequence[Banner], width: int) -> list[str]:
    """Compliance (red FAIL / green PASS) and seeded defects, before anything else."""
    out = []
    for banner in found:
        colour = "red" if banner.bad else "green"
        text = _fit_list(banner.text, width) if banner.kind.startswith("compliance") else None
        for line in ([text] if text else wrap(banner.text, width)):
            out.append(click.style(line, fg=colour, bold=True))
    return out


def count_lines(verdicts: Mapping[str, RuleVerdict], counts: Mapping[str, int], seconds: float,
                width: int) -> list[str]:
    """Test counts, then rule counts naming the rules of every verdict that needs attention."""
    extra = "".join(f", {counts[k]} {k}" for k in ("deviation", "interrupted", "not run") if counts.get(k))
    tests_line = (f"{counts.get('passed', 0)} passed, {counts.get('failed', 0)} product failures, "
                  f"{counts.get('error', 0)} environment errors, {counts.get('skipped', 0)} skipped{extra} "
                  f"in {seconds:.1f} s")
    by_verdict: dict[str, list[str]] = {}
    for rid, verdict in sorted(verdicts.items(), key=lambda kv: rank(kv[1].verdict)):
        by_verdict.setdefault(verdict.verdict, []).append(rid)
    parts = []
    for name, rids in by_verdict.items():  # worst first; the rules of failures, errors and deviations named
        named = rank(name) < rank(NOT_RUN)
        parts.append(f"{len(rids)} {name}" + (f" ({', '.join(rids)})" if named else ""))
    return wrap(tests_line, width) + wrap("rules: " + ", ".join(parts), width)


def render(run: Run | None, tests: Sequence[TestResult], verdicts: Mapping[str, RuleVerdict],
           counts: Mapping[str, int], seconds: float, run_dir: Path, selected_only: bool,
           width: int | None = None, echo: Callable[[str], None] = click.echo) -> None:
    """Print the whole block; `width` defaults to the terminal's."""
    width = width or terminal_width()
    items = attention(verdicts, run_dir, selected_only=selected_only)
    lines = [""]
    top = banner_lines(banners(run, verdicts), width) if run is not None else []
    lines += top + [""] if top else []
    areas = {rule.id: rule.area_title or rule.area for rule in load_catalogue()}
    lines += rule_lines(verdicts, items, width, selected_only, areas)
    shorts = short_lines(tests, width)
    lines += [""] + shorts if shorts else []
    detailed = [i for i in items if rank(i.verdict) < rank(NOT_RUN)]  # failed, error, unknown, deviation
    if detailed:
        lines += [""] + attention_lines(detailed, width, run_dir)
    if len(items) > len(detailed):
        lines += wrap(f"{len(items) - len(detailed)} more rule(s) not demonstrated (skipped, partly demonstrated or "
                      "not run): their deciding test and reason are in the table above", width)
    lines += [""] + count_lines(verdicts, counts, seconds, width)
    for line in lines:
        echo(line)

