"""Is the lab still there? Checked after a test fails, so an outage is reported as an environment
error naming its cause ("KMS 127.0.0.1:5696 unreachable") instead of a wrong product verdict."""
from __future__ import annotations

import socket
from typing import Any


def kms_problems(endpoints: dict[str, Any], timeout: float = 1.0) -> list[str]:
    problems = []
    for endpoint in endpoints.values():
        try:
            with socket.create_connection((endpoint.address, endpoint.port), timeout=timeout):
                pass
        except OSError as err:
            problems.append(f"KMS {endpoint.address}:{endpoint.port} unreachable ({err.strerror or err})")
    return problems


def vcenter_problems(environment: Any) -> list[str]:
    problems = []
    for entry in environment.inventory.vcenters:
        try:
            environment.service_instance(entry.name).CurrentTime()
        except Exception as err:  # noqa: BLE001 - any failure to answer is the finding
            problems.append(f"vCenter {entry.name} unreachable ({type(err).__name__}: {err})")
    return problems


def environment_problems(environment: Any) -> list[str]:
    """Every outage of the run's KMS servers and vCenters right now (empty when all answer)."""
    if environment is None:
        return []
    return kms_problems(environment.kms_endpoints) + vcenter_problems(environment)
