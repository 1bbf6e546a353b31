"""Outages seen during a run: is a test's verdict the product's, or the lab's?

- A KMS or vCenter becomes *suspect* once it is seen failing: a health probe failed, or a test's
  exception or evidence names it as unreachable.
- After every rule test that touched a suspect endpoint (passed or not), and after every failure,
  the endpoints are probed (`harness.targets.health`: a KMIP round trip with a deadline; a vCenter's
  CurrentTime). An outage turns the test's verdict into an environment error naming it: a pass
  seen while its KMS was down proves nothing.
- A KMS that misses the probe's deadline is probed once more with a longer one (`CONFIRM_DEADLINE_S`)
  before the outage is established: one missed deadline on a loaded machine is not an outage.
- Once an outage is established a circuit breaker opens: the remaining tests that need that
  endpoint error at once, naming it, instead of each waiting out its own KMIP timeouts.

Which endpoints a test touches is read from its fixtures (`KMS_FIXTURES`, `VCENTER_FIXTURES`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from harness.targets import health

# A KMS that misses the probe deadline is asked once more with this longer one before it is called
# down: on a loaded 2-core machine (load ~7) a healthy KMS process can be descheduled past 2 s, and
# calling it down turned a caught seeded defect into an environment error (issue 23). A hung KMS
# costs both deadlines once; after that the circuit breaker answers at once.
CONFIRM_DEADLINE_S = 6.0

OUTAGE_WORDS = re.compile(r"unreachable|connection refused|no answer within|connection reset|not responding"
                          r"|connection closed by the server", re.IGNORECASE)

# Fixtures that reach a KMS (the KMS roles they need; None: every KMS of the inventory) ...
KMS_FIXTURES: dict[str, tuple[str, ...] | None] = {
    "provider": ("shared",), "provider_b": ("shared",), "encrypted_vm": ("shared",),
    "dedicated_provider": ("dedicated",), "kms": None,
}
# ... and a vCenter (its position in the inventory).
VCENTER_FIXTURES: dict[str, int] = {"vc": 0, "place": 0, "policies_a": 0, "vc_b": 1, "place_b": 1, "policies_b": 1}


def names_an_outage(text: str) -> bool:
    """Whether a failure text says nobody answered (as opposed to an answer that refused)."""
    return bool(OUTAGE_WORDS.search(text or ""))


@dataclass(frozen=True)
class Endpoint:
    kind: str  # "kms" or "vcenter"
    name: str  # the KMS role ("shared", "dedicated") or the vCenter's inventory name

    def __str__(self) -> str:
        return f"{'KMS' if self.kind == 'kms' else 'vCenter'} {self.name}"


@dataclass
class OutageWatch:
    """Per process (each xdist worker has its own environment): suspects and established outages."""
    suspects: set[Endpoint] = field(default_factory=set)
    down: dict[Endpoint, str] = field(default_factory=dict)  # endpoint -> "problem (seen after test X)"

    # ---- which endpoints ------------------------------------------------------------------------
    @staticmethod
    def all_endpoints(environment: Any) -> list[Endpoint]:
        return ([Endpoint("kms", role) for role in environment.kms_endpoints]
                + [Endpoint("vcenter", vc.name) for vc in environment.inventory.vcenters])

    @staticmethod
    def touched(environment: Any, fixturenames: Iterable[str]) -> list[Endpoint]:
        """The KMS servers and vCenters a test reaches through its fixtures."""
        names = set(fixturenames)
        found: dict[Endpoint, None] = {}
        for fixture, roles in KMS_FIXTURES.items():
            if fixture in names:
                for role in roles or tuple(environment.kms_endpoints):
                    if role in environment.kms_endpoints:
                        found[Endpoint("kms", role)] = None
        vcenters = environment.inventory.vcenters
        for fixture, index in VCENTER_FIXTURES.items():
            if fixture in names and index < len(vcenters):
                found[Endpoint("vcenter", vcenters[index].name)] = None
        return list(found)

    # ---- probing --------------------------------------------------------------------------------
    def probe(self, environment: Any, endpoint: Endpoint) -> str | None:
        """The endpoint's problem now (an established outage is not probed again)."""
        if endpoint in self.down:
            return self.down[endpoint]
        if endpoint.kind == "kms":
            kms = environment.kms_endpoints[endpoint.name]
            problem = health.kms_problem(kms)
            if problem and health.is_timeout(problem):
                problem = health.kms_problem(kms, timeout=CONFIRM_DEADLINE_S)
            return problem
        return health.vcenter_problem(environment, endpoint.name)

    def note_suspects(self, environment: Any, texts: Iterable[str]) -> None:
        """A KMS named as unreachable in a test's exception or evidence is suspect from now on."""
        for text in texts:
            if not text or not names_an_outage(text):
                continue
            for role, endpoint in environment.kms_endpoints.items():
                if f"{endpoint.address}:{endpoint.port}" in text:
                    self.suspects.add(Endpoint("kms", role))

    def after_test(self, environment: Any, nodeid: str, fixturenames: Iterable[str], failed: bool,
                   texts: Iterable[str] = ()) -> list[str]:
        """Outages that make this test's verdict an environment error (empty: the verdict stands).

        After a failure every endpoint is probed; after a pass, those the test touched that were
        seen failing before or during it.
        """
        if environment is None:
            return []
        self.note_suspects(environment, texts)
        candidates = (self.all_endpoints(environment) if failed
                      else [e for e in self.touched(environment, fixturenames) if e in self.suspects])
        problems = []
        for endpoint in candidates:
            problem = self.probe(environment, endpoint)
            if problem:
                self.suspects.add(endpoint)
                self.down.setdefault(endpoint, f"{problem}; {'down' if names_an_outage(problem) else 'failing'} since {nodeid}")
                problems.append(problem)
        return problems

    # ---- circuit breaker ------------------------------------------------------------------------
    def breaker(self, environment: Any, fixturenames: Iterable[str]) -> tuple[Endpoint, str] | None:
        """The first established outage among the endpoints this test needs (None: let it run)."""
        if environment is None or not self.down:
            return None
        for endpoint in self.touched(environment, fixturenames):
            if endpoint in self.down:
                return endpoint, self.down[endpoint]
        return None

    def down_problem(self, kind: str, name: str) -> str | None:
        """The established outage of one endpoint (None: not known down); teardown asks before calling it."""
        return self.down.get(Endpoint(kind, name))

    def trip(self, environment: Any, fixturenames: Iterable[str]) -> None:
        """Raise an environment error at once when the test needs an endpoint that is down."""
        open_circuit = self.breaker(environment, fixturenames)
        if open_circuit is None:
            return
        endpoint, problem = open_circuit
        state = "is down" if names_an_outage(problem) else "answers but is not usable"
        message = f"{endpoint} {state}, so this test was not run (circuit breaker): {problem}"
        if endpoint.kind == "kms":
            from harness.kms.client import KmsUnreachable
            kms = environment.kms_endpoints[endpoint.name]
            raise KmsUnreachable(message, address=f"{kms.address}:{kms.port}", cause=problem)
        from harness.vsphere.errors import VCenterUnreachable
        raise VCenterUnreachable(message)
