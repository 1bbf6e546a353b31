"""The outage probe and the circuit breaker hold on a loaded 2-core machine (issue 23, point 6).

With CPU burners beside it, a healthy KMS must never be called down (that turned a caught defect
into an environment error, and the selftest into `MISSED`), and a hung one must still be called
down within a bounded time, once, after which the breaker answers at once. A stall longer than one
probe deadline (a descheduled KMS on a loaded machine, imitated by SIGSTOP for a moment) is not an
outage when the KMS answers the confirming probe.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from harness.kms.client import KmsUnreachable
from harness.kms.pki import ThrowawayCA
from harness.kms.server import KmsServer
from harness.targets import health
from harness.targets.outage import CONFIRM_DEADLINE_S, Endpoint, OutageWatch
from tests.burners import cpu_burners  # noqa: F401 - fixture

PROBES = 15


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return ThrowawayCA(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(ca: ThrowawayCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KmsServer]:
    with KmsServer(tmp_path_factory.mktemp("kms"), ca, name="load-tests", uid_base=710000) as kms:
        yield kms


@pytest.fixture(scope="module")
def environment(server: KmsServer, ca: ThrowawayCA) -> SimpleNamespace:
    identity = ca.issue_client("vcrypt-vcenter")
    endpoint = SimpleNamespace(role="shared", address=server.host, port=server.port, ca_path=ca.ca_path,
                               client_cert_path=identity.cert_path, client_key_path=identity.key_path)
    inventory = SimpleNamespace(vcenters=[SimpleNamespace(name="vc-a")])
    return SimpleNamespace(kms_endpoints={"shared": endpoint}, inventory=inventory,
                           service_instance=lambda name: SimpleNamespace(CurrentTime=lambda: 0))


def _stall(server: KmsServer, seconds: float) -> threading.Thread:
    """Stop the KMS now and let it go on after `seconds` (a process descheduled that long)."""
    os.killpg(server.pid, signal.SIGSTOP)
    thread = threading.Timer(seconds, lambda: os.killpg(server.pid, signal.SIGCONT))
    thread.start()
    return thread


def test_under_cpu_burners_a_healthy_kms_answers_every_probe_and_a_failure_is_never_blamed_on_it(
        cpu_burners, environment):  # noqa: F811 - fixture
    watch = OutageWatch()
    for n in range(PROBES):
        assert health.kms_problem(environment.kms_endpoints["shared"]) is None, f"probe {n} under load"
        assert watch.after_test(environment, f"t::{n}", ["vc", "provider"], failed=True) == []
    assert watch.down == {}


def test_a_kms_stalled_longer_than_one_probe_deadline_is_not_an_outage_when_it_answers_the_confirming_probe(
        cpu_burners, server, environment):  # noqa: F811 - fixture
    watch = OutageWatch()
    stall = _stall(server, health.PROBE_DEADLINE_S + 1.0)
    try:
        problems = watch.after_test(environment, "t::stalled", ["vc", "provider"], failed=True)
    finally:
        stall.join()
        os.killpg(server.pid, signal.SIGCONT)
    assert problems == [], "a KMS that answered within the confirming deadline was called down"
    assert watch.down == {}
    watch.trip(environment, ["vc", "kms"])  # the breaker stays closed


def test_under_cpu_burners_a_hung_kms_is_still_called_down_within_its_deadlines_and_the_breaker_opens(
        cpu_burners, server, environment):  # noqa: F811 - fixture
    watch = OutageWatch()
    os.killpg(server.pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        problems = watch.after_test(environment, "t::hung", ["vc", "provider"], failed=True)
        took = time.monotonic() - began
        began = time.monotonic()
        with pytest.raises(KmsUnreachable, match="circuit breaker"):
            watch.trip(environment, ["vc", "kms"])
        tripped = time.monotonic() - began
    finally:
        os.killpg(server.pid, signal.SIGCONT)
    assert problems and "no answer within" in problems[0], problems
    assert Endpoint("kms", "shared") in watch.down
    bound = health.PROBE_DEADLINE_S + CONFIRM_DEADLINE_S + 2.0
    assert took < bound, f"calling a hung KMS down took {took:.1f} s under load (bound {bound:g} s)"
    assert tripped < 0.5, f"the open breaker took {tripped:.1f} s"
    assert health.kms_problem(environment.kms_endpoints["shared"]) is None  # resumed: healthy again
