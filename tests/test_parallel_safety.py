"""The `serial` lock is taken exactly where xdist workers share a target (not on per-worker fakes)."""
from __future__ import annotations

from pathlib import Path

from harness.run.fixtures import workers_share_state
from harness.inventory.schema import load_inventory

INVENTORIES = Path(__file__).resolve().parent.parent / "inventories"


def test_workers_on_the_fake_with_an_embedded_kms_share_nothing():
    assert workers_share_state(load_inventory(INVENTORIES / "fake.yaml")) is False


def test_workers_on_a_vcsim_or_real_vcenter_share_it_and_take_the_lock():
    assert workers_share_state(load_inventory(INVENTORIES / "vcsim.yaml")) is True
