"""`vcrypt run` from options to exit status: validate, preflight, make the run folder, run pytest.

Why a module of its own: everything that can be refused is refused *before* a run folder exists
(a usage error leaves no empty folder behind), each refusal is one line, and the exit status
says whose problem it is (see EXIT_HELP, which `vcrypt run --help` prints).
"""
from __future__ import annotations

import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from harness.run import preflight
from harness.inventory.schema import InventoryError, load_inventory
from harness.run.runfolders import newest_run, rerun_selection, update_latest
from harness.run.runids import RunIdError, fresh_run_dir, new_run_id, validate_run_id

from harness.evidence.exit_status import (EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_NOTHING_DEMONSTRATED,  # noqa: F401
                                          EXIT_UNREACHABLE, EXIT_USAGE, process_status)

EXIT_HELP = """\b
Exit status:
  0    every selected test passed or was skipped (with --compliance: no rule skipped or not run)
  1    a product failure or an environment error in a test (with --compliance: also a rule
       skipped or not run)
  2    bad inventory, options or run id; preflight found a configuration problem (a file the
       inventory names is missing or unreadable, a password_env variable unset, login refused,
       reports folder not writable)
  3    preflight: a vCenter or KMS of the inventory did not answer
  5    nothing was demonstrated: no test ran to a verdict (nothing matched the selection,
       --collect-only, every test skipped); reports/latest is not moved
  70   internal error of the harness (a bug: please report it with the output)
  130  interrupted (Ctrl-C or SIGTERM); cleanup ran and the summary was written (a second
       Ctrl-C does not cut them short; SIGKILL does)"""

# pytest options vcrypt sets itself: given after `--` they would split a run from its run folder.
_OWN_OPTIONS = {
    "--run-id": "use vcrypt run --run-id", "--run-dir": "use vcrypt run --reports and --run-id",
    "--inventory": "use vcrypt run --inventory", "--junitxml": "use vcrypt run --junit PATH",
    "--junit-xml": "use vcrypt run --junit PATH", "--alluredir": "the run folder holds allure-results/",
    "--lf": "use vcrypt run --last-failed", "--last-failed": "use vcrypt run --last-failed",
    "--ff": "use vcrypt run --last-failed", "--failed-first": "use vcrypt run --last-failed",
    "--rules": "use vcrypt run --rules", "--test-id": "use vcrypt run --test-id",
    "--shard": "use vcrypt run --shard", "--durations-from": "use vcrypt run --durations-from",
}


class Refused(Exception):
    """The run does not start; `lines` say why (one problem each), `code` is the exit status."""

    def __init__(self, lines: list[str] | str, code: int = EXIT_USAGE) -> None:
        self.lines = [lines] if isinstance(lines, str) else lines
        self.code = code
        super().__init__("; ".join(self.lines))


@dataclass(frozen=True)
class RunRequest:
    inventory: str | None
    reports: Path
    suites: Path
    workers: int = 0
    compliance: bool = False
    run_id: str | None = None
    rules: tuple[str, ...] = ()
    test_ids: tuple[str, ...] = ()
    rerun: Path | None = None
    last_failed: bool = False
    junit: Path | None = None
    signing_key: Path | None = None
    pytest_args: tuple[str, ...] = ()
    shard: str | None = None             # K/N or auto (harness/run/shards.py)
    durations_from: Path | None = None

    @property
    def filtered(self) -> bool:
        return bool(self.rules or self.test_ids or self.rerun or self.last_failed or self.pytest_args or self.shard)


def _check_pytest_args(args: tuple[str, ...]) -> None:
    for arg in args:
        name = arg.split("=", 1)[0]
        if name in _OWN_OPTIONS:
            raise Refused(f"{name} after --: {_OWN_OPTIONS[name]}")


def _rule_ids(rules: tuple[str, ...]) -> list[str]:
    from harness.rules import load_rules
    wanted = [r.strip() for text in rules for r in text.split(",") if r.strip()]
    known = load_rules()
    unknown = [r for r in wanted if r not in known]
    if unknown:
        raise Refused(f"--rules: unknown rule id {unknown[0]!r} (see vcrypt rules)")
    return wanted


def _rerun_ids(request: RunRequest) -> tuple[Path | None, list[str] | None]:
    """(earlier run folder, its failed tests to repeat); (None, None) when no rerun was asked for."""
    if request.rerun and request.last_failed:
        raise Refused("give --rerun RUN_DIR or --last-failed, not both")
    source = request.rerun
    if request.last_failed:
        source = newest_run(request.reports)
        if source is None:
            raise Refused(f"--last-failed: no earlier run under {request.reports}")
    if source is None:
        return None, None
    try:
        return source, rerun_selection(source)
    except (OSError, ValueError) as err:
        raise Refused(f"{source}: not a run folder (results.json: {getattr(err, 'strerror', None) or err})") from None


def _inventory_of(run_dir: Path) -> str | None:
    """The inventory an earlier run used (a rerun targets the same lab unless told otherwise)."""
    from harness.evidence.verdicts import load_run
    try:
        return load_run(run_dir).inventory or None
    except (OSError, ValueError):
        return None


def _preflight(request: RunRequest, inv: Any, echo: Callable[[str], None] = lambda _: None) -> None:
    problems = preflight.config_problems(inv)
    for option, folder in (("--reports", request.reports),
                           ("--junit", request.junit.parent if request.junit else None)):
        problem = preflight.folder_problem(option, folder) if folder is not None else None
        if problem:
            problems.append(problem)
    if not problems:
        problems, notes = preflight.reach_report(inv)
        for note in notes if not problems else []:
            echo(f"preflight: {note}")   # one line per KMS: what it negotiated, how evidence is read
    if problems:
        raise Refused([p.line(inv) for p in problems], preflight.exit_code(problems))


def _check_signing_key(request: RunRequest, inv: Any) -> None:
    """A signing key that cannot be used stops the run before its folder exists (exit 2)."""
    from harness.evidence.signing import SigningKeyError, signing_key_for
    try:
        signing_key_for(str(request.signing_key) if request.signing_key else None, inv)
    except SigningKeyError as err:
        raise Refused(str(err)) from None


class _StopSignals:
    """SIGINT/SIGTERM: the first stops the run (KeyboardInterrupt, so fixtures clean up); later ones
    are noted and ignored, so cleanup, the evidence and the summary are still written and the
    process exits 130 (a second Ctrl-C used to escape as click's "Aborted!", exit 1, no summary)."""

    def __init__(self) -> None:
        self.received = 0
        self.finishing = False  # pytest has returned: a signal now changes nothing but is noted

    def __call__(self, signum: int, frame: Any) -> None:
        self.received += 1
        if self.received == 1 and not self.finishing:
            raise KeyboardInterrupt
        sys.stderr.write("vcrypt: already stopping: cleanup runs and the summary is written "
                         "(SIGKILL would leave scratch objects behind)\n")
        sys.stderr.flush()

    def install(self) -> dict[int, Any]:
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self)
        return previous


def _shard_args(request: RunRequest) -> list[str]:
    """--shard/--durations-from for the plugin, refused here (exit 2) before a run folder exists."""
    from harness.run.shard_split import ShardError, load_durations, parse_shard
    if request.shard is None:
        if request.durations_from is not None:
            raise Refused("--durations-from: only with --shard K/N")
        return []
    try:
        shard = parse_shard(request.shard)
        if request.durations_from is not None:
            load_durations(request.durations_from)
    except ShardError as err:
        raise Refused(str(err)) from None
    if request.compliance:
        raise Refused("--compliance with --shard: a shard holds only some rules; give --compliance to vcrypt merge")
    args = ["--shard", request.shard.strip() if shard.source != "--shard" else shard.label]  # auto: the plugin records the source
    return args + (["--durations-from", str(request.durations_from)] if request.durations_from else [])


def _run_pytest(args: list[str]) -> int:
    """pytest in-process; Ctrl-C (or SIGTERM) lets fixtures clean up (KMS, vcsim, scratch objects) first."""
    import pytest
    return int(pytest.main(args))


def execute(request: RunRequest, echo: Callable[[str], None]) -> int:
    """Run it; returns the exit status, raises Refused before anything was created."""
    _check_pytest_args(request.pytest_args)
    try:
        run_id = validate_run_id(request.run_id) if request.run_id is not None else new_run_id()
    except RunIdError as err:
        raise Refused(f"--run-id: {err}") from None
    rules = _rule_ids(request.rules)
    shard_args = _shard_args(request)
    source, rerun = _rerun_ids(request)
    if rerun == []:
        echo(f"nothing to rerun: no test failed or errored in {source}")
        return 0
    try:
        inv = load_inventory(request.inventory or (_inventory_of(source) if source else None))
    except InventoryError as err:
        raise Refused(str(err)) from None
    _check_signing_key(request, inv)
    _preflight(request, inv, echo)
    try:
        run_dir = fresh_run_dir(request.reports, run_id)
        run_dir.mkdir()
    except RunIdError as err:
        raise Refused(f"--run-id: {err}") from None
    except OSError as err:
        raise Refused(f"--reports: cannot create {request.reports / run_id}: {err.strerror or err}") from None
    args = [str(request.suites), "--inventory", str(inv.path), "--run-dir", str(run_dir), "--run-id", run_id,
            "--junitxml", str(run_dir / "junit.xml"), "-o", "junit_family=xunit1",
            "-o", f"junit_suite_name=vcrypt.{inv.path.stem}.{inv.target}",
            "--alluredir", str(run_dir / "allure-results"), "-p", "no:cacheprovider", "-q", "-rs",
            # hypothesis' pytest plugin (installed with the project's test extras) cost ~0.9 CPU-s in every
            # pytest process of a run (controller and each worker) and the suites never use hypothesis
            "-p", "no:hypothesispytest"]
    args += ["-n", str(request.workers)]  # always explicit: -n 0 (serial) wins over any -n in the ini's addopts
    if request.compliance:
        args.append("--compliance")
    if rules:
        args += ["--rules", ",".join(rules)]
    for test_id in (*request.test_ids, *(rerun or [])):
        args += ["--test-id", test_id]
    if not sys.stdout.isatty():
        args += ["-o", "console_output_style=classic"]  # progress lines instead of [ 64%] (harness/run/progress.py)
    if request.signing_key:
        args += ["--signing-key", str(request.signing_key)]
    args += shard_args
    args += list(request.pytest_args)
    what = f", rerunning {len(rerun)} failed test(s)" if rerun else ""
    what += f", shard {request.shard}" if request.shard else ""
    from harness.printable import printable
    echo(printable(f"vcrypt run {run_id}: target {inv.target} ({', '.join(v.name for v in inv.vcenters)}), "
                   f"inventory {inv.path}{what}"))
    started = time.monotonic()
    stops = _StopSignals()
    previous = stops.install()
    try:
        code = _run_pytest(args)
        stops.finishing = True
        if request.shard:
            from harness.run.shard_split import empty_shard_status
            code = empty_shard_status(run_dir, code, echo)
        return _finish(request, run_dir, code, time.monotonic() - started, echo)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _finish(request: RunRequest, run_dir: Path, code: int, seconds: float, echo: Callable[[str], None]) -> int:
    import pytest

    from harness.evidence.verdicts import NOTHING_DEMONSTRATED
    if code == pytest.ExitCode.USAGE_ERROR:  # nothing ran: the fresh folder (ours alone) goes
        shutil.rmtree(run_dir, ignore_errors=True)
        return EXIT_USAGE
    from harness.run.evidence_failure import EXIT_EVIDENCE_WRITE, withdrawn
    if code == EXIT_EVIDENCE_WRITE and withdrawn(run_dir):   # the plugin said why in one line
        return EXIT_EVIDENCE_WRITE
    code = process_status(code)  # 130 for an interrupted run, as run.json says
    from harness.evidence.summary import print_run_summary
    print_run_summary(run_dir, seconds, filtered=request.filtered)
    from harness.evidence.summary import print_manifest_digest
    print_manifest_digest(run_dir)
    if code == EXIT_NOTHING_DEMONSTRATED:
        echo(f"vcrypt: {NOTHING_DEMONSTRATED}; reports/latest still points at the last run that did")
    elif (run_dir / "results.json").exists():
        update_latest(request.reports, run_dir)
    if request.junit is not None and (run_dir / "junit.xml").exists():
        try:
            shutil.copyfile(run_dir / "junit.xml", request.junit)
            echo(f"junit: {request.junit}")
        except OSError as err:
            echo(f"vcrypt: --junit: cannot write {request.junit}: {err.strerror or err}")
            code = code or EXIT_USAGE
    return code
