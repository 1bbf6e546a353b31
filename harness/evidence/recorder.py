"""Per-test evidence, recorded by the operations layer (not by each test).

Every vSphere call (method, target, redacted argument summary, task, result or fault, duration),
every observation (properties read, with a label and phase), every KMIP read, and free notes.
Secrets never enter it: argument summaries mask secret fields, and every string passes through
`redact`, which removes each secret value the run registered (passwords, private keys).
"""
from __future__ import annotations

import contextvars
import datetime
import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyVmomi import VmomiSupport, vmodl

SECRET_FIELDS = {"password", "privateKey", "keyData", "pwd", "token", "sessionId", "credential", "client_key"}
_MAX_TEXT = 400
_MAX_DEPTH = 6
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Make `redact` remove this value (and each of its lines, for PEM keys) from all evidence."""
    if not value:
        return
    with _secrets_lock:
        _secrets.add(value)
        for line in value.splitlines():
            if len(line) >= 16 and "-----" not in line:
                _secrets.add(line)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


def describe_object(obj: Any) -> str:
    """`vim.VirtualMachine:vm-12` for a MoRef, a short repr otherwise."""
    if isinstance(obj, VmomiSupport.ManagedObject):
        return f"{type(obj).__name__}:{obj._moId}"
    return redact(repr(obj))[:_MAX_TEXT]


def summarize(value: Any, depth: int = 0) -> Any:
    """A JSON-able, bounded, redacted rendering of an argument or result."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return redact(value)[:_MAX_TEXT]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, type):
        return getattr(value, "__name__", str(value))
    if isinstance(value, VmomiSupport.ManagedObject):
        return describe_object(value)
    if isinstance(value, (list, tuple)):
        items = [summarize(v, depth + 1) for v in list(value)[:20]]
        return items + ([f"... {len(value) - 20} more"] if len(value) > 20 else [])
    if isinstance(value, VmomiSupport.DataObject):
        return _summarize_data_object(value, depth)
    if isinstance(value, dict):
        return {str(k): "***" if k in SECRET_FIELDS else summarize(v, depth + 1) for k, v in value.items()}
    return redact(str(value))[:_MAX_TEXT]


def _summarize_data_object(value: Any, depth: int) -> dict[str, Any] | str:
    """A data object as its fields; past the depth limit only its scalar fields (ids, names).

    Cutting a nested object to its type name lost the one value an auditor needs (a disk
    key's `providerId.id`), so deep objects keep their scalars and only deeper structure goes.
    """
    if depth > _MAX_DEPTH + 4:
        return type(value).__name__
    out: dict[str, Any] = {"_type": type(value).__name__}
    for prop in value._GetPropertyList():
        item = getattr(value, prop.name, None)
        if item is None or (isinstance(item, list) and not item) or prop.name in ("dynamicType", "dynamicProperty"):
            continue
        if prop.name in SECRET_FIELDS:
            out[prop.name] = "***"
        elif depth < _MAX_DEPTH or not isinstance(item, (list, tuple, VmomiSupport.DataObject)):
            out[prop.name] = summarize(item, depth + 1)
        elif _is_small_data_object(item):
            out[prop.name] = summarize(item, depth + 1)
        else:
            out[prop.name] = f"{type(item).__name__} (omitted: nested too deep)"
    return out


def _is_small_data_object(value: Any) -> bool:
    """A data object whose fields are all scalars (KeyProviderId, CryptoKeyId's provider...)."""
    if not isinstance(value, VmomiSupport.DataObject):
        return False
    return all(not isinstance(getattr(value, p.name, None), (list, tuple, VmomiSupport.DataObject))
               or _is_small_data_object(getattr(value, p.name, None))
               for p in value._GetPropertyList() if p.name not in ("dynamicType", "dynamicProperty"))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


@dataclass
class CallRecord:
    seq: int
    vcenter: str
    method: str
    target: str
    args: dict[str, Any]
    started_at: str = field(default_factory=_now)
    task: str | None = None
    outcome: str = "pending"
    result: Any = None
    fault: dict[str, str] | None = None
    duration_ms: float = 0.0

    def finish_ok(self, result: Any, seconds: float) -> None:
        self.outcome, self.result, self.duration_ms = "ok", result, round(seconds * 1000, 3)

    def finish_fault(self, err: BaseException, seconds: float) -> None:
        from harness.vsphere.errors import TaskFailed, fault_class_name, fault_message
        fault = err.fault if isinstance(err, TaskFailed) else err
        if isinstance(fault, vmodl.MethodFault):
            self.fault = {"class": fault_class_name(fault), "message": redact(fault_message(fault))}
        else:
            self.fault = {"class": type(err).__name__, "message": redact(str(err))[:_MAX_TEXT]}
        self.outcome, self.duration_ms = "fault", round(seconds * 1000, 3)


@dataclass
class Recorder:
    """Evidence of one test (or of one harness action outside a test, e.g. an audit)."""
    test_id: str = ""
    nodeid: str = ""
    calls: list[CallRecord] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)
    kmip: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    host_keys: dict[str, Any] | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    rule: str | None = None  # the rule the running step demonstrates (harness.checks.for_rule)
    blamed: list[str] = field(default_factory=list)  # rules whose step failed (issue 23: blame where it failed)
    # KMS-side checks this target could not show (the harness may not read vCenter's keys): a test
    # with any is reported not demonstrated, never passed (harness/run/kms_reads.py, issue 22).
    not_observable: list[str] = field(default_factory=list)

    def check(self, what: str, expected: Any, observed: Any, passed: bool, detail: str = "") -> None:
        """One assertion as a sentence an auditor reads first: what, expected, observed, verdict."""
        self.checks.append({"what": redact(str(what))[:_MAX_TEXT], "expected": summarize(expected),
                            "observed": summarize(observed), "passed": bool(passed),
                            "detail": redact(str(detail))[:_MAX_TEXT], **({"rule": self.rule} if self.rule else {})})

    def start_call(self, vcenter: str, method: str, target: str, args: dict[str, Any]) -> CallRecord:
        record = CallRecord(seq=len(self.calls) + 1, vcenter=vcenter, method=method, target=target, args=args)
        self.calls.append(record)
        return record

    def observe(self, label: str, vcenter: str, obj: str, phase: str, properties: dict[str, Any]) -> None:
        self.observations.append({"label": label, "vcenter": vcenter, "object": obj, "phase": phase,
                                  "properties": {k: summarize(v) for k, v in properties.items()}})

    def kmip_read(self, op: str, server: str, uid: str, result: Any) -> None:
        self.kmip.append({"op": op, "server": server, "uid": uid, "result": summarize(result)})

    def note(self, label: str, value: Any) -> None:
        self.notes.append({"label": label, "value": summarize(value)})

    def record_host_keys(self, holds: dict[str, list[str]], focus: Any = ()) -> None:
        """The host-by-key grid; `focus` names the keys the test is about (shown highlighted)."""
        keys = sorted({k for ks in holds.values() for k in ks})
        self.host_keys = {"hosts": sorted(holds), "keys": keys, "holds": {h: sorted(v) for h, v in holds.items()}}
        if focus:
            self.host_keys["focus"] = sorted({str(k) for k in focus})

    def to_json(self) -> dict[str, Any]:
        return {"test_id": self.test_id, "nodeid": self.nodeid, "calls": [asdict(c) for c in self.calls],
                "observations": self.observations, "kmip": self.kmip, "notes": self.notes,
                "host_keys": self.host_keys, "checks": self.checks,
                **({"not_observable": self.not_observable} if self.not_observable else {})}

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redact(json.dumps(self.to_json(), indent=1, default=str)), encoding="utf-8")
        return path


_current: contextvars.ContextVar[Recorder] = contextvars.ContextVar("vcrypt_recorder")


def current_recorder() -> Recorder:
    """The recorder of the running test or harness action (`use_recorder`). Outside one, a throwaway:
    no recorder is shared between callers, so evidence never leaks from one run or thread into another."""
    recorder = _current.get(None)
    return recorder if recorder is not None else Recorder()


def use_recorder(recorder: Recorder) -> contextvars.Token:
    """Make `recorder` the one operations write to (the plugin does this per test)."""
    return _current.set(recorder)


def reset_recorder(token: contextvars.Token) -> None:
    _current.reset(token)
