"""A vCenter handle for the operations layer: every call and read goes through here.

Going through one place gives, for every operation a suite makes: the mutation gate first
(harness/safety.py: a call that is not read-only is refused unless the inventory allows
mutations), evidence (method, target, redacted arguments, task, result or fault, duration),
bounded retries of transient faults only (dropped connections, expired sessions with re-login;
a mutating method only when it provably never ran),
and event-driven task waits.
"""
from __future__ import annotations

import http.client
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pyVmomi import VmomiSupport, vim, vmodl
from tenacity import (Retrying, before_sleep_log, retry_if_exception, stop_after_attempt,
                      wait_exponential)

from harness.calls import observed
from harness.evidence.recorder import Recorder, current_recorder, describe_object, summarize
from harness.safety import MutationGate, is_read_only
from harness.vsphere.errors import OutcomeUnknown, TargetLacks, VCenterUnreachable
from harness.vsphere.tasks import wait_for_task

log = logging.getLogger("vcrypt.vsphere")

_CONNECTION_ERRORS = (ConnectionError, socket.timeout, http.client.HTTPException, TimeoutError)


def _is_transient(err: BaseException) -> bool:
    """Worth another try for a read: any dropped connection or expired session."""
    return isinstance(err, (*_CONNECTION_ERRORS, vim.fault.NotAuthenticated))


def _never_ran(err: BaseException) -> bool:
    """Provably not run, so a mutating call may be sent again: the TCP connect was refused (nothing
    was sent), or vCenter answered NotAuthenticated (it checks the session before running a method)."""
    return isinstance(err, (ConnectionRefusedError, vim.fault.NotAuthenticated))


@dataclass
class VCenterClient:
    """One logged-in vCenter of the inventory, with its named timeouts."""
    name: str
    si: Any
    timeouts: Any
    target: str = "fake"
    relogin: Callable[[], Any] | None = None
    retries: int = 3
    gate: MutationGate = field(default_factory=MutationGate)  # refuses every mutation unless given one
    clone_crypto_shape: str = "disk-backing"  # where clones.clone puts a crypto change (vsphere/clone_shapes.py)
    _pc: Any = field(default=None, repr=False)
    _content: Any = field(default=None, repr=False)

    # ---- plumbing ---------------------------------------------------------------------------
    @property
    def content(self) -> Any:
        if self._content is None:
            self._content = self.si.RetrieveContent()
        return self._content

    @property
    def property_collector(self) -> Any:
        """A private PropertyCollector for this client's waits (filters never collide)."""
        if self._pc is None:
            self._pc = self.content.propertyCollector.CreatePropertyCollector()
        return self._pc

    @property
    def api_version(self) -> str:
        return self.content.about.apiVersion

    @property
    def version(self) -> str:
        return self.content.about.version

    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.version.split(".")[:3] if p.isdigit())

    def api_has(self, vim_type: Any, method: str) -> bool:
        """Whether the API version this session speaks has `vim_type.method`, from pyVmomi's type
        info (a method's `version` is the release that added it); no call is made."""
        info = vim_type._GetMethodInfo(method)
        return bool(VmomiSupport.IsChildVersion(self.si._stub.version, info.version))

    @property
    def recorder(self) -> Recorder:
        return current_recorder()

    def _relogin(self, relogin: Callable[[], Any]) -> None:
        log.warning("vCenter %s: session expired or connection dropped; logging in again", self.name)
        self.si = relogin()
        self._pc = None
        self._content = None

    def _retrying(self, fn: Callable[[], Any], method: str | None = None, target: str = "") -> Any:
        """Run `fn`, retrying transient faults (bounded, logged); never wraps assertions.

        Reads (`method` None or on harness.safety's read-only list) are retried on any dropped
        connection. A mutating method is sent again only when it provably never ran (`_never_ran`);
        a connection lost after its request left raises OutcomeUnknown instead: sending
        CloneVM_Task or RegisterKmipServer twice would act twice (issue 21)."""
        safe = method is None or is_read_only(method)

        def before(state: Any) -> None:
            err = state.outcome.exception()
            if isinstance(err, vim.fault.NotAuthenticated) or isinstance(err, _CONNECTION_ERRORS):
                self._relogin_quietly()

        retrying = Retrying(stop=stop_after_attempt(self.retries), reraise=True,
                            retry=retry_if_exception(_is_transient if safe else _never_ran),
                            wait=wait_exponential(multiplier=0.05, max=2),
                            before_sleep=lambda s: (before(s), before_sleep_log(log, logging.WARNING)(s)))
        try:
            return retrying(fn)
        except _CONNECTION_ERRORS as err:
            if not safe and not isinstance(err, ConnectionRefusedError):
                raise OutcomeUnknown(self.name, method or "?", target, err) from err
            raise VCenterUnreachable(f"vCenter {self.name} unreachable: {err}") from err

    def _relogin_quietly(self) -> None:
        if self.relogin is not None:
            try:
                self._relogin(self.relogin)
            except Exception as err:  # noqa: BLE001 - the next attempt reports the real cause
                log.warning("vCenter %s: re-login failed: %s", self.name, err)

    # ---- calls ------------------------------------------------------------------------------
    def invoke(self, obj: Any, method: str, **kwargs: Any) -> Any:
        """Call `obj.<method>(**kwargs)`, recording it; a `_Task` method's task is awaited.

        Returns the method's result (for tasks: the task result); raises the vmodl fault as is
        (tasks raise `TaskFailed`, which carries the fault). A mutating call the gate refuses raises
        `MutationRefused` before anything is sent (and is recorded as refused).
        """
        self._gate(obj, method, kwargs)
        record = self.recorder.start_call(self.name, method, describe_object(obj),
                                          {k: summarize(v) for k, v in kwargs.items()})
        started = time.perf_counter()
        with observed(f"{self.name}: {method} on {describe_object(obj)}", record.args):
            return self._invoke(obj, method, kwargs, record, started)

    def _gate(self, obj: Any, method: str, kwargs: dict[str, Any]) -> None:
        from harness.safety import MutationRefused
        try:
            self.gate.check_vim(self.name, method, describe_object(obj), kwargs)
        except MutationRefused as err:
            self.recorder.note("refused by the mutation gate", str(err))
            raise

    def _invoke(self, obj: Any, method: str, kwargs: dict[str, Any], record: Any, started: float) -> Any:
        try:
            result = self._retrying(lambda: getattr(self._rebind(obj), method)(**kwargs), method, describe_object(obj))
            if isinstance(result, vim.Task):
                record.task = result._moId
                result = wait_for_task(self, result, what=f"{method} on {describe_object(obj)}")
        except vmodl.fault.MethodNotFound as err:
            record.finish_fault(err, time.perf_counter() - started)
            raise TargetLacks(self.name, method) from err
        except BaseException as err:
            record.finish_fault(err, time.perf_counter() - started)
            raise
        record.finish_ok(summarize(result), time.perf_counter() - started)
        return result

    def _rebind(self, obj: Any) -> Any:
        """After a re-login the stub changed: rebind a MoRef to the current connection."""
        if isinstance(obj, VmomiSupport.ManagedObject) and obj._stub is not self.si._stub:
            return type(obj)(obj._moId, self.si._stub)
        return obj

    # ---- reads ------------------------------------------------------------------------------
    def read(self, obj: Any, paths: list[str], label: str | None = None, phase: str = "observed") -> dict[str, Any]:
        """Explicit property paths of one object in one PropertyCollector round trip."""
        from harness.vsphere.props import retrieve
        values = self._retrying(lambda: retrieve(self, [self._rebind(obj)], type(obj), paths)).get(obj._moId, {})
        if label:
            self.recorder.observe(label, self.name, describe_object(obj), phase, values)
        return values

    def read_many(self, objs: list[Any], vim_type: type, paths: list[str], label: str | None = None,
                  phase: str = "observed") -> dict[str, dict[str, Any]]:
        """The same paths of many objects, in one round trip; keyed by moId."""
        from harness.vsphere.props import retrieve
        if not objs:
            return {}
        values = self._retrying(lambda: retrieve(self, [self._rebind(o) for o in objs], vim_type, paths))
        if label:
            for obj in objs:
                self.recorder.observe(label, self.name, describe_object(obj), phase, values.get(obj._moId, {}))
        return values
