"""Which faults are the product refusing, and which mean "could not talk / log in / was not allowed".

A refusal test passes only when the product refused. A TLS failure, a rejected login, an expired
session, a host that could not be reached or a missing privilege says nothing about the rule under
test: `harness.checks.refused` turns those into `RefusalNotByProduct`, an EnvironmentFault, so the
plugin reports an error. NoPermission counts as a refusal only where the test expects it (the PRIV
rules pass `expected=vim.fault.NoPermission`). The classes and their meaning are from the pyVmomi
typeinfo (NotAuthenticated extends NoPermission extends SecurityError; SSLVerifyFault, NoHost and
SSLDisabledFault extend HostConnectFault; InvalidClientCertificate extends InvalidLogin).
"""
from __future__ import annotations

import http.client
import ssl
from typing import Any

from pyVmomi import vim, vmodl

from harness.vsphere.errors import EnvironmentFault, fault_class_name, fault_message

ENVIRONMENT_FAULTS: tuple[type, ...] = (
    vim.fault.InvalidLogin,            # wrong credential (also in a ServiceLocator), bad client certificate
    vim.fault.NoClientCertificate,
    vmodl.fault.SecurityError,         # NoPermission, NotAuthenticated (session gone)
    vim.fault.HostConnectFault,        # SSLVerifyFault (untrusted certificate / thumbprint), NoHost, SSL disabled
    vmodl.fault.HostCommunication,     # HostNotConnected, HostNotReachable
    vmodl.fault.RequestCanceled,
    vmodl.fault.NotEnoughLicenses,
)
TRANSPORT_ERRORS: tuple[type, ...] = (ssl.SSLError, ConnectionError, TimeoutError, http.client.HTTPException)


class RefusalNotByProduct(EnvironmentFault):
    """An operation that had to be refused failed, but for a reason outside the rule (TLS, login, rights)."""


def _causes(fault: Any) -> list[Any]:
    chain, seen = [], set()
    while fault is not None and id(fault) not in seen:
        seen.add(id(fault))
        chain.append(fault)
        fault = getattr(fault, "faultCause", None)
    return chain


def environment_cause(fault: Any, expected: tuple[type, ...] = ()) -> Any | None:
    """The fault (or nested faultCause) that means the environment failed, unless the test expects it."""
    for cause in _causes(fault):
        if isinstance(cause, ENVIRONMENT_FAULTS) and not (expected and isinstance(cause, expected)):
            return cause
    return None


def not_by_product(what: str, cause: Any) -> RefusalNotByProduct:
    if isinstance(cause, BaseException) and not isinstance(cause, vmodl.MethodFault):
        detail = f"{type(cause).__name__}: {cause}"
    else:
        detail = f"{fault_class_name(cause)}: {fault_message(cause)}"
    return RefusalNotByProduct(f"{what}: the operation failed, but not because the product refused it "
                               f"({detail}); a TLS, login, permission or connection problem is no verdict")
