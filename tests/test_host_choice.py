"""Hosts are picked only from the inventory's cluster, connected and not in maintenance mode (issue 21
point 5, issue 22): proven with the fake's own request log of which hosts a test changed.

Reproduced first: with the cluster's usable host already crypto-safe, the HOST-CRYPTO-MODE test
searched every host of the vCenter and made a disconnected cluster host crypto-safe (before the fix
placement kept disconnected hosts, and the test added hosts outside the cluster)."""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest
import yaml

from harness.run.cleanup import Ledger
from harness.run.fixtures import Scratch
from harness.safety import MutationGate
from harness.targets.environment import Environment, open_environment
from harness.inventory.schema import parse_inventory
from harness.vsphere import find, hosts, policies
from harness.vsphere.client import VCenterClient

REPO = Path(__file__).resolve().parents[1]
HOST_MODE_TEST = "test_a_crypto_operation_on_a_host_outside_encryption_mode_first_makes_it_crypto_safe"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Environment, Path]]:
    data = yaml.safe_load((REPO / "inventories" / "fake.yaml").read_text())
    log = tmp_path / "requests.jsonl"
    for vc in data["vcenters"]:
        vc.setdefault("fake", {}).update({"hosts": 3, "maintenance_hosts": 1})
    data["vcenters"][0]["fake"]["request_log"] = str(log)
    with open_environment(parse_inventory(data, tmp_path / "lab.yaml"), workdir=tmp_path / "env") as env:
        yield env, log


def _client(env: Environment) -> VCenterClient:
    return VCenterClient("vc-a", env.service_instance("vc-a"), env.inventory.timeouts, "fake",
                         gate=MutationGate(allow_mutations=True))


def _hosts_changed(log: Path, start: int) -> set[str]:
    """moIds of the hosts whose properties changed across a call, from the fake's own log."""
    changed = set()
    for line in log.read_text().splitlines()[start:]:
        entry = json.loads(line)
        changed |= {key.split(":")[0] for key in entry.get("changed", []) if key.split(":")[-1].endswith("HostSystem")}
    return changed


def _run_host_mode_test(env: Environment, tmp_path: Path) -> None:
    import suites.test_key_push as suite
    client = _client(env)
    place = find.placement_for(client, env.inventory.vcenter("vc-a"))
    state = SimpleNamespace(ledger=Ledger(tmp_path / "r-host" / "ledger.jsonl"), run_id="r-host",
                            inventory=env.inventory, names=itertools.count(1))
    scratch = Scratch(state, "T-host", "tests::host", "main")
    pols = policies.discover(env.pbm("vc-a"), None)
    try:
        getattr(suite, HOST_MODE_TEST)(scratch, client, place, env.kms_endpoints["shared"].provider_id, pols)
    finally:
        scratch.cleanup.run()


def test_placement_leaves_out_disconnected_and_maintenance_hosts(lab: tuple[Environment, Path]) -> None:
    env, _ = lab
    fake = env.fake_vcenter("vc-a")
    h0, h1, h2 = fake.cluster.hosts
    h1.connected = False
    assert h2.in_maintenance
    place = find.placement_for(_client(env), env.inventory.vcenter("vc-a"))
    assert [h._moId for h in place.hosts] == [h0.moid]


def test_host_crypto_mode_touches_only_usable_hosts_of_the_inventory_cluster(lab: tuple[Environment, Path],
                                                                             tmp_path: Path) -> None:
    env, log = lab
    fake = env.fake_vcenter("vc-a")
    h0, h1, h2 = fake.cluster.hosts
    h0.crypto_state = "safe"          # the cluster's one usable host is already crypto-safe
    h1.connected = False              # a disconnected cluster host, outside encryption mode
    outside = {h1.moid, h2.moid, fake.legacy_host.moid}   # disconnected, maintenance, standalone
    start = len(log.read_text().splitlines())

    with pytest.raises(pytest.skip.Exception, match="capability: .*no usable host"):
        _run_host_mode_test(env, tmp_path)

    assert not _hosts_changed(log, start) & outside, "a host outside the usable cluster hosts was changed"
    assert [h.crypto_state for h in (h1, h2, fake.legacy_host)] == ["incapable"] * 3

    # Positive control: once the cluster host is connected again, it is the one made crypto-safe.
    h1.connected = True
    start = len(log.read_text().splitlines())
    _run_host_mode_test(env, tmp_path)
    assert h1.crypto_state == "safe"
    assert _hosts_changed(log, start) <= {h0.moid, h1.moid} and h1.moid in _hosts_changed(log, start)
    assert [h.crypto_state for h in (h2, fake.legacy_host)] == ["incapable"] * 2


def _older_host_choice(env: Environment) -> tuple[list[str], list[str]]:
    """The older and newer hosts the host-version rules would put VMs on (test_clone's own helper)."""
    import suites.test_clone as suite
    client = _client(env)
    entry = env.inventory.vcenter("vc-a")
    place = find.placement_for(client, entry)
    old, new = suite._old_and_new_hosts(client, place, entry)
    names = hosts.names(client, old + new)
    return [names[h._moId] for h in old], [names[h._moId] for h in new]


def test_an_older_host_outside_the_inventory_cluster_is_used_only_when_the_inventory_names_it(
        lab: tuple[Environment, Path]) -> None:
    """Reproduced first: CLONE-HOSTVER and XVC-HOSTVER searched every host of the vCenter for one older
    than 7.0 and created VMs on it, whatever cluster (or datacenter) it belonged to: on a real lab, a
    host the user never gave the run. Now: the cluster's usable hosts, plus `older_hosts` by name."""
    env, _ = lab
    env.inventory.vcenter("vc-a").older_hosts.clear()            # as a lab inventory that names none
    old, new = _older_host_choice(env)
    assert old == [] and "DC0_H_legacy" not in new, (old, new)   # the standalone 6.7 host is someone else's
    env.inventory.vcenter("vc-a").older_hosts.append("DC0_H_legacy")
    old, _ = _older_host_choice(env)
    assert old == ["DC0_H_legacy"]
