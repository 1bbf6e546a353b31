"""Health probes and the outage watch: a hung KMS is seen as hung, fast; an outage is not a refusal."""
from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from harness.checks import require_kmip_refusal
from harness.targets import health
from harness.kms.client import KmsUnreachable
from harness.kms.pki import ThrowawayCA
from harness.kms.server import KmsServer
from harness.targets.outage import Endpoint, OutageWatch, names_an_outage


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return ThrowawayCA(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(ca: ThrowawayCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KmsServer]:
    with KmsServer(tmp_path_factory.mktemp("kms"), ca, name="health-tests", uid_base=700000) as kms:
        yield kms


@pytest.fixture(scope="module")
def endpoint(server: KmsServer, ca: ThrowawayCA) -> SimpleNamespace:
    identity = ca.issue_client("vcrypt-vcenter")
    return SimpleNamespace(role="shared", address=server.host, port=server.port, ca_path=ca.ca_path,
                           client_cert_path=identity.cert_path, client_key_path=identity.key_path)


def test_a_healthy_kms_answers_and_its_refusal_counts(endpoint: SimpleNamespace) -> None:
    assert health.kms_problem(endpoint) is None
    require_kmip_refusal(endpoint, "KMIP Create refused by shared-kms: key creation refused by fault injection")


def test_a_reason_that_names_an_outage_is_not_a_refusal(endpoint: SimpleNamespace) -> None:
    reason = "Key creation failed: the KMS of key provider p is unreachable: shared-kms (127.0.0.1:1): connection refused"
    with pytest.raises(KmsUnreachable, match="not a KMIP refusal"):
        require_kmip_refusal(endpoint, reason)
    assert names_an_outage("no answer within 3 s") and not names_an_outage("refused by fault injection")


def test_a_stopped_kms_still_accepts_tcp_but_the_kmip_probe_says_it_hangs_within_its_deadline(
        server: KmsServer, endpoint: SimpleNamespace) -> None:
    os.killpg(server.pid, signal.SIGSTOP)
    try:
        with socket.create_connection((server.host, server.port), timeout=1.0):
            pass  # the old TCP probe: the kernel still completes the handshake
        began = time.monotonic()
        problem = health.kms_problem(endpoint, timeout=1.0)
        took = time.monotonic() - began
        with pytest.raises(KmsUnreachable, match="does not answer"):
            require_kmip_refusal(endpoint, "refused by shared-kms")
    finally:
        os.killpg(server.pid, signal.SIGCONT)
    assert problem == f"KMS {server.host}:{server.port} unreachable (no answer within 1 s)"
    assert took < 2.5, f"the probe took {took:.1f} s with a 1 s deadline"
    assert health.kms_problem(endpoint) is None  # resumed: healthy again


def _environment(endpoint: SimpleNamespace) -> SimpleNamespace:
    inventory = SimpleNamespace(vcenters=[SimpleNamespace(name="vc-a"), SimpleNamespace(name="vc-b")])
    return SimpleNamespace(kms_endpoints={"shared": endpoint}, inventory=inventory,
                           service_instance=lambda name: SimpleNamespace(CurrentTime=lambda: 0))


def test_a_pass_that_touched_a_kms_seen_failing_is_probed_and_the_breaker_opens(
        server: KmsServer, endpoint: SimpleNamespace) -> None:
    env, watch = _environment(endpoint), OutageWatch()
    address = f"{endpoint.address}:{endpoint.port}"
    # healthy, never seen failing: a pass is not probed and stands
    assert watch.after_test(env, "t::a", ["vc", "provider"], failed=False, texts=["all fine"]) == []
    assert watch.suspects == set()
    os.killpg(server.pid, signal.SIGSTOP)
    try:
        # its evidence names the KMS as unreachable: probed after the pass, and found hung
        problems = watch.after_test(env, "t::b", ["vc", "provider"], failed=False,
                                    texts=[f"GenerateKey: shared-kms ({address}): no answer within 3 s"])
    finally:
        os.killpg(server.pid, signal.SIGCONT)
    assert problems and "no answer within" in problems[0]
    shared = Endpoint("kms", "shared")
    assert shared in watch.down and "down since t::b" in watch.down[shared]
    with pytest.raises(KmsUnreachable, match="circuit breaker"):
        watch.trip(env, ["vc", "kms"])
    watch.trip(env, ["vc", "place"])  # a test that needs no KMS still runs
    assert watch.touched(env, ["vc_b", "dedicated_provider"]) == [Endpoint("vcenter", "vc-b")]


@pytest.mark.parametrize("problem, said", [
    ("shared-kms (127.0.0.1:5696): no answer within 3 s", "is down"),
    ("shared-kms (127.0.0.1:5696): the KMS refused the harness's client certificate (TLS alert 42)", "answers but is not usable"),
])
def test_the_breaker_says_down_only_when_nobody_answered(endpoint: SimpleNamespace, problem: str, said: str) -> None:
    """A KMS that answers and refuses is not "down": the reader would look for a dead process, not a
    wrong certificate or credential."""
    env, watch = _environment(endpoint), OutageWatch()
    watch.down[Endpoint("kms", "shared")] = f"{problem}; since t::a"
    with pytest.raises(KmsUnreachable) as raised:
        watch.trip(env, ["vc", "kms"])
    assert f"KMS shared {said}, so this test was not run" in str(raised.value), str(raised.value)
