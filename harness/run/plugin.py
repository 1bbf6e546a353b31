"""The vcrypt pytest plugin: options, markers, gating, evidence, verdict classification, run folder.

Loaded through the `pytest11` entry point (named after this module, so a checkout's conftest.py
that also lists it in `pytest_plugins` does not register it twice). It stays inert for test
sessions that neither pass `--inventory`/`--run-dir` nor collect tests marked with `rule(...)`,
so the project's own tests can use pytest freely.

The run's state is one object, `VcryptRun`, kept in `config.stash[RUN_KEY]` and registered as a
plugin for the hooks that have no `config` at hand (pytest's junitxml does the same with LogXML);
hooks and fixtures reach it through `run_of(config)`. Nothing of a run lives in module globals.
"""
from __future__ import annotations

import datetime
import itertools
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from harness.evidence.recorder import Recorder, reset_recorder, use_recorder
from harness.inventory.schema import Inventory, InventoryError, load_inventory
from harness.rules import Rule, load_rules, version_tuple
from harness.run.item_ids import evidence_id
from harness.targets.outage import OutageWatch

pytest_plugins: list[str] = ["harness.run.safety_hooks", "harness.run.fixtures", "harness.run.shards"]

SKIP_CATEGORIES = {"capability": "capability_skip", "safety": "safety_skip", "version": "version_skip",
                   "unconfirmed": "unconfirmed_skip"}


def new_run_id() -> str:
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


@dataclass
class VcryptRun:
    """One pytest session's run: its target, folders, ledger, environment and the results so far."""
    inventory: Inventory
    run_id: str
    run_dir: Path
    work_dir: Path
    ledger: Any
    write_results: bool
    started: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc))
    environment: Any = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    vcenters: list[dict[str, Any]] = field(default_factory=list)
    target_version: str | None = None        # the version gate's, once the target is connected
    target_version_source: str = ""
    outages: OutageWatch = field(default_factory=OutageWatch)
    names: Iterator[int] = field(default_factory=lambda: itertools.count(1))  # scratch names, unique per run

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect one entry per test (on the controller under xdist)."""
        _collect_result(self, report)

    evidence_error: OSError | None = None   # a write into the run folder failed (full or read-only filesystem)
    session: Any = None

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Any:
        """Around every sessionfinish writer (results.json, pytest's JUnit): a failed write is one line, exit 70."""
        self.session = session
        try:
            return (yield)
        except OSError as err:
            if hasattr(session.config, "workerinput"):
                raise
            self.evidence_failed(err)
            return None

    def evidence_failed(self, err: OSError) -> None:
        from harness.run.evidence_failure import EXIT_EVIDENCE_WRITE, report
        if self.evidence_error is None:
            self.evidence_error = err
            report(self.run_dir, err)
        if self.session is not None:
            self.session.exitstatus = EXIT_EVIDENCE_WRITE

    def settled_results(self) -> list[dict[str, Any]]:
        """Every selected test: those that reported, then those that never started, as `not run`."""
        from harness.run.unreported import unreported
        for entry in unreported(self.work_dir, self.results):
            self.results[entry["nodeid"]] = entry
        return list(self.results.values())


RUN_KEY: pytest.StashKey[VcryptRun] = pytest.StashKey()
LEASE_KEY: pytest.StashKey[Any] = pytest.StashKey()   # harness.run.lease.RunLease of the controller


def run_of(config: pytest.Config) -> VcryptRun | None:
    """The session's run, or None when the plugin is inert (the project's own tests)."""
    return config.stash.get(RUN_KEY, None)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vcrypt", "vcrypt-harness")
    group.addoption("--inventory", default=None, help="inventory YAML (default: inventories/fake.yaml)")
    group.addoption("--run-dir", default=None, help="run folder for results and evidence (reports/<run-id>)")
    group.addoption("--run-id", default=None, help="run ID (default: generated)")
    group.addoption("--compliance", action="store_true", default=False,
                    help="fail the run if any rule was skipped or not run")
    group.addoption("--signing-key", default=None,
                    help="Ed25519 private key (PEM) that signs the run's manifest (default: the inventory's evidence section)")
    group.addoption("--rules", default=None,
                    help="comma-separated rule IDs: run only the tests of these rules")
    group.addoption("--test-id", action="append", default=[],
                    help="permanent test id (the test_id marker): run only this test (repeatable)")
    group.addoption("--progress", choices=("auto", "lines", "dots"), default="auto",
                    help="lines: one line per finished test (rule, verdict, duration); auto: lines when "
                         "output is not a terminal")
    group.addoption("--results-only", action="store_true", default=False,
                    help="write results.json, run.json and the evidence only: no report.html, OSCAL, Allure "
                         "extras, summary or manifest (`vcrypt selftest`'s sessions read nothing else)")


def pytest_configure(config: pytest.Config) -> None:
    for line in ("rule(*ids): the RULES.md rule IDs a test verifies",
                 "requires(*capabilities): target capabilities a test needs",
                 "destructive: changes shared state; runs only where the inventory allows it",
                 "test_id(uuid): the test's permanent identity in every report",
                 "covers(**cells): the states/principals of the rule's text this test exercises (power=..., "
                 "principal=..., snapshots=..., scope=...; harness/data/rules.yaml covers)"):
        config.addinivalue_line("markers", line)
    run_dir_opt = config.getoption("--run-dir")
    inventory_opt = config.getoption("--inventory")
    if run_dir_opt is None and inventory_opt is None and not _suites_requested(config):
        return
    try:
        inv = load_inventory(inventory_opt)
    except InventoryError as err:
        raise pytest.UsageError(str(err)) from None
    _check_signing_key(config, inv)
    workerinput = getattr(config, "workerinput", {})
    run_id = config.getoption("--run-id") or workerinput.get("vcrypt_run_id") or new_run_id()
    from harness.run.runids import RunIdError, validate_run_id
    try:
        validate_run_id(run_id)
    except RunIdError as err:
        raise pytest.UsageError(f"--run-id: {err}") from None
    if run_dir_opt is not None and not workerinput:   # never merge into (and re-sign) another run's folder
        from harness.run.runids import unused_run_dir
        try:
            unused_run_dir(Path(run_dir_opt))
        except RunIdError as err:
            raise pytest.UsageError(str(err)) from None
    run_dir_opt = run_dir_opt or workerinput.get("vcrypt_run_dir")
    run_dir = Path(run_dir_opt) if run_dir_opt else Path("reports") / run_id
    from harness.run.cleanup import Ledger
    from harness.workdirs import make_workdir  # 0700, with an owner file so `vcrypt sweep` can remove it after a SIGKILL
    work_dir = Path(workerinput.get("vcrypt_work_dir") or make_workdir(f"vcrypt-{run_id}-", run_id))
    run = config.stash[RUN_KEY] = VcryptRun(
        inventory=inv, run_id=run_id, run_dir=run_dir, work_dir=work_dir, ledger=Ledger(run_dir / "ledger.jsonl"),
        write_results=run_dir_opt is not None)
    config.pluginmanager.register(run, "vcrypt-run")
    from harness.run.cleanup import record_uncertain_calls
    record_uncertain_calls(run.ledger, run_id)  # a call that may or may not have run: in the ledger for sweep
    # The controller owns the run: its lease says "alive" to `vcrypt sweep` (lease.py). A collection
    # creates nothing on a target, so it holds no lease and leaves no file.
    if not workerinput and not config.option.collectonly:
        from harness.run.lease import RunLease
        config.stash[LEASE_KEY] = RunLease(run_dir, run_id).start()
    from harness.evidence.scrub import register_allure_scrubber
    register_allure_scrubber()
    from harness.evidence.allure_evidence import register_api_steps
    register_api_steps()  # every vCenter call becomes an Allure step (harness/calls.py)
    if not workerinput:  # the controller writes JUnit: rule verdicts as testsuite properties
        from harness.evidence import junit_verdicts
        junit_verdicts.register(config, run.settled_results)
    from harness.run.progress import register_progress
    register_progress(config)


def _check_signing_key(config: pytest.Config, inv: Inventory) -> None:
    """A run that should be signed but cannot be stops before any test (not after all of them)."""
    from harness.evidence.signing import SigningKeyError, signing_key_for
    try:
        signing_key_for(config.getoption("--signing-key"), inv)
    except SigningKeyError as err:
        raise pytest.UsageError(str(err)) from None


def _suites_requested(config: pytest.Config) -> bool:
    return any("suites" in Path(str(arg)).parts or str(arg).startswith("suites") for arg in config.args)


def pytest_configure_node(node: Any) -> None:
    """xdist: workers share the controller's run ID, run folder and work folder."""
    state = run_of(node.config)
    if state is not None:
        node.workerinput["vcrypt_run_id"] = state.run_id
        node.workerinput["vcrypt_work_dir"] = str(state.work_dir)
        if state.write_results:
            node.workerinput["vcrypt_run_dir"] = str(state.run_dir)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    catalogue = load_rules()
    for item in items:
        for marker in item.iter_markers("rule"):
            unknown = [rid for rid in marker.args if rid not in catalogue]
            if unknown:
                raise pytest.UsageError(f"{item.nodeid}: unknown rule id {unknown[0]!r} (not in harness/data/rules.yaml)")
        _add_allure_labels(item, catalogue)
    selected_rules = config.getoption("--rules")
    if selected_rules:
        wanted = {r.strip() for r in selected_rules.split(",") if r.strip()}
        unknown = sorted(wanted - set(catalogue))
        if unknown:
            raise pytest.UsageError(f"--rules: unknown rule id {unknown[0]!r}")
        keep = [item for item in items if wanted & set(_rules_of(item))]
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep
    from harness.run.selection import apply_test_ids
    apply_test_ids(config, items)
    _mark_known_deviations(config, items)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Remember what was selected, so a test that never starts is `not run`, not missing."""
    state = run_of(session.config)
    if state is not None:
        from harness.run.unreported import record_selection
        record_selection(state.work_dir, session.items)


def _mark_known_deviations(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Strict xfail for the tests the target's deviation list names (harness/run/deviations.py)."""
    state = run_of(config)
    if state is not None and state.inventory.target != "fake":
        from harness.run.deviations import mark_known_deviations
        mark_known_deviations(config, items, state.inventory.target)


def _rules_of(item: pytest.Item) -> list[str]:
    return [rid for marker in item.iter_markers("rule") for rid in marker.args]


def _add_allure_labels(item: pytest.Item, catalogue: dict[str, Rule]) -> None:
    rule_ids = _rules_of(item)
    if not rule_ids:
        return
    test_id = item.get_closest_marker("test_id")
    labels = [("as_id", test_id.args[0])] if test_id else []
    first = catalogue[rule_ids[0]]
    labels += [("epic", first.area_title), ("severity", first.severity)]
    labels += [("feature", rid) for rid in rule_ids]
    for label_type, value in labels:
        item.add_marker(pytest.mark.allure_label(value, label_type=label_type))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Gate a test on safety, declared capabilities and the target's version (skips say why)."""
    state = run_of(item.config)
    if state is None or not _rules_of(item):
        return
    inv = state.inventory
    if item.get_closest_marker("destructive") and not inv.safety.allow_destructive:
        pytest.skip("safety: destructive test; inventory does not allow it (safety.allow_destructive: false)")
    for marker in item.iter_markers("requires"):
        for capability in marker.args:
            if not inv.features.get(capability, False):
                pytest.skip(f"capability: target {inv.vcenters[0].name} lacks {capability} (not declared in the inventory's features)")
            _skip_if_the_vcsim_lacks(inv, capability)
    _declared_version_gate(state, item)
    state.outages.trip(state.environment, item.fixturenames)  # circuit breaker: a KMS/vCenter known down


def _skip_if_the_vcsim_lacks(inv: Inventory, capability: str) -> None:
    """A declared crypto capability on a vcsim that turned out to be Debian's (no crypto): skip, saying so."""
    from harness.vcsim.choice import crypto_gap
    reason = crypto_gap(inv, capability)
    if reason:
        pytest.skip(reason)


def _declared_version_gate(state: VcryptRun, item: pytest.Item) -> None:
    """Skip by version before any fixture runs (a version skip wins over a session fixture's error)."""
    from harness.run.version_gate import skip_reason
    primary = state.inventory.vcenters[0]
    known = state.target_version or (primary.version if primary.target != "fake" else None)
    if known:
        catalogue = load_rules()
        reason = skip_reason([catalogue[r] for r in _rules_of(item)], known, primary.name,
                             "declared" if state.target_version is None else state.target_version_source)
        if reason:
            pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Give each test its own evidence recorder; write it when the test is done."""
    state = run_of(item.config)
    if state is None or not _rules_of(item):
        yield
        return
    rules = set(_rules_of(item))  # a single-rule test's checks carry that rule; a test of two marks its steps
    recorder = Recorder(test_id=evidence_id(item), nodeid=item.nodeid, rule=next(iter(rules)) if len(rules) == 1 else None)
    token = use_recorder(recorder)
    item.stash[RECORDER_KEY] = recorder
    try:
        yield
    finally:
        reset_recorder(token)  # the evidence was written with the teardown report (_write_evidence)


def _write_evidence(item: pytest.Item, state: VcryptRun, report: pytest.TestReport) -> None:
    """Write the test's evidence after its teardown; a write failure makes that test an error, not the run's."""
    recorder = item.stash.get(RECORDER_KEY, None)
    if not state.write_results or recorder is None or not recorder.test_id:
        return
    try:
        recorder.write(state.run_dir / "evidence" / f"{recorder.test_id}.json")
    except OSError as err:
        report.outcome = "failed"
        report.longrepr = f"environment error: evidence could not be written: {err}"
        report.evidence_lost = True  # not an ordinary teardown error: the verdict has no evidence behind it


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """After teardown, while Allure still has the test open: attach its evidence to the result."""
    yield
    recorder = item.stash.get(RECORDER_KEY, None)
    if recorder is not None and recorder.test_id:
        from harness.evidence.allure_evidence import attach_evidence
        attach_evidence(recorder)


RECORDER_KEY: pytest.StashKey[Recorder] = pytest.StashKey()




def _environment_error(excinfo: Any) -> bool:
    # KmsFailure: anything the KMS did to the harness's own KMIP calls (unreachable, refused, an answer the
    # client cannot read) is the lab's, never the product's (issue 22).
    from harness.kms.client import KmsFailure
    from harness.targets.connect import ConnectError
    from harness.vsphere.errors import EnvironmentFault
    return excinfo is not None and excinfo.errisinstance((EnvironmentFault, KmsFailure, ConnectError))


def _outage_after(state: VcryptRun, item: pytest.Item, call: pytest.CallInfo, failed: bool) -> list[str]:
    """Outages that void this test's verdict: probed after failures, and after passes that touched a
    KMS or vCenter seen failing (harness/targets/outage.py). A KeyGenerationFailed is an environment error
    exactly when the probe finds its KMS down: a vCenter that calls an answering KMS unreachable
    is a product failure."""
    texts = [str(call.excinfo.value)] if call.excinfo is not None else []
    recorder = item.stash.get(RECORDER_KEY, None)
    if recorder is not None:
        texts.append(json.dumps(recorder.to_json(), default=str))
    try:
        return state.outages.after_test(state.environment, item.nodeid, item.fixturenames, failed, texts)
    except Exception:  # noqa: BLE001 - a broken check must not hide the test's own verdict
        return []


def _judge_deviation(item: pytest.Item, call: pytest.CallInfo[Any], report: pytest.TestReport,
                     state: VcryptRun) -> str | None:
    """A listed test held to its deviation entry (failure it names, govmomi versions it was seen on)."""
    from harness.run.deviations import judge
    choices = getattr(state.environment, "vcsim_choices", None) or {}
    recorder = item.stash.get(RECORDER_KEY, None)
    return judge(item, call, report, [c.govmomi for c in choices.values()],
                 recorder.checks if recorder is not None else [])


def _deviation_category(item: pytest.Item, report: pytest.TestReport) -> tuple[str, str] | None:
    """(category, message) of a known-deviation outcome: xfailed is a deviation; a strict XPASS is stale."""
    if report.skipped and hasattr(report, "wasxfail"):
        return "known_deviation", str(report.wasxfail)
    longrepr = str(report.longrepr) if report.failed and report.when == "call" else ""
    if longrepr.startswith("[XPASS(strict)]"):
        reason = longrepr.removeprefix("[XPASS(strict)]").strip().removeprefix("deviation:").strip()
        return "product_failure", (f"stale deviation: {reason}: the target now shows the behaviour the deviation "
                                   "list says it lacks; remove it from the list")
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    state = run_of(item.config)
    if state is not None:
        from harness.evidence.scrub import scrub_report
        scrub_report(report)  # every writer (terminal, JUnit, Allure, results.json) gets text without secrets
    if state is None or not _rules_of(item):
        return
    if call.when == "teardown":
        _write_evidence(item, state, report)
    category = None
    message = None
    deviation_note = _judge_deviation(item, call, report, state) if call.when == "call" else None
    if call.when == "call":
        from harness.run.kms_reads import mark_not_observable
        mark_not_observable(report, item, item.stash.get(RECORDER_KEY, None))   # KMS-side checks not observable
    deviation = _deviation_category(item, report)
    xfailed = deviation is not None and deviation[0] == "known_deviation"
    outage = _outage_after(state, item, call, report.failed or xfailed) if call.when == "call" else []
    if report.passed and call.when == "call" and outage:
        report.outcome = "failed"
        report.longrepr = (f"environment error: {'; '.join(outage)}\nthe test passed, but a pass seen while a KMS "
                           "or vCenter it used was down is no evidence")
    if xfailed and call.when == "call" and (outage or _environment_error(call.excinfo)):
        report.outcome, deviation = "failed", None  # an outage, not the known deviation, made it fail
        del report.wasxfail
    if report.failed and call.when == "call" and (_environment_error(call.excinfo) or outage):
        category = "environment_error"  # an error in terminal (teststatus) and JUnit (junit_errors), not a failure
        if outage and call.excinfo is not None:
            report.longrepr = f"environment error: {'; '.join(outage)}\n(the test's own failure follows)\n{report.longrepr}"
    elif deviation is not None:
        category, message = deviation
    elif report.failed and call.when == "call":
        category = "product_failure"
        if deviation_note and deviation_note.startswith("not the failure"):
            message = deviation_note
    elif report.failed:
        category = "environment_error"
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        prefix = reason.removeprefix("Skipped: ").split(":", 1)[0]
        category = SKIP_CATEGORIES.get(prefix, "capability_skip")
    if call.when == "setup":  # JUnit writes item properties with the teardown report
        item.user_properties.extend(("rule", rid) for rid in _rules_of(item))
    if category is not None and ("category", category) not in item.user_properties:
        item.user_properties.append(("category", category))
    recorder = item.stash.get(RECORDER_KEY, None)
    blame = list(recorder.blamed) if recorder is not None and category == "product_failure" else []
    report.user_properties.append(("vcrypt", json.dumps({
        "test_id": evidence_id(item), "rules": _rules_of(item), "category": category,
        **({"blame": blame} if blame else {}), **({"deviation_note": deviation_note} if deviation_note else {}),
        "module": item.module.__name__ if getattr(item, "module", None) else "",
        "name": item.name, **({"message": message} if message else {})})))


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    info = _vcrypt_props(report)
    if info and info.get("category") == "environment_error" and report.failed:
        return "error", "E", "ERROR"  # also for an honest call report: the environment, not the product, failed
    return None


def _vcrypt_props(report: pytest.TestReport) -> dict[str, Any] | None:
    for key, value in getattr(report, "user_properties", []) or []:
        if key == "vcrypt":
            return json.loads(value)
    return None


def _collect_result(state: VcryptRun, report: pytest.TestReport) -> None:
    info = _vcrypt_props(report)
    if info is None:
        return
    entry = state.results.setdefault(report.nodeid, {
        "nodeid": report.nodeid, "test_id": info["test_id"], "name": info["name"], "module": info["module"],
        "area": _area(info["rules"]), "rules": info["rules"], "outcome": INTERRUPTED, "category": INTERRUPTED,
        "message": INTERRUPTED_MESSAGE, "duration_s": 0.0,
        "evidence_file": f"evidence/{info['test_id']}.json" if info["test_id"] else None})
    entry["duration_s"] = round(entry["duration_s"] + report.duration, 4)
    if info.get("deviation_note"):
        entry["deviation_note"] = info["deviation_note"]  # the run says when an entry was not applied
    if report.passed and report.when == "call" and entry["outcome"] == INTERRUPTED:
        entry.update(outcome="passed", category=None, message=None)  # a test passes only on a passed call
    elif report.skipped and info["category"] == "known_deviation":
        entry.update(outcome="deviation", category="known_deviation", message=info.get("message"))
    elif report.skipped:
        entry.update(outcome="skipped", category=info["category"], message=_skip_reason(report))
    elif report.failed and report.when == "teardown" and getattr(report, "evidence_lost", False):
        # a verdict whose evidence could not be written shows nothing: the test is an environment error
        entry.update(outcome="error", category="environment_error", message=_failure_text(report))
    elif report.failed and report.when == "teardown":
        # charged to the teardown, named as such; the test's (and its rules') verdict stands (issue 23)
        entry["teardown_error"] = f"teardown error (after the test's verdict): {_failure_text(report)}"
    elif report.failed:
        error = info["category"] == "environment_error"
        if info.get("blame"):
            entry["blamed_rules"] = info["blame"]
        if entry["outcome"] not in ("failed", "error"):
            entry.update(outcome="error" if error else "failed", category=info["category"],
                         message=info.get("message") or _failure_text(report))


INTERRUPTED = "interrupted"
INTERRUPTED_MESSAGE = "interrupted: the run was stopped while this test ran; it never finished, so it shows nothing"


def _area(rule_ids: list[str]) -> str:
    from harness.run.unreported import area_of
    return area_of(rule_ids)


def _skip_reason(report: pytest.TestReport) -> str:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason.removeprefix("Skipped: ")


def _failure_text(report: pytest.TestReport) -> str:
    from harness.evidence.recorder import redact
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return redact(text)[:2000]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = run_of(session.config)
    if state is None or hasattr(session.config, "workerinput"):
        return
    if state.write_results:
        from harness.evidence.results import write_results
        compliance = session.config.getoption("--compliance")
        state.settled_results()
        status = write_results(state, session, exitstatus, compliance)
        if status is not None:
            session.exitstatus = status
        from harness.evidence.allure_outcomes import mark_interrupted
        mark_interrupted(state.run_dir, list(state.results.values()))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """After JUnit is written: Allure extras, HTML, OSCAL, then the manifest over everything."""
    state = run_of(config)
    if state is None or hasattr(config, "workerinput"):
        return
    import shutil
    shutil.rmtree(state.work_dir, ignore_errors=True)  # KMS certificates, keys and databases of the run
    lease = config.stash.get(LEASE_KEY, None)
    if lease is not None:  # ended before the manifest is made, so the manifest covers its last state
        lease.stop()
    xmlpath = config.getoption("xmlpath", None)
    if xmlpath and Path(xmlpath).is_file():  # written by junitxml at session end
        from harness.evidence.junit_errors import mark_environment_errors
        mark_environment_errors(Path(xmlpath))
        from harness.evidence.junit_verdicts import add_run_verdicts  # compliance, seeded defects (run.json)
        add_run_verdicts(Path(xmlpath), state.run_dir if state.write_results else None)
    if config.getoption("--results-only"):   # vcrypt selftest reads results.json alone: no reports to render
        return
    if state.write_results and state.evidence_error is None:   # never sign a folder whose evidence is incomplete
        from harness.evidence.bundle import finalize_run_folder
        from harness.evidence.signing import signing_key_for
        try:
            finalize_run_folder(state.run_dir, signing_key_for(config.getoption("--signing-key"), state.inventory))
        except OSError as err:
            state.evidence_failed(err)
