"""TLS decides before any secret leaves (issue 21, point 1).

A loopback impostor with a different certificate must never receive the Login (so never the
password): every request it receives is recorded and checked. A server with the right pin (or a
certificate from the right CA) does receive the Login: the positive control that proves the
recorder would have seen it. Wrong CA, plain HTTP and a port that does not speak TLS each get
their own line; a port that accepts and never answers ends within the connect timeout.
"""
from __future__ import annotations

import os
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from harness.inventory.schema import VCenter
from harness.targets.connect import ConnectError, connect_soap
from tests.test_cli_bad_input import assert_clean_failure, vcrypt_command
from tests.tls_servers import RecordingVCenter, server_pair, sha256_of, write_ca

PASSWORD = "s3cret-vcenter-pw"


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCRYPT_TLS_TEST_PW", PASSWORD)


def entry(port: int, **tls: object) -> VCenter:
    return VCenter.model_validate({"name": "vc-x", "target": "real", "host": "127.0.0.1", "port": port,
                                   "password_env": "VCRYPT_TLS_TEST_PW", "tls": tls})


def colon(hexdigest: str) -> str:
    return ":".join(hexdigest[i:i + 2] for i in range(0, 64, 2)).upper()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("tls")
    lab, other = write_ca(tmp, "lab"), write_ca(tmp, "other")
    return {"lab": lab, "other": other, "right": server_pair(lab, "vcenter"), "impostor": server_pair(other, "impostor")}


def test_a_pinned_vcenter_with_another_certificate_never_receives_the_login(pki: dict) -> None:
    with RecordingVCenter("tls", pki["impostor"]) as server:
        with pytest.raises(ConnectError) as caught:
            connect_soap(entry(server.port, thumbprint_sha256=sha256_of(pki["right"])), timeout=5)
    assert server.received == [], "the impostor received a request before the pin was checked"
    message = str(caught.value)
    assert caught.value.config, message
    assert "vc-x" in message and "pin" in message, message
    assert colon(sha256_of(pki["right"])) in message and colon(sha256_of(pki["impostor"])) in message, message


def test_the_right_pin_reaches_the_login_positive_control(pki: dict) -> None:
    pin = colon(sha256_of(pki["right"]))  # colon-separated, as an operator copies it
    with RecordingVCenter("tls", pki["right"]) as server:
        with pytest.raises(ConnectError, match="login refused"):
            connect_soap(entry(server.port, thumbprint_sha256=pin), timeout=5)
    assert server.got(b"Login") and server.got(PASSWORD.encode()), server.received


def test_a_certificate_from_another_ca_never_receives_the_login(pki: dict) -> None:
    with RecordingVCenter("tls", pki["impostor"]) as server:
        with pytest.raises(ConnectError) as caught:
            connect_soap(entry(server.port, ca_bundle=str(pki["lab"].ca_path)), timeout=5)
    assert server.received == []
    assert caught.value.config and "not trusted" in str(caught.value), caught.value


def test_a_certificate_from_the_bundle_ca_reaches_the_login_positive_control(pki: dict) -> None:
    with RecordingVCenter("tls", pki["right"]) as server:
        with pytest.raises(ConnectError, match="login refused"):
            connect_soap(entry(server.port, ca_bundle=str(pki["lab"].ca_path)), timeout=5)
    assert server.got(PASSWORD.encode())


@pytest.mark.parametrize(("mode", "needle"), [("http", "plain HTTP"), ("garbage", "does not speak TLS")])
def test_a_port_without_tls_has_its_own_line(pki: dict, mode: str, needle: str) -> None:
    with RecordingVCenter(mode) as server:  # type: ignore[arg-type]
        with pytest.raises(ConnectError) as caught:
            connect_soap(entry(server.port, thumbprint_sha256=sha256_of(pki["right"])), timeout=5)
    assert server.received == []
    assert caught.value.config and needle in str(caught.value), caught.value


def test_a_port_that_accepts_and_never_answers_ends_within_the_connect_timeout(pki: dict) -> None:
    began = time.monotonic()
    with RecordingVCenter("silent") as server:
        with pytest.raises(ConnectError) as caught:
            connect_soap(entry(server.port, thumbprint_sha256=sha256_of(pki["right"])), timeout=1.5)
    took = time.monotonic() - began
    assert took < 1.5 + 3, f"{took:.1f} s"
    assert not caught.value.config and "vc-x" in str(caught.value) and "1.5 s" in str(caught.value), caught.value


def _inventory(tmp: Path, port: int, **tls: object) -> Path:
    data = {"vcenters": [{"name": "vc-x", "target": "real", "host": "127.0.0.1", "port": port,
                          "password_env": "VCRYPT_TLS_TEST_PW", "tls": tls}],
            "kms": {"embedded": True}, "timeouts": {"connect": 3}}
    path = tmp / "lab.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("command", [["run", "--reports", "r"], ["verify-config"], ["audit"]])
def test_a_pin_mismatch_is_one_line_exit_2_naming_both_fingerprints(pki: dict, tmp_path: Path,
                                                                     command: list[str]) -> None:
    with RecordingVCenter("tls", pki["impostor"]) as server:
        inventory = _inventory(tmp_path, server.port, thumbprint_sha256=sha256_of(pki["right"]))
        proc = subprocess.run([*vcrypt_command(), command[0], "-i", str(inventory), *command[1:]], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                              env={**os.environ, "VCRYPT_TLS_TEST_PW": PASSWORD})
    line = assert_clean_failure(proc, "vc-x", 2)
    assert colon(sha256_of(pki["impostor"])) in line and colon(sha256_of(pki["right"])) in line, line
    assert server.received == []
    assert PASSWORD not in proc.stdout + proc.stderr


def test_the_handshake_context_checks_the_pin_itself() -> None:
    """The context pyVmomi is handed is not an unverified one that trusts whatever answers."""
    from harness.targets.connect import ssl_context
    context = ssl_context(entry(443, thumbprint_sha256="ab" * 32))
    assert getattr(context, "pin", None) == "ab" * 32
    assert isinstance(context, ssl.SSLContext)


# ---- the destination's certificate for ServiceLocator.sslThumbprint ------------------------------
def test_in_ca_bundle_mode_the_destination_certificate_read_is_verified(pki: dict) -> None:
    from harness.vsphere.errors import EnvironmentFault
    from harness.vsphere.thumbprints import locator_thumbprint
    with RecordingVCenter("tls", pki["impostor"]) as server:
        vc = entry(server.port, ca_bundle=str(pki["lab"].ca_path))
        with pytest.raises(EnvironmentFault, match="not trusted"):
            locator_thumbprint(vc, object(), f"https://127.0.0.1:{server.port}/sdk", 5)
    assert server.received == []


def test_in_ca_bundle_mode_a_trusted_destination_gives_its_sha1_positive_control(pki: dict) -> None:
    import hashlib
    from harness.vsphere.thumbprints import locator_thumbprint
    with RecordingVCenter("tls", pki["right"]) as server:
        vc = entry(server.port, ca_bundle=str(pki["lab"].ca_path))
        thumbprint, _ = locator_thumbprint(vc, object(), f"https://127.0.0.1:{server.port}/sdk", 5)
    der = ssl.PEM_cert_to_DER_cert(pki["right"].cert_path.read_text())
    assert thumbprint.replace(":", "") == hashlib.sha1(der).hexdigest()  # noqa: S324 - vSphere's format


# ---- every command honours timeouts.connect against a port that accepts and never answers ---------
@pytest.mark.parametrize(("command", "code"), [(["run", "--reports", "r"], 3), (["verify-config"], 1),
                                               (["audit"], 1), (["sweep", "--run-id", "r1", "--dry-run"], 1)])
def test_a_vcenter_that_accepts_and_never_answers_ends_each_command_within_the_timeout(
        tmp_path: Path, command: list[str], code: int) -> None:
    with RecordingVCenter("silent") as server:
        data = {"vcenters": [{"name": "vc-x", "target": "real", "host": "127.0.0.1", "port": server.port,
                              "password_env": "VCRYPT_TLS_TEST_PW", "tls": {"insecure": True}}],
                "kms": {"embedded": True}, "timeouts": {"connect": 2}}
        inventory = tmp_path / "lab.yaml"
        inventory.write_text(yaml.safe_dump(data))
        began = time.monotonic()
        proc = subprocess.run([*vcrypt_command(), command[0], "-i", str(inventory), *command[1:]], cwd=tmp_path,
                              capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
                              env={**os.environ, "VCRYPT_TLS_TEST_PW": PASSWORD})
        took = time.monotonic() - began
    line = assert_clean_failure(proc, "vc-x", code)
    assert "2 s" in line, line
    assert took < 2 + 15, f"{took:.1f} s: {line}"   # the configured timeout plus start-up (an embedded KMS)


def test_a_port_whose_backlog_is_full_ends_within_the_connect_timeout() -> None:
    """SYNs dropped (a full backlog on loopback stands in for a firewall): pyVim's first fetch passes
    no timeout, so without a bounded TCP connect this waited for the OS (about two minutes)."""
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(8):   # fill the accept queue; later SYNs are dropped
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            fillers.append(filler)
        time.sleep(0.2)
        began = time.monotonic()
        with pytest.raises(ConnectError) as caught:
            connect_soap(entry(listener.getsockname()[1], insecure=True), timeout=1.5)
        took = time.monotonic() - began
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    assert took < 1.5 + 3, f"{took:.1f} s: {caught.value}"
    assert "vc-x" in str(caught.value) and "1.5 s" in str(caught.value), caught.value


def test_kms_register_against_an_impostor_is_one_line_exit_2(pki: dict, tmp_path: Path) -> None:
    with RecordingVCenter("tls", pki["impostor"]) as server:
        data = {"vcenters": [{"name": "vc-x", "target": "vcsim", "url": f"https://127.0.0.1:{server.port}/sdk",
                              "tls": {"thumbprint_sha256": sha256_of(pki["right"])}}],
                "kms": {"embedded": True}, "timeouts": {"connect": 3}}
        inventory = tmp_path / "lab.yaml"
        inventory.write_text(yaml.safe_dump(data))
        proc = subprocess.run([*vcrypt_command(), "kms", "register", "-i", str(inventory), "--vcenter", "vc-x"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    line = assert_clean_failure(proc, "vc-x", 2)
    assert colon(sha256_of(pki["impostor"])) in line, line
    assert server.received == []


@pytest.mark.parametrize(("mode", "needle"), [("tls", "certificate not trusted"), ("http", "answers plain HTTP"),
                                              ("garbage", "does not speak TLS")])
def test_vcrypt_run_names_each_tls_problem_in_its_own_line_exit_2(pki: dict, tmp_path: Path, mode: str,
                                                                   needle: str) -> None:
    with RecordingVCenter(mode, pki["impostor"]) as server:  # type: ignore[arg-type]
        inventory = _inventory(tmp_path, server.port, ca_bundle=str(pki["lab"].ca_path))
        proc = subprocess.run([*vcrypt_command(), "run", "-i", str(inventory), "--reports", "r"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                              env={**os.environ, "VCRYPT_TLS_TEST_PW": PASSWORD})
    line = assert_clean_failure(proc, "vcenters.vc-x", 2)
    assert needle in line, line
    assert server.received == []
