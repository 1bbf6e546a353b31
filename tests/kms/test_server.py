"""Real PyKMIP servers: lifecycle, UID ranges, fault injection, clean shutdown, start-up failures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.kms.client import KmipClient, KmsKeyNotFound, KmsOperationFailed, KmsUnreachable
from harness.kms.pki import CertPair, ThrowawayCA
from harness.kms.server import EmbeddedKms, KmsError, KmsServer, live_group_members

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return ThrowawayCA(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def identity(ca: ThrowawayCA) -> CertPair:
    return ca.issue_client("vcrypt-vcenter")


@pytest.fixture(scope="module")
def server_a(ca: ThrowawayCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KmsServer]:
    with KmsServer(tmp_path_factory.mktemp("kms-a"), ca, name="a", uid_base=100000) as server:
        yield server


@pytest.fixture(scope="module")
def server_b(ca: ThrowawayCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KmsServer]:
    with KmsServer(tmp_path_factory.mktemp("kms-b"), ca, name="b", uid_base=200000) as server:
        yield server


def connect(server: KmsServer, identity: CertPair, timeout: float = 5.0) -> KmipClient:
    return KmipClient.from_paths(
        server.host, server.port, server.ca_path, identity.cert_path, identity.key_path, timeout=timeout
    )


@pytest.fixture()
def client_a(server_a: KmsServer, identity: CertPair) -> Iterator[KmipClient]:
    with connect(server_a, identity) as client:
        yield client


def assert_group_gone(pgid: int, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while live_group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_group_members(pgid) == [], f"process group {pgid} still has live members"


# ---------------------------------------------------------------------------- basics
def test_server_serves_create_and_get(server_a: KmsServer, client_a: KmipClient) -> None:
    assert server_a.running
    assert server_a.address == f"127.0.0.1:{server_a.port}"
    uid = client_a.create_key()
    key = client_a.get_key(uid)
    assert len(key) == 32
    assert client_a.get_key(uid) == key
    assert client_a.key_exists(uid)
    assert client_a.key_state(uid) == "ACTIVE"


def test_server_files_live_in_its_workdir(server_a: KmsServer) -> None:
    conf = server_a.config_path.read_text()
    assert f"database_path={server_a.database_path}" in conf
    assert "auth_suite=TLS1.2" in conf
    assert server_a.database_path.parent == server_a.workdir and server_a.database_path.exists()
    assert server_a.log_path.exists()
    assert "pykmip.database" not in conf  # never the shared /tmp default


def test_uids_start_above_uid_base(client_a: KmipClient) -> None:
    assert int(client_a.create_key()) > 100000


def test_two_servers_have_disjoint_uids(
    server_a: KmsServer, server_b: KmsServer, identity: CertPair
) -> None:
    with connect(server_a, identity) as a, connect(server_b, identity) as b:
        uids_a = {a.create_key() for _ in range(3)}
        uids_b = {b.create_key() for _ in range(3)}
        assert not uids_a & uids_b
        assert all(100000 < int(u) < 200000 for u in uids_a)
        assert all(int(u) > 200000 for u in uids_b)
        # A wrong-cluster lookup fails instead of silently returning another key.
        wrong = sorted(uids_a)[0]
        assert not b.key_exists(wrong)
        with pytest.raises(KmsKeyNotFound):
            b.get_key(wrong)


def test_refuse_create_toggles_without_restart(server_a: KmsServer, client_a: KmipClient) -> None:
    existing = client_a.create_key()
    pid = server_a.pid
    server_a.refuse_create(True, reason="HSM offline")
    try:
        assert server_a.refusing_create
        with pytest.raises(KmsOperationFailed) as info:
            client_a.create_key()
        assert "HSM offline" in str(info.value)
        assert info.value.operation == "Create"
        assert server_a.address in str(info.value)
        # Only Create is refused: existing keys stay readable.
        assert len(client_a.get_key(existing)) == 32
    finally:
        server_a.refuse_create(False)
    assert not server_a.refusing_create
    assert client_a.key_exists(client_a.create_key())
    assert server_a.pid == pid  # no restart happened


def test_start_is_idempotent(server_a: KmsServer) -> None:
    pid = server_a.pid
    assert server_a.start() is server_a
    assert server_a.pid == pid


# ----------------------------------------------------------------- stop and restart
def test_restart_keeps_port_database_and_keys(
    ca: ThrowawayCA, identity: CertPair, tmp_path: Path
) -> None:
    server = KmsServer(tmp_path, ca, name="restartable", uid_base=300000).start()
    try:
        client = connect(server, identity)
        uid = client.create_key()
        key = client.get_key(uid)
        port, old_pid = server.port, server.pid
        server.restart()
        assert server.running and server.port == port and server.pid != old_pid
        assert_group_gone(old_pid)
        # The client's old connection is dead; it reconnects once, transparently.
        assert client.get_key(uid) == key
        assert client.key_state(uid) == "ACTIVE"
        newer = client.create_key()
        assert int(newer) > int(uid)  # numbering continues, never reuses
        client.close()
    finally:
        server.stop()


def test_stop_leaves_no_process_and_calls_fail_unreachable(
    ca: ThrowawayCA, identity: CertPair, tmp_path: Path
) -> None:
    server = KmsServer(tmp_path, ca, name="stoppable").start()
    client = connect(server, identity, timeout=2.0)
    uid = client.create_key()  # leaves an idle connection open during stop
    pgid = server.pid
    assert pgid is not None and live_group_members(pgid)

    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2.0
    assert not server.running and server.pid is None
    assert_group_gone(pgid)
    server.stop()  # idempotent

    with pytest.raises(KmsUnreachable) as info:
        client.get_key(uid)
    assert f"127.0.0.1:{server.port}" in str(info.value)
    with pytest.raises(KmsUnreachable, match=rf"KMS 127\.0\.0\.1:{server.port} unreachable"):
        client.create_key()


def test_start_twice_in_a_row_in_one_process(ca: ThrowawayCA, identity: CertPair, tmp_path: Path) -> None:
    """Nothing (port, lock, pid file) is left behind that would stop the next server."""
    first = KmsServer(tmp_path, ca, name="again", uid_base=400000).start()
    port = first.port
    with connect(first, identity) as client:
        uid = client.create_key()
    first.stop()
    second = KmsServer(tmp_path, ca, name="again", uid_base=400000, port=port).start()
    try:
        with connect(second, identity) as client:
            assert client.key_exists(uid)  # same workdir, same database
    finally:
        second.stop()
    third = KmsServer(tmp_path / "fresh", ca, name="again").start()
    third.stop()


def test_stop_on_never_started_server_is_harmless(ca: ThrowawayCA, tmp_path: Path) -> None:
    server = KmsServer(tmp_path, ca)
    assert not server.running
    server.stop()


# ----------------------------------------------------------------- start-up failures
def test_corrupt_certificate_raises_kms_error_quickly(ca: ThrowawayCA, tmp_path: Path) -> None:
    server = KmsServer(tmp_path, ca, name="broken", ready_timeout=10.0)
    server.server_cert.cert_path.write_text("-----BEGIN CERTIFICATE-----\ngarbage\n")
    started = time.monotonic()
    with pytest.raises(KmsError) as info:
        server.start()
    assert time.monotonic() - started < 10.0
    message = str(info.value)
    assert f"broken (127.0.0.1:{server.port})" in message
    assert "exit code" in message and "load_cert_chain" in message
    assert not server.running


def test_port_in_use_raises_kms_error(ca: ThrowawayCA, tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        server = KmsServer(tmp_path, ca, name="squatted", port=port, ready_timeout=10.0)
        with pytest.raises(KmsError, match="squatted"):
            server.start()
    assert not server.running


def test_ready_timeout_kills_the_group(ca: ThrowawayCA, tmp_path: Path) -> None:
    server = KmsServer(tmp_path, ca, name="slow", ready_timeout=0.05)
    with pytest.raises(KmsError, match=r"not ready within 0\.05 s") as info:
        server.start()
    assert "slow" in str(info.value) and str(server.port) in str(info.value)
    assert not server.running
    # The spawned process group is gone: nothing of ours runs this launcher for this workdir.
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert str(server.workdir) not in out


def test_server_exits_when_the_harness_process_dies(tmp_path: Path) -> None:
    """A crashed harness must not leave a KMS running."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(REPO)!r})
        from harness.kms.pki import ThrowawayCA
        from harness.kms.server import KmsServer
        ca = ThrowawayCA(Path({str(tmp_path / 'pki')!r}))
        server = KmsServer(Path({str(tmp_path / 'kms')!r}), ca).start()
        print(server.pid, flush=True)
        time.sleep(60)
        """
    )
    harness = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pgid = int(harness.stdout.readline())
        assert live_group_members(pgid)
        os.kill(harness.pid, signal.SIGKILL)
        harness.wait()
        assert_group_gone(pgid, within=5.0)
    finally:
        harness.kill()
        harness.wait()


# ----------------------------------------------------------------------- EmbeddedKms
def test_embedded_kms_runs_two_separate_clusters(tmp_path: Path) -> None:
    with EmbeddedKms(tmp_path) as kms:
        assert set(kms.servers) == {"shared", "dedicated"}
        info = kms.describe()
        assert info["client_common_name"] == "vcrypt-vcenter"
        assert info["ca_path"] == str(kms.ca.ca_path)
        assert info["client_key_path"] == str(kms.client_cert.key_path)
        assert "PRIVATE KEY" not in repr(info) and "BEGIN" not in repr(info)
        for name, server in kms.servers.items():
            assert info["servers"][name]["address"] == server.address
            assert info["servers"][name]["running"] is True
        with kms.client("shared") as shared, kms.client("dedicated") as dedicated:
            shared_uid, dedicated_uid = shared.create_key(), dedicated.create_key()
            assert int(shared_uid) > 100000 and int(dedicated_uid) > 200000
            assert not dedicated.key_exists(shared_uid)
        pgids = [server.pid for server in kms.servers.values()]
    assert all(not server.running for server in kms.servers.values())
    for pgid in pgids:
        assert_group_gone(pgid)


def test_embedded_kms_start_failure_stops_everything(tmp_path: Path) -> None:
    kms = EmbeddedKms(tmp_path, ready_timeout=10.0)
    kms.servers["dedicated"].server_cert.key_path.write_text("not a key")
    with pytest.raises(KmsError, match="dedicated"):
        kms.start()
    assert not any(server.running for server in kms.servers.values())
