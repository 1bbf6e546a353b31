"""Is the lab still there? A KMS answers a KMIP round trip within a deadline; a vCenter answers CurrentTime.

A TCP connect is not enough: a stopped (SIGSTOP) or wedged KMS still accepts connections in the
kernel's backlog and then never answers. So the KMS probe is a KMIP DiscoverVersions over mutual
TLS with a deadline (`harness.kms.client.KmipClient.check`), and an outage is reported as an
environment error naming its cause ("KMS 127.0.0.1:5696 unreachable (no answer within 2 s)")
instead of a wrong product verdict.
"""
from __future__ import annotations

from typing import Any

from harness.vsphere import sessions

PROBE_DEADLINE_S = 2.0  # a healthy KMS answers DiscoverVersions in milliseconds


ABSENT_UID = "vcrypt-harness-probe-absent-key"


def _client(endpoint: Any, timeout: float) -> Any:
    """A KMIP client with the endpoint's credential and version (a plain object in tests: its paths)."""
    if hasattr(endpoint, "kmip_client"):
        return endpoint.kmip_client(timeout=timeout)
    from harness.kms.client import KmipClient
    return KmipClient.from_paths(endpoint.address, endpoint.port, endpoint.ca_path, endpoint.client_cert_path,
                                 endpoint.client_key_path, timeout=timeout)


def kms_problem(endpoint: Any, timeout: float = PROBE_DEADLINE_S) -> str | None:
    """None when the KMS answers KMIP as a KMS does within `timeout`; else what is wrong with it.

    Two read-only round trips: DiscoverVersions, then GetAttributes of a key that cannot exist,
    which any compliant KMS answers ITEM_NOT_FOUND (or PERMISSION_DENIED). A KMS that answers
    them with anything else is not usable, whatever it answers: a test failing beside it is the
    lab's problem, not the product's (issue 22: a KMS-side surprise is never a product failure).
    """
    from harness.kms.client import KmsOperationFailed, KmsPermissionDenied, KmsUnreachable
    where = f"KMS {endpoint.address}:{endpoint.port}"
    try:
        with _client(endpoint, timeout) as client:
            client.check()
            try:
                client.key_state(ABSENT_UID)
            except KmsPermissionDenied:
                pass
    except KmsUnreachable as err:
        return f"{where} unreachable ({err.cause or err})"
    except KmsOperationFailed as err:
        return (f"{where} not usable: it answers {err.operation} with {err.reason} "
                f"({err.kmip_message or 'no message'})")
    except Exception as err:  # noqa: BLE001 - any other failure to answer is the finding
        return f"{where} unreachable ({type(err).__name__}: {err})"
    return None


def is_timeout(problem: str) -> bool:
    """Whether a probe's problem is a missed deadline (worth confirming), not a refused connection."""
    return "no answer within" in problem


def kms_problems(endpoints: dict[str, Any], timeout: float = PROBE_DEADLINE_S) -> list[str]:
    return [p for p in (kms_problem(e, timeout) for e in endpoints.values()) if p]


def vcenter_problem(environment: Any, name: str) -> str | None:
    try:
        sessions.server_time(environment.service_instance(name))
    except Exception as err:  # noqa: BLE001 - any failure to answer is the finding
        return f"vCenter {name} unreachable ({type(err).__name__}: {err})"
    return None


def vcenter_problems(environment: Any) -> list[str]:
    return [p for p in (vcenter_problem(environment, e.name) for e in environment.inventory.vcenters) if p]


def environment_problems(environment: Any) -> list[str]:
    """Every outage of the run's KMS servers and vCenters right now (empty when all answer)."""
    if environment is None:
        return []
    return kms_problems(environment.kms_endpoints) + vcenter_problems(environment)
