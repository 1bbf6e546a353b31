"""harness/data/controls.yaml maps every catalogue rule, with known controls and a reason."""

from __future__ import annotations

import re

from harness.evidence.oscal import load_controls
from harness.evidence.verdicts import load_catalogue

CONTROL = re.compile(r"^[A-Z]{2}-\d{1,2}(\(\d{1,2}\))?$")


def test_every_rule_has_a_mapping() -> None:
    mapping = load_controls()
    rule_ids = {r.id for r in load_catalogue()}
    missing = sorted(rule_ids - set(mapping.rules))
    assert missing == [], f"rules without a control mapping: {missing}"
    unknown = sorted(set(mapping.rules) - rule_ids)
    assert unknown == [], f"mapping for rules not in the catalogue: {unknown}"


def test_each_mapping_names_defined_controls_and_one_line_rationale() -> None:
    mapping = load_controls()
    for rule_id, (controls, rationale) in mapping.rules.items():
        assert controls, rule_id
        assert len(set(controls)) == len(controls), rule_id
        for control in controls:
            assert CONTROL.match(control), (rule_id, control)
            assert control in mapping.titles, f"{rule_id}: {control} has no title under `controls`"
        assert rationale and "\n" not in rationale and len(rationale) <= 160, rule_id


def test_every_defined_control_is_used() -> None:
    mapping = load_controls()
    used = {c for controls, _ in mapping.rules.values() for c in controls}
    assert set(mapping.titles) == used


def test_core_mappings() -> None:
    """Spot checks an assessor would expect."""
    mapping = load_controls()
    assert "SC-28" in mapping.controls_for("DATA-AT-REST")
    assert "SC-8" in mapping.controls_for("DATA-IN-FLIGHT")
    assert {"AC-3", "AC-6"} <= set(mapping.controls_for("PRIV-DECRYPT"))
    assert "CP-10" in mapping.controls_for("PUSH-HA")
    assert all("SC-12" in c or "SC-12(2)" in c for c in [mapping.controls_for("KMS-GENERATE")])
