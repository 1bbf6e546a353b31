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


def kms_problem(endpoint: Any, timeout: float = PROBE_DEADLINE_S) -> str | None:
    """None when the KMS answers a KMIP round trip within `timeout`; else what is wrong with it."""
    from harness.kms.client import KmipClient, KmsOperationFailed, KmsUnreachable
    where = f"KMS {endpoint.address}:{endpoint.port}"
    try:
        with KmipClient.from_paths(endpoint.address, endpoint.port, endpoint.ca_path, endpoint.client_cert_path,
                                   endpoint.client_key_path, timeout=timeout) as client:
            client.check()
    except KmsOperationFailed:
        return None  # it answered (with a KMIP failure): it is there
    except KmsUnreachable as err:
        return f"{where} unreachable ({err.cause or err})"
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
