"""How the harness reads host key caches (harness/vsphere/hosts.py key_cache_read): the documented per-host key
status (CryptoManagerHost.GetCryptoKeyStatus) where the session's API and every host are at 8.0.1 or later,
ListKeys before; a status that leaves a key unanswered is an error, never an empty cache."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from harness.evidence.recorder import Recorder, reset_recorder, use_recorder
from harness.safety import MutationGate
from harness.targets.environment import Environment, open_environment
from harness.vsphere import hosts
from harness.vsphere.client import VCenterClient
from tests.fakevc.conftest import make_vm
from tests.fakevc.test_hosts_key_push import encrypt, reconfigure_cluster
from tests.fakevc.test_plumbing import cluster_of, fresh_fake
from tests.test_run_fake import _run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def env() -> Iterator[Environment]:
    with open_environment() as environment:
        yield environment


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder(test_id="t", nodeid="n")
    token = use_recorder(recorder)
    yield recorder
    reset_recorder(token)


def _client(si: Any) -> VCenterClient:
    return VCenterClient("vc-private", si, None, "fake", gate=MutationGate(allow_mutations=True))


def _methods(world: Any) -> set[str]:
    return {method for vc in world.vcenters.values() for _, method in vc.call_log}


def _pushed_key(si: Any) -> tuple[Any, tuple[str, str]]:
    """A VM encrypted on the cluster's first host with HA off: its key is on that host only."""
    cluster = cluster_of(si)
    reconfigure_cluster(cluster, ha=False)
    machine = make_vm(si, host=cluster.host[0])
    key_id = encrypt(si, machine)
    return cluster, (machine.config.keyId.providerId.id, key_id)


@pytest.mark.parametrize("version, method", [("8.0.2", "GetCryptoKeyStatus"), ("7.0.3", "ListKeys")])
def test_the_read_follows_the_api_version(env: Environment, recorder: Recorder, version: str, method: str) -> None:
    with fresh_fake(env, version=version, vms=0) as (world, si):
        cluster, key = _pushed_key(si)
        client = _client(si)
        read = hosts.key_cache_read(client, cluster.host)
        assert (read.method, read.documented) == (method, version == "8.0.2"), read
        world_calls_before = _methods(world)
        caches = hosts.key_caches_when(client, cluster.host, [key], lambda c: True, 0, read)
        assert hosts.holders(caches, key) == {cluster.host[0]._moId}
        called = _methods(world) - world_calls_before
        assert method in called and ({"ListKeys", "GetCryptoKeyStatus"} - {method}).isdisjoint(called), called
    assert any(n["label"] == f"host key caches read with {method}" for n in recorder.notes)


def test_a_host_older_than_801_keeps_listkeys_and_says_which(env: Environment, recorder: Recorder) -> None:
    with fresh_fake(env, version="8.0.2", vms=0) as (world, si):
        vc = next(iter(world.vcenters.values()))
        vc.cluster.hosts[-1].esx_version = "7.0.3"
        read = hosts.key_cache_read(_client(si), cluster_of(si).host)
        assert not read.documented and vc.cluster.hosts[-1].name in read.why and "7.0.3" in read.why


def test_a_key_left_unanswered_is_an_error_not_an_empty_cache(env: Environment, recorder: Recorder,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.fakevc.model.host import HostCryptoManager
    with fresh_fake(env, version="8.0.2", vms=0) as (_, si):
        cluster, key = _pushed_key(si)
        client = _client(si)
        monkeypatch.setattr(HostCryptoManager, "GetCryptoKeyStatus", lambda self, ctx, keys=None: [])
        with pytest.raises(hosts.IncompleteKeyStatus, match=key[1]):
            hosts.key_cache(client, cluster.host[1], [key], documented=True)


def test_on_an_80_lab_that_confirms_nothing_push_verdicts_are_demonstrated_and_can_fail(tmp_path: Path) -> None:
    """fake-80.yaml as a real 8.0.2 pair: nothing UNCONFIRMED asserted (models_unconfirmed: false), and vCenter
    pushing keys to every host without HA (push-no-ha-everywhere). PUSH-* are verdicts, not `unconfirmed:`
    skips: PUSH-NO-HA fails on the defect, PUSH-HA and PUSH-DRS (which it does not break) pass."""
    data = yaml.safe_load((ROOT / "inventories" / "fake-80.yaml").read_text())
    for entry in data["vcenters"]:
        entry["fake"] = {"models_unconfirmed": False, "defects": ["push-no-ha-everywhere"]}
    inventory = tmp_path / "strict-80.yaml"
    inventory.write_text(yaml.safe_dump(data))
    proc, run_dir = _run(tmp_path, "--inventory", str(inventory), "--rules", "PUSH-NO-HA,PUSH-HA,PUSH-DRS", "-n", "0")
    assert proc.returncode == 1, proc.stdout[-3000:]
    verdicts = {rule: v for rule, v in json.loads((run_dir / "run.json").read_text())["verdicts"].items()
                if v != "not run"}
    assert verdicts == {"PUSH-NO-HA": "failed", "PUSH-HA": "passed", "PUSH-DRS": "passed"}, verdicts
    failed = [t for t in json.loads((run_dir / "results.json").read_text())["tests"] if t["outcome"] == "failed"]
    assert [t["rules"] for t in failed] == [["PUSH-NO-HA"]] and "pushed to other hosts" in failed[0]["message"]
