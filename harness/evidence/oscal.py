"""Write the run as an OSCAL 1.1 assessment-results document.

Auditors' tooling (GRC platforms, compliance-trestle) ingests OSCAL, not our JSON. The
document is a pure function of the run folder: UUIDs are uuid5 of the run id plus a
test or rule id and every timestamp comes from the run, so rewriting it gives the same
bytes and the manifest stays valid. What outlives a run (the operator and the tool as
parties, the tool component, each vCenter as an inventory item) gets a lab-wide uuid5
(harness/evidence/oscal_plan.py), so two runs of the same lab name the same things alike.
`import-ap` resolves: a back-matter resource whose rlink is oscal-assessment-plan.json (written
beside it, SHA-256 given); the run-level files are back-matter resources the result links to. Only the standard library and PyYAML are needed at
run time; the tests validate the output with compliance-trestle's models.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
import uuid
from urllib.parse import quote
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from harness.evidence.oscal_plan import (
    FILENAME as PLAN_FILENAME,
    as_v4,
    build_assessment_plan,
    operator_party_uuid,
    tool_component_uuid,
    tool_party_uuid,
    vcenter_uuid,
    write_assessment_plan,
)
from harness.evidence.provenance import provenance_view
from harness.evidence.verdicts import (
    NOT_APPLICABLE,
    VERDICT_EXPLANATIONS,
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
)

OSCAL_VERSION = "1.1.2"
FILENAME = "oscal-assessment-results.json"
# Files of the run folder the document points to as back-matter resources (with SHA-256).
RUN_FILES = ("report.html", "run.json", "results.json", "inventory.redacted.yaml", "junit.xml")
# Namespace for our own props, and the uuid5 namespace that makes every UUID reproducible.
PROP_NS = "urn:vcrypt-harness:oscal"
UUID_NS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:vcrypt-harness:oscal")


@dataclass(frozen=True)
class ControlMapping:
    """Rule id -> mapped NIST SP 800-53 controls (display form) and why."""

    titles: dict[str, str]
    rules: dict[str, tuple[tuple[str, ...], str]]

    def controls_for(self, rule_id: str) -> tuple[str, ...]:
        return self.rules.get(rule_id, ((), ""))[0]

    def rationale_for(self, rule_id: str) -> str:
        return self.rules.get(rule_id, ((), ""))[1]


def load_controls() -> ControlMapping:
    """Read harness/data/controls.yaml (the reviewed rule-to-control mapping)."""
    try:
        text = importlib.resources.files("harness").joinpath("data/controls.yaml").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, TypeError):
        text = (Path(__file__).resolve().parents[1] / "data" / "controls.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    titles = {str(k): str(v) for k, v in (data.get("controls") or {}).items()}
    rules = {
        str(rid): (tuple(str(c) for c in (m or {}).get("controls") or ()), str((m or {}).get("rationale") or ""))
        for rid, m in (data.get("rules") or {}).items()
    }
    return ControlMapping(titles=titles, rules=rules)


def oscal_control_id(control: str) -> str:
    """ "SC-12(1)" -> "sc-12.1", the id form of NIST's OSCAL 800-53 catalogue."""
    m = re.fullmatch(r"([A-Za-z]{2})-(\d+)(?:\((\d+)\))?", control.strip())
    if not m:
        raise ValueError(f"not an SP 800-53 control id: {control!r}")
    family, number, enhancement = m.groups()
    return f"{family.lower()}-{number}" + (f".{enhancement}" if enhancement else "")


def objective_id(control: str) -> str:
    """ "SC-12(1)" -> "sc-12.1_obj": the assessment-objective part of the control in NIST's OSCAL catalogue."""
    return f"{oscal_control_id(control)}_obj"


def uri_reference(path: str) -> str:
    """A run-folder path as an RFC 3986 relative reference (spaces, brackets... percent-encoded)."""
    return quote(path, safe="/")


def _sha256_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def stable_uuid(run_id: str, *parts: str) -> str:
    """Deterministic UUID (v5) so a rewrite of the same run gives the same document."""
    return str(uuid.uuid5(UUID_NS, "/".join((run_id, *parts))))


def _timestamp(value: str, fallback: str) -> str:
    """An RFC 3339 timestamp with a zone, as OSCAL requires; naive times are taken as UTC."""
    for candidate in (value, fallback):
        try:
            parsed = datetime.fromisoformat(candidate)
        except (TypeError, ValueError):
            continue
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.isoformat()
    return "1970-01-01T00:00:00+00:00"


def _clean(value: Any) -> str:
    """OSCAL prop values and titles: one line, no surrounding blanks."""
    return re.sub(r"\s+", " ", str(value)).strip()


def _prop(name: str, value: Any) -> dict[str, str] | None:
    text = _clean(value)
    return {"name": name, "ns": PROP_NS, "value": text} if text else None


def _props(*pairs: tuple[str, Any]) -> list[dict[str, str]]:
    return [p for p in (_prop(n, v) for n, v in pairs) if p]


def _with(obj: dict[str, Any], key: str, items: list[Any]) -> dict[str, Any]:
    """OSCAL arrays have min length 1: omit the key rather than write []."""
    if items:
        obj[key] = items
    return obj


class _Builder:
    """Assemble the document; one method per OSCAL part."""

    def __init__(
        self, run_dir: Path, run: Run, tests: list[TestResult], catalogue: list[Rule], mapping: ControlMapping
    ):
        self.run_dir, self.run, self.tests, self.catalogue, self.mapping = run_dir, run, tests, catalogue, mapping
        self.start = _timestamp(run.started_at, run.finished_at)
        self.end = _timestamp(run.finished_at, run.started_at)
        self.tool_uuid = tool_component_uuid(run.harness_version or "0")
        self.vc_uuids = {vc.name: vcenter_uuid(vc.name, vc.instance_uuid, vc.url) for vc in run.vcenters}
        self._evidence: dict[str, Evidence | None] = {}
        self._resources: dict[str, tuple[str, str] | None] = {}
        self.plan_uuid = as_v4(self.uuid("assessment-plan"))

    def uuid(self, *parts: str) -> str:
        return stable_uuid(self.run.run_id, *parts)

    def origin(self) -> list[dict[str, Any]]:
        return [{"actors": [{"type": "tool", "actor-uuid": self.tool_uuid}]}]

    def local_definitions(self) -> dict[str, Any]:
        tool = {
            "uuid": self.tool_uuid,
            "type": "software",
            "title": "vcrypt-harness",
            "description": "Acceptance harness that exercises vSphere VM encryption through the vSphere API "
            "and records every call as evidence.",
            "props": _props(("version", self.run.harness_version)),
            "status": {"state": "operational"},
        }
        if not tool["props"]:
            del tool["props"]
        items = []
        for vc in self.run.vcenters:
            item = {
                "uuid": self.vc_uuids[vc.name],
                "description": f"vCenter {vc.name} ({vc.target or self.run.target} target)",
                "props": _props(
                    ("vcenter-name", vc.name),
                    ("target-kind", vc.target or self.run.target),
                    ("url", vc.url),
                    ("product-version", vc.version),
                    ("build", vc.build),
                    ("api-version", vc.api_version),
                    ("instance-uuid", vc.instance_uuid),
                    ("tls-mode", vc.tls_mode),
                    *((f"esxi-host-{i + 1}", f"{h.get('name', '')} ESXi {h.get('version') or '?'} "
                       f"build {h.get('build') or '?'}") for i, h in enumerate(vc.hosts)),
                ),
            }
            items.append(item)
        return _with({"components": [tool]}, "inventory-items", items)

    def assessed_controls(self) -> list[str]:
        """OSCAL ids of the controls with a finding: mapped from a rule inside the target's version."""
        verdicts = rule_verdicts(self.catalogue, self.tests)
        ids = {c for r in self.catalogue if verdicts[r.id].verdict != NOT_APPLICABLE
               for c in self.mapping.controls_for(r.id)}
        return [oscal_control_id(c) for c in sorted(ids, key=_control_sort_key)]

    def reviewed_controls(self) -> dict[str, Any]:
        ids = self.assessed_controls()
        return {
            "description": "NIST SP 800-53 Rev. 5 controls assessed by this run: those mapped from a rule of the "
            "vcrypt-harness catalogue inside the target's version (harness/data/controls.yaml).",
            "control-selections": [{"include-controls": [{"control-id": c} for c in ids]}]
            if ids
            else [{"include-all": {}}],
        }

    def evidence(self, test: TestResult) -> Evidence | None:
        if test.nodeid not in self._evidence:
            self._evidence[test.nodeid] = load_evidence(self.run_dir, test)[0]
        return self._evidence[test.nodeid]

    def _test_vcenters(self, test: TestResult) -> list[str]:
        evidence = self.evidence(test)
        if evidence is not None:
            seen = [c.vcenter for c in evidence.calls] + [o.vcenter for o in evidence.observations]
            names = [n for n in dict.fromkeys(seen) if n in self.vc_uuids]
            if names:
                return names
        return list(self.vc_uuids)

    def _collected(self, test: TestResult) -> str:
        evidence = self.evidence(test)
        stamps = [c.started_at for c in evidence.calls if c.started_at] if evidence else []
        return _timestamp(max(stamps), self.end) if stamps else self.end

    def observation(self, test: TestResult) -> dict[str, Any]:
        description = f"Test {test.nodeid}: {test.status}."
        if test.message:
            description += f" {test.message}"
        evidence_path = test.evidence_file or "results.json"
        resource = self.resource_for(evidence_path)
        obs: dict[str, Any] = {
            "uuid": self.uuid("test", test.test_id or test.nodeid),
            "title": _clean(test.name or test.nodeid),
            "description": description,
            "props": _props(
                ("test-id", test.test_id),
                ("nodeid", test.nodeid),
                ("outcome", test.outcome),
                ("status", test.status),
                ("category", test.category or ""),
                ("rules", " ".join(test.rules)),
                ("duration-s", test.duration_s if test.duration_s is not None else ""),
            ),
            "methods": ["TEST"],
            "types": ["control-objective"],
            "origins": self.origin(),
            "relevant-evidence": [
                _with(
                    {
                        "href": uri_reference(evidence_path),
                        "description": "Recorded checks, vSphere API calls, property observations and KMIP reads of "
                        "this test." if test.evidence_file
                        else "Test outcome in the run's results file (the test recorded no evidence file).",
                    },
                    "links",
                    [{"href": f"#{resource}", "rel": "reference", "text": "file with its SHA-256"}] if resource else [],
                )
            ],
            "collected": self._collected(test),
        }
        subjects = [
            {"subject-uuid": self.vc_uuids[n], "type": "inventory-item", "title": f"vCenter {n}"}
            for n in self._test_vcenters(test)
        ]
        return _with(obs, "subjects", subjects)

    def findings(self, rule: Rule, verdict: RuleVerdict, obs_uuids: dict[str, str]) -> list[dict[str, Any]]:
        """One finding per control the rule maps to, targeting that control's assessment objective."""
        return [self.finding(rule, verdict, obs_uuids, control) for control in self.mapping.controls_for(rule.id)]

    def finding(self, rule: Rule, verdict: RuleVerdict, obs_uuids: dict[str, str], control: str) -> dict[str, Any]:
        controls = self.mapping.controls_for(rule.id)
        satisfied = verdict.verdict == "passed"
        reason = {"passed": "pass", "failed": "fail"}.get(verdict.verdict, "other")
        explanation = VERDICT_EXPLANATIONS.get(verdict.verdict, verdict.verdict)
        remarks = [f"{t.nodeid}: {t.status}" + (f" - {t.message}" if t.message else "") for t in verdict.tests]
        target: dict[str, Any] = {
            "type": "objective-id",
            "target-id": objective_id(control),
            "title": _clean(f"{control} objective, by rule {rule.id}: {verdict.verdict}"),
            "props": _props(("rule-id", rule.id), ("verdict", verdict.verdict), ("control-id", oscal_control_id(control))),
            "status": {"state": "satisfied" if satisfied else "not-satisfied", "reason": reason},
        }
        if remarks:
            target["status"]["remarks"] = "\n".join(remarks)
        finding: dict[str, Any] = {
            "uuid": self.uuid("rule", rule.id, control),
            "title": _clean(f"{control} ({self.mapping.titles.get(control, '')}): rule {rule.id}"),
            "description": f"{rule.text}\n\nVerdict: {verdict.verdict} - {explanation}.",
            "props": _props(
                ("rule-id", rule.id),
                ("verdict", verdict.verdict),
                ("rule-since", rule.since),
                ("rule-kind", rule.kind),
                ("rule-area", rule.area_title or rule.area),
                ("mapped-controls", " ".join(controls)),
            ),
            "origins": self.origin(),
            "target": target,
        }
        if self.mapping.rationale_for(rule.id):
            finding["remarks"] = f"Control mapping: {self.mapping.rationale_for(rule.id)}"
        related = [{"observation-uuid": obs_uuids[t.nodeid]} for t in verdict.tests if t.nodeid in obs_uuids]
        return _with(finding, "related-observations", related)

    # ---- provenance and back-matter ------------------------------------------------------------
    def resource_for(self, path: str) -> str | None:
        """The uuid of the back-matter resource for a run-folder file (registered on first use)."""
        if path not in self._resources:
            digest = _sha256_file(self.run_dir / path)
            self._resources[path] = (as_v4(self.uuid("resource", path)), digest) if digest else None
        entry = self._resources[path]
        return entry[0] if entry else None

    def back_matter(self) -> dict[str, Any]:
        plan: dict[str, Any] = {
            "uuid": self.plan_uuid,
            "title": "vcrypt-harness assessment plan",
            "description": "The plan this run carried out: every rule of the harness's rule catalogue "
            "(harness/data/rules.yaml), each tested by its suites, and each rule's mapping to NIST SP 800-53 Rev. 5 "
            "controls (harness/data/controls.yaml). The plan is part of the harness version named in the metadata.",
            "props": _props(("harness-version", self.run.harness_version), ("rules", len(self.catalogue))),
        }
        if not plan["props"]:
            del plan["props"]
        plan_digest = _sha256_file(self.run_dir / PLAN_FILENAME)
        if plan_digest:  # resolvable: the plan file beside this one, with its hash
            plan["rlinks"] = [{"href": PLAN_FILENAME, "media-type": "application/json",
                               "hashes": [{"algorithm": "SHA-256", "value": plan_digest}]}]
        for name in RUN_FILES:
            self.resource_for(name)
        resources = [plan]
        for path, entry in sorted(self._resources.items()):
            if entry is None:
                continue
            resources.append({
                "uuid": entry[0],
                "title": path,
                "rlinks": [{
                    "href": uri_reference(path),
                    "media-type": _media_type(path),
                    "hashes": [{"algorithm": "SHA-256", "value": entry[1]}],
                }],
            })
        return {"resources": resources}

    def run_file_links(self) -> list[dict[str, str]]:
        """The run-level files (report, run.json, results, JUnit, inventory) as links to their hashed resources."""
        links = []
        for name in RUN_FILES:
            resource = self.resource_for(name)
            if resource:
                links.append({"href": f"#{resource}", "rel": "reference", "text": name})
        return links

    def plan(self) -> dict[str, Any]:
        """The assessment plan this result imports (harness/evidence/oscal_plan.py)."""
        mapping = {r.id: self.mapping.controls_for(r.id) for r in self.catalogue}
        return build_assessment_plan(self.run_dir, self.run, self.catalogue, mapping, self.assessed_controls(),
                                     self.end, OSCAL_VERSION, oscal_control_id, self.local_definitions())

    def metadata(self) -> dict[str, Any]:
        prov = provenance_view(self.run.provenance)
        operator = prov["operator"]
        user = operator.get("user") or "unknown operator"
        host = operator.get("host") or ""
        operator_uuid = operator_party_uuid(user, host)
        tool_uuid = tool_party_uuid(self.run.harness_version or "0")
        harness = prov["harness"]
        meta: dict[str, Any] = {
            "title": _clean(f"vSphere VM encryption assessment results - run {self.run.run_id}"),
            "published": self.end,
            "last-modified": self.end,
            "version": self.run.harness_version or "0",
            "oscal-version": OSCAL_VERSION,
            "props": _props(
                ("run-id", self.run.run_id),
                ("harness-version", harness.get("version") or self.run.harness_version),
                ("git-commit", harness.get("git_commit")),
                ("git-dirty", "" if harness.get("git_dirty") in ("", None) else str(bool(harness["git_dirty"])).lower()),
                ("command-line", " ".join(prov["command_line"])),
                ("python-version", prov["python"]),
                *((f"{name.lower()}-version", version) for name, version in prov["packages"].items()),
                ("inventory-sha256", prov["inventory"].get("sha256")),
                ("fake-defects", " ".join(prov["fake_defects"]) or ("none" if prov["recorded"] else "")),
                ("kms-product", prov["kms_product"].get("product")),
                ("kms-version", prov["kms_product"].get("version")),
                ("signing", prov["signing"].get("statement")),
            ),
            "roles": [
                {"id": "assessor", "title": "Assessor (the operator who ran the harness)"},
                {"id": "assessment-tool", "title": "Assessment tool"},
            ],
            "parties": [
                _with({"uuid": operator_uuid, "type": "person", "name": _clean(f"{user}@{host}" if host else user)},
                      "props", _props(("user", user), ("host", host))),
                {"uuid": tool_uuid, "type": "organization", "name": f"vcrypt-harness {self.run.harness_version}".strip()},
            ],
            "responsible-parties": [
                {"role-id": "assessor", "party-uuids": [operator_uuid]},
                {"role-id": "assessment-tool", "party-uuids": [tool_uuid]},
            ],
        }
        return meta

    def document(self) -> dict[str, Any]:
        observations = [self.observation(t) for t in self.tests]
        obs_uuids = {t.nodeid: o["uuid"] for t, o in zip(self.tests, observations, strict=True)}
        verdicts = rule_verdicts(self.catalogue, self.tests)
        # A rule that does not describe the target's version is outside the assessed scope: no finding.
        findings = [f for r in self.catalogue if verdicts[r.id].verdict != NOT_APPLICABLE
                    for f in self.findings(r, verdicts[r.id], obs_uuids)]
        out_of_scope = [r.id for r in self.catalogue if verdicts[r.id].verdict == NOT_APPLICABLE]
        result: dict[str, Any] = {
            "uuid": self.uuid("result"),
            "title": _clean(f"vcrypt-harness run {self.run.run_id}"),
            "description": f"Acceptance run of the vSphere VM-encryption rules against a "
            f"{self.run.target or 'unknown'} target; one observation per test, one finding per catalogue rule.",
            "start": self.start,
            "end": self.end,
            "props": _props(("run-id", self.run.run_id), ("target-kind", self.run.target),
                            ("interrupted", "true" if self.run.interrupted else ""),
                            *(("out-of-scope-rule", rid) for rid in out_of_scope)),
            "local-definitions": self.local_definitions(),
            "reviewed-controls": self.reviewed_controls(),
            "links": self.run_file_links(),
        }
        _with(result, "observations", observations)
        _with(result, "findings", findings)
        if out_of_scope:
            result["remarks"] = ("Outside the assessed scope (the rules do not describe the target's vSphere "
                                 f"version; their tests were skipped by version): {', '.join(out_of_scope)}.")
        return {
            "assessment-results": {
                "uuid": self.uuid("assessment-results"),
                "metadata": self.metadata(),
                "import-ap": {"href": f"#{self.plan_uuid}"},
                "results": [result],
                "back-matter": self.back_matter(),
            }
        }


def _media_type(path: str) -> str:
    suffix = Path(path).suffix
    return {".json": "application/json", ".html": "text/html", ".xml": "application/xml",
            ".yaml": "application/yaml"}.get(suffix, "application/octet-stream")


def _control_sort_key(control: str) -> tuple[str, int, int]:
    m = re.fullmatch(r"([A-Za-z]{2})-(\d+)(?:\((\d+)\))?", control)
    return (m.group(1), int(m.group(2)), int(m.group(3) or 0)) if m else (control, 0, 0)


def _builder(run_dir: Path) -> _Builder:
    return _Builder(Path(run_dir), load_run(run_dir), load_results(run_dir), load_catalogue(), load_controls())


def build_assessment_results(run_dir: Path) -> dict[str, Any]:
    """The OSCAL document for a run folder, as plain JSON data."""
    return _builder(run_dir).document()


def write_oscal_results(run_dir: Path) -> Path:
    """Write oscal-assessment-plan.json, then oscal-assessment-results.json (which imports it by hash)."""
    write_assessment_plan(run_dir, _builder(run_dir).plan())
    path = Path(run_dir) / FILENAME
    text = json.dumps(build_assessment_results(run_dir), indent=2, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")
    return path
