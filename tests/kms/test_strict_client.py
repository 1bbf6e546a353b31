"""KmipClient against the strict KMS (github.com/ovh/kmip-go) in each commercial behaviour (issue 22).

Each behaviour once turned into false product failures or a wrong preflight message: keys created
Active (Activate refused), a credential required, KMIP 1.0/1.1 only, Transparent key format, owner-only
reads, Destroyed keys counted as existing, unexpected result reasons escaping as library exceptions.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.kms.client import (KmipClient, KmsCredentialError, KmsFailure, KmsOperationFailed,
                                KmsPermissionDenied)
from harness.kms.pki import CertPair, ThrowawayCA
from harness.kms.strict import StrictKms, StrictModes
from tests.kms.strict import strict_binary


@pytest.fixture(scope="module")
def binary() -> Path:
    return strict_binary()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return ThrowawayCA(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def identity(ca: ThrowawayCA) -> CertPair:
    return ca.issue_client("vcrypt-vcenter")


def serve(binary: Path, ca: ThrowawayCA, tmp: Path, *modes: str) -> StrictKms:
    return StrictKms(binary, tmp, ca, StrictModes.parse(list(modes) or ["plain"])).start()


def connect(kms: StrictKms, ca: ThrowawayCA, who: CertPair, **extra: object) -> KmipClient:
    credential = {"username": kms.username, "password": kms.password} if kms.username else {}
    return KmipClient(kms.host, kms.port, ca.ca_pem(), who.cert_pem(), who.key_pem(), **{**credential, **extra})


@pytest.fixture()
def strict(request: pytest.FixtureRequest, binary: Path, ca: ThrowawayCA, tmp_path: Path) -> Iterator[StrictKms]:
    kms = serve(binary, ca, tmp_path, *request.param)
    yield kms
    kms.stop()


@pytest.mark.parametrize("strict", [("plain",), ("active-keys",), ("kmip-1.1",), ("transparent",), ("credential",),
                                    ("idle-disconnect",), ("strictest",)], indirect=True, ids=lambda m: m[0])
def test_create_get_state_round_trip_in_every_mode(strict: StrictKms, ca: ThrowawayCA, identity: CertPair) -> None:
    with connect(strict, ca, identity) as client:
        uid = client.create_key()
        assert client.key_state(uid) == "ACTIVE"
        assert len(client.get_key(uid)) == 32
        assert client.key_exists(uid)
        if "idle-disconnect" in strict.modes:
            time.sleep(1.5)   # the server closed the idle connection: the client reconnects once
            assert len(client.get_key(uid)) == 32


@pytest.mark.parametrize("strict", [("kmip-1.1",)], indirect=True)
def test_version_is_negotiated_down_to_what_the_kms_speaks(strict: StrictKms, ca: ThrowawayCA,
                                                          identity: CertPair) -> None:
    with connect(strict, ca, identity) as client:
        negotiated = client.check()
        assert negotiated.version == "1.1"
        assert "1.0" in negotiated.offered


@pytest.mark.parametrize("strict", [("plain",)], indirect=True)
def test_a_pinned_version_is_used_as_is(strict: StrictKms, ca: ThrowawayCA, identity: CertPair) -> None:
    with connect(strict, ca, identity, version="1.0") as client:
        assert client.check().version == "1.0"
        assert client.key_state(client.create_key()) == "ACTIVE"


@pytest.mark.parametrize("strict", [("credential",)], indirect=True)
def test_a_missing_or_wrong_credential_is_named_as_such(strict: StrictKms, ca: ThrowawayCA,
                                                        identity: CertPair) -> None:
    with KmipClient(strict.host, strict.port, ca.ca_pem(), identity.cert_pem(), identity.key_pem()) as client:
        with pytest.raises(KmsCredentialError, match="requires a KMIP credential") as info:
            client.check()
    assert "certificate" not in str(info.value)
    with connect(strict, ca, identity, password="wrong") as client:
        with pytest.raises(KmsCredentialError, match=f"refused the KMIP credential of user {strict.username}") as info:
            client.check()
    assert "wrong" not in str(info.value) and strict.password not in repr(client)


@pytest.mark.parametrize("strict", [("owner-only",)], indirect=True)
def test_another_identity_gets_a_named_permission_error(strict: StrictKms, ca: ThrowawayCA, identity: CertPair) -> None:
    reader = ca.issue_client("vcrypt-harness-reader")
    with connect(strict, ca, identity) as owner, connect(strict, ca, reader) as other:
        uid = owner.create_key()
        with pytest.raises(KmsPermissionDenied, match=f"KMS {strict.address} GetAttributes"):
            other.key_state(uid)
        with pytest.raises(KmsPermissionDenied):
            other.key_exists(uid)


@pytest.mark.parametrize("strict", [("plain",)], indirect=True)
def test_a_destroyed_key_does_not_exist_and_says_its_state(strict: StrictKms, ca: ThrowawayCA,
                                                           identity: CertPair) -> None:
    with connect(strict, ca, identity) as client:
        uid = client.create_key()
        client.destroy_key(uid)
        assert client.key_state(uid) == "DESTROYED"
        assert client.key_exists(uid) is False


@pytest.mark.parametrize("strict", [("chaos",)], indirect=True)
def test_unexpected_result_reasons_are_named_kms_errors(strict: StrictKms, ca: ThrowawayCA,
                                                        identity: CertPair) -> None:
    with connect(strict, ca, identity) as client:
        for operation, call in (("Create", client.create_key), ("GetAttributes", lambda: client.key_state("1")),
                                ("Get", lambda: client.get_key("1"))):
            with pytest.raises(KmsOperationFailed, match=f"KMS {strict.address} {operation} failed: INDEX_OUT_OF_BOUNDS"):
                call()
            with pytest.raises(KmsFailure):
                call()
