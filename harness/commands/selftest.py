"""`vcrypt selftest`: prove every rule's tests can fail, by running them against seeded defects.

For each defect of the fake (harness/fakevc/defects.py) the tests of its rule run against a fake
with that defect on: at least one must FAIL (a product failure; errors and skips do not count).
With no defect, the same tests must all pass. A missed defect means a verdict that cannot fail.

A defect whose tests did not run to a verdict for environment reasons (an environment error, an
interrupted test, a session that wrote no results: on a loaded machine a deadline can pass) proves
nothing either way: it is `inconclusive` and re-run once, and never reported as `MISSED`, which is
kept for tests that ran and did not fail. Each test's outcome and message are kept, so a defect not
caught says why.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import queue
import select
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness.rules import load_rules

ROOT = Path(__file__).resolve().parents[2]
SESSION_TIMEOUT = 900.0   # one defect's session; a worker that overruns it is killed


CAUGHT, MISSED, INCONCLUSIVE = "caught", "missed", "inconclusive"
NOT_RUN_OUTCOMES = ("error", "interrupted")   # outcomes that are no verdict of the product


@dataclass(frozen=True)
class TestRun:
    """One test of a session, as results.json gives it."""
    nodeid: str
    outcome: str
    category: str | None = None
    message: str | None = None

    @property
    def environment(self) -> bool:
        """Ended without a product verdict: an environment error or an interruption."""
        return self.outcome in NOT_RUN_OUTCOMES or self.category == "environment_error"


@dataclass
class Outcome:
    rule: str
    defect: str
    caught: bool
    failed_tests: list[str] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    problem: str = ""
    verdict: str = ""                  # caught / missed / inconclusive (baseline: "")
    tests: list[TestRun] = field(default_factory=list)
    attempts: int = 1


def _inventory_for(rule_id: str, defect: str | None, folder: Path) -> Path:
    """A copy of the fake inventory (6.7 for pre-7 rules) with the defect switched on (and the fake
    options the defect shows under, e.g. vCenters that do not trust each other)."""
    from harness.fakevc.catalogue import load_all
    base = ROOT / "inventories" / ("fake-67.yaml" if load_rules()[rule_id].until else "fake.yaml")
    data = yaml.safe_load(base.read_text(encoding="utf-8"))
    options = dict(load_all()[defect].fake_options) if defect else {}
    for entry in data["vcenters"]:
        entry.setdefault("fake", {})["defects"] = [defect] if defect else []
        entry["fake"].update(options)
        if load_rules()[rule_id].since_tuple >= (8, 0):   # 8.0-only rules (VTPM-CLONE-POLICY) need an 8.0 fake
            entry["version"] = "8.0.2"
    path = folder / f"inventory-{defect or 'baseline'}-{rule_id}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _session_args(rules: list[str], defect: str | None, folder: Path, suites: Path,
                  stop_when: str | None = None) -> tuple[list[str], Path]:
    """The pytest arguments of one session: the tests of `rules` against the fake (with `defect`);
    `stop_when`: end the session at the first test with this outcome (the worker's STOP_WHEN)."""
    from harness.commands.selftest_worker import STOP_WHEN
    label = defect or "baseline"
    inventory = _inventory_for(rules[0], defect, folder)
    run_dir = folder / f"run-{label}-{rules[0]}"
    args = [str(suites), "--inventory", str(inventory), "--run-dir", str(run_dir), "--rules", ",".join(rules)]
    return args + ([f"{STOP_WHEN}{stop_when}"] if stop_when else []), run_dir


class SessionWorker:
    """A `harness.commands.selftest_worker` process: runs one pytest session per request, many in its life."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.kms_folder = log.with_suffix(".kms")   # the worker's kept KMS pair (harness/kms/kept.py)
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        with self.log.open("a", encoding="utf-8") as stderr:
            return subprocess.Popen([sys.executable, "-m", "harness.commands.selftest_worker",
                                     "--kms-folder", str(self.kms_folder)], cwd=ROOT, text=True,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, bufsize=1,
                                    start_new_session=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})

    def run(self, args: list[str], timeout: float = SESSION_TIMEOUT) -> dict:
        """Run one session; a worker that dies or overruns is stopped (the next request starts a new one)."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(args) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise RuntimeError(f"selftest worker {'timed out' if not ready else 'died'}; see {self.log}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


class WorkerPool:
    """`size` session workers handed out one per thread (a thread holds one for one session)."""

    def __init__(self, size: int, folder: Path) -> None:
        self.idle: queue.Queue[SessionWorker] = queue.Queue()
        self.all = [SessionWorker(folder / f"worker-{n}.log") for n in range(size)]
        for worker in self.all:
            self.idle.put(worker)

    def run(self, args: list[str]) -> dict:
        worker = self.idle.get()
        try:
            return worker.run(args)
        finally:
            self.idle.put(worker)

    def close(self) -> None:
        for worker in self.all:
            worker.close()


def _session_tests(rules: list[str], defect: str | None, folder: Path, suites: Path,
                   pool: WorkerPool, stop_when: str | None = None) -> list[dict]:
    """Run the tests of `rules` against the fake (with `defect`); results.json's test entries."""
    args, run_dir = _session_args(rules, defect, folder, suites, stop_when)
    reply = pool.run(args)
    results_file = run_dir / "results.json"
    if not results_file.exists():
        raise RuntimeError(f"{defect or 'baseline'}: pytest wrote no results (exit {reply['exit']}): {reply['output'][-800:]}")
    return json.loads(results_file.read_text(encoding="utf-8"))["tests"]


def _run_rule_tests(rules: list[str], defect: str | None, folder: Path, suites: Path,
                    pool: WorkerPool) -> dict[str, tuple[str, list[str]]]:
    """Run the tests of `rules` against the fake (with `defect`); nodeid -> (outcome, rules)."""
    return {t["nodeid"]: (t["outcome"], t["rules"]) for t in _session_tests(rules, defect, folder, suites, pool)}


def _test_run(entry: dict) -> TestRun:
    return TestRun(entry["nodeid"], entry["outcome"], entry.get("category"), entry.get("message"))


def _attempt(rule: str, defect: str, folder: Path, suites: Path, pool: WorkerPool, attempt: int) -> Outcome:
    """One session of the rule's tests with the defect on, judged caught / missed / inconclusive."""
    from harness.fakevc.catalogue import load_all
    where = folder / f"attempt-{attempt}" if attempt > 1 else folder
    where.mkdir(parents=True, exist_ok=True)
    caught_as = load_all()[defect].caught_as
    try:   # one test with the defect's outcome catches it: the session ends there (the rest are `not run`)
        entries = _session_tests([rule], defect, where, suites, pool, stop_when=caught_as)
    except Exception as err:  # noqa: BLE001 - a session that gave no verdicts proves nothing: inconclusive
        return Outcome(rule, defect, False, problem=str(err), verdict=INCONCLUSIVE, attempts=attempt)
    tests = [_test_run(t) for t in entries]
    failed = [t.nodeid for t in tests if t.outcome == caught_as]
    if failed:
        verdict = CAUGHT
    elif any(t.environment for t in tests):
        verdict = INCONCLUSIVE
    else:
        verdict = MISSED
    return Outcome(rule, defect, bool(failed), failed, {t.nodeid: t.outcome for t in tests},
                   "" if tests else "no test of this rule ran", verdict, tests, attempt)


def check_defect(rule: str, defect: str, folder: Path, suites: Path, pool: WorkerPool) -> Outcome:
    """Caught, missed, or (after one re-run) still inconclusive."""
    outcome = _attempt(rule, defect, folder, suites, pool, 1)
    if outcome.verdict == INCONCLUSIVE:
        outcome = _attempt(rule, defect, folder, suites, pool, 2)
    return outcome


def outcome_lines(outcome: Outcome) -> list[str]:
    """The selftest's line for one defect; for a defect not caught, one more line per test (outcome, message)."""
    label = {CAUGHT: "caught", MISSED: "MISSED", INCONCLUSIVE: "INCONCLUSIVE"}[outcome.verdict]
    caught_by = ", ".join(n.split("::")[-1] for n in outcome.failed_tests) or outcome.problem or "-"
    rerun = f" (attempt {outcome.attempts})" if outcome.attempts > 1 else ""
    lines = [f"{outcome.rule:26} {outcome.defect:44} {label:12} {caught_by}{rerun}"]
    if outcome.verdict != CAUGHT:
        for test in outcome.tests:
            message = " ".join((test.message or "").split())[:300]
            lines.append(f"    {test.outcome:11} {test.nodeid.split('::')[-1]}: {message or '(no message)'}")
        if outcome.verdict == INCONCLUSIVE:
            lines.append("    inconclusive: no test of this rule ran to a product verdict twice "
                         "(environment errors, see above); the defect is neither caught nor missed")
    return lines


EXIT_MISSED = 1          # a defect missed, a rule without a defect, or a baseline test that fails
EXIT_INCONCLUSIVE = 3    # only environment errors stood in the way (as `vcrypt run`'s "did not answer")


def summary(base: list[Outcome], results: list[Outcome], uncovered: list[str], seconds: float) -> tuple[list[str], int]:
    """What `vcrypt selftest` prints, and its exit status."""
    lines = []
    for outcome in base:
        rerun = " (environment errors re-run once)" if outcome.attempts > 1 else ""
        lines.append(f"baseline (no defect) {outcome.rule}: {'pass' if outcome.caught else 'FAIL'}{rerun} {outcome.problem}")
    lines.append(f"{'rule':26} {'defect':44} {'verdict':12} caught by")
    for outcome in results:
        lines += outcome_lines(outcome)
    if uncovered:
        lines.append(f"rules without a seeded defect: {', '.join(uncovered)}")
    missed = [o for o in results if o.verdict == MISSED]
    inconclusive = [o for o in results if o.verdict == INCONCLUSIVE]
    note = f" ({len(inconclusive)} inconclusive: environment errors twice)" if inconclusive else ""
    lines.append(f"{sum(o.caught for o in results)}/{len(results)} defects caught{note} in {seconds:.0f} s")
    if missed or uncovered or not all(o.caught for o in base):
        return lines, EXIT_MISSED
    return lines, EXIT_INCONCLUSIVE if inconclusive else 0


def baseline_groups() -> list[list[str]]:
    """The rules checked together without a defect: pre-7 rules on the 6.7 fake, 8.0-only rules (VTPM-CLONE-POLICY)
    on an 8.0 fake (their tests skip by version on 7.0.3, and a skip is no baseline pass), the rest on 7.0.3."""
    catalogue = load_rules()
    groups = [[r for r, rule in catalogue.items() if not rule.until and rule.since_tuple < (8, 0)],
              [r for r, rule in catalogue.items() if rule.until],
              [r for r, rule in catalogue.items() if not rule.until and rule.since_tuple >= (8, 0)]]
    return [group for group in groups if group]


def check_baseline(rules: list[str], folder: Path, suites: Path, pool: WorkerPool) -> Outcome:
    """With no defect, every test of `rules` passes. Tests that errored for environment reasons are
    re-run once (only their rules): a loaded machine is no product verdict either way."""
    entries = _session_tests(rules, None, folder, suites, pool)
    tests = {e["nodeid"]: _test_run(e) for e in entries}
    errored = {e["nodeid"] for e in entries if tests[e["nodeid"]].environment}
    attempts = 1
    if errored:
        again = [r for r in rules if any(r in e["rules"] for e in entries if e["nodeid"] in errored)]
        where = folder / "baseline-attempt-2"
        where.mkdir(parents=True, exist_ok=True)
        rerun = {e["nodeid"]: _test_run(e) for e in _session_tests(again, None, where, suites, pool)}
        tests.update({n: rerun[n] for n in errored if n in rerun})
        attempts = 2
    bad = {n: t for n, t in tests.items() if t.outcome != "passed"}
    return Outcome(",".join(rules[:3]) + ("..." if len(rules) > 3 else ""), "(none)", not bad, sorted(bad),
                   problem="; ".join(f"{n}: {t.outcome} {t.message or ''}".strip() for n, t in bad.items()),
                   tests=list(tests.values()), attempts=attempts)


def run_selftest(workers: int = 2, only_rules: set[str] | None = None, only_defects: set[str] | None = None,
                 suites: Path | None = None) -> tuple[list[Outcome], list[Outcome]]:
    """(baseline outcomes, defect outcomes). `workers` processes each run one session after another;
    the two baseline sessions go first (they are the longest) and share the workers with the defects."""
    from harness.fakevc.catalogue import load_all
    suites = suites or ROOT / "suites"
    defects = sorted(load_all().values(), key=lambda d: (d.rule, d.name))
    if only_rules:
        defects = [d for d in defects if d.rule in only_rules]
    if only_defects:
        defects = [d for d in defects if d.name in only_defects]
    with tempfile.TemporaryDirectory(prefix="vcrypt-selftest-") as tmp:
        folder = Path(tmp)
        pool = WorkerPool(max(1, workers), folder)
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as threads:
                groups = baseline_groups() if not (only_rules or only_defects) else []
                base_futures = [threads.submit(check_baseline, rules, folder, suites, pool) for rules in groups]
                futures = [threads.submit(check_defect, d.rule, d.name, folder, suites, pool) for d in defects]
                base = [f.result() for f in base_futures]
                results = [f.result() for f in futures]
        finally:
            pool.close()
    return base, results


def rules_without_defects() -> list[str]:
    from harness.fakevc.catalogue import load_all
    covered = {d.rule for d in load_all().values()}
    return [rid for rid in load_rules() if rid not in covered]
