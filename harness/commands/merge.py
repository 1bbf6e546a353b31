"""`vcrypt merge DIR... --out DIR`: the run folders of CI shards (and labs) as one assessment.

The merged folder is an ordinary run folder, so every evidence writer (report.html, OSCAL,
summary.md, Allure extras, README, manifest, signature: harness/evidence/bundle.py) renders it
unchanged. This module only composes run.json and results.json from the verified inputs
(harness/commands/merge_inputs.py), copies their evidence and Allure files, joins their JUnit
(merge_outputs.py), and records the inputs' manifests, so that an auditor can trace every merged
verdict to a shard whose own manifest is kept and hashed. With several labs, each test and
evidence file is named by its lab, and a rule's verdict is given per lab and over all of them.
"""
from __future__ import annotations

import datetime
import json
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import harness
from harness.commands.merge_inputs import (SIGNED_FILES, MergeRefused, Plan, copy_verified, describe_input,
                                           load_input, plan_merge)
from harness.commands import merge_outputs
from harness.evidence.bundle import finalize_run_folder
from harness.evidence.manifest import SIGNATURE
from harness.evidence.signing import SigningKey
from harness.evidence.verdicts import (COMPLIANT_VERDICTS, compliance_gaps, load_catalogue, results_from,
                                       rule_verdicts)
from harness.run.runids import RunIdError, validate_run_id

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
NOT_RUN_MESSAGE = "not run: {why}"


@dataclass(frozen=True)
class MergeRequest:
    inputs: tuple[Path, ...]
    out: Path
    signing_key: SigningKey | None = None
    public_key: Path | None = None
    allow_partial: bool = False
    compliance: bool = False


@dataclass(frozen=True)
class MergeOutcome:
    out: Path
    verdicts: dict[str, str]                 # overall, per rule
    lab_verdicts: dict[str, dict[str, str]]  # lab -> rule -> verdict
    partial: list[str]
    exit_code: int
    unchecked: list[str]  # inputs with a signature no public key was given for


def merge(request: MergeRequest) -> MergeOutcome:
    """Verify, plan and write; raises MergeRefused (nothing written) when the inputs do not fit."""
    out = request.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MergeRefused([f"--out {out}: exists and is not empty (a merged folder is never written over)"])
    inside = [p for p in request.inputs if out.resolve().is_relative_to(p.resolve())]
    if inside:  # writing there would change an input's verified folder
        raise MergeRefused([f"--out {out}: lies inside the input {inside[0]}"])
    inputs = [load_input(p, request.public_key) for p in request.inputs]
    plan = plan_merge(inputs, request.allow_partial)
    multi = len(plan.labs) > 1
    tests = _merged_tests(plan, multi)
    catalogue = load_catalogue()
    overall = rule_verdicts(catalogue, results_from(tests))
    per_lab = {lab: {rid: v.verdict for rid, v in rule_verdicts(catalogue, results_from(
        [t for t in tests if t["lab"] == lab])).items()} for lab in plan.labs}
    gaps = compliance_gaps(overall) if request.compliance else []
    failed = any(v.verdict in ("failed", "error") for v in overall.values())
    code = EXIT_FAILED if failed or gaps else EXIT_OK
    run_id = _run_id(out)
    scratch = out.parent / f".{out.name}.merging-{secrets.token_hex(3)}"  # renamed into place when complete
    tmp = scratch / out.name  # the writers name the run after its folder (README, Allure executor)
    tmp.mkdir(parents=True)
    try:
        _copy_files(plan, tests, tmp, multi)
        run = _merged_run(plan, run_id, tests, per_lab, {r: v.verdict for r, v in overall.items()}, gaps,
                          request, code, multi)
        (tmp / "run.json").write_text(json.dumps(run, indent=1, default=str), encoding="utf-8")
        (tmp / "results.json").write_text(json.dumps({"tests": tests}, indent=1, default=str), encoding="utf-8")
        merge_outputs.write_junit(plan, tmp, tests, multi)
        finalize_run_folder(tmp, request.signing_key,
                            before_manifest=lambda d: merge_outputs.annotate(d, plan, run, tests, multi))
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    unchecked = [str(i.path) for i in plan.inputs if request.public_key is None and (i.path / SIGNATURE).is_file()]
    return MergeOutcome(out, {r: v.verdict for r, v in overall.items()}, per_lab, plan.partial, code, unchecked)


def _run_id(out: Path) -> str:
    try:
        return validate_run_id(out.name)
    except RunIdError:
        return "merge-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def _named(value: str, lab: str, multi: bool) -> str:
    return f"{lab}/{value}" if multi and value else value


def _merged_tests(plan: Plan, multi: bool) -> list[dict[str, Any]]:
    """Every input's tests (named by lab when there are several), plus a "not run" entry for each
    planned test without a result and, across labs, for each rule a lab did not run at all."""
    tests: list[dict[str, Any]] = []
    for lab, group in plan.labs.items():
        for item in group:
            for entry in item.tests:
                merged = dict(entry, lab=lab, shard=item.shard_label, shard_run_id=item.run.get("run_id"))
                merged["nodeid"] = _named(str(entry.get("nodeid")), lab, multi)
                merged["test_id"] = _named(str(entry.get("test_id") or ""), lab, multi)
                if entry.get("evidence_file") and multi:
                    merged["evidence_file"] = f"evidence/{lab}/{Path(str(entry['evidence_file'])).name}"
                tests.append(merged)
            seen = {t.get("nodeid") for t in item.tests}
            for nodeid in item.planned or []:
                if nodeid not in seen:
                    tests.append(_not_run(_named(nodeid, lab, multi), [], lab, item.shard_label,
                                          f"planned in shard {item.shard_label} of {item.path}, no result"))
    if multi:
        ran = {lab: {r for t in tests if t["lab"] == lab for r in t.get("rules") or []} for lab in plan.labs}
        everywhere = set().union(*ran.values())
        for lab in plan.labs:
            for rule in sorted(everywhere - ran[lab]):
                tests.append(_not_run(f"{lab}/(no test of {rule})", [rule], lab, "",
                                      f"lab {lab} ran no test of {rule} (its shard is missing or it was not selected)"))
    return sorted(tests, key=lambda t: t["nodeid"])


def _not_run(nodeid: str, rules: list[str], lab: str, shard: str, why: str) -> dict[str, Any]:
    return {"nodeid": nodeid, "test_id": "", "name": nodeid.rsplit("::", 1)[-1], "module": "", "area": "",
            "rules": rules, "outcome": "interrupted", "category": "interrupted",
            "message": NOT_RUN_MESSAGE.format(why=why), "duration_s": 0.0, "evidence_file": None,
            "lab": lab, "shard": shard}


def _copy_files(plan: Plan, tests: list[dict[str, Any]], tmp: Path, multi: bool) -> None:
    """Evidence, Allure results, the redacted inventory, and each input's manifest/signature/run.json."""
    from harness.evidence.verdicts import TestResult, evidence_path
    for lab, group in plan.labs.items():
        for item in group:
            for entry in item.tests:
                if not entry.get("evidence_file"):
                    continue
                src = evidence_path(item.path, TestResult(nodeid="", evidence_file=str(entry["evidence_file"])))
                name = Path(str(entry["evidence_file"])).name
                dst = tmp / (f"evidence/{lab}/{name}" if multi else str(entry["evidence_file"]))
                if src is not None and src.is_file() and dst.resolve().is_relative_to(tmp.resolve()):
                    copy_verified(item, src.relative_to(item.path.resolve()).as_posix(), dst)
            merge_outputs.copy_allure(item, tmp, lab if multi else None)
            inventory = item.path / "inventory.redacted.yaml"
            name = f"inventory.{lab}.redacted.yaml" if multi else "inventory.redacted.yaml"
            if inventory.is_file() and not (tmp / name).exists():
                shutil.copyfile(inventory, tmp / name)
            keep = tmp / "inputs" / item.slug
            keep.mkdir(parents=True)
            for file in SIGNED_FILES:
                if (item.path / file).is_file():
                    shutil.copyfile(item.path / file, keep / file)


def _merged_run(plan: Plan, run_id: str, tests: list[dict[str, Any]], per_lab: dict[str, dict[str, str]],
                overall: dict[str, str], gaps: list[str], request: MergeRequest, code: int,
                multi: bool) -> dict[str, Any]:
    runs = [i.run for i in plan.inputs]
    first = runs[0]
    vcenters = []
    for lab, group in plan.labs.items():
        for vc in group[0].run.get("vcenters") or []:
            vcenters.append(dict(vc, name=_named(str(vc.get("name")), lab, multi), lab=lab))
    kms_servers = [dict(s, name=_named(str(s.get("name")), lab, multi)) for lab, group in plan.labs.items()
                   for s in (group[0].run.get("kms") or {}).get("servers") or []]
    provenance = dict(first.get("provenance") or {})
    provenance["command_line"] = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv else ["vcrypt", "merge"]
    provenance["fake_defects"] = sorted({d for r in runs for d in (r.get("provenance") or {}).get("fake_defects") or []})
    if multi:
        provenance["inventory"] = {"labs": {lab: (g[0].run.get("provenance") or {}).get("inventory")
                                            for lab, g in plan.labs.items()}}
    started = min(str(r.get("started_at") or "") for r in runs)
    finished = max(str(r.get("finished_at") or "") for r in runs)
    stopped = any(t.get("outcome") == "interrupted" for t in tests) or any(r.get("interrupted") for r in runs)
    return {
        "run_id": run_id, "harness_version": first.get("harness_version") or harness.__version__,
        "started_at": started, "finished_at": finished,
        "duration_s": round(sum(float(r.get("duration_s") or 0.0) for r in runs), 3),
        "inventory": ", ".join(str(g[0].run.get("inventory")) for g in plan.labs.values()),
        "target": "+".join(dict.fromkeys(str(r.get("target")) for r in runs)),
        "vcenters": vcenters,
        "kms": {"embedded": (first.get("kms") or {}).get("embedded"), "servers": kms_servers},
        "compliance": request.compliance, "compliance_gaps": gaps,
        "pytest_args": [], "exit_status": code, "interrupted": stopped,
        "provenance": provenance,
        "merge": {
            "inputs": [describe_input(i, True) for i in plan.inputs] + [describe_input(i, False) for i in plan.left_out],
            "partial": bool(plan.partial), "partial_reasons": plan.partial,
            "labs": {lab: {"shards": [i.shard_label for i in g], "inventory": g[0].run.get("inventory"),
                           "verdicts": per_lab[lab], "overall": lab_overall(per_lab[lab])}
                     for lab, g in plan.labs.items()},
            "verdicts": overall, "overall": lab_overall(overall),
        },
    }


def lab_overall(verdicts: dict[str, str]) -> str:
    """One word for a lab (or all): failed beats error beats anything not demonstrated beats passed."""
    values = set(verdicts.values())
    for word in ("failed", "error"):
        if word in values:
            return word
    return "passed" if values <= COMPLIANT_VERDICTS and "passed" in values else "not fully demonstrated"


def summary_lines(outcome: MergeOutcome) -> list[str]:
    """The terminal table: each rule's overall verdict and, with several labs, each lab's."""
    labs = list(outcome.lab_verdicts)
    multi = len(labs) > 1
    header = f"{'rule':26} {'verdict':19}" + "".join(f" {lab[:19]:19}" for lab in labs if multi)
    lines = [header]
    for rule, verdict in outcome.verdicts.items():
        lines.append(f"{rule:26} {verdict:19}" + "".join(f" {outcome.lab_verdicts[lab][rule]:19}" for lab in labs if multi))
    for lab in labs:
        lines.append(f"lab {lab}: {lab_overall(outcome.lab_verdicts[lab])}")
    lines.append(f"overall: {lab_overall(outcome.verdicts)}")
    for reason in outcome.partial:
        lines.append(f"partial: {reason}")
    for item in outcome.unchecked:
        lines.append(f"note: {item}: carries a signature that was not checked (give --public-key to check it)")
    lines.append(f"merged: {outcome.out} (report.html, junit.xml, allure-results/, oscal-assessment-results.json)")
    return lines


def run_merge(request: MergeRequest, echo: Callable[[str], None]) -> int:
    """For the CLI: merge, print, return the exit status (MergeRefused propagates)."""
    outcome = merge(request)
    for line in summary_lines(outcome):
        echo(line)
    from harness.evidence.summary import print_manifest_digest
    print_manifest_digest(outcome.out)
    return outcome.exit_code
