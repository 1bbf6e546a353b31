"""KmipClient against a real PyKMIP server: operations, trust failures, connection errors, threads."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509

from harness.kms.client import (
    KmipClient,
    KmsKeyNotFound,
    KmsOperationFailed,
    KmsTrustError,
    KmsUnreachable,
    fetch_server_certificate,
)
from harness.kms.pki import CertPair, ThrowawayCA
from harness.kms.server import KmsServer, free_port


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return ThrowawayCA(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return ThrowawayCA(tmp_path_factory.mktemp("other-pki"), name="someone else's CA")


@pytest.fixture(scope="module")
def identity(ca: ThrowawayCA) -> CertPair:
    return ca.issue_client("vcrypt-vcenter")


@pytest.fixture(scope="module")
def server(ca: ThrowawayCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KmsServer]:
    with KmsServer(tmp_path_factory.mktemp("kms"), ca, name="client-tests", uid_base=500000) as kms:
        yield kms


@pytest.fixture()
def client(server: KmsServer, ca: ThrowawayCA, identity: CertPair) -> Iterator[KmipClient]:
    with KmipClient(server.host, server.port, ca.ca_pem(), identity.cert_pem(), identity.key_pem()) as kc:
        yield kc


def der(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).tbs_certificate_bytes


# -------------------------------------------------------------------------- operations
def test_create_returns_active_aes256_key(client: KmipClient) -> None:
    uid = client.create_key()
    assert uid.isdigit()
    assert len(client.get_key(uid)) == 32
    assert client.key_state(uid) == "ACTIVE"
    assert client.key_exists(uid)


def test_each_create_is_a_new_key(client: KmipClient) -> None:
    first, second = client.create_key(), client.create_key()
    assert first != second
    assert client.get_key(first) != client.get_key(second)


def test_absent_key(client: KmipClient) -> None:
    assert client.key_exists("999999999") is False
    assert client.key_state("999999999") is None
    with pytest.raises(KmsKeyNotFound) as info:
        client.get_key("999999999")
    assert isinstance(info.value, KmsOperationFailed)
    assert info.value.reason == "ITEM_NOT_FOUND"
    client.check()  # the connection survives a failed operation


def test_check_and_from_paths(server: KmsServer, identity: CertPair) -> None:
    with KmipClient.from_paths(
        server.host, server.port, server.ca_path, identity.cert_path, identity.key_path
    ) as kc:
        kc.check()
        assert kc.address == server.address


def test_connection_is_reused_and_close_reconnects(client: KmipClient) -> None:
    client.check()
    held = client._client
    client.create_key()
    assert client._client is held  # one TLS connection for both calls
    client.close()
    client.close()  # idempotent
    client.check()  # reconnects on demand


def test_only_the_owner_cn_may_use_a_key(
    server: KmsServer, ca: ThrowawayCA, client: KmipClient
) -> None:
    """PyKMIP ties keys to the creating CN: why every fake vCenter shares one identity."""
    uid = client.create_key()
    stranger = ca.issue_client("another-vcenter")
    with KmipClient(server.host, server.port, ca.ca_pem(), stranger.cert_pem(), stranger.key_pem()) as kc:
        kc.check()
        with pytest.raises(KmsOperationFailed, match="PERMISSION_DENIED"):
            kc.get_key(uid)


def test_thread_safe_shared_client(client: KmipClient) -> None:
    def work(_: int) -> tuple[str, bytes]:
        uid = client.create_key()
        return uid, client.get_key(uid)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, range(16)))
    uids = [uid for uid, _ in results]
    assert len(set(uids)) == 16
    assert all(client.get_key(uid) == key for uid, key in results)


# ------------------------------------------------------------------------------- trust
def test_trusting_only_the_server_leaf_works(
    server: KmsServer, identity: CertPair
) -> None:
    """vCenter trusts the uploaded server certificate itself, not necessarily the CA."""
    leaf = server.server_cert.cert_pem()
    with KmipClient(server.host, server.port, leaf, identity.cert_pem(), identity.key_pem()) as kc:
        kc.check()
        assert len(kc.get_key(kc.create_key())) == 32


def test_client_that_does_not_trust_the_server_fails_clearly(
    server: KmsServer, other_ca: ThrowawayCA, identity: CertPair
) -> None:
    with KmipClient(server.host, server.port, other_ca.ca_pem(), identity.cert_pem(), identity.key_pem()) as kc:
        with pytest.raises(KmsTrustError) as info:
            kc.check()
    assert info.value.side == "client"
    assert isinstance(info.value, KmsUnreachable)
    assert "client does not trust the server certificate" in str(info.value)
    assert server.address in str(info.value)


def test_server_refuses_a_client_cert_from_another_ca(
    server: KmsServer, ca: ThrowawayCA, other_ca: ThrowawayCA
) -> None:
    foreign = other_ca.issue_client("vcrypt-vcenter")
    with KmipClient(server.host, server.port, ca.ca_pem(), foreign.cert_pem(), foreign.key_pem()) as kc:
        with pytest.raises(KmsTrustError) as info:
            kc.create_key()
    assert info.value.side == "server"
    assert "server refused the client certificate" in str(info.value)
    assert server.address in str(info.value)


def test_server_refuses_a_client_cert_without_client_auth(
    server: KmsServer, ca: ThrowawayCA
) -> None:
    wrong_usage = ca.issue_server("not-a-client")
    with KmipClient(server.host, server.port, ca.ca_pem(), wrong_usage.cert_pem(), wrong_usage.key_pem()) as kc:
        with pytest.raises(KmsTrustError) as info:
            kc.check()
    assert info.value.side == "server"


def test_bad_pem_is_rejected_up_front(identity: CertPair) -> None:
    with pytest.raises(ValueError, match="trusted certificate"):
        KmipClient("127.0.0.1", 1, "not a pem", identity.cert_pem(), identity.key_pem())
    with pytest.raises(ValueError, match="client certificate"):
        KmipClient("127.0.0.1", 1, identity.cert_pem(), identity.cert_pem(), "not a key")


# ---------------------------------------------------------------------- unreachable
def test_nothing_listening_is_unreachable(ca: ThrowawayCA, identity: CertPair) -> None:
    port = free_port()
    with KmipClient("127.0.0.1", port, ca.ca_pem(), identity.cert_pem(), identity.key_pem()) as kc:
        with pytest.raises(KmsUnreachable) as info:
            kc.create_key()
    assert str(info.value) == f"KMS 127.0.0.1:{port} unreachable: connection refused"
    assert not isinstance(info.value, KmsTrustError)


def test_silent_server_times_out(ca: ThrowawayCA, identity: CertPair) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        kc = KmipClient("127.0.0.1", port, ca.ca_pem(), identity.cert_pem(), identity.key_pem(), timeout=0.3)
        started = time.monotonic()
        with pytest.raises(KmsUnreachable, match=rf"127\.0\.0\.1:{port} unreachable: no answer within 0\.3 s"):
            kc.check()
        assert time.monotonic() - started < 2.0


def test_server_closing_mid_request_is_unreachable(ca: ThrowawayCA, identity: CertPair) -> None:
    """A peer that accepts and hangs up at once (a dying KMS) maps to KmsUnreachable."""
    with socket.socket() as rude:
        rude.bind(("127.0.0.1", 0))
        rude.listen()
        port = rude.getsockname()[1]

        stop = threading.Event()
        rude.settimeout(0.2)

        def hang_up() -> None:
            while not stop.is_set():  # every connection the client makes (one or a retry), then quit
                try:
                    conn, _ = rude.accept()
                except (TimeoutError, OSError):
                    continue
                conn.close()

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        kc = KmipClient("127.0.0.1", port, ca.ca_pem(), identity.cert_pem(), identity.key_pem(), timeout=2.0)
        try:
            with pytest.raises(KmsUnreachable, match=rf"127\.0\.0\.1:{port}"):
                kc.check()
        finally:
            stop.set()
            thread.join(timeout=5)


# ------------------------------------------------------------ fetch_server_certificate
def test_fetch_server_certificate_returns_the_leaf(server: KmsServer) -> None:
    pem = fetch_server_certificate(server.host, server.port)
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    assert der(pem) == der(server.server_cert.cert_pem())


def test_fetch_server_certificate_unreachable() -> None:
    port = free_port()
    with pytest.raises(KmsUnreachable, match=rf"KMS 127\.0\.0\.1:{port} unreachable"):
        fetch_server_certificate("127.0.0.1", port, timeout=1.0)


def test_fetch_then_trust_is_the_vcenter_flow(server: KmsServer, identity: CertPair) -> None:
    """RetrieveKmipServerCert + UploadKmipServerCert + UploadClientCert, end to end."""
    trusted = fetch_server_certificate(server.host, server.port)
    with KmipClient(server.host, server.port, trusted, identity.cert_pem(), identity.key_pem()) as kc:
        uid = kc.create_key()
        assert kc.key_state(uid) == "ACTIVE"


def test_pem_files_are_not_left_on_disk(
    server: KmsServer, identity: CertPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client key given as a PEM string is only briefly on disk, in a private temp dir."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    KmipClient(server.host, server.port, server.ca_path.read_text(), identity.cert_pem(), identity.key_pem())
    assert list(tmp_path.iterdir()) == []


def test_errors_can_be_raised_with_a_plain_message() -> None:
    """Other layers (the fake vCenter) raise these too, with their own wording."""
    assert str(KmsUnreachable("KMS down for maintenance")) == "KMS down for maintenance"
    assert str(KmsOperationFailed("no keys today")) == "no keys today"
    err = KmsUnreachable.at("127.0.0.1:5696", "connection refused")
    assert str(err) == "KMS 127.0.0.1:5696 unreachable: connection refused"
    assert err.address == "127.0.0.1:5696" and isinstance(err, ConnectionError)
