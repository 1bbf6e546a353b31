"""KMS-MULTI on a lab (issue 25): a lab's KMS is never stopped. With `kms.shared.replicas` (the cluster's other
servers) the family registers them with the shared server as a provider of its own and takes one out of
service by pointing it where no KMS answers (UpdateKmipServer). Rehearsed here on the fake with an external KMS
that really is two servers on one key database; without replicas the family skips with `capability: ...`."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.kms.pki import ThrowawayCA
from harness.kms.replicas import ReplicatedKms

REPO = Path(__file__).resolve().parents[1]
FAKE = REPO / "inventories" / "fake.yaml"


@pytest.fixture(scope="module")
def lab_kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ReplicatedKms, ThrowawayCA]]:
    ca = ThrowawayCA(tmp_path_factory.mktemp("pki"))
    cluster = ReplicatedKms(tmp_path_factory.mktemp("lab-kms"), ca, ca.issue_client("vcrypt-vcenter")).start()
    try:
        yield cluster, ca
    finally:
        cluster.stop()


def _inventory(tmp_path: Path, cluster: ReplicatedKms, ca: ThrowawayCA, replicas: bool) -> Path:
    data = yaml.safe_load(FAKE.read_text(encoding="utf-8"))
    first, *others = cluster.servers.values()
    data["kms"] = {"embedded": False, "shared": {
        "provider_id": "lab-shared-kms", "server_name": "kms-1", "address": first.host, "port": first.port,
        "ca": str(ca.ca_path), "client_cert": str(cluster.client_cert.cert_path),
        "client_key": str(cluster.client_cert.key_path),
        **({"replicas": [{"address": s.host, "port": s.port} for s in others]} if replicas else {})}}
    path = tmp_path / "lab-multi.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _run(tmp_path: Path, inventory: Path, run_id: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    proc = subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", "run", "--inventory",
                           str(inventory), "--reports", str(tmp_path / "reports"), "--run-id", run_id,
                           "-k", "kms_multi"], cwd=REPO, capture_output=True, text=True, timeout=600)
    results = tmp_path / "reports" / run_id / "results.json"
    tests = json.loads(results.read_text())["tests"] if results.exists() else []
    return proc, tests


def test_a_lab_kms_with_replicas_shows_every_rule_by_redirecting_a_server(tmp_path, lab_kms) -> None:
    cluster, ca = lab_kms
    proc, tests = _run(tmp_path, _inventory(tmp_path, cluster, ca, replicas=True), "lab-multi")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert sorted(t["outcome"] for t in tests) == ["passed"] * 4, tests
    assert all(s.running for s in cluster.servers.values()), "the lab's KMS servers must never be stopped"
    evidence = "".join(p.read_text() for p in (tmp_path / "reports" / "lab-multi" / "evidence").glob("*.json"))
    assert "UpdateKmipServer" in evidence


def test_a_lab_kms_without_replicas_skips_the_family_by_capability(tmp_path, lab_kms) -> None:
    cluster, ca = lab_kms
    proc, tests = _run(tmp_path, _inventory(tmp_path, cluster, ca, replicas=False), "lab-single")
    assert proc.returncode == 5, proc.stdout[-4000:] + proc.stderr[-2000:]   # nothing demonstrated
    assert [t["outcome"] for t in tests] == ["skipped"] * 4, tests
    assert all("capability: " in (t["message"] or "") for t in tests), tests
