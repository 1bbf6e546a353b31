"""harness/kms/replicas.py: two PyKMIP servers on one database are one KMS cluster (KMS-MULTI): a key one
creates the other serves, a key created while one is down is served by it once it is back, and concurrent
creations on both never hand out the same UID."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.kms.client import KmsUnreachable
from harness.kms.pki import ThrowawayCA
from harness.kms.replicas import UID_BASE, ReplicatedKms


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicatedKms]:
    ca = ThrowawayCA(tmp_path_factory.mktemp("pki"))
    replicas = ReplicatedKms(Path(tmp_path_factory.mktemp("multi")), ca, ca.issue_client("vcrypt-vcenter")).start()
    try:
        yield replicas
    finally:
        replicas.stop()


def test_a_key_created_on_one_server_is_served_by_the_other(cluster: ReplicatedKms) -> None:
    one, two = (cluster.client(name) for name in cluster.servers)
    uid = one.create_key()
    assert int(uid) > UID_BASE
    assert two.get_key(uid) == one.get_key(uid)


def test_a_key_created_while_one_server_is_down_is_served_by_it_once_back(cluster: ReplicatedKms) -> None:
    first, second = cluster.servers
    cluster.servers[first].stop()
    try:
        with pytest.raises(KmsUnreachable):
            cluster.client(first, timeout=2.0).key_state("1")
        uid = cluster.client(second).create_key()
    finally:
        cluster.servers[first].start()
    assert cluster.client(first).get_key(uid) == cluster.client(second).get_key(uid)


def test_concurrent_creations_on_both_servers_get_distinct_uids(cluster: ReplicatedKms) -> None:
    made: list[str] = []

    def create(name: str) -> None:
        client = cluster.client(name)
        made.extend(client.create_key() for _ in range(8))

    threads = [threading.Thread(target=create, args=(name,)) for name in cluster.servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 16 and len(set(made)) == 16


def test_a_cluster_needs_two_servers(tmp_path: Path) -> None:
    ca = ThrowawayCA(tmp_path / "pki")
    with pytest.raises(ValueError):
        ReplicatedKms(tmp_path / "one", ca, ca.issue_client("x"), count=1)
