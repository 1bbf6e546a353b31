"""Load a finished run folder and decide one verdict per catalogue rule.

Every writer (HTML, OSCAL, Allure) reads the run through this module so that they all
agree on what "passed" means. Loaders tolerate missing optional fields because the run
folder may come from an older plugin or an aborted run; a missing *required* file is an
error, since evidence that silently shrinks is worse than no evidence.
"""

from __future__ import annotations

import importlib
import importlib.resources
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

# Rule verdicts. The first five are the original ones; `verdict_of` decides (see its docstring).
VERDICTS: tuple[str, ...] = ("failed", "error", "passed", "skipped", "not run",
                             "partly demonstrated", "deviation", "not applicable")
PARTLY = "partly demonstrated"
DEVIATION = "deviation"
NOT_APPLICABLE = "not applicable"
NOT_RUN = "not run"
INTERRUPTED = "interrupted"  # a test status: it started and never reported a call phase
# NOT_RUN is also a test status: the test was selected but never started (the run was stopped first,
# or pytest only collected); such a test leaves its rules undemonstrated, never passed.
UNFINISHED = frozenset({INTERRUPTED, NOT_RUN})

# The order writers show rule verdicts in (worst first).
VERDICT_ORDER: tuple[str, ...] = ("failed", "error", DEVIATION, NOT_RUN, "skipped", PARTLY, "passed", NOT_APPLICABLE)

# One label per rule verdict, the same in HTML, JUnit, OSCAL and the terminal.
VERDICT_LABELS: dict[str, str] = {
    "passed": "passed",
    "failed": "product failure",
    "error": "environment error",
    "skipped": "skipped",
    NOT_RUN: "not run",
    PARTLY: "partly demonstrated",
    DEVIATION: "known deviation: not demonstrated on this target",
    NOT_APPLICABLE: "not applicable to the target's version",
}

# Why a rule has its verdict, in one clause (OSCAL finding descriptions, the HTML rule section).
VERDICT_EXPLANATIONS: dict[str, str] = {
    "passed": "demonstrated: every applicable test of this rule passed",
    "failed": "a test showed the product violating the rule",
    "error": "not demonstrated: a test could not complete because of an environment error",
    "skipped": "not demonstrated: every test was skipped",
    NOT_RUN: "not demonstrated: no test for this rule finished (none ran, or the run was interrupted)",
    PARTLY: "not fully demonstrated: some tests passed, others were skipped or did not run to the end",
    DEVIATION: "not demonstrated: the target has a known deviation from this rule",
    NOT_APPLICABLE: "outside the assessed scope: the rule does not describe the target's vSphere version",
}

# Verdicts that let compliance mode pass; everything else is a gap.
COMPLIANT_VERDICTS = frozenset({"passed", NOT_APPLICABLE})

# Test categories of a skip (the plugin's classification). "unconfirmed_skip": the target may have
# the behaviour, but the harness could not confirm it (counts as not demonstrated, like capability).
SKIP_CATEGORIES = ("capability_skip", "version_skip", "safety_skip", "unconfirmed_skip")
KNOWN_DEVIATION = "known_deviation"  # category of a rule test xfailed by the target's deviation list


@dataclass(frozen=True)
class Rule:
    """One catalogue rule, whatever loader produced it."""

    id: str
    area: str = ""
    area_title: str = ""
    since: str = ""
    until: str | None = None
    kind: str = ""
    kind_note: str = ""
    text: str = ""
    observe: str = ""
    source: str = ""


@dataclass(frozen=True)
class VCenter:
    name: str
    target: str = ""
    url: str = ""
    api_version: str = ""
    version: str = ""
    build: str = ""
    instance_uuid: str = ""
    tls_mode: str = ""
    error: str = ""  # the plugin could not read the vCenter's "about" info
    hosts: tuple[Mapping[str, str], ...] = ()  # ESXi hosts: name, version, build
    note: str = ""   # e.g. a vcsim that models no crypto: the crypto rules could not be exercised


@dataclass(frozen=True)
class KmsServer:
    name: str
    address: str = ""
    provider_id: str = ""


@dataclass(frozen=True)
class Run:
    run_id: str
    harness_version: str = ""
    started_at: str = ""
    finished_at: str = ""
    duration_s: float | None = None
    startup_s: float | None = None
    inventory: str = ""
    target: str = ""
    vcenters: tuple[VCenter, ...] = ()
    kms_embedded: bool | None = None
    kms_servers: tuple[KmsServer, ...] = ()
    compliance: bool = False
    compliance_gaps: tuple[str, ...] = ()
    pytest_args: tuple[str, ...] = ()
    exit_status: int | None = None
    interrupted: bool = False  # Ctrl-C / SIGTERM stopped the run before every test ran
    provenance: Mapping[str, Any] = field(default_factory=dict)  # operator, code, packages, inventory, signing

    @property
    def fake_defects(self) -> tuple[str, ...]:
        return tuple(str(d) for d in _list(self.provenance.get("fake_defects")))

    @property
    def signing(self) -> Mapping[str, Any]:
        return _dict(self.provenance.get("signing"))


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest test class

    nodeid: str
    test_id: str = ""
    name: str = ""
    module: str = ""
    area: str = ""
    rules: tuple[str, ...] = ()
    outcome: str = ""
    category: str | None = None
    message: str | None = None
    duration_s: float | None = None
    evidence_file: str | None = None
    blamed_rules: tuple[str, ...] = ()  # a product failure inside these rules' steps (checks.for_rule)
    teardown_error: str | None = None   # the teardown's own error: named, never part of a rule's verdict
    deviation_note: str | None = None   # a deviation entry not applied, or met by another failure

    def for_rule(self, rule_id: str) -> "TestResult":
        """This test as evidence of one of its rules: a failure blamed on its other rules leaves this
        one not demonstrated ("not run"), never failed."""
        if self.status != "failed" or not self.blamed_rules or rule_id in self.blamed_rules:
            return self
        return replace(self, outcome=NOT_RUN, category=NOT_RUN,
                       message=f"not demonstrated: the test failed in a step of {', '.join(self.blamed_rules)} "
                               f"before this rule's own steps could show anything")

    @property
    def status(self) -> str:
        """passed | failed (product) | error (environment) | skipped | deviation | interrupted.

        The plugin's category refines a non-passing outcome (a test that fails because the
        KMS is unreachable is an environment error, not a product failure).
        """
        if self.outcome == "passed":
            return "passed"
        if self.outcome == "skipped":
            return "skipped"
        if self.outcome == DEVIATION or self.category == KNOWN_DEVIATION:
            return DEVIATION
        if self.outcome in UNFINISHED:
            return self.outcome
        if self.category == "product_failure":
            return "failed"
        if self.category == "environment_error":
            return "error"
        if self.outcome == "failed":
            return "failed"
        return "error"  # "error" and anything unknown: never counted as a pass


@dataclass(frozen=True)
class Call:
    seq: int
    vcenter: str = ""
    method: str = ""
    target: str = ""
    args: Mapping[str, Any] = field(default_factory=dict)
    task: str | None = None
    outcome: str = ""
    result: str | None = None
    fault_class: str | None = None
    fault_message: str | None = None
    duration_ms: float | None = None
    started_at: str = ""


@dataclass(frozen=True)
class Observation:
    label: str
    vcenter: str = ""
    object: str = ""
    phase: str = ""
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KmipRead:
    op: str
    server: str = ""
    uid: str = ""
    result: str = ""


@dataclass(frozen=True)
class Note:
    label: str
    value: Any = None


@dataclass(frozen=True)
class HostKeys:
    hosts: tuple[str, ...]
    keys: tuple[str, ...]
    holds: Mapping[str, frozenset[str]]
    focus: tuple[str, ...] = ()  # the keys the test is about (the report shows these, counts the rest)


@dataclass(frozen=True)
class Check:
    """One recorded assertion: `what: expected X, observed Y` and whether it held."""

    what: str
    expected: str = ""
    observed: str = ""
    passed: bool = False
    detail: str = ""


@dataclass(frozen=True)
class Evidence:
    test_id: str
    nodeid: str = ""
    calls: tuple[Call, ...] = ()
    observations: tuple[Observation, ...] = ()
    kmip: tuple[KmipRead, ...] = ()
    notes: tuple[Note, ...] = ()
    host_keys: HostKeys | None = None
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class RuleVerdict:
    verdict: str
    tests: tuple[TestResult, ...] = ()

    @property
    def reasons(self) -> tuple[str, ...]:
        """Skip reasons (or failure messages) kept so "skipped" never hides why."""
        return tuple(t.message for t in self.tests if t.message)

    @property
    def gaps(self) -> tuple[str, ...]:
        """Why the rule is not (fully) demonstrated: each test that did not pass, with its reason; the
        test that decided the verdict first (every writer's one-line reason is the first gap)."""
        deciding = self.deciding
        ordered = sorted(self.tests, key=lambda t: t is not deciding)
        return tuple(f"{t.name or t.nodeid}: {t.status}" + (f" ({t.message})" if t.message else "")
                     for t in ordered if not _counts_as_shown(t))

    @property
    def deciding(self) -> TestResult | None:
        """The test whose outcome decided the verdict (its reason is the rule's reason); None for a pass."""
        wanted = {"failed": ("failed",), "error": ("error",), DEVIATION: (DEVIATION,), NOT_RUN: tuple(UNFINISHED),
                  "skipped": ("skipped",)}.get(self.verdict)
        if wanted is not None:
            return next((t for t in self.tests if t.status in wanted), None)
        if self.verdict == PARTLY:
            return next((t for t in self.tests if not _counts_as_shown(t)), None)
        return None

    @property
    def label(self) -> str:
        return VERDICT_LABELS.get(self.verdict, self.verdict)

    @property
    def explanation(self) -> str:
        return VERDICT_EXPLANATIONS.get(self.verdict, self.verdict)

    @property
    def compliant(self) -> bool:
        """Whether compliance mode accepts this verdict (passed, or outside the target's version)."""
        return self.verdict in COMPLIANT_VERDICTS

    def count(self, status: str) -> int:
        return sum(1 for t in self.tests if t.status == status)


# --- small coercion helpers: the input is JSON written by another component -------------


def _s(value: Any, default: str = "") -> str:
    return default if value is None else str(value)


def _opt_s(value: Any) -> str | None:
    return None if value is None else str(value)


def _text(value: Any) -> str | None:
    """Strings as they are; other JSON values (summarised results) as compact JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _f(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# --- run folder ---------------------------------------------------------------------------


def load_run(run_dir: Path) -> Run:
    """Read run.json; only run_id is required (falls back to the folder name)."""
    raw = _dict(_read_json(Path(run_dir) / "run.json"))
    kms = _dict(raw.get("kms"))
    vcenters = tuple(
        VCenter(
            name=_s(v.get("name"), "?"),
            target=_s(v.get("target")),
            url=_s(v.get("url")),
            api_version=_s(v.get("api_version")),
            version=_s(v.get("version")),
            build=_s(v.get("build")),
            instance_uuid=_s(v.get("instance_uuid")),
            tls_mode=_s(v.get("tls_mode")),
            error=_s(v.get("error")),
            hosts=tuple({k: _s(h.get(k)) for k in ("name", "version", "build")} for h in map(_dict, _list(v.get("hosts")))),
            note=_s(_dict(v.get("vcsim")).get("note")),
        )
        for v in map(_dict, _list(raw.get("vcenters")))
    )
    servers = tuple(
        KmsServer(
            name=_s(s.get("name"), "?"),
            address=_s(s.get("address")),
            provider_id=_s(s.get("provider_id")),
        )
        for s in map(_dict, _list(kms.get("servers")))
    )
    exit_status = raw.get("exit_status")
    return Run(
        run_id=_s(raw.get("run_id"), Path(run_dir).name),
        harness_version=_s(raw.get("harness_version")),
        started_at=_s(raw.get("started_at")),
        finished_at=_s(raw.get("finished_at")),
        duration_s=_f(raw.get("duration_s")),
        startup_s=_f(raw.get("startup_s")),
        inventory=_s(raw.get("inventory")),
        target=_s(raw.get("target")),
        vcenters=vcenters,
        kms_embedded=None if kms.get("embedded") is None else bool(kms.get("embedded")),
        kms_servers=servers,
        compliance=bool(raw.get("compliance", False)),
        compliance_gaps=tuple(_s(g) for g in _list(raw.get("compliance_gaps"))),
        pytest_args=tuple(_s(a) for a in _list(raw.get("pytest_args"))),
        exit_status=exit_status if isinstance(exit_status, int) else None,
        interrupted=bool(raw.get("interrupted", False)),
        provenance=_dict(raw.get("provenance")),
    )


def load_results(run_dir: Path) -> list[TestResult]:
    """Read results.json in file order (the order pytest ran the tests)."""
    raw = _dict(_read_json(Path(run_dir) / "results.json"))
    return results_from(_list(raw.get("tests")))


def results_from(entries: Iterable[Any]) -> list[TestResult]:
    """TestResults from results.json's "tests" entries (also the plugin's in-memory ones)."""
    tests = []
    for t in map(_dict, entries):
        rules = t.get("rules")
        tests.append(
            TestResult(
                nodeid=_s(t.get("nodeid"), "?"),
                test_id=_s(t.get("test_id")),
                name=_s(t.get("name")),
                module=_s(t.get("module")),
                area=_s(t.get("area")),
                rules=tuple(_s(r) for r in (rules if isinstance(rules, list) else [])),
                outcome=_s(t.get("outcome")),
                category=_opt_s(t.get("category")),
                message=_opt_s(t.get("message")),
                duration_s=_f(t.get("duration_s")),
                evidence_file=_opt_s(t.get("evidence_file")),
                blamed_rules=tuple(_s(r) for r in _list(t.get("blamed_rules"))),
                teardown_error=_opt_s(t.get("teardown_error")),
                deviation_note=_opt_s(t.get("deviation_note")),
            )
        )
    return tests


def evidence_path(run_dir: Path, test: TestResult) -> Path | None:
    """The test's evidence file, refusing paths that escape the run folder."""
    if not test.evidence_file:
        return None
    root = Path(run_dir).resolve()
    path = (root / test.evidence_file).resolve()
    return path if path.is_relative_to(root) else None


def _host_keys(raw: Any) -> HostKeys | None:
    if not isinstance(raw, dict):
        return None
    holds = {_s(h): frozenset(_s(k) for k in _list(ks)) for h, ks in _dict(raw.get("holds")).items()}
    hosts = [_s(h) for h in _list(raw.get("hosts"))]
    keys = [_s(k) for k in _list(raw.get("keys"))]
    hosts += [h for h in holds if h not in hosts]  # never drop a host that holds something
    keys += sorted({k for ks in holds.values() for k in ks} - set(keys))
    focus = tuple(k for k in (_s(f) for f in _list(raw.get("focus"))) if k in keys)
    return HostKeys(hosts=tuple(hosts), keys=tuple(keys), holds=holds, focus=focus)


def parse_evidence(raw: Mapping[str, Any]) -> Evidence:
    """Build Evidence from the JSON the recorder wrote."""
    calls = []
    for i, c in enumerate(map(_dict, _list(raw.get("calls")))):
        fault = _dict(c.get("fault"))
        seq = c.get("seq")
        calls.append(
            Call(
                seq=seq if isinstance(seq, int) else i + 1,
                vcenter=_s(c.get("vcenter")),
                method=_s(c.get("method")),
                target=_s(c.get("target")),
                args=_dict(c.get("args")),
                task=_opt_s(c.get("task")),
                outcome=_s(c.get("outcome")),
                result=_text(c.get("result")),
                fault_class=_opt_s(fault.get("class")) if fault else None,
                fault_message=_opt_s(fault.get("message")) if fault else None,
                duration_ms=_f(c.get("duration_ms")),
                started_at=_s(c.get("started_at")),
            )
        )
    return Evidence(
        test_id=_s(raw.get("test_id")),
        nodeid=_s(raw.get("nodeid")),
        calls=tuple(calls),
        observations=tuple(
            Observation(
                label=_s(o.get("label")),
                vcenter=_s(o.get("vcenter")),
                object=_s(o.get("object")),
                phase=_s(o.get("phase")),
                properties=_dict(o.get("properties")),
            )
            for o in map(_dict, _list(raw.get("observations")))
        ),
        kmip=tuple(
            KmipRead(
                op=_s(k.get("op")),
                server=_s(k.get("server")),
                uid=_s(k.get("uid")),
                result=_text(k.get("result")) or "",
            )
            for k in map(_dict, _list(raw.get("kmip")))
        ),
        notes=tuple(Note(label=_s(n.get("label")), value=n.get("value")) for n in map(_dict, _list(raw.get("notes")))),
        host_keys=_host_keys(raw.get("host_keys")),
        checks=tuple(
            Check(what=_s(c.get("what")), expected=_text(c.get("expected")) or "", observed=_text(c.get("observed")) or "",
                  passed=c.get("passed") is True, detail=_s(c.get("detail")))
            for c in map(_dict, _list(raw.get("checks")))
        ),
    )


def load_evidence(run_dir: Path, test: TestResult) -> tuple[Evidence | None, str | None]:
    """(evidence, problem): a declared but unreadable evidence file is reported, not hidden."""
    if not test.evidence_file:
        return None, None
    path = evidence_path(run_dir, test)
    if path is None:
        return None, f"evidence path outside the run folder: {test.evidence_file}"
    try:
        return parse_evidence(_dict(_read_json(path))), None
    except FileNotFoundError:
        return None, f"evidence file missing: {test.evidence_file}"
    except (OSError, ValueError) as exc:
        return None, f"evidence file unreadable: {test.evidence_file}: {exc}"


# --- rule catalogue -------------------------------------------------------------------------


def _rule_from(obj: Any) -> Rule:
    """Adapt a dict or an object with attributes (whatever harness.rules returns)."""

    def get(name: str) -> Any:
        return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)

    until = get("until")
    return Rule(
        id=_s(get("id")),
        area=_s(get("area")),
        area_title=_s(get("area_title")) or _s(get("area")),
        since=_s(get("since")),
        until=None if until is None else str(until),
        kind=_s(get("kind")),
        kind_note=_s(get("kind_note")),
        text=_s(get("text")),
        observe=_s(get("observe")),
        source=_s(get("source")),
    )


def _read_rules_yaml() -> list[Any]:
    try:
        text = importlib.resources.files("harness").joinpath("data/rules.yaml").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, TypeError):
        text = (Path(__file__).resolve().parents[1] / "data" / "rules.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return _list(data.get("rules") if isinstance(data, dict) else data)


def load_catalogue() -> list[Rule]:
    """The rule catalogue in published order; prefers harness.rules.load_rules() if present."""
    try:
        module = importlib.import_module("harness.rules")
    except ModuleNotFoundError:
        module = None
    loader = getattr(module, "load_rules", None)
    raw: Iterable[Any] = loader() if callable(loader) else _read_rules_yaml()
    if isinstance(raw, Mapping):  # a loader keyed by id
        raw = raw.values()
    return [_rule_from(r) for r in raw]


# --- verdicts -------------------------------------------------------------------------------


def _counts_as_shown(test: TestResult) -> bool:
    """A pass shows the behaviour; a version skip is outside the target's scope. Nothing else counts."""
    return test.status == "passed" or (test.status == "skipped" and test.category == "version_skip")


def verdict_of(tests: Sequence[TestResult]) -> str:
    """A rule passes only when every applicable test of it passed.

    In order: any product failure -> "failed"; any environment error -> "error"; any known
    deviation -> "deviation"; passes beside anything not shown (a skip other than by version, a
    test interrupted or never started) -> "partly demonstrated"; only passes (and version skips)
    -> "passed"; no test, or no pass and a test the run did not finish -> "not run"; only skips
    -> "skipped", or "not applicable" when every skip is by version.
    """
    statuses = {t.status for t in tests}
    for verdict in ("failed", "error", DEVIATION):
        if verdict in statuses:
            return verdict
    undemonstrated = any(not _counts_as_shown(t) for t in tests)
    if "passed" in statuses:
        return PARTLY if undemonstrated else "passed"
    if not tests or statuses & UNFINISHED:
        return NOT_RUN
    return "skipped" if undemonstrated else NOT_APPLICABLE


def rule_verdicts(catalogue: Iterable[Rule], tests: Sequence[TestResult]) -> dict[str, RuleVerdict]:
    """One verdict per catalogue rule, in catalogue order."""
    by_rule: dict[str, list[TestResult]] = {}
    for t in tests:
        for rid in dict.fromkeys(t.rules):
            by_rule.setdefault(rid, []).append(t.for_rule(rid))
    result = {}
    for rule in catalogue:
        rid = rule.id if isinstance(rule, Rule) else _rule_from(rule).id
        mine = tuple(by_rule.get(rid, ()))
        result[rid] = RuleVerdict(verdict=verdict_of(mine), tests=mine)
    return result


def unmapped_tests(catalogue: Iterable[Rule], tests: Sequence[TestResult]) -> list[TestResult]:
    """Tests naming no catalogue rule: shown separately so nothing silently disappears."""
    ids = {r.id for r in catalogue}
    return [t for t in tests if not any(r in ids for r in t.rules)]


def status_counts(tests: Sequence[TestResult]) -> dict[str, int]:
    """Tests per status; "deviation" and "interrupted" appear only when some test has them."""
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for t in tests:
        counts[t.status] = counts.get(t.status, 0) + 1
    return counts


def compliance_gaps(verdicts: Mapping[str, RuleVerdict]) -> list[str]:
    """Every rule compliance mode does not accept, as "RULE: verdict (first reason)".

    Compliance passes only when each rule is "passed" or "not applicable"; the run's exit
    status, run.json, the report and the terminal summary all take their word from here.
    """
    gaps = []
    for rid, verdict in verdicts.items():
        if verdict.compliant:
            continue
        deciding = verdict.deciding
        reason = (deciding.message if deciding is not None else "") or ""
        gaps.append(f"{rid}: {verdict.verdict}" + (f" ({reason})" if reason else ""))
    return gaps


def run_interrupted(run: Run, tests: Sequence[TestResult]) -> bool:
    """The run stopped early (Ctrl-C, SIGTERM) or left a test without its call phase."""
    return run.interrupted or any(t.status == INTERRUPTED for t in tests)


NOTHING_DEMONSTRATED = ("nothing was demonstrated: no test ran to a verdict (nothing selected, collect-only, "
                        "or every test skipped, stopped or errored)")


def demonstrated_nothing(tests: Sequence[TestResult]) -> bool:
    """No test ran to a product verdict (pass or product failure): the run shows nothing about the
    product, so it is not a success (exit 5) and not a baseline to compare with."""
    return not any(t.status in ("passed", "failed") for t in tests)
