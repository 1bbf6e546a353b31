"""Calls on a bare ServiceInstance, for code that has no VCenterClient: is the vCenter answering,
which version is it, and closing a session.

These go around VCenterClient on purpose: they run between tests or after the run (outage
probes, environment shutdown, preflight), where no test's evidence is open and no mutation gate
applies (all of them are reads or Logout, on the gate's read-only list, harness/safety.py).
"""
from __future__ import annotations

import datetime
from typing import Any


def server_time(service_instance: Any) -> datetime.datetime:
    """ServiceInstance.CurrentTime: the cheapest call a logged-in vCenter answers (a liveness probe)."""
    return service_instance.CurrentTime()


def logout(service_instance: Any) -> None:
    """SessionManager.Logout of the session this ServiceInstance was logged in with."""
    service_instance.content.sessionManager.Logout()


def about(service_instance: Any) -> Any:
    """ServiceContent.about (AboutInfo: version, build, apiVersion) of a bare ServiceInstance."""
    return service_instance.content.about
