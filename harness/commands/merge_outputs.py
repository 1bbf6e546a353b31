"""The parts of a merged run folder no run-folder writer makes: joined JUnit and Allure results, and
what the OSCAL document and summary.md must add about shards, labs and the inputs' manifests.

The OSCAL additions follow OSCAL 1.1 assessment-results: each lab and each shard is an
`inventory-item` of the result's local-definitions and a `subject` of the observations it made
(https://pages.nist.gov/OSCAL-Reference/models/v1.1.2/assessment-results/json-reference/), and each
input's manifest is a back-matter resource carrying its SHA-256.
"""
from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.evidence.manifest import MANIFEST
from harness.evidence.oscal import FILENAME as OSCAL_FILE
from harness.evidence.oscal import PROP_NS, stable_uuid, uri_reference

if TYPE_CHECKING:
    from harness.commands.merge_inputs import Plan, ShardInput

ALLURE = "allure-results"
ALLURE_EXTRAS = {"environment.properties", "categories.json", "executor.json"}  # rewritten for the merged run


def copy_allure(item: "ShardInput", out_run: Path, lab: str | None) -> None:
    """Copy a shard's Allure result, container and attachment files (not its extras or history),
    each checked against the shard's manifest.

    With several labs the same test runs once per lab: a `lab` parameter and a lab-specific
    historyId keep Allure from folding the labs' results into retries of one test.
    """
    from harness.commands.merge_inputs import copy_verified
    src, dst = item.path / ALLURE, out_run / ALLURE
    if not src.is_dir():
        return
    dst.mkdir(exist_ok=True)
    for path in sorted(src.iterdir()):
        if not path.is_file() or path.is_symlink() or path.name in ALLURE_EXTRAS:
            continue
        target = dst / path.name
        copy_verified(item, f"{ALLURE}/{path.name}", target)
        if lab is not None and path.name.endswith("-result.json"):
            data = json.loads(target.read_text(encoding="utf-8"))
            data["parameters"] = [*(data.get("parameters") or []), {"name": "lab", "value": lab}]
            for key in ("historyId", "testCaseId"):
                if data.get(key):
                    data[key] = hashlib.md5(f"{lab}/{data[key]}".encode(), usedforsecurity=False).hexdigest()
            target.write_text(json.dumps(data), encoding="utf-8")


def _verdict_props(suite: ET.Element, tests: list[dict[str, Any]], extra: list[tuple[str, str]]) -> None:
    """`verdict:<RULE>` = "<verdict>" or "<verdict>: <first gap>", as harness/evidence/junit_verdicts.py writes them."""
    from harness.evidence.verdicts import load_catalogue, results_from, rule_verdicts
    props = ET.SubElement(suite, "properties")
    for name, value in extra:
        ET.SubElement(props, "property", name=name, value=value)
    for rule_id, verdict in rule_verdicts(load_catalogue(), results_from(tests)).items():
        gap = next(iter(verdict.gaps), "") if not verdict.compliant and verdict.verdict != "not run" else ""
        ET.SubElement(props, "property", name=f"verdict:{rule_id}", value=verdict.verdict + (f": {gap}" if gap else ""))


def write_junit(plan: "Plan", out_run: Path, tests: list[dict[str, Any]], multi: bool) -> None:
    """One testsuite per lab holding all its shards' testcases, with that lab's rule verdicts as
    `verdict:<RULE>` properties (the shards' own, partial, verdict properties are dropped); with
    several labs a last, empty testsuite `vcrypt.merged` carries the overall verdicts."""
    root = ET.Element("testsuites", name="vcrypt merge")
    for lab, group in plan.labs.items():
        suite = ET.Element("testsuite", name="", tests="0", failures="0", errors="0", skipped="0", time="0")
        shard_props = [(f"shard:{i.shard_label}", str(i.run.get("run_id"))) for i in group]
        _verdict_props(suite, [t for t in tests if t.get("lab") == lab], [("lab", lab), *shard_props])
        for item in group:
            path = item.path / "junit.xml"
            if not path.is_file():
                continue
            for source in ET.parse(path).getroot().iter("testsuite"):
                suite.set("name", suite.get("name") or source.get("name", f"vcrypt.{lab}"))
                for key in ("tests", "failures", "errors", "skipped"):
                    suite.set(key, str(int(suite.get(key, "0")) + int(source.get(key, "0") or 0)))
                suite.set("time", f"{float(suite.get('time', '0')) + float(source.get('time', '0') or 0):.3f}")
                for case in source.findall("testcase"):
                    if multi:
                        case.set("classname", f"{lab}.{case.get('classname', '')}")
                    suite.append(case)
        if multi:
            suite.set("name", f"{suite.get('name') or 'vcrypt'}[{lab}]")
        root.append(suite)
    if multi:
        merged = ET.SubElement(root, "testsuite", name="vcrypt.merged", tests="0", failures="0", errors="0",
                               skipped="0", time="0")
        _verdict_props(merged, tests, [("labs", " ".join(plan.labs))])
    if plan.partial:
        for suite in root.iter("testsuite"):
            props = suite.find("properties")
            if props is not None:
                for reason in plan.partial:
                    ET.SubElement(props, "property", name="partial", value=reason)
    ET.ElementTree(root).write(out_run / "junit.xml", encoding="utf-8", xml_declaration=True)


def _prop(name: str, value: Any) -> dict[str, str]:
    return {"name": name, "ns": PROP_NS, "value": " ".join(str(value).split()) or "-"}


def annotate(out_run: Path, plan: "Plan", run: dict[str, Any], tests: list[dict[str, Any]], multi: bool) -> None:
    """Add shards, labs and input manifests to the OSCAL document, and per-lab verdicts to summary.md."""
    _annotate_oscal(out_run, plan, run, tests)
    _annotate_summary(out_run, plan, run, multi)


def _annotate_oscal(out_run: Path, plan: "Plan", run: dict[str, Any], tests: list[dict[str, Any]]) -> None:
    path = out_run / OSCAL_FILE
    if not path.is_file():
        return
    doc = json.loads(path.read_text(encoding="utf-8"))
    ar = doc["assessment-results"]
    result = ar["results"][0]
    run_id = str(run["run_id"])
    labs_meta = run["merge"]["labs"]
    lab_uuid = {lab: stable_uuid(run_id, "lab", lab) for lab in plan.labs}
    shard_uuid = {(i.lab, i.shard_label): stable_uuid(run_id, "shard", i.lab, i.shard_label) for i in plan.inputs}
    items = result.setdefault("local-definitions", {}).setdefault("inventory-items", [])
    resources = ar.setdefault("back-matter", {}).setdefault("resources", [])
    for lab, group in plan.labs.items():
        vcs = [v for v in run["vcenters"] if v.get("lab") == lab]
        items.append({"uuid": lab_uuid[lab], "description": f"Lab {lab}: the vCenter pair "
                      f"{', '.join(str(v.get('name')) for v in vcs)} of inventory {group[0].run.get('inventory')}",
                      "props": [_prop("lab", lab), _prop("lab-verdict", labs_meta[lab]["overall"]),
                                *(_prop("vcenter-instance-uuid", v.get("instance_uuid")) for v in vcs
                                  if v.get("instance_uuid"))]})
    for item in plan.inputs:
        copy = f"inputs/{item.slug}/{MANIFEST}"
        resource_uuid = stable_uuid(run_id, "resource", copy)
        resources.append({"uuid": resource_uuid, "title": f"manifest of shard {item.shard_label} of lab {item.lab}",
                          "props": [_prop("run-id", item.run.get("run_id")), _prop("source-path", item.path)],
                          "rlinks": [{"href": uri_reference(copy), "media-type": "text/plain",
                                      "hashes": [{"algorithm": "SHA-256", "value": item.manifest_sha256}]}]})
        items.append({"uuid": shard_uuid[(item.lab, item.shard_label)],
                      "description": f"Shard {item.shard_label} of lab {item.lab}: run {item.run.get('run_id')}",
                      "props": [_prop("lab", item.lab), _prop("shard", item.shard_label),
                                _prop("run-id", item.run.get("run_id")), _prop("manifest-sha256", item.manifest_sha256),
                                _prop("signature", item.signature)],
                      "links": [{"href": f"#{resource_uuid}", "rel": "reference", "text": "its manifest"}]})
    where = {t["nodeid"]: (t.get("lab"), t.get("shard")) for t in tests}
    vc_lab = {stable_uuid(run_id, "vcenter", str(v.get("name"))): v.get("lab") for v in run["vcenters"]}  # as oscal.py
    for observation in result.get("observations") or []:
        nodeid = next((p["value"] for p in observation.get("props", []) if p["name"] == "nodeid"), None)
        lab, shard = where.get(nodeid, (None, None))
        subjects = [s for s in observation.get("subjects", []) if vc_lab.get(s.get("subject-uuid"), lab) == lab]
        observation["subjects"] = subjects  # a test observed its own lab's vCenters, never the other labs'
        if lab in lab_uuid:
            subjects.append({"subject-uuid": lab_uuid[lab], "type": "inventory-item", "title": f"lab {lab}"})
        if (lab, shard) in shard_uuid:
            subjects.append({"subject-uuid": shard_uuid[(lab, shard)], "type": "inventory-item",
                             "title": f"shard {shard} of lab {lab}"})
    if len(plan.labs) > 1:
        for finding in result.get("findings") or []:
            rule = next((p["value"] for p in finding.get("props", []) if p["name"] == "rule-id"), None)
            finding["props"] += [_prop("lab-verdict", f"{lab}: {labs_meta[lab]['verdicts'].get(rule)}") for lab in plan.labs]
    result["props"] = [*result.get("props", []), _prop("merged-shards", len(plan.inputs)),
                       _prop("partial", "true" if plan.partial else "false")]
    if plan.partial:
        result["remarks"] = (result.get("remarks", "") + "\n\nPartial merge (--allow-partial): "
                             + "; ".join(plan.partial)).strip()
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _annotate_summary(out_run: Path, plan: "Plan", run: dict[str, Any], multi: bool) -> None:
    path = out_run / "summary.md"
    if not path.is_file():
        return
    meta = run["merge"]
    lines = ["", "## Merged shards", ""]
    if plan.partial:
        lines += ["**Partial merge (--allow-partial):**", *(f"- {r}" for r in plan.partial), ""]
    for lab, info in meta["labs"].items():
        lines.append(f"- lab `{lab}`: {info['overall']} (shards {', '.join(info['shards'])})")
    lines.append(f"- overall: {meta['overall']}")
    if multi:
        lines += ["", "| rule | overall | " + " | ".join(meta["labs"]) + " |",
                  "|---|---|" + "---|" * len(meta["labs"])]
        for rule, verdict in meta["verdicts"].items():
            lines.append(f"| {rule} | {verdict} | " + " | ".join(info["verdicts"].get(rule, "")
                                                                 for info in meta["labs"].values()) + " |")
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
