"""The lab's key provider is used, never owned (issue 12, item 2).

The fake starts with a lab-owned provider whose server has a name the harness would not have
chosen (`fake: {lab_provider: ...}`); after a full mutating run of every suite it must be byte for
byte what it was (its KmipClusterInfo serialized by pyVmomi, and its trust material), read from
the fake's own log rather than from the harness. A seeded defect that changes it proves the
comparison can fail.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.run import lab_providers
from harness.targets.environment import open_environment
from harness.inventory.schema import parse_inventory
from harness.safety import MutationGate, MutationRefused
from harness.vsphere import keys
from harness.vsphere.client import VCenterClient

REPO = Path(__file__).resolve().parents[1]
FAKE = REPO / "inventories" / "fake.yaml"
LAB = {"id": "lab-kms-01", "server_name": "kms-node-a"}


def _inventory(tmp_path: Path, log: Path, defects: list[str] | None = None) -> Path:
    data = yaml.safe_load(FAKE.read_text(encoding="utf-8"))
    for entry in data["vcenters"]:
        entry["fake"] = {"lab_provider": LAB, "request_log": str(log), "request_log_per_call": False,
                         "defects": defects or []}
    path = tmp_path / "lab-provider.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _run(tmp_path: Path, inventory: Path, run_id: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", "run", "--inventory",
                           str(inventory), "--reports", str(tmp_path / "reports"), "--run-id", run_id, *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=1200)


def _worlds(log: Path, event: str) -> dict[str, dict[str, Any]]:
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    return {e["vcenter"]: e for e in entries if e.get("event") == event}


def test_the_lab_provider_is_byte_for_byte_the_same_after_a_full_run(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    proc = _run(tmp_path, _inventory(tmp_path, log), "lab-provider-full")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

    opened, closed = _worlds(log, "open"), _worlds(log, "close")
    for name in ("vc-a", "vc-b"):
        before = opened[name]["providers"][LAB["id"]]
        assert f"<name>{LAB['server_name']}</name>" in before and "shared-kms" not in before
        assert closed[name]["providers"][LAB["id"]] == before, f"{name}: the lab provider changed"
        assert closed[name]["trust"][LAB["id"]] == opened[name]["trust"][LAB["id"]], f"{name}: trust re-uploaded"
    tests = json.loads((tmp_path / "reports" / "lab-provider-full" / "results.json").read_text())["tests"]
    used = [t for t in tests if t["name"] == "test_using_the_key_provider_for_keys_leaves_it_byte_for_byte_the_same"]
    assert [t["outcome"] for t in used] == ["passed"], "the run must actually use the lab provider for keys"
    ledger = [json.loads(line) for line in
              (tmp_path / "reports" / "lab-provider-full" / "ledger.jsonl").read_text().splitlines()]
    claimed = [e for e in ledger if e.get("kind") == "key_provider" and e.get("provider_id") == LAB["id"]]
    assert claimed == [], "the run must not claim the lab's provider as something it created"


def test_a_run_that_modifies_the_lab_provider_is_caught(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    proc = _run(tmp_path, _inventory(tmp_path, log, ["kms-lab-provider-modified"]), "lab-provider-defect",
                "--rules", "KMS-GENERATE")
    assert proc.returncode != 0, proc.stdout[-3000:]

    opened, closed = _worlds(log, "open"), _worlds(log, "close")
    assert closed["vc-a"]["providers"][LAB["id"]] != opened["vc-a"]["providers"][LAB["id"]]
    tests = json.loads((tmp_path / "reports" / "lab-provider-defect" / "results.json").read_text())["tests"]
    assert any(t["outcome"] == "failed" and "byte_for_byte" in t["name"] for t in tests), tests


@pytest.fixture(scope="module")
def lab_env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("lab-env")
    inventory = parse_inventory(yaml.safe_load(_inventory(folder, folder / "log.jsonl").read_text()),
                                folder / "i.yaml")
    with open_environment(inventory, workdir=folder / "env") as env:
        yield env


def _client(env: Any) -> VCenterClient:
    return VCenterClient("vc-a", env.service_instance("vc-a"), env.inventory.timeouts, "fake",
                         gate=MutationGate.for_inventory(env.inventory))


def test_the_shared_endpoint_is_the_fakes_lab_provider(lab_env: Any) -> None:
    endpoint = lab_env.kms_endpoints["shared"]
    assert (endpoint.provider_id, endpoint.server_name, endpoint.lab_owned) == (LAB["id"], LAB["server_name"], True)


def test_the_harness_never_adds_a_server_to_or_uploads_to_the_lab_provider(lab_env: Any) -> None:
    """The old trust flow added `shared-kms` to a lab provider with another server name and re-uploaded
    vCenter's client certificate; now the gate refuses both, even with mutations allowed."""
    client = _client(lab_env)
    before = lab_providers.use(client, LAB["id"], LAB["server_name"], "kms.shared")
    own_name = dataclasses.replace(lab_env.kms_endpoints["shared"], server_name="shared-kms")

    with pytest.raises(MutationRefused, match=f"key provider {LAB['id']} .* belongs to the lab"):
        keys.register_provider(client, own_name, LAB["id"], make_default=False)
    with pytest.raises(MutationRefused, match="belongs to the lab"):
        keys.remove_provider(client, LAB["id"])

    lab_providers.require_unchanged(client, LAB["id"], before)
    assert keys.generate_key(client, LAB["id"])[0] == LAB["id"], "using it for keys stays allowed"


def test_a_missing_lab_provider_or_server_is_an_environment_error_naming_it(lab_env: Any) -> None:
    client = _client(lab_env)
    with pytest.raises(lab_providers.LabProviderMissing, match="no key provider 'nope' \\(kms.shared\\)"):
        lab_providers.use(client, "nope", None, "kms.shared")
    with pytest.raises(lab_providers.LabProviderMissing, match="has no server 'other'.*it has kms-node-a"):
        lab_providers.use(client, LAB["id"], "other", "kms.shared")


def test_a_provider_the_harness_needs_for_itself_is_marked_ledgered_and_only_its_server_removed(
        lab_env: Any, tmp_path: Path) -> None:
    """When the KMS is not the lab's (`registered: false`, or embedded on vcsim/real), the session
    registers it under this run's mark, ledgers it, and removes only the server it added."""
    from types import SimpleNamespace

    from harness.run.cleanup import Ledger
    from harness.run.markers import is_run_provider
    from harness.run.session_providers import session_provider
    client = _client(lab_env)
    saved = lab_env.kms_endpoints["shared"]
    lab_env.kms_endpoints["shared"] = dataclasses.replace(saved, lab_owned=False, server_name="own-server")
    state = SimpleNamespace(inventory=lab_env.inventory, run_id="r-own-1", ledger=Ledger(tmp_path / "ledger.jsonl"),
                            outages=SimpleNamespace(down_problem=lambda kind, name: None))   # nothing is down
    try:
        session = session_provider(state, "gw0", client, lab_env, "shared")
        own = next(session)
        assert is_run_provider(own, "vcrypt-", "r-own-1") and own in keys.list_providers(client)
        assert lab_env.kms_endpoints["shared"].provider_id == own, "KmsEvidence finds the key store by this id"
        # someone else's server joins the provider while the run uses it: it must survive teardown
        keys.register_unreachable_provider(client, own, 9)
        with pytest.raises(StopIteration):
            next(session)
    finally:
        lab_env.kms_endpoints["shared"] = saved
    left = keys.list_providers(client)[own]
    assert [s.name for s in left.servers] == [f"{own}-server"]
    assert [e["phase"] for e in state.ledger.entries()] == ["creating", "created", "removed"]
    keys.remove_provider(client, own)
