"""`vcrypt`: run the suites, audit, sweep, list rules, verify configs and evidence, serve a KMS or vcsim.

Bad input never produces a traceback: an inventory problem prints
`inventory <file>: <key path>: <problem>` and exits 2.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from harness.inventory.schema import InventoryError, load_inventory

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    from harness.printable import printable
    click.echo(f"vcrypt: {printable(message)}", err=True)   # one line, whatever a name or a server says
    sys.exit(code)


def _load(inventory: str | None) -> Any:
    try:
        return load_inventory(inventory)
    except InventoryError as err:
        _fail(str(err))


def suites_dir() -> Path:
    """The suites: ./suites when run from a checkout, else next to the installed package."""
    local = Path.cwd() / "suites"
    if local.is_dir():
        return local
    return Path(__file__).resolve().parent.parent / "suites"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vcrypt-harness")
def main() -> None:
    """Acceptance harness for vSphere VM encryption."""


# ---- run ---------------------------------------------------------------------------------------
@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
              epilog=__import__("harness.run.launch", fromlist=["EXIT_HELP"]).EXIT_HELP)
@click.option("--inventory", "-i", type=click.Path(), default=None, help="inventory YAML (default: the fake)")
@click.option("-n", "workers", type=click.IntRange(0, 64), default=0, help="pytest-xdist workers (0: serial)")
@click.option("--compliance", is_flag=True, help="fail if any rule was skipped or not run")
@click.option("--reports", type=click.Path(), default="reports", help="folder for run folders")
@click.option("--run-id", default=None,
              help="run ID: letters, digits, . _ -; at most 64; must be new (default: generated)")
@click.option("--suites", "suites_path", type=click.Path(exists=True), default=None,
              help="suites to run (default: the harness's suites/)")
@click.option("--rules", "rules_", multiple=True, metavar="IDS",
              help="run only the tests of these rule ids (comma-separated, repeatable; see vcrypt rules)")
@click.option("--test-id", "test_ids", multiple=True, metavar="ID",
              help="run only the test with this permanent id (its test_id marker; repeatable)")
@click.option("--last-failed", is_flag=True, help="rerun the tests that failed or errored in the newest run")
@click.option("--rerun", type=click.Path(file_okay=False), default=None, metavar="RUN_DIR",
              help="rerun the tests that failed or errored in this run folder (and its inventory by default)")
@click.option("--junit", type=click.Path(dir_okay=False), default=None, metavar="PATH",
              help="also copy the run's JUnit XML here (the run folder keeps its own)")
@click.option("--signing-key", type=click.Path(dir_okay=False), default=None,
              help="Ed25519 private key (PEM, `vcrypt keygen`) that signs the run's manifest")
@click.option("--shard", default=None, metavar="K/N|auto",
              help="run shard K of N (a rule's tests stay in one shard); auto: VCRYPT_SHARD or GitLab's "
                   "CI_NODE_INDEX/CI_NODE_TOTAL. Merge the shards' folders with vcrypt merge")
@click.option("--durations-from", type=click.Path(), default=None, metavar="RUN_DIR",
              help="balance --shard by this earlier run folder's test durations (default: test counts)")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def run(inventory: str | None, workers: int, compliance: bool, reports: str, run_id: str | None,
        suites_path: str | None, rules_: tuple[str, ...], test_ids: tuple[str, ...], last_failed: bool,
        rerun: str | None, junit: str | None, signing_key: str | None, shard: str | None,
        durations_from: str | None, pytest_args: tuple[str, ...]) -> None:
    """Run the suites against the inventory's target and write reports/<run-id>/.

    Before any test, a preflight checks the files and password sources the inventory names, that
    each vCenter answers and accepts the login and each external KMS answers KMIP, and that the
    reports folder is writable: one line per problem. Arguments after `--` go to pytest.
    """
    from harness.run.launch import Refused, RunRequest, execute
    request = RunRequest(
        inventory=inventory, reports=Path(reports), suites=Path(suites_path) if suites_path else suites_dir(),
        workers=workers, compliance=compliance, run_id=run_id, rules=rules_, test_ids=test_ids,
        rerun=Path(rerun) if rerun else None, last_failed=last_failed, junit=Path(junit) if junit else None,
        signing_key=Path(signing_key).resolve() if signing_key else None,
        pytest_args=pytest_args, shard=shard, durations_from=Path(durations_from) if durations_from else None)
    try:
        code = execute(request, click.echo)
    except Refused as err:
        from harness.printable import printable
        for line in err.lines:
            click.echo(f"vcrypt: {printable(line)}", err=True)
        sys.exit(err.code)
    sys.exit(code)


def _check_run_ids(run_ids: Any) -> None:
    """Exit 2 on a run id that could not be marked or swept exactly (harness.run.markers)."""
    from harness.run.markers import BadRunId, check_run_id
    for run_id in run_ids:
        try:
            check_run_id(run_id)
        except BadRunId as err:
            _fail(str(err))


# ---- rules -------------------------------------------------------------------------------------
@main.command()
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="a run folder whose verdicts to show (default: the newest run under --reports)")
@click.option("--reports", type=click.Path(), default="reports", help="folder holding run folders")
def rules(run_dir: str | None, reports: str) -> None:
    """List the rule catalogue with the tests covering each rule (and, after a run, their verdicts)."""
    from harness.commands.rules_table import rules_table
    try:
        lines = rules_table(suites_dir(), Path(reports), Path(run_dir) if run_dir else None)
    except (OSError, ValueError) as err:  # no or unreadable results.json: not a run folder
        _fail(f"{run_dir}: not a run folder (results.json: {getattr(err, 'strerror', None) or err})")
    for line in lines:
        click.echo(line)


# ---- diff --------------------------------------------------------------------------------------
@main.command()
@click.argument("run_a", type=click.Path())
@click.argument("run_b", type=click.Path())
def diff(run_a: str, run_b: str) -> None:
    """Rules and tests whose verdict changed from RUN_A to RUN_B, new failures first.

    Exit status: 0 nothing regressed; 1 a rule or test got worse (a new failure, error or
    deviation, or a pass now skipped or not run); 2 a folder is not a complete run (no or
    unreadable results.json/run.json, interrupted, nothing demonstrated).
    """
    from harness.commands.diff import IncompleteRun, diff_runs
    for folder in (run_a, run_b):
        if not (Path(folder) / "results.json").is_file():
            _fail(f"{folder}: not a run folder (no results.json)")
    try:
        result = diff_runs(Path(run_a), Path(run_b))
    except IncompleteRun as err:
        _fail(str(err))
    except (OSError, ValueError) as err:
        _fail(f"cannot compare {run_a} and {run_b}: {err}")
    for line in result.lines(Path(run_a), Path(run_b)):
        click.echo(line)
    sys.exit(result.exit_code)


# ---- evidence ----------------------------------------------------------------------------------
@main.command("verify-evidence")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--public-key", type=click.Path(dir_okay=False), default=None,
              help="Ed25519 public key (PEM) whose signature manifest.sha256 must carry")
@click.option("--hashes-only", is_flag=True, default=False,
              help="a signed folder: check only the hashes (the signature stays unchecked)")
def verify_evidence(run_dir: str, public_key: str | None, hashes_only: bool) -> None:
    """Check a run folder against its manifest.sha256 (changed, missing, added files, symlinks, run id)
    and its signature: a folder that says it was signed must carry one, and a signed folder needs
    --public-key (or --hashes-only). Exit 0 intact, 1 not intact or not verified, 2 bad arguments."""
    from harness.evidence.signing import SigningKeyError
    from harness.evidence.verify import verify_run_folder
    if not Path(run_dir).is_dir():
        _fail(f"{run_dir}: no such run folder")
    try:
        result = verify_run_folder(Path(run_dir), Path(public_key) if public_key else None, hashes_only)
    except SigningKeyError as err:
        _fail(str(err))
    if result.problems:
        for problem in result.problems:
            click.echo(problem)
        _fail(f"{run_dir}: evidence does not match its manifest or signature ({len(result.problems)} problem(s))", 1)
    if result.needs_key:
        _fail(f"{run_dir}: not verified: {result.status}", 1)
    click.echo(f"{run_dir}: intact (every file matches manifest.sha256); {result.status}")


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out_dir", type=click.Path(), required=True, help="the merged run folder (new or empty)")
@click.option("--signing-key", type=click.Path(dir_okay=False), default=None,
              help="Ed25519 private key (PEM) that signs the merged manifest")
@click.option("--public-key", type=click.Path(dir_okay=False), default=None,
              help="Ed25519 public key (PEM) every input's signature must verify with")
@click.option("--allow-partial", is_flag=True,
              help="merge despite missing, interrupted or tampered inputs (tampered ones are left out); the result says so")
@click.option("--compliance", is_flag=True, help="exit 1 unless every rule is passed or not applicable")
def merge(run_dirs: tuple[str, ...], out_dir: str, signing_key: str | None, public_key: str | None,
          allow_partial: bool, compliance: bool) -> None:
    """Merge the run folders of shards (`vcrypt run --shard K/N`) and labs into one run folder.

    Each input is verified against its manifest (and signature with --public-key). The result holds
    merged results.json and rule verdicts (per lab and overall), report.html, junit.xml,
    allure-results/, OSCAL assessment results with each shard and lab as a subject, the inputs'
    manifests, and its own manifest (signed with --signing-key).

    Exit status: 0 merged, no rule failed or errored; 1 merged, a rule failed or errored (with
    --compliance: or was not demonstrated); 2 bad options, or an input refused (nothing written).
    """
    from harness.commands.merge import MergeRequest, run_merge
    from harness.commands.merge_inputs import MergeRefused
    from harness.evidence.signing import SigningKeyError, load_public_key, load_signing_key
    try:
        key = load_signing_key(path=Path(signing_key)) if signing_key else None
        if public_key:
            load_public_key(Path(public_key))
    except SigningKeyError as err:
        _fail(str(err))
    request = MergeRequest(inputs=tuple(Path(d) for d in run_dirs), out=Path(out_dir), signing_key=key,
                           public_key=Path(public_key) if public_key else None, allow_partial=allow_partial,
                           compliance=compliance)
    try:
        code = run_merge(request, click.echo)
    except MergeRefused as err:
        for line in err.lines:
            click.echo(f"vcrypt: {line}", err=True)
        sys.exit(EXIT_USAGE)
    except OSError as err:
        _fail(f"merge: {getattr(err, 'filename', None) or ''}: {err.strerror or err}")
    sys.exit(code)


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".", help="folder for the key pair")
@click.option("--name", default="vcrypt-signing", help="file name stem: <name>.key and <name>.pub")
def keygen(out_dir: str, name: str) -> None:
    """Write an Ed25519 key pair for signing run folders: <name>.key (private, mode 0600) and <name>.pub."""
    import re
    from harness.evidence.signing import SigningKeyError, generate_keypair
    folder = Path(out_dir)
    if not folder.is_dir():
        _fail(f"{out_dir}: no such folder")
    # A file stem, never a path: the pair is written only inside --out.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or ".." in name:
        _fail(f"--name {name!r}: must be a file name stem (letters, digits, . _ -; at most 64; no path, no ..)")
    private, public = folder / f"{name}.key", folder / f"{name}.pub"
    try:
        fp = generate_keypair(private, public)
    except SigningKeyError as err:
        _fail(str(err))
    click.echo(f"private key: {private} (mode 0600; keep it out of the run folders and version control)")
    click.echo(f"public key:  {public} (give this to auditors: vcrypt verify-evidence RUN --public-key {public})")
    click.echo(f"fingerprint: SHA-256 {fp}")


# ---- kms -------------------------------------------------------------------------------------
@main.group()
def kms() -> None:
    """The embedded KMS: serve one, or register a KMS with a vCenter."""


@kms.command("serve")
@click.option("--workdir", type=click.Path(file_okay=False), default=None, help="folder for certs, db, logs")
def kms_serve(workdir: str | None) -> None:
    """Run the embedded KMS pair in the foreground until Ctrl-C.

    Key material stays private: folders 0700, keys and the key database 0600. Without --workdir
    the temporary folder is removed on exit (after a SIGKILL, by `vcrypt sweep`).
    """
    from harness.commands.kms import serve
    serve(Path(workdir) if workdir else None)


@kms.command("register")
@click.option("--inventory", "-i", type=click.Path(), required=True)
@click.option("--vcenter", required=True, help="inventory name of the vCenter")
@click.option("--role", type=click.Choice(["shared", "dedicated"]), default="shared")
def kms_register(inventory: str, vcenter: str, role: str) -> None:
    """Register the inventory's KMS with a vCenter through the full trust flow (idempotent)."""
    from harness.commands.kms import RegisterRefused, register
    inv = _load(inventory)
    try:
        entry = inv.vcenter(vcenter)
    except InventoryError as err:
        _fail(str(err))
    if inv.kms.embedded and entry.target == "real":
        _fail("an embedded KMS lives only as long as this command; configure kms.shared for a real vCenter")
    try:
        click.echo(register(inv, entry, role))
    except RegisterRefused as err:
        _fail(str(err))
    except _environment_errors() as err:
        _environment_failure("kms register", err)


# ---- selftest ----------------------------------------------------------------------------------
@main.command()
@click.option("-n", "workers", type=click.IntRange(1, 16), default=2, help="defects checked in parallel")
@click.option("--rule", "rules_", multiple=True, help="only the defects of this rule (repeatable)")
@click.option("--defect", "defects", multiple=True, help="only this defect (repeatable)")
def selftest(workers: int, rules_: tuple[str, ...], defects: tuple[str, ...]) -> None:
    """Prove each rule's tests catch a violation: run them against a fake with each seeded defect."""
    from harness.commands.selftest import rules_without_defects, run_selftest, summary
    started = time.monotonic()
    base, results = run_selftest(workers, set(rules_) or None, set(defects) or None)
    uncovered = [] if rules_ or defects else rules_without_defects()
    lines, code = summary(base, results, uncovered, time.monotonic() - started)
    for line in lines:
        click.echo(line)
    if code:
        sys.exit(code)


# ---- vcsim -------------------------------------------------------------------------------------
@main.group()
def vcsim() -> None:
    """govmomi's vcsim simulator."""


_VCSIM_SOURCE = click.option("--source", type=click.Choice(["auto", "pinned", "debian"]), default="auto",
                             help="auto: vcsim on PATH > pinned current vcsim > Debian launcher")


@vcsim.command("serve")
@click.option("--api-version", default=None, help="e.g. 7.0.3.0")
@click.option("--hosts", default=3, type=click.IntRange(1, 64))
@click.option("--vms", default=2, type=click.IntRange(0, 10000))
@_VCSIM_SOURCE
def vcsim_serve(api_version: str | None, hosts: int, vms: int, source: str) -> None:
    """Start a vcsim on 127.0.0.1 in the foreground until Ctrl-C."""
    from harness.commands.vcsim import serve
    from harness.vcsim.build import VcsimUnavailable
    try:
        serve(api_version, hosts, vms, source)
    except VcsimUnavailable as err:
        _fail(str(err))


@vcsim.command("build")
@_VCSIM_SOURCE
def vcsim_build(source: str) -> None:
    """Get the vcsim runs would use (building the pinned one from the Go module proxy if needed) and say which."""
    from harness.commands.vcsim import build
    from harness.vcsim.build import VcsimUnavailable
    try:
        build(source)
    except VcsimUnavailable as err:
        _fail(str(err), 1)


# ---- audit / sweep / verify-config -------------------------------------------------------------
def _vcenter_name(inv: Any, vcenter: str | None) -> str | None:
    if vcenter is not None:
        try:
            inv.vcenter(vcenter)
        except InventoryError as err:
            _fail(str(err))
    return vcenter


def _environment_errors() -> tuple[type[BaseException], ...]:
    """Failures of the lab, not of the command line: reported in one line, exit 1."""
    from harness.targets.connect import ConnectError
    from harness.vcsim.build import VcsimUnavailable
    from harness.vsphere.errors import EnvironmentFault
    return (ConnectError, VcsimUnavailable, EnvironmentFault, ConnectionError, TimeoutError)


def _environment_failure(what: str, err: BaseException) -> NoReturn:
    """One line for a lab failure: exit 2 when the inventory is wrong for the server (TLS refused,
    login refused: `ConnectError.config`), else 1."""
    _fail(f"{what} incomplete: {err}", EXIT_USAGE if getattr(err, "config", False) else 1)


@main.command()
@click.option("--inventory", "-i", type=click.Path(), default=None, help="inventory YAML (default: the fake)")
@click.option("--vcenter", default=None, help="audit only this inventory vCenter (default: all)")
@click.option("--reports", type=click.Path(file_okay=False), default="reports", help="folder for audit-<timestamp>/")
@click.option("--page-size", type=click.IntRange(min=1), default=250, show_default=True,
              help="at most this many VMs/hosts per RetrievePropertiesEx reply (maxObjects)")
@click.option("--parse-workers", type=click.IntRange(min=0), default=1, show_default=True,
              help="worker processes parsing VM pages beside the audit's own while the next page is fetched "
                   "(0: parse every page in the audit's process, in turn)")
def audit(inventory: str | None, vcenter: str | None, reports: str, page_size: int, parse_workers: int) -> None:
    """Read-only encryption posture scan: VMs, hosts, key providers, alarms, Cryptographer roles.

    Never creates or changes anything, whatever the inventory allows. Writes
    <reports>/audit-<timestamp>/audit.json, audit.html and manifest.sha256.

    Exit status: 0 audit completed, no PRIV-AUDIT flags; 3 audit completed and found principals
    holding Cryptographer.Decrypt beyond audit.decrypt_allow_list; 1 a vCenter or KMS could not be
    reached; 2 bad inventory or options.
    """
    from harness.commands.audit import run_audit, summary_lines
    from harness.targets.environment import open_environment
    inv = _load(inventory)
    name = _vcenter_name(inv, vcenter)
    _preflight_files(inv)
    try:
        with open_environment(inv) as env:
            outcome = run_audit(env, name, Path(reports), page_size, parse_workers)
    except InventoryError as err:
        _fail(str(err))
    except _environment_errors() as err:
        _environment_failure("audit", err)
    from harness.printable import printable
    for line in summary_lines(outcome):
        click.echo(printable(line))   # names come from the vCenter: no control or bidi character prints raw
    sys.exit(outcome.exit_code)


@main.command()
@click.option("--inventory", "-i", type=click.Path(), default=None, help="inventory YAML (default: the fake)")
@click.option("--run-id", "run_ids", multiple=True, help="sweep this run's leftovers (repeatable)")
@click.option("--all-runs", is_flag=True, help="sweep every object carrying the harness marker")
@click.option("--dry-run", is_flag=True, help="print what would be done; change nothing")
@click.option("--force", is_flag=True, help="also sweep runs whose owner is alive, or (with --all-runs) has no lease")
@click.option("--reports", type=click.Path(file_okay=False), default="reports", help="folder holding <run>/ledger.jsonl")
def sweep(inventory: str | None, run_ids: tuple[str, ...], all_runs: bool, dry_run: bool, force: bool,
          reports: str) -> None:
    """Remove leftovers of aborted runs: marked VMs (with templates and snapshots), then key providers
    a run added, then recorded restores (HA, default provider). Never touches a VM without the
    harness marker in its annotation. Works from reports/*/ledger.jsonl and, without any ledger,
    from the markers. A run whose owner is alive (reports/<run>/lease.json) is left alone, and with
    --all-runs so is a run without a lease; --force overrides. Unproven ledger lines are reported.

    Exit status: 0 no marked object of the selected runs remains; 1 some remain (listed), a step
    failed, or a run named with --run-id is alive; 2 bad inventory or options.
    """
    from harness.targets.environment import open_environment
    from harness.commands.sweep import Selection
    from harness.commands.sweep import sweep as run_sweep
    from harness.printable import printable
    if bool(run_ids) == all_runs:
        _fail("give --run-id ID (repeatable) or --all-runs, exactly one of them")
    _check_run_ids(run_ids)
    inv = _load(inventory)
    selection = Selection(None if all_runs else frozenset(run_ids), force=force)
    click.echo(f"vcrypt sweep: {selection.describe()}{' (dry run)' if dry_run else ''}, ledgers under {reports}")
    from harness.workdirs import sweep_workdirs
    for line in sweep_workdirs(selection.run_ids, dry_run):  # KMS keys and databases of killed runs
        click.echo(line)
    try:
        with open_environment(inv) as env:
            report = run_sweep(env, selection, Path(reports), dry_run=dry_run,
                               echo=lambda line: click.echo(printable(line)))   # names come from the vCenter
    except InventoryError as err:
        _fail(str(err))
    except _environment_errors() as err:
        _environment_failure("sweep", err)
    for line in report.skipped:
        click.echo(printable(f"left alone: {line}"))
    for line in report.problems:
        click.echo(printable(f"problem: {line}"))
    if not report.actions and not report.remaining:
        click.echo("nothing to sweep")
    for line in report.remaining:
        click.echo(printable(f"remains: {line}"))
    sys.exit(report.exit_code)


def _preflight_files(inv: Any) -> None:
    """Exit 2 with one line per missing or unreadable file or unset password source the inventory names."""
    from harness.run.preflight import config_problems
    problems = config_problems(inv)
    for problem in problems:
        click.echo(f"vcrypt: {problem.line(inv)}", err=True)
    if problems:
        sys.exit(EXIT_USAGE)


@main.command("verify-config")
@click.option("--inventory", "-i", type=click.Path(), default=None, help="inventory YAML (default: the fake)")
@click.option("--vcenter", default=None, help="probe only this inventory vCenter (default: all)")
def verify_config(inventory: str | None, vcenter: str | None) -> None:
    """Probe each vCenter for every known capability and compare with the inventory's `features`.

    Probes only read, except where safety.allow_mutations is true: then one marked scratch VM is
    created, probed (encrypt, snapshot, a refused instant clone) and destroyed.

    Exit status: 0 every declared capability that was probed is present; 1 a declared capability
    probed absent (named); 2 bad inventory or options. Capabilities present but not declared are
    reported, not an error.
    """
    from harness.targets.environment import open_environment
    from harness.commands.verify_config import table, verify, version_lines
    inv = _load(inventory)
    name = _vcenter_name(inv, vcenter)
    _preflight_files(inv)
    try:
        with open_environment(inv) as env:
            rows = verify(env, name)
            versions, version_mismatches = version_lines(env, name)
    except InventoryError as err:
        _fail(str(err))
    except _environment_errors() as err:
        _environment_failure("verify-config", err)
    from harness.printable import printable
    for line in table(rows) + versions:
        click.echo(printable(line))
    for line in version_mismatches:
        click.echo(printable(f"mismatch: {line}"))
    if version_mismatches:
        _fail(f"inventory {inv.path}: declared version disagrees with the server: {version_mismatches[0]}", 1)
    mismatches = [r for r in rows if r.mismatch]
    if mismatches:
        for row in mismatches:
            click.echo(f"mismatch: {row.capability}: {row.match}")
        _fail(f"inventory {inv.path}: {len(mismatches)} declared capability(ies) absent: "
              f"{', '.join(r.capability for r in mismatches)}", 1)
    click.echo(f"inventory {inv.path}: every declared capability that was probed is present")


if __name__ == "__main__":  # pragma: no cover
    main()
