"""Writes a run's results.json and run.json, and applies compliance mode.

The run folder is the unit of evidence: run.json says what was tested (vCenters with version,
build and TLS mode, the KMS), results.json what each test concluded and why.
"""
from __future__ import annotations

import datetime
import json
from typing import Any

import harness
from harness.evidence.provenance import esxi_hosts, provenance, shown_arguments


def _stored_targets(state: Any) -> dict[str, Any] | None:
    """targets.json: what write_target_info read while the environment was up (None before it came up)."""
    path = state.run_dir / "targets.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _vcenters(state: Any, env: Any) -> list[dict[str, Any]]:
    """The inventory's vCenters; with a live `env`, also what each reports (version, build, hosts)."""
    out = []
    for entry in state.inventory.vcenters:
        info: dict[str, Any] = {"name": entry.name, "target": entry.target, "tls_mode": entry.tls.mode,
                                "url": env.url_of(entry) if env else entry.service_url,
                                "clone_crypto_shape": entry.clone_crypto_shape}
        if env is not None:
            try:
                about = env.service_instance(entry.name).content.about
                info.update(api_version=about.apiVersion, version=about.version, build=about.build,
                            instance_uuid=about.instanceUuid)
                info["hosts"] = esxi_hosts(env.service_instance(entry.name))
            except Exception as err:  # noqa: BLE001 - describe what we can; the tests say the rest
                info["error"] = f"{type(err).__name__}: {err}"
            if entry.name in getattr(env, "vcsim_choices", {}):  # which vcsim, and whether it models crypto
                info["vcsim"] = env.vcsim_choices[entry.name].describe()
        if entry.target == "vcsim" and not entry.url and "vcsim" not in info:
            info["vcsim"] = _vcsim_choice(entry)  # no test started it: the one a run would have used
        out.append(info)
    return out


def _vcsim_choice(entry: Any) -> dict[str, Any]:
    from harness.vcsim.build import VcsimUnavailable
    from harness.vcsim.choice import choose_vcsim
    opts = entry.vcsim
    try:
        return choose_vcsim(str(opts.binary) if opts and opts.binary else None, opts.source if opts else "auto").describe()
    except VcsimUnavailable as err:
        return {"error": str(err)}


def write_target_info(state: Any) -> None:
    """Record the target (versions, builds, TLS mode, KMS) once the environment is up."""
    if not state.write_results:
        return
    state.run_dir.mkdir(parents=True, exist_ok=True)
    data = {"vcenters": _vcenters(state, state.environment), "kms": state.environment.describe()["kms"]}
    tmp = state.run_dir / f"targets.json.{id(state)}"
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    tmp.replace(state.run_dir / "targets.json")


def compliance_gaps(tests: list[dict[str, Any]]) -> list[str]:
    """Rules compliance mode does not accept: anything but "passed" or "not applicable".

    The verdicts come from harness.evidence.verdicts, the one place that decides them, so the
    exit status and every writer agree (a pre-7 rule on a 7.0 vCenter is out of scope, not a gap).
    """
    from harness.evidence import verdicts
    return verdicts.compliance_gaps(verdicts.rule_verdicts(verdicts.load_catalogue(), verdicts.results_from(tests)))


def write_results(state: Any, session: Any, exitstatus: int, compliance: bool) -> int | None:
    """Write both files; returns the session's new exit status when it changes: compliance mode turns
    the run red (1), the run demonstrated nothing (5), it was interrupted (130, as run.json says)."""
    from harness.evidence import verdicts
    from harness.evidence.exit_status import EXIT_NOTHING_DEMONSTRATED, process_status
    run_dir = state.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    tests = sorted(state.results.values(), key=lambda t: t["nodeid"])
    finished = datetime.datetime.now(datetime.timezone.utc)
    status = exitstatus
    gaps = compliance_gaps(tests) if compliance else []
    if gaps and status == 0:
        status = 1
    results = verdicts.results_from(tests)
    if status == 0 and verdicts.demonstrated_nothing(results):
        status = EXIT_NOTHING_DEMONSTRATED  # collect-only, nothing selected, all skipped: not a success
    interrupted = exitstatus == 2  # pytest.ExitCode.INTERRUPTED: Ctrl-C or SIGTERM
    # Session finish comes after the environment fixture closed it: describe the target from
    # targets.json (read while it was up), never by logging in again.
    env = state.environment
    targets = _stored_targets(state) or {"vcenters": _vcenters(state, None),
                                         "kms": {"embedded": state.inventory.kms.embedded, "servers": []}}
    rule_verdicts = verdicts.rule_verdicts(verdicts.load_catalogue(), results)
    run = {
        "run_id": state.run_id, "harness_version": harness.__version__,
        "started_at": state.started.isoformat(), "finished_at": finished.isoformat(),
        "duration_s": round((finished - state.started).total_seconds(), 3),
        "startup_s": round(getattr(env, "startup_s", 0.0), 3),
        "inventory": str(state.inventory.path), "target": state.inventory.target,
        "vcenters": targets["vcenters"],
        "kms": targets["kms"],
        "compliance": compliance, "compliance_gaps": gaps,
        "pytest_args": shown_arguments(session.config.invocation_params.args),   # no signing key path
        "exit_status": process_status(status),
        "interrupted": interrupted,
        "verdicts": {rid: v.verdict for rid, v in rule_verdicts.items()},
        "provenance": provenance(state),  # the bundle adds how the manifest is signed
    }
    (run_dir / "run.json").write_text(json.dumps(run, indent=1, default=str), encoding="utf-8")
    (run_dir / "results.json").write_text(json.dumps({"tests": tests}, indent=1, default=str), encoding="utf-8")
    # the session ends with the status run.json names, so `pytest suites` from a checkout agrees too
    return process_status(status) if process_status(status) != exitstatus else None
