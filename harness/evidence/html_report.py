"""Render a run folder as one self-contained, offline HTML page (report.html).

The page is evidence an auditor opens years later, possibly on an air-gapped machine: it
must load nothing from the network (inline CSS/JS only, enforced by a Content-Security-Policy
with hashes) and must not execute anything that came from a target (Jinja autoescaping on,
values from vCenter are never marked safe). Summary first, details in <details> elements.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from urllib.parse import quote
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from harness.evidence.display import (
    ARG_LIMIT, CALLS_SHOWN, CALLS_SHOWN_PASSED, RESULT_LIMIT, bounded, grid_view, notes_not_in_checks,
    observation_rows, short_ref,
)
from harness.evidence.attention import attention, banners
from harness.evidence.oscal import ControlMapping, load_controls
from harness.evidence.provenance import provenance_view
from harness.evidence.verdicts import (
    NOT_APPLICABLE,
    PARTLY,
    SKIP_CATEGORIES,
    VERDICT_ORDER,
    compliance_gaps,
    run_interrupted,
    Evidence,
    Rule,
    RuleVerdict,
    Run,
    TestResult,
    load_catalogue,
    load_evidence,
    load_results,
    load_run,
    rule_verdicts,
    status_counts,
    unmapped_tests,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"
FILENAME = "report.html"

STATUS_LABELS = {
    "passed": "passed",
    "failed": "product failure",
    "error": "environment error",
    "skipped": "skipped",
    "not run": "not run",
    # added with partly demonstrated / known deviation / not applicable (harness/evidence/verdicts.py)
    "partly demonstrated": "partly demonstrated",
    "deviation": "known deviation",
    "not applicable": "not applicable",
    "interrupted": "interrupted",
}
SKIP_LABELS = {
    "capability_skip": "Target lacks a capability",
    "version_skip": "Not applicable to the target's version",
    "safety_skip": "Not allowed by the inventory (mutating or destructive)",
    "unconfirmed_skip": "Rests on a behaviour vSphere leaves unconfirmed (observed, not asserted)",
    None: "Skipped (no category given)",
}
TARGET_LABELS = {
    "fake": "fake (in-process simulated vCenter, real KMS)",
    "vcsim": "vcsim (govmomi vCenter simulator)",
    "real": "real vCenter",
}


@dataclass(frozen=True)
class TestView:
    test: TestResult
    evidence: Evidence | None
    evidence_problem: str | None


@dataclass(frozen=True)
class ControlView:
    id: str
    title: str


@dataclass(frozen=True)
class RuleRow:
    rule: Rule
    verdict: RuleVerdict
    short: str
    controls: tuple[ControlView, ...]
    rationale: str
    tests: tuple[TestView, ...]


@dataclass(frozen=True)
class TlsView:
    label: str
    css: str
    detail: str


def short_text(text: str, limit: int = 120) -> str:
    """First sentence, cut at a word boundary: the matrix must stay one line per rule."""
    first = re.split(r"(?<=[.!?])\s+(?=[A-Z`(])", text.strip(), maxsplit=1)[0]
    if len(first) <= limit:
        return first
    return first[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def tls_view(mode: str) -> TlsView:
    """Make an unverified TLS connection impossible to overlook; `detail` keeps the raw mode."""
    m = mode.lower().strip()
    if not m:
        return TlsView("not recorded", "tls-unknown", "")
    if m.startswith(("verified", "verify", "ca ")):
        label, css = "verified", "tls-verified"
    elif re.search(r"insecure|no-?verify|verification off|unverified", m):
        label, css = "insecure: certificate not verified", "tls-insecure"
    elif re.search(r"thumb|pin|fingerprint", m):
        label, css = "pinned thumbprint", "tls-pinned"
    elif "verif" in m:
        label, css = "verified", "tls-verified"
    else:
        return TlsView(mode, "tls-unknown", "")
    return TlsView(label, css, "" if m == label else mode)


def _md(text: Any) -> Markup:
    """Escape, then show `backticked` spans as code (the only markup rule texts use)."""
    escaped = str(escape(str(text)))
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped))


def _json(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min {sec} s" if hours else f"{minutes} min {sec} s"


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _overall(rule_counts: dict[str, int]) -> tuple[str, str]:
    """One sentence a reader sees first, and its colour (the same notion of "demonstrated" as compliance mode)."""
    if rule_counts["failed"]:
        return f"Product failures: {rule_counts['failed']} rule(s) violated", "failed"
    if rule_counts["error"]:
        return f"Incomplete: {rule_counts['error']} rule(s) not decided because of environment errors", "error"
    kinds = [(k, rule_counts.get(k, 0)) for k in ("deviation", "skipped", PARTLY, "not run")]
    undecided = sum(n for _, n in kinds)
    if undecided:
        detail = ", ".join(f"{n} {k}" for k, n in kinds if n)
        return f"No violations seen; {undecided} rule(s) not demonstrated ({detail})", "skipped"
    scope = f" ({rule_counts[NOT_APPLICABLE]} not applicable to the target's version)" if rule_counts.get(NOT_APPLICABLE) else ""
    return f"All applicable rules demonstrated{scope}", "passed"


def _compliance(run: Run, verdicts: dict[str, RuleVerdict]) -> str:
    """The compliance-mode statement, from the same gaps that set the exit status."""
    if not run.compliance:
        return "no"
    gaps = compliance_gaps(verdicts)
    if gaps:
        return f"yes – {len(gaps)} rule(s) not demonstrated, so the run fails (exit status {run.exit_status})"
    return "yes – every applicable rule demonstrated"


def _filtered(run: Run) -> bool:
    """A run restricted with --rules / --test-id: its unselected rules are not news."""
    return any(arg.split("=", 1)[0] in ("--rules", "--test-id") for arg in run.pytest_args)


def merge_view(run_dir: Path) -> dict[str, Any] | None:
    """What `vcrypt merge` recorded in run.json (labs, shards, --allow-partial's reasons), for the header:
    a partial or multi-lab assessment must not read like one whole run. None for an ordinary run."""
    try:
        merge = json.loads((run_dir / "run.json").read_text(encoding="utf-8")).get("merge")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(merge, dict):
        return None
    labs = []
    for name, info in (merge.get("labs") or {}).items():
        verdicts = info.get("verdicts") or {}
        labs.append({"name": str(name), "overall": str(info.get("overall", "")),
                     "shards": [str(s) for s in info.get("shards") or []],
                     "not_passed": sorted(f"{rule} ({verdict})" for rule, verdict in verdicts.items()
                                          if verdict not in ("passed", NOT_APPLICABLE))})
    return {"labs": labs, "shards": sum(len(lab["shards"]) for lab in labs),
            "partial": [str(r) for r in merge.get("partial_reasons") or []] if merge.get("partial") else []}


class _Context:
    """Collect everything the template shows, loading each evidence file once."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.run: Run = load_run(run_dir)
        self.tests = load_results(run_dir)
        self.catalogue = load_catalogue()
        self.mapping: ControlMapping = load_controls()
        self._views: dict[str, TestView] = {}

    def view(self, test: TestResult) -> TestView:
        if test.nodeid not in self._views:
            evidence, problem = load_evidence(self.run_dir, test)
            self._views[test.nodeid] = TestView(test, evidence, problem)
        return self._views[test.nodeid]

    def areas(self, verdicts: dict[str, RuleVerdict]) -> list[tuple[str, list[RuleRow]]]:
        areas: dict[str, list[RuleRow]] = {}
        for rule in self.catalogue:
            controls = tuple(ControlView(c, self.mapping.titles.get(c, "")) for c in self.mapping.controls_for(rule.id))
            row = RuleRow(
                rule=rule,
                verdict=verdicts[rule.id],
                short=short_text(rule.text),
                controls=controls,
                rationale=self.mapping.rationale_for(rule.id),
                tests=tuple(self.view(t) for t in verdicts[rule.id].tests),
            )
            areas.setdefault(rule.area_title or rule.area or "Other", []).append(row)
        return list(areas.items())

    def skips(self) -> list[tuple[str, list[TestResult]]]:
        groups: dict[str | None, list[TestResult]] = {}
        for t in self.tests:
            if t.status == "skipped":
                key = t.category if t.category in SKIP_CATEGORIES and t.category in SKIP_LABELS else None
                groups.setdefault(key, []).append(t)
        order: Sequence[str | None] = (*SKIP_CATEGORIES, None)
        return [(SKIP_LABELS[k], groups[k]) for k in order if k in groups]

    def as_dict(self) -> dict[str, Any]:
        verdicts = rule_verdicts(self.catalogue, self.tests)
        rule_counts = {v: 0 for v in STATUS_LABELS}
        for v in verdicts.values():
            rule_counts[v.verdict] = rule_counts.get(v.verdict, 0) + 1
        overall, overall_css = _overall(rule_counts)
        return {
            "run": self.run,
            "prov": provenance_view(self.run.provenance),
            "target_label": TARGET_LABELS.get(self.run.target, self.run.target or "unknown"),
            "tls": {vc.name: tls_view(vc.tls_mode) for vc in self.run.vcenters},
            "counts": status_counts(self.tests),
            "rule_counts": rule_counts,
            "overall": overall,
            "overall_css": overall_css,
            "areas": self.areas(verdicts),
            "columns": [(k, STATUS_LABELS[k]) for k in VERDICT_ORDER],
            "labels": STATUS_LABELS,
            "skips": self.skips(),
            "problems": [self.view(t) for t in self.tests if t.status in ("failed", "error", "deviation", "interrupted")],
            "compliance": _compliance(self.run, verdicts),
            "banners": banners(self.run, verdicts),
            "attention": attention(verdicts, self.run_dir, selected_only=_filtered(self.run)),
            "compliance_fails": self.run.compliance and bool(compliance_gaps(verdicts)),
            "interrupted": run_interrupted(self.run, self.tests),
            "unmapped": [self.view(t) for t in unmapped_tests(self.catalogue, self.tests)],
            "catalog_size": len(self.catalogue),
            "merged": merge_view(self.run_dir),
        }


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(md=_md, tojson_text=_json, duration=_duration, grid=grid_view, bounded=bounded, observation_rows=observation_rows,
                       notes_not_in_checks=notes_not_in_checks,
                       uri=lambda path: quote(str(path), safe='/'), short_ref=short_ref,
                       bounded_arg=lambda v: bounded(v, ARG_LIMIT),
                       bounded_result=_bounded_json_text)
    env.globals.update(calls_shown=CALLS_SHOWN, calls_shown_passed=CALLS_SHOWN_PASSED)
    return env


def _bounded_json_text(text: Any) -> str:
    """Results arrive as JSON text (verdicts._text): show them compact and cut like any value."""
    if isinstance(text, str) and text[:1] in "[{":
        try:
            return bounded(json.loads(text), RESULT_LIMIT)
        except ValueError:
            pass
    return bounded(text, RESULT_LIMIT)


def render_html(run_dir: Path) -> str:
    """The report page as a string."""
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    js = (TEMPLATES / "report.js").read_text(encoding="utf-8")
    csp = (
        f"default-src 'none'; style-src {_csp_hash(css)}; script-src {_csp_hash(js)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    context = _Context(Path(run_dir)).as_dict()
    # css/js are our own files, not target data: the only values marked safe.
    page = _environment().get_template("report.html.j2").render(css=Markup(css), js=Markup(js), csp=csp, **context)
    return _dedent_markup(page)


# Elements whose text is shown or hashed as written: <pre> keeps its layout, and the CSP pins the
# <style> and <script> bodies by SHA-256.
_VERBATIM = re.compile(r"(<(pre|style|script|textarea)\b.*?</\2>)", re.S | re.I)


def _dedent_markup(page: str) -> str:
    """The template's indentation removed outside verbatim elements: the browser ignores it, and the
    default run's report is held under 600 KB (about 3% of it was leading blanks)."""
    parts = _VERBATIM.split(page)
    out = []
    for i in range(0, len(parts), 3):
        out.append(re.sub(r"\n[ \t]+", "\n", parts[i]))
        if i + 1 < len(parts):
            out.append(parts[i + 1])
    return "".join(out)


def write_html_report(run_dir: Path) -> Path:
    """Write report.html into the run folder and return its path."""
    path = Path(run_dir) / FILENAME
    path.write_text(render_html(run_dir), encoding="utf-8")
    return path
