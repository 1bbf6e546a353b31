"""Dispatch: one API call to the behaviour or model method that serves it.

`HANDLERS` is the one table of behaviours, keyed by (model class, WSDL method name). A call on a
managed object runs the handler registered for its class (or a base class); a method with no
handler falls to the model object's own method of that name (reads and bookkeeping: property
collector, events, authorization, key providers). Each handler takes `(ctx, mo, **params)` with
the VMODL parameter names and lives in `behaviours/`, beside the rules it applies.

Layers (README.md): wire/disks/defects/kmip -> model -> behaviours -> dispatch -> adapter.
"""
from __future__ import annotations

import http.client
import time
from typing import Any, Callable

from pyVmomi import vim, vmodl

from harness.fakevc.behaviours import clone, instant_clone, key_push, lifecycle, power, reconfigure, relocate, snapshots
from harness.fakevc.behaviours import default_providers  # issue 25 family 3 (KMS-DEFAULT-*)
from harness.fakevc.model.base import MO, CallContext
from harness.fakevc.model.cluster import ClusterComputeResource
from harness.fakevc.model.crypto_manager import CryptoManagerKmip
from harness.fakevc.model.host import HostCryptoManager, HostSystem
from harness.fakevc.model.inventory import Folder
from harness.fakevc.model.pbm import install as install_pbm
from harness.fakevc.model.vm import Snapshot, VirtualMachine
from harness.fakevc.server import FakeVCenter

Handler = Callable[..., Any]

HANDLERS: dict[tuple[type[MO], str], Handler] = {
    # VirtualMachine
    (VirtualMachine, "PowerOnVM_Task"): power.PowerOnVM_Task,
    (VirtualMachine, "PowerOffVM_Task"): power.PowerOffVM_Task,
    (VirtualMachine, "SuspendVM_Task"): power.SuspendVM_Task,
    (VirtualMachine, "Destroy_Task"): lifecycle.Destroy_Task,
    (VirtualMachine, "UnregisterVM"): lifecycle.UnregisterVM,
    (VirtualMachine, "MarkAsTemplate"): lifecycle.MarkAsTemplate,
    (VirtualMachine, "MarkAsVirtualMachine"): lifecycle.MarkAsVirtualMachine,
    (VirtualMachine, "CreateSnapshot_Task"): snapshots.CreateSnapshot_Task,
    (VirtualMachine, "RemoveAllSnapshots_Task"): snapshots.RemoveAllSnapshots_Task,
    (VirtualMachine, "RevertToCurrentSnapshot_Task"): snapshots.RevertToCurrentSnapshot_Task,
    (VirtualMachine, "ConsolidateVMDisks_Task"): snapshots.ConsolidateVMDisks_Task,
    (VirtualMachine, "ReconfigVM_Task"): reconfigure.ReconfigVM_Task,   # encrypt, decrypt, recrypt (shallow/deep)
    (VirtualMachine, "CloneVM_Task"): clone.CloneVM_Task,
    (VirtualMachine, "RelocateVM_Task"): relocate.RelocateVM_Task,
    (VirtualMachine, "InstantClone_Task"): instant_clone.InstantClone_Task,
    (VirtualMachine, "CryptoUnlock_Task"): key_push.CryptoUnlock_Task,
    # VirtualMachineSnapshot
    (Snapshot, "RemoveSnapshot_Task"): snapshots.RemoveSnapshot_Task,
    (Snapshot, "RevertToSnapshot_Task"): snapshots.RevertToSnapshot_Task,
    # Folder
    (Folder, "CreateVM_Task"): lifecycle.CreateVM_Task,
    # ClusterComputeResource
    (ClusterComputeResource, "ReconfigureComputeResource_Task"): key_push.ReconfigureComputeResource_Task,
    # HostSystem and its crypto manager
    (HostSystem, "EnableCrypto"): key_push.EnableCrypto,
    (HostSystem, "ConfigureCryptoKey"): key_push.ConfigureCryptoKey,
    (HostCryptoManager, "CryptoManagerHostEnable"): key_push.CryptoManagerHostEnable,
    (HostCryptoManager, "ChangeKey_Task"): key_push.ChangeKey_Task,
    (HostCryptoManager, "CryptoManagerHostDisable"): key_push.CryptoManagerHostDisable,
    # Issue 25 family 3: default key provider per cluster (KMS-DEFAULT-*)
    (CryptoManagerKmip, "SetDefaultKmsCluster"): default_providers.SetDefaultKmsCluster,
    (CryptoManagerKmip, "GetDefaultKmsCluster"): default_providers.GetDefaultKmsCluster,
}


def handler_for(mo: MO, method: str) -> Handler | None:
    """The callable serving `method` on `mo`: its class's (or a base class's) handler, else the
    model's own method, else None (MethodNotFound)."""
    for cls in type(mo).__mro__:
        behaviour = HANDLERS.get((cls, method))
        if behaviour is not None:
            return lambda ctx, **params: behaviour(ctx, mo, **params)
    return getattr(mo, method, None)


# Methods a client may call before logging in, as on vCenter (PBM's content is anonymous too).
_ANONYMOUS = {"RetrieveServiceContent", "Login", "CurrentTime", "LoginByToken", "Fetch", "PbmRetrieveServiceContent"}
# Anonymous property reads: the service content, and the session manager (currentSession is
# unset without a session: pyVmomi's "is my session alive" check relies on it).
_ANONYMOUS_FETCH = {vim.ServiceInstance: None,
                    vim.SessionManager: {"currentSession", "defaultLocale", "supportedLocaleList", "message"}}


def _anonymous_fetch(mo: MO, prop: str) -> bool:
    for typ, props in _ANONYMOUS_FETCH.items():
        if isinstance(mo.ref, typ):
            return props is None or prop.split(".")[0] in props
    return False


def invoke(vc: FakeVCenter, session_key: str | None, moid: str, method: str, kwargs: dict[str, Any],
           endpoint: str = "vim", privilege: str | None = None, mo_type: type | None = None) -> Any:
    """Run one API method on one object; raises the vmodl fault a vCenter would send.

    `privilege` is the method's VMODL privilege (checked before the method runs); a fault a
    privilege check deferred (a half-applied defect) is raised after the method ran.
    """
    with vc.lock:
        if vc.refuse_next_calls > 0:   # as a TCP connect refused: nothing was sent
            vc.refuse_next_calls -= 1
            raise ConnectionRefusedError(f"fake vCenter {vc.name}: connection refused (injected)")
        if vc.drop_next_calls > 0:
            vc.drop_next_calls -= 1
            raise ConnectionResetError(f"fake vCenter {vc.name}: connection reset by peer (injected)")
        vc.call_log.append((moid, method))
        if endpoint == "pbm":
            install_pbm(vc)
        mo = (vc.pbm_objects if endpoint == "pbm" else vc.objects).get(moid)
        if mo is None:
            raise vmodl.fault.ManagedObjectNotFound(
                obj=(mo_type or vmodl.ManagedObject)(moid),
                msg=f"The object '{moid}' has already been deleted or has not been completely created")
        session = vc.session_for(session_key)
        anonymous_ok = method in _ANONYMOUS and (method != "Fetch" or _anonymous_fetch(mo, kwargs.get("prop", "")))
        if session is None and not anonymous_ok:
            raise vim.fault.NotAuthenticated(object=mo.ref, privilegeId="System.View",
                                             msg="The session is not authenticated.")
        if session is not None:
            session.last_active = time.time()
            session.call_count += 1
        ctx = CallContext(vc=vc, session=session)
        log = getattr(vc.world, "request_log", None)
        try:
            with vc.serving(ctx):
                if log is not None:   # the fake's own record of what it served (request_log.py)
                    result = log.call(vc, moid, method, lambda: _dispatch(vc, ctx, mo, method, kwargs, privilege))
                else:
                    result = _dispatch(vc, ctx, mo, method, kwargs, privilege)
        finally:
            vc.lock.notify_all()  # property-collector waiters re-check for changes
        if vc.drop_next_replies > 0:   # the call ran; its reply never reaches the client
            vc.drop_next_replies -= 1
            raise http.client.RemoteDisconnected(f"fake vCenter {vc.name}: remote end closed the connection "
                                                 "without a response (injected, after the call ran)")
        return result


def _dispatch(vc: FakeVCenter, ctx: CallContext, mo: MO, method: str, kwargs: dict[str, Any], privilege: str | None) -> Any:
    if method == "Fetch":
        return mo.fetch(kwargs["prop"])
    handler = handler_for(mo, method)   # HANDLERS first, then the model's own method
    if handler is None:
        raise vmodl.fault.MethodNotFound(receiver=mo.ref, method=method,
                                         msg=f"Method {method} not implemented by the fake vCenter")
    authz = getattr(vc, "authz", None)
    if authz is not None and privilege:
        authz.require_method(ctx, mo, privilege)
    result = handler(ctx, **kwargs)
    deferred = getattr(ctx, "deferred_fault", None)
    if deferred is not None:
        task = vc.objects.get(getattr(result, "_moId", None) or "")
        if task is not None and hasattr(task, "fail"):
            task.info.result = None
            task.fail(deferred)   # the work ran; the task reports the fault anyway
        else:
            raise deferred
    return result
