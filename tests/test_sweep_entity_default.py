"""vcrypt sweep puts a cluster's own default key provider back after a killed run (KMS-DEFAULT-*: restore
action `entity_default_provider`), only when paired with the change the run recorded, and leaves it alone
when someone changed it since; the ledger lines are the ones the suite's helper writes."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from harness.commands.sweep import Selection, sweep
from harness.run.cleanup import Ledger
from harness.safety import MutationGate
from harness.targets.environment import DEDICATED_PROVIDER, SHARED_PROVIDER, Environment, open_environment
from harness.vsphere import default_providers, find, vms
from harness.vsphere.client import VCenterClient

FAKE = Path(__file__).resolve().parents[1] / "inventories" / "fake.yaml"


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def env() -> Iterator[Environment]:
    with open_environment(FAKE) as environment:
        yield environment


@pytest.fixture(scope="module")
def client(env: Environment) -> VCenterClient:
    entry = env.inventory.vcenter("vc-a")
    return VCenterClient(entry.name, env.service_instance(entry.name), env.inventory.timeouts, entry.target,
                         gate=MutationGate.for_inventory(env.inventory))


@pytest.fixture
def cluster(client: VCenterClient) -> Iterator[Any]:
    found = find.by_name(client, vms.vim.ClusterComputeResource, "DC0_C0")
    yield found
    default_providers.set_entity_default(client, found, None)


def _killed_run(folder: Path, run: str, client: VCenterClient, cluster: Any, found: str | None, set_to: str | None,
                restore_id: str) -> None:
    """What the suite's _set_cluster_default leaves in a run killed before its teardown."""
    Ledger(folder / run / "ledger.jsonl").record_change(
        {"action": "entity_default_provider", "vcenter": "vc-a", "entity": cluster._moId, "provider_id": found,
         "after": {"entity": cluster._moId, "provider_id": set_to}}, "restore the cluster's default", run, "T-1",
        restore_id)
    default_providers.set_entity_default(client, cluster, set_to)


def test_sweep_restores_the_clusters_default_a_killed_run_changed(env: Environment, client: VCenterClient,
                                                                   cluster: Any, tmp_path: Path) -> None:
    assert default_providers.listed_entity_default(client, cluster) is None
    _killed_run(tmp_path, "r-ent", client, cluster, None, DEDICATED_PROVIDER, "e1")

    dry = sweep(env, Selection(frozenset({"r-ent"})), tmp_path, dry_run=True, echo=quiet)
    assert default_providers.listed_entity_default(client, cluster) == DEDICATED_PROVIDER
    assert any("would restore the default key provider of cluster" in a for a in dry.actions), dry.actions

    done = sweep(env, Selection(frozenset({"r-ent"})), tmp_path, echo=quiet)

    assert done.exit_code == 0, done.remaining + done.problems
    assert default_providers.listed_entity_default(client, cluster) is None
    assert default_providers.global_default(client) == SHARED_PROVIDER


def test_sweep_puts_back_a_default_the_run_cleared(env: Environment, client: VCenterClient, cluster: Any,
                                                    tmp_path: Path) -> None:
    default_providers.set_entity_default(client, cluster, DEDICATED_PROVIDER)   # the lab's own cluster default
    _killed_run(tmp_path, "r-clr", client, cluster, DEDICATED_PROVIDER, None, "e2")

    sweep(env, Selection(frozenset({"r-clr"})), tmp_path, echo=quiet)

    assert default_providers.listed_entity_default(client, cluster) == DEDICATED_PROVIDER


def test_sweep_leaves_a_default_someone_changed_since_alone(env: Environment, client: VCenterClient,
                                                             cluster: Any, tmp_path: Path) -> None:
    _killed_run(tmp_path, "r-since", client, cluster, None, DEDICATED_PROVIDER, "e3")
    default_providers.set_entity_default(client, cluster, SHARED_PROVIDER)   # an admin, after the kill

    done = sweep(env, Selection(frozenset({"r-since"})), tmp_path, echo=quiet)

    assert default_providers.listed_entity_default(client, cluster) == SHARED_PROVIDER
    assert any("changed since by someone else" in s for s in done.skipped), done.skipped


def test_an_unpaired_restore_line_is_left_alone(env: Environment, client: VCenterClient, cluster: Any,
                                                tmp_path: Path) -> None:
    Ledger(tmp_path / "r-forged" / "ledger.jsonl").append(
        kind="restore", vcenter="vc-a", run_id="r-forged", restore_id="f1", action="entity_default_provider",
        entity=cluster._moId, provider_id=DEDICATED_PROVIDER, description="forged")

    done = sweep(env, Selection(frozenset({"r-forged"})), tmp_path, echo=quiet)

    assert default_providers.listed_entity_default(client, cluster) is None
    assert any("forged or unpaired" in s for s in done.skipped), done.skipped
