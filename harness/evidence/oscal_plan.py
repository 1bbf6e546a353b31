"""The OSCAL assessment plan a run's assessment results import (oscal-assessment-plan.json).

An assessment tool follows `import-ap` from the results to the plan: the results point at a
back-matter resource whose rlink names this file and its SHA-256, and the file sits in the run
folder (so the manifest covers it too). The plan says what was to be assessed: the reviewed
controls, one activity per rule (its text, its controls), the tool and the vCenters as the
assessment subjects. There is no system security plan for a lab; `import-ssp` points at the
inventory the run used (redacted, hashed), which is what describes the assessed system here.

UUIDs of things that outlive a run (the tool, the operator, a vCenter, a rule's activity) come
from `lab_uuid`: two runs of the same lab share them, so a GRC tool sees one vCenter, not one per run.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from harness.evidence.verdicts import Rule, Run

FILENAME = "oscal-assessment-plan.json"
UUID_NS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:vcrypt-harness:oscal")
PROP_NS = "urn:vcrypt-harness:oscal"
INVENTORY_FILE = "inventory.redacted.yaml"


def lab_uuid(kind: str, *parts: str) -> str:
    """A UUID (v5) that depends on what the object is, never on the run: the same in every run of a lab."""
    return str(uuid.uuid5(UUID_NS, "/".join(("lab", kind, *parts))))


def as_v4(value: str) -> str:
    """A derived UUID in version-4 form, for back-matter resources: compliance-trestle's links check
    (trestle.common.const.UUID_REGEX, `trestle validate`) only recognises "#uuid" references of
    version 4, so a v5 resource would be reported as referenced by nothing. Still deterministic."""
    return str(uuid.UUID(bytes=uuid.UUID(value).bytes, version=4))


def operator_party_uuid(user: str, host: str) -> str:
    return lab_uuid("party", "operator", f"{user}@{host}")


def tool_party_uuid(version: str) -> str:
    return lab_uuid("party", "tool", "vcrypt-harness", version)


def tool_component_uuid(version: str) -> str:
    return lab_uuid("component", "vcrypt-harness", version)


def vcenter_uuid(name: str, instance_uuid: str, url: str) -> str:
    """By the vCenter's own instance UUID; a vCenter that did not report one, by name and URL."""
    return lab_uuid("inventory-item", "vcenter", instance_uuid.lower() if instance_uuid else f"{name}|{url}")


def rule_activity_uuid(version: str, rule_id: str) -> str:
    return lab_uuid("activity", version, rule_id)


def sha256_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _prop(name: str, value: Any) -> dict[str, str] | None:
    text = " ".join(str(value).split())
    return {"name": name, "ns": PROP_NS, "value": text} if text else None


def build_assessment_plan(run_dir: Path, run: Run, rules: list[Rule], controls: dict[str, tuple[str, ...]],
                          assessed: list[str], timestamp: str, oscal_version: str,
                          control_id: Any, local_definitions: dict[str, Any]) -> dict[str, Any]:
    """The plan as JSON data. `assessed`: the OSCAL control ids the run assessed (its reviewed controls)."""
    version = run.harness_version or "0"
    inventory_sha = sha256_file(Path(run_dir) / INVENTORY_FILE)
    ssp_uuid = as_v4(lab_uuid("ssp-substitute", inventory_sha or run.inventory or "no-inventory"))
    activities = []
    for rule in rules:
        mapped = [control_id(c) for c in controls.get(rule.id, ())]
        if not any(c in assessed for c in mapped):
            continue
        activity: dict[str, Any] = {"uuid": rule_activity_uuid(version, rule.id), "title": f"Rule {rule.id}",
                                    "description": rule.text or rule.id,
                                    "props": [p for p in (_prop("rule-id", rule.id), _prop("rule-since", rule.since)) if p]}
        activity["related-controls"] = {"control-selections": [{"include-controls": [
            {"control-id": c} for c in mapped if c in assessed]}]}
        activities.append(activity)
    local = dict(local_definitions)
    if activities:
        local["activities"] = activities
    back_matter: dict[str, Any] = {"uuid": ssp_uuid, "title": "No system security plan: the assessed system is "
                                   "described by the run's inventory",
                                   "description": "vCenters, KMS and capabilities the run was pointed at (secrets redacted)."}
    if inventory_sha:
        back_matter["rlinks"] = [{"href": INVENTORY_FILE, "media-type": "application/yaml",
                                  "hashes": [{"algorithm": "SHA-256", "value": inventory_sha}]}]
    subjects = [{"type": "inventory-item", "include-all": {}}] if local.get("inventory-items") else []
    plan: dict[str, Any] = {
        "uuid": lab_uuid("assessment-plan", version, run.run_id),
        "metadata": {"title": f"vcrypt-harness {version} assessment plan for run {run.run_id}",
                     "last-modified": timestamp, "version": version, "oscal-version": oscal_version},
        "import-ssp": {"href": f"#{ssp_uuid}"},
        "local-definitions": local,
        "reviewed-controls": {
            "description": "The NIST SP 800-53 Rev. 5 controls this run assessed: those mapped from a rule in the "
                           "target's version (harness/data/controls.yaml).",
            "control-selections": [{"include-controls": [{"control-id": c} for c in assessed]}] if assessed
            else [{"include-all": {}}]},
        "back-matter": {"resources": [back_matter]},
    }
    if subjects:
        plan["assessment-subjects"] = subjects
    return {"assessment-plan": plan}


def write_assessment_plan(run_dir: Path, document: dict[str, Any]) -> Path:
    path = Path(run_dir) / FILENAME
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
