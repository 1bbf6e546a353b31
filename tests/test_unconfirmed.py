"""Behaviours vSphere leaves unconfirmed are asserted only where the target confirms them (issue 12 item 8)."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness import unconfirmed
from harness.inventory.schema import InventoryError, parse_inventory

ROOT = Path(__file__).resolve().parent.parent


def _inventory(**entry):
    base = {"name": "vc-a", "target": "real", "host": "vc.example", "password_env": "VC_PW"}
    return parse_inventory({"vcenters": [{**base, **entry}]}, Path("inv.yaml"))


def test_a_real_vcenter_confirms_only_what_its_inventory_lists():
    inv = _inventory(confirmed=["kmip-key-state-active"])
    assert unconfirmed.confirmed_on(inv, "vc-a", "kmip-key-state-active")
    assert not unconfirmed.confirmed_on(inv, "vc-a", "host-key-cache-through-vcenter")


def test_the_default_fake_models_every_behaviour_and_a_strict_fake_none():
    fake = parse_inventory({"vcenters": [{"name": "vc-a", "target": "fake"}]}, Path("f.yaml"))
    strict = parse_inventory({"vcenters": [{"name": "vc-a", "target": "fake", "fake": {"models_unconfirmed": False}}]},
                             Path("f.yaml"))
    for behaviour in unconfirmed.BEHAVIOURS:
        assert unconfirmed.confirmed_on(fake, "vc-a", behaviour)
        assert not unconfirmed.confirmed_on(strict, "vc-a", behaviour)


def test_gate_records_and_skips_with_the_unconfirmed_category_prefix():
    from harness.evidence.recorder import Recorder, reset_recorder, use_recorder
    recorder = Recorder(test_id="t", nodeid="n")
    token = use_recorder(recorder)
    try:
        with pytest.raises(pytest.skip.Exception, match=r"^unconfirmed: "):
            unconfirmed.gate(_inventory(), "vc-a", "kms-alarm-clears-on-vendor-event", observed={"after": "red"})
        unconfirmed.gate(_inventory(confirmed=["kms-alarm-clears-on-vendor-event"]), "vc-a",
                         "kms-alarm-clears-on-vendor-event")
    finally:
        reset_recorder(token)
    labels = [n["label"] for n in recorder.notes]
    assert labels[0].startswith("observed, not asserted") and labels[1].startswith("verdict rests on an UNCONFIRMED")


def test_observe_then_skip_runs_the_action_once_and_records_the_fault():
    calls = []

    def action():
        calls.append(1)
        raise RuntimeError("refused somehow")
    with pytest.raises(pytest.skip.Exception):
        unconfirmed.observe_then_skip(_inventory(), "vc-a", "migrate-encryption-not-relaxable", action)
    assert calls == [1]
    unconfirmed.observe_then_skip(_inventory(confirmed=["migrate-encryption-not-relaxable"]), "vc-a",
                                  "migrate-encryption-not-relaxable", action)
    assert calls == [1]   # confirmed: the caller asserts the refusal itself


@pytest.mark.parametrize("entry, problem", [
    ({"confirmed": ["no-such-behaviour"]}, "vc-a.confirmed: unknown behaviour 'no-such-behaviour'"),
    ({"locator_thumbprint": "AB:CD"}, "locator_thumbprint: must be a SHA-1 fingerprint"),
    ({"clone_crypto_shape": "bogus"}, "vc-a.clone_crypto_shape: Input should be 'disk-backing', 'vm-level' or 'relocate'"),
])
def test_bad_fidelity_keys_name_the_key(entry, problem):
    with pytest.raises(InventoryError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        _inventory(**entry)


def test_the_skip_category_is_known_to_the_plugin_and_the_verdicts():
    from harness.evidence.verdicts import SKIP_CATEGORIES as VERDICT_SKIPS
    from harness.run.plugin import SKIP_CATEGORIES
    assert SKIP_CATEGORIES["unconfirmed"] == "unconfirmed_skip" and "unconfirmed_skip" in VERDICT_SKIPS


def test_fake_lab_inventory_loads_with_its_demanding_knobs():
    from harness.inventory.schema import load_inventory
    inv = load_inventory(ROOT / "inventories" / "fake-lab.yaml")
    for vc in inv.vcenters:
        assert vc.fake.trust_peers is False and vc.fake.strict_policies and vc.fake.maintenance_hosts == 1
        assert vc.fake.models_unconfirmed is False
