"""The harness's own KMIP reads for evidence (the suites' `kms` fixture): does a key exist, its state.

Why a module: on a real lab the harness reads with its own client identity, not vCenter's, and
many KMSes let only a key's owner read it (PERMISSION_DENIED), or the lab gives the harness no
read identity at all (`kms.<role>.read_identity: none`). Then the KMS-side checks are *not
observable* on that target: each such read is recorded (`Recorder.not_observable`, the KMIP read
with its reason), answers so that the test's vCenter-side checks still run, and the test is
reported skipped with a `capability:` reason naming the KMS (never passed, never failed:
`mark_not_observable`). Every other KMS failure is a named `KmsFailure` (an environment error).

A provider with several servers (KMS-MULTI, `add_cluster`) is read as vCenter reads it: server after
server until one answers (a stopped server is skipped, and the read names the server that answered);
`key_state_on` asks one server only (does *this* server serve the key?).

"Exists" is decided by the key's KMIP state (KmipClient.USABLE_STATES): a Destroyed or
Compromised key is not a usable key, and the evidence records the state.
"""
from __future__ import annotations

from typing import Any

import pytest

from harness.evidence.recorder import current_recorder
from harness.kms.client import USABLE_STATES, KmsPermissionDenied, KmsTrustError, KmsUnreachable
from harness.safety import MutationGate


class NotObservable:
    """The answer of a KMS read the harness may not make. Truthy, so a positive check (`assert
    kms.key_exists(k)`) lets the test go on to its vCenter-side checks; the test is then reported not
    demonstrated (`mark_not_observable`), so this never counts as evidence. For a negative check
    use `KmsEvidence.key_absent`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"not observable ({self.reason})"


class KmsEvidence:
    """KMIP reads the harness makes for its own evidence: does a key exist on the KMS, its state."""

    def __init__(self, endpoints: dict[str, Any], gate: MutationGate | None = None) -> None:
        self.endpoints = endpoints
        self.gate = gate or MutationGate()
        self._clients: dict[str, Any] = {}
        self.clusters: dict[str, list[Any]] = {}   # provider id -> its servers' endpoints (KMS-MULTI)
        # Native Key Providers (issue 25 family 5): no KMIP server holds their keys, so every read of one of
        # their keys is not observable. Filled from the inventory (`key_provider`) and by the NKP suite.
        self.native: set[str] = set()

    def add_cluster(self, provider_id: str, endpoints: list[Any]) -> None:
        """Read `provider_id`'s keys from these servers, in order, failing over as vCenter does."""
        self.clusters[provider_id] = list(endpoints)

    def endpoint(self, role: str = "shared") -> Any:
        if role not in self.endpoints:
            pytest.skip(f"capability: inventory has no {role} KMS")
        return self.endpoints[role]

    def for_provider(self, provider_id: str) -> Any:
        if provider_id in self.native:   # a test that needs the provider's KMS (stop it, make it refuse) cannot run
            pytest.skip(f"capability: key provider {provider_id} is a vSphere Native Key Provider: no KMS of the "
                        "inventory serves it (no KMIP server)")
        if provider_id in self.clusters:
            return self.clusters[provider_id][0]
        for endpoint in self.endpoints.values():
            if endpoint.provider_id == provider_id:
                return endpoint
        raise LookupError(f"no KMS of the inventory serves provider {provider_id!r}")

    def _client(self, endpoint: Any) -> Any:
        slot = endpoint.role if endpoint.role != "multi" else f"multi/{endpoint.address}:{endpoint.port}"
        if slot not in self._clients:
            self._clients[slot] = endpoint.kmip_client(gate=self.gate, reader=True)
        return self._clients[slot]

    def _read(self, endpoint: Any, key_id: str) -> Any:
        where = f"{endpoint.address}:{endpoint.port}"
        if endpoint.read_identity == "none":
            return NotObservable(f"capability: KMS {where} ({endpoint.role}) gives the harness no read "
                                 "identity (read_identity: none)")
        try:
            return self._client(endpoint).key_state(key_id)
        except KmsPermissionDenied as err:
            return NotObservable(f"capability: KMS {where} ({endpoint.role}) does not let the harness's "
                                 f"read identity read vCenter's keys ({err.operation}: PERMISSION_DENIED)")

    def _failover(self, key: tuple[str, str], only: str | None) -> tuple[Any, Any]:
        """(endpoint that answered, answer): the provider's servers in order; a server that does not answer
        (not a trust failure) is skipped; KmsUnreachable when none answers."""
        servers = self.clusters.get(key[0]) or [self.for_provider(key[0])]
        if only is not None:
            servers = [e for e in servers if e.server_name == only]
            if not servers:
                raise LookupError(f"key provider {key[0]!r} has no server {only!r} the harness knows")
        failures: list[KmsUnreachable] = []
        for endpoint in servers:
            try:
                return endpoint, self._read(endpoint, key[1])
            except KmsTrustError:
                raise
            except KmsUnreachable as err:
                if len(servers) == 1:
                    raise
                failures.append(err)
        where = ", ".join(f"{e.address}:{e.port}" for e in servers)
        raise KmsUnreachable.at(where, f"no server of key provider {key[0]} answered: "
                                + "; ".join(map(str, failures)))

    def _state(self, op: str, key: tuple[str, str], only: str | None = None) -> "str | None | NotObservable":
        """The key's KMIP state (None: no such key), recorded; NotObservable when the harness may not read it."""
        if key[0] in self.native:
            return self._native_read(op, key)
        endpoint, answer = self._failover(key, only)
        where = f"{endpoint.address}:{endpoint.port}"
        recorder = current_recorder()
        if isinstance(answer, NotObservable):
            if answer.reason not in recorder.not_observable:
                recorder.not_observable.append(answer.reason)
            recorder.kmip_read(op, where, key[1], repr(answer))
        else:
            recorder.kmip_read(op, where, key[1], {"state": answer, "usable": answer in USABLE_STATES})
        return answer

    def require_kmip(self, provider_id: str) -> None:
        """Skip (capability) a test about a KMIP provider's servers when the provider is a Native Key Provider."""
        if provider_id in self.native:
            pytest.skip(f"capability: key provider {provider_id} is a vSphere Native Key Provider: it has no KMIP "
                        "server whose status or trust could be checked")

    def _native_read(self, op: str, key: tuple[str, str]) -> "NotObservable":
        answer = NotObservable(f"capability: key provider {key[0]} is a vSphere Native Key Provider: its keys "
                               "come from vCenter itself and no KMIP server holds them")
        recorder = current_recorder()
        if answer.reason not in recorder.not_observable:
            recorder.not_observable.append(answer.reason)
        recorder.kmip_read(op, f"native key provider {key[0]}", key[1], repr(answer))
        return answer

    def key_exists(self, key: tuple[str, str]) -> "bool | NotObservable":
        """Whether the KMS holds the key as a usable key (by its state; Destroyed/Compromised: False)."""
        state = self._state("exists", key)
        return state if isinstance(state, NotObservable) else state in USABLE_STATES

    def key_absent(self, key: tuple[str, str]) -> "bool | NotObservable":
        """For a negative check: True when the KMS holds no usable key `key` (or cannot be asked)."""
        state = self._state("absent", key)
        return state if isinstance(state, NotObservable) else state not in USABLE_STATES

    def key_state(self, key: tuple[str, str]) -> "str | None | NotObservable":
        return self._state("state", key)

    def key_state_on(self, key: tuple[str, str], server_name: str) -> "str | None | NotObservable":
        """The key's state on one server of a multi-server provider (KmsUnreachable when it is down)."""
        return self._state(f"state on {server_name}", key, only=server_name)

    def key_exists_on(self, key: tuple[str, str], server_name: str) -> "bool | NotObservable":
        """Whether one server of a multi-server provider serves the key as a usable key."""
        state = self.key_state_on(key, server_name)
        return state if isinstance(state, NotObservable) else state in USABLE_STATES

    @staticmethod
    def observed(answer: Any) -> bool:
        """Whether a read's answer is an observation (not NotObservable)."""
        return not isinstance(answer, NotObservable)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def mark_not_observable(report: pytest.TestReport, item: pytest.Item, recorder: Any) -> None:
    """A passed call whose KMS-side checks could not be observed is reported skipped, naming the KMS."""
    reasons = getattr(recorder, "not_observable", None)
    if not reasons or report.when != "call" or not report.passed:
        return
    report.outcome = "skipped"
    text = "; ".join(reasons) + ": the KMS-side checks of this test are not observable on this target (its " \
                                "vCenter-side checks passed)"
    report.longrepr = (str(item.path), (item.location[1] or 0) + 1, f"Skipped: {text}")
