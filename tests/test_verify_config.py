"""vcrypt verify-config: every known capability is probed (or says why not), compared with the
inventory's declaration; a declared capability that probes absent fails, naming it.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from harness.commands.audit import READ_METHODS
from harness.inventory.capabilities import KNOWN_CAPABILITIES
from harness.cli import main
from harness.targets.environment import Environment
from harness.commands.verify_config import NO, NOT_PROBED, YES, Probe, Row, _verdict, table, verify
from harness.vsphere import vms
from harness.safety import MutationGate
from harness.vsphere.client import VCenterClient
from harness.vsphere.props import retrieve_all
from tests.conftest import require_toolchain as _require_toolchain

REPO = Path(__file__).resolve().parents[1]
FAKE = REPO / "inventories" / "fake.yaml"
VCSIM = REPO / "inventories" / "vcsim-debian.yaml"
# Reads the probes may add to the audit's list when mutations are not allowed.
PROBE_READS = READ_METHODS | {"RetrieveKmipServerCert", "ListKeys", "PbmRetrieveServiceContent", "PbmQueryProfile", "PbmRetrieveContent"}


def by_cap(rows: list[Row]) -> dict[str, Row]:
    return {r.capability: r for r in rows}


def vm_names(env: Environment) -> set[str]:
    client = VCenterClient("vc-a", env.service_instance("vc-a"), env.inventory.timeouts, "fake",
                           gate=MutationGate(allow_mutations=True))
    return {p["name"] for _, p in retrieve_all(client, vms.vim.VirtualMachine, ["name"]).values()}


# ---- the comparison -----------------------------------------------------------------------------------
@pytest.mark.parametrize("cap,declared,results,match", [
    ("events", True, [YES, YES], "ok"),
    ("events", True, [YES, NO], "MISMATCH: declared but absent on vc-b"),
    ("events", True, [NOT_PROBED], "unverified (not probed)"),
    ("events", None, [YES], "available but not declared"),
    ("events", False, [YES], "available but not declared"),
    ("events", False, [NO], "ok"),
    ("events", None, [NOT_PROBED], "-"),
    ("mixed_host_versions", True, [NO, YES], "ok"),          # inventory-wide: any vCenter will do
    ("mixed_host_versions", True, [NO, NO], "MISMATCH: declared but absent on vc-a, vc-b"),
])
def test_verdict(cap: str, declared: bool | None, results: list[str], match: str) -> None:
    probes = {f"vc-{'ab'[i]}": Probe(r) for i, r in enumerate(results)}
    assert _verdict(cap, declared, probes) == match


# ---- fake ----------------------------------------------------------------------------------------------
def test_fake_matches_its_inventory_and_leaves_nothing(env: Environment) -> None:
    before = vm_names(env)
    rows = verify(env)
    assert vm_names(env) == before, "the scratch VM must be destroyed"
    assert [r.capability for r in rows] == list(KNOWN_CAPABILITIES)
    caps = by_cap(rows)
    assert not [r.capability for r in rows if r.mismatch], "\n".join(table(rows))
    for cap in ("key_providers", "kms_status", "storage_policies", "host_crypto_state", "host_key_cache", "events",
                "alarms", "authorization", "cluster_ha", "mixed_host_versions", "disk_bytes", "fault_injection",
                "vm_encryption", "snapshots"):
        assert {p.result for p in caps[cap].probes.values()} == {YES}, (cap, caps[cap].probes)
    assert caps["clone_crypto"].match == "unverified (not probed)"
    lines = table(rows)
    assert lines[0].split()[:2] == ["capability", "declared"] and any(line.startswith("vm_encryption") for line in lines)


def test_instant_clone_probe_on_the_fake(env: Environment) -> None:
    """The server call answers with a refusal (a powered-off source), never MethodNotFound."""
    probe = by_cap(verify(env, "vc-a"))["instant_clone"].probes["vc-a"]
    assert probe.result == YES and "refused a powered-off source" in probe.reason, probe


def test_without_mutations_only_reads(env: Environment, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env, "inventory", env.inventory.model_copy(update={
        "safety": env.inventory.safety.model_copy(update={"allow_mutations": False, "allow_destructive": False})}))
    fake = env.fake_vcenter("vc-a")
    start = len(fake.call_log)
    caps = by_cap(verify(env, "vc-a"))
    methods = {m for _, m in fake.call_log[start:]}
    assert not methods - PROBE_READS, f"verify-config mutated without permission: {sorted(methods - PROBE_READS)}"
    for cap in ("vm_encryption", "snapshots", "instant_clone"):
        assert caps[cap].probes["vc-a"].result == NOT_PROBED and "mutations not allowed" in caps[cap].probes["vc-a"].reason


# ---- CLI -----------------------------------------------------------------------------------------------
def test_cli_bad_inventory(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("vcenters: []\n")
    result = CliRunner().invoke(main, ["verify-config", "--inventory", str(bad)])
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0 and "Traceback" not in result.output


def vcsim_data() -> dict:
    """inventories/vcsim-debian.yaml (its first vCenter, to keep the test short), or a stand-in without it."""
    if VCSIM.exists():
        data = yaml.safe_load(VCSIM.read_text())
        data["vcenters"] = data["vcenters"][:1]
        return data
    return {"vcenters": [{"name": "vc-a", "target": "vcsim", "user": "u", "tls": {"insecure": True},
                          "datacenter": "DC0", "cluster": "DC0_C0", "vcsim": {"api_version": "7.0.3.0"}}],
            "features": {"key_providers": False, "kms_trust": False, "vm_encryption": False, "instant_clone": False,
                         "snapshots": True, "events": True},
            "safety": {"allow_mutations": True}}


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_vcsim_inventory_matches(tmp_path: Path) -> None:
    _require_toolchain()
    target = VCSIM if VCSIM.exists() else _write(tmp_path, vcsim_data())
    result = CliRunner().invoke(main, ["verify-config", "--inventory", str(target)])
    assert result.exit_code == 0, result.output
    assert "MISMATCH" not in result.output
    assert "key_providers on vc-a: no (ListKmipServers: MethodNotFound)" in result.output


def test_vcsim_declared_instant_clone_is_a_mismatch(tmp_path: Path) -> None:
    _require_toolchain()
    data = vcsim_data()
    data.setdefault("features", {})["instant_clone"] = True
    result = CliRunner().invoke(main, ["verify-config", "--inventory", str(_write(tmp_path, data))])
    assert result.exit_code == 1, result.output
    assert "mismatch: instant_clone" in result.output
    assert "absent: instant_clone" in result.output


def test_the_encryption_probe_never_uses_a_made_up_key(env: Environment, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a key GenerateKey really made, vm_encryption is not probed (vcsim accepts any key id)."""
    from harness.vsphere import crypto, keys

    def no_key(*_: object, **__: object) -> None:
        raise keys.KeyGenerationFailed("GenerateKey: success false")
    encrypted: list[object] = []
    monkeypatch.setattr(keys, "generate_key", no_key)
    monkeypatch.setattr(crypto, "encrypt", lambda *args, **kwargs: encrypted.append(args))
    probe = by_cap(verify(env, "vc-a"))["vm_encryption"].probes["vc-a"]
    assert probe.result == NOT_PROBED and "no key to encrypt with" in probe.reason, probe
    assert not encrypted


def test_probe_reasons_are_one_line() -> None:
    from pyVmomi import vmodl

    from harness.commands.verify_config import Probe, describe_error
    fault = vmodl.fault.InvalidArgument(invalidProperty="profileId", msg="bad\nprofile")
    assert describe_error(fault) == "vmodl.fault.InvalidArgument: bad"
    assert Probe("no", "line one\n   dynamicType = <unset>\n").reason == "line one"
