"""The fake's own request log: every call it served, and whether that call changed its world.

Why the fake keeps its own log: "a read-only run makes no mutating call" must not rest on the
harness's word (its evidence, its gate list). This log is written at the fake's dispatch point,
and classifies each call two independent ways:

- `changed`: a snapshot of the world's lab state (every property of every lasting managed object,
  plus state vSphere does not expose as properties: providers' trust material, users) taken before
  and after the call differs. Session-scoped objects (tasks, property collectors and filters,
  views, event collectors, sessions) are not lab state and are left out.
- `mutating_name`: the method's name starts with a verb that changes things (Create, Register,
  Upload, Destroy, Power, ...) and it was called on a lasting object (creating a property filter
  or a view on a session-scoped object changes no lab).

The log is one JSON object per line (`{"vcenter", "moid", "method", "changed", "mutating_name",
"fault"}`), plus `{"event": "open"|"close", "vcenter", "digest", "providers"}` lines at world
start and end with each provider's KmipClusterInfo serialized by pyVmomi and a digest of its trust
material. Enabled per inventory (`fake: {request_log: FILE}`); the per-call snapshots make each call
slower, so it is off by default, and `request_log_per_call: false` keeps only the name check and
the open/close snapshots (fast enough for a full mutating run).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from pyVmomi import SoapAdapter, pbm, vim

SESSION_SCOPED: tuple[type, ...] = (
    vim.Task, vim.TaskManager, vim.PropertyCollector, vim.PropertyCollector.Filter, vim.view.View,
    vim.view.ViewManager, vim.SessionManager, vim.event.EventManager, vim.HistoryCollector, vim.ServiceInstance,
    pbm.ServiceInstance, pbm.auth.SessionManager,
)
_CHANGING_VERB = re.compile(r"^(Pbm)?(Create|Register|Unregister|Remove|Upload|Update|Set|Mark|Reconfig|Destroy|Delete|"
                            r"Power|Revert|Relocate|Migrate|Clone|Instant|Generate|Add|Move|Rename|Reset|Reboot|"
                            r"Shutdown|Enter|Exit|Enable|Disable|CryptoManagerHost|CryptoUnlock|Apply|Install|"
                            r"Uninstall|Change|Assign|Merge|Consolidate|Promote|Import|Upgrade|Unmount|Mount|"
                            r"Rekey|Encrypt|Decrypt|Suspend|Standby|Terminate|Answer|Acknowledge)")


def mutating_name(method: str, mo: Any) -> bool:
    """A state-changing verb on a lasting object (independent of the harness's gate list)."""
    return bool(_CHANGING_VERB.match(method)) and not isinstance(mo.ref, SESSION_SCOPED)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def _lasting(mo: Any) -> bool:
    return not isinstance(mo.ref, SESSION_SCOPED)


_CLOCK = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")

# The fake's VM changeVersion counts every call it served (vm.py), reads included: not lab state.
_CHANGE_VERSION = re.compile(r"changeVersion = '\d+'")


def _properties(mo: Any) -> str:
    """Every property's value; clock readings the model computes at fetch time (storage `modified`,
    quick-stats `timestamp`) and the call-counting changeVersion are masked: a read is no change."""
    parts = []
    for name in sorted(mo.property_names()):
        try:
            parts.append(f"{name}={mo.fetch(name)!r}")
        except Exception as err:  # noqa: BLE001 - a property the model does not serve is part of the state too
            parts.append(f"{name}!{type(err).__name__}")
    text = _CLOCK.sub("<time>", "\n".join(parts))
    return _CHANGE_VERSION.sub("changeVersion = <counter>", text)


def hidden_state(vc: Any) -> str:
    """State a vCenter keeps but does not expose as properties: trust material, users, defaults."""
    crypto = getattr(vc, "crypto", None)
    providers = []
    for pid, prov in sorted((getattr(crypto, "providers", None) or {}).items()):
        trust = "|".join(_digest(x or "") for x in (*prov.server_certs, prov.client_cert or "", prov.client_key or ""))
        providers.append(f"{pid}:{prov.management_type}:{sorted(prov.servers)}:{_digest(trust)}:"
                         f"{sorted(prov.entity_defaults)}:{sorted(prov.passwords)}")
    users = sorted((u.name, tuple(u.groups)) for u in vc.users.values())
    return f"default={getattr(crypto, 'default_id', None)}\nproviders={providers}\nusers={users}"


def world_state(vc: Any) -> dict[str, str]:
    """moId -> digest of the object's properties (lasting objects only), plus the hidden state."""
    state = {f"{mo.moid}:{type(mo.ref).__name__}": _digest(_properties(mo))
             for registry in (vc.objects, vc.pbm_objects) for mo in list(registry.values()) if _lasting(mo)}
    state["(hidden)"] = _digest(hidden_state(vc))
    return state


def providers_serialized(vc: Any) -> dict[str, str]:
    """provider id -> its KmipClusterInfo as pyVmomi's SOAP serializer writes it."""
    crypto = getattr(vc, "crypto", None)
    if crypto is None:
        return {}
    return {pid: SoapAdapter.Serialize(crypto._cluster_info(prov)).decode("utf-8")
            for pid, prov in sorted(crypto.providers.items())}


def provider_trust(vc: Any) -> dict[str, str]:
    """provider id -> digest of the trust material uploaded to it (not part of KmipClusterInfo)."""
    crypto = getattr(vc, "crypto", None)
    return {pid: _digest("|".join([*prov.server_certs, prov.client_cert or "", prov.client_key or ""]))
            for pid, prov in sorted((getattr(crypto, "providers", None) or {}).items())}


class RequestLog:
    """Appends one JSON line per call to `path` (O_APPEND: safe across xdist workers' fakes)."""

    def __init__(self, path: Path, per_call_diff: bool = True) -> None:
        self.path = Path(path)
        self.per_call_diff = per_call_diff   # False: calls by name only, world snapshots at open and close
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, entry: dict[str, Any]) -> None:
        line = (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8")
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def world(self, vc: Any, event: str) -> None:
        from harness.fakevc.model.pbm import install
        install(vc)   # PBM's objects are created on first use; present from the start, no call "creates" them
        state = world_state(vc)
        self.write({"event": event, "vcenter": vc.name, "digest": _digest(json.dumps(state, sort_keys=True)),
                    "state": state, "providers": providers_serialized(vc), "trust": provider_trust(vc)})

    def call(self, vc: Any, moid: str, method: str, run: Any) -> Any:
        """Run `run()` (the dispatch), logging the call and whether the world changed across it."""
        before = world_state(vc) if self.per_call_diff else {}
        fault = None
        try:
            return run()
        except BaseException as err:
            fault = type(err).__name__
            raise
        finally:
            after = world_state(vc) if self.per_call_diff else {}
            mo = vc.objects.get(moid) or vc.pbm_objects.get(moid)
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            self.write({"vcenter": vc.name, "moid": moid, "method": method, "fault": fault,
                        "changed": changed, "mutating_name": bool(mo is not None and mutating_name(method, mo))})
