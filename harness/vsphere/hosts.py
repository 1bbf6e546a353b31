"""Hosts: crypto state per host, key caches per host, and cluster HA/DRS settings."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from pyVmomi import vim

from harness.vsphere.errors import EnvironmentFault
from harness.vsphere.vms import KeyRef, key_of


class EmptyObservation(AssertionError):
    """A verdict would rest on an empty set (no hosts, no snapshots): refuse to decide vacuously."""


def require_some(items: list[Any] | dict[Any, Any], what: str) -> Any:
    """Guard against vacuous verdicts: an assertion over zero hosts proves nothing."""
    if not items:
        raise EmptyObservation(f"expected at least one {what} to observe, found none")
    return items


def crypto_states(client: Any, hosts: list[Any], label: str | None = None, phase: str = "observed") -> dict[str, str]:
    """host moId -> runtime.cryptoState (read per host, in one round trip)."""
    require_some(hosts, "host")
    props = client.read_many(hosts, vim.HostSystem, ["name", "runtime.cryptoState"], label=label, phase=phase)
    return {h._moId: props.get(h._moId, {}).get("runtime.cryptoState") or "unset" for h in hosts}


def crypto_states_when(client: Any, hosts: list[Any], done: Callable[[dict[str, str]], bool], timeout: float,
                       label: str | None = None, phase: str = "observed") -> dict[str, str]:
    """Host crypto states once `done(states)` holds, or the last states read when `timeout` runs out.

    vCenter applies cluster changes asynchronously (enabling HA configures each host's FDM agent and
    makes it crypto-safe afterwards: vSphere 7.0 Security, "Prerequisites and Required Privileges for
    Encryption Tasks" / key push to HA hosts): a bounded wait with backoff (tenacity), never a single
    read, never a fixed sleep. Only the last read is recorded; the caller asserts on what it gets back.
    """
    from tenacity import Retrying, retry_if_result, stop_after_delay, wait_exponential
    reads = Retrying(stop=stop_after_delay(timeout), wait=wait_exponential(multiplier=0.05, max=1.0),
                     retry=retry_if_result(lambda states: not done(states)),
                     retry_error_callback=lambda state: state.outcome.result())
    states = reads(lambda: crypto_states(client, hosts))
    return crypto_states(client, hosts, label=label, phase=phase) if label else states


def names(client: Any, hosts: list[Any]) -> dict[str, str]:
    props = client.read_many(hosts, vim.HostSystem, ["name"])
    return {h._moId: props.get(h._moId, {}).get("name", h._moId) for h in hosts}


# The documented per-host read (vSphere API reference, CryptoManagerHost.GetCryptoKeyStatus and
# CryptoManagerHostKeyStatus, "Since vSphere API Release 8.0.1.0"): for each key asked about, `present`, "Whether
# the key is present in key cache for crypto operation". Before 8.0.1 the only per-host read is ListKeys called
# through vCenter, and what that returns is UNCONFIRMED (API.md 5.5; harness/unconfirmed.py
# "host-key-cache-through-vcenter"). CryptoManagerKmip.QueryCryptoKeyStatus (6.7.2) is no substitute: it is
# vCenter's view of a key (available to vCenter, the VMs using it, the hosts using it as their host key), never
# which hosts' caches hold it.
KEY_STATUS_SINCE = (8, 0, 1)


@dataclass(frozen=True)
class KeyCacheRead:
    """How this run reads host key caches on one vCenter: `documented` (GetCryptoKeyStatus) or ListKeys, and why."""
    documented: bool
    why: str

    @property
    def method(self) -> str:
        return "GetCryptoKeyStatus" if self.documented else "ListKeys"


def _release(text: Any) -> tuple[int, ...]:
    return tuple(int(p) for p in str(text or "").split(".")[:3] if p.isdigit())


def key_cache_read(client: Any, hosts: list[Any]) -> KeyCacheRead:
    """The documented read where the session's API has GetCryptoKeyStatus (pyVmomi's typeinfo: the version
    SmartConnect negotiated with this vCenter) and every host to read reports API 8.0.1 or later; else ListKeys.

    A 7.0 vCenter, an 8.0 GA one, or a cluster holding an older ESXi keeps ListKeys (an older host behind
    an 8.0.1 vCenter has no such method to forward to)."""
    if not client.api_has(vim.encryption.CryptoManagerHost, "GetCryptoKeyStatus"):
        return KeyCacheRead(False, f"the session's vSphere API ({client.api_version}) predates "
                                   "CryptoManagerHost.GetCryptoKeyStatus (8.0.1)")
    require_some(hosts, "host")
    props = client.read_many(hosts, vim.HostSystem, ["name", "config.product.apiVersion"])
    older = sorted(f"{p.get('name', m)} ({p.get('config.product.apiVersion') or 'unknown'})"
                   for m, p in ((h._moId, props.get(h._moId, {})) for h in hosts)
                   if _release(p.get("config.product.apiVersion")) < KEY_STATUS_SINCE)
    if older:
        return KeyCacheRead(False, f"hosts older than ESXi 8.0.1 cannot report key status: {', '.join(older)}")
    return KeyCacheRead(True, f"vSphere API {client.api_version} and every host at 8.0.1 or later: "
                              "CryptoManagerHost.GetCryptoKeyStatus")


class IncompleteKeyStatus(EnvironmentFault):
    """GetCryptoKeyStatus did not answer for every key asked about: the test cannot decide (an error, never
    a pass or a product failure resting on the silence)."""


def _crypto_manager(client: Any, host: Any) -> Any:
    manager = client.read(host, ["configManager.cryptoManager"]).get("configManager.cryptoManager")
    if manager is None:
        from harness.vsphere.errors import TargetLacks
        raise TargetLacks(client.name, "HostSystem.configManager.cryptoManager")
    return manager


def key_cache(client: Any, host: Any, keys: Iterable[KeyRef] = (), documented: bool = False) -> set[KeyRef]:
    """The keys in one host's cache, from that host's own crypto manager (never the VM's view).

    `documented`: ask GetCryptoKeyStatus about `keys` and return those present (the cache seen through
    the keys asked about); otherwise the whole cache as ListKeys lists it."""
    manager = _crypto_manager(client, host)
    if not documented:
        return {key_of(k) for k in client.invoke(manager, "ListKeys") or []}
    asked = sorted(set(keys))
    ids = [vim.encryption.CryptoKeyId(keyId=k, providerId=vim.encryption.KeyProviderId(id=p)) for p, k in asked]
    statuses = {key_of(s.keyId): bool(s.present) for s in client.invoke(manager, "GetCryptoKeyStatus", keys=ids) or []}
    unanswered = [k for p, k in asked if (p, k) not in statuses]
    if unanswered:
        raise IncompleteKeyStatus(f"{client.name}: GetCryptoKeyStatus on host {host._moId} gave no status for "
                                  f"key(s) {', '.join(unanswered)}")
    return {key for key, present in statuses.items() if present and key in asked}


def key_caches(client: Any, hosts: list[Any], keys: Iterable[KeyRef] = (),
               read: KeyCacheRead | None = None) -> dict[str, set[KeyRef]]:
    """host moId -> its key cache (with the documented read: the `keys` present on it); recorded as a
    hosts-by-keys grid in the evidence."""
    require_some(hosts, "host")
    documented, asked = bool(read and read.documented), sorted(set(keys))
    caches = {h._moId: key_cache(client, h, asked, documented) for h in hosts}
    host_names = names(client, hosts)
    client.recorder.record_host_keys({host_names[m]: [f"{p}/{k}" for p, k in sorted(held)] for m, held in caches.items()})
    return caches


def holders(caches: dict[str, set[KeyRef]], key: KeyRef) -> set[str]:
    """The moIds of the hosts whose cache lists `key`."""
    return {moid for moid, keys in caches.items() if key in keys}


def key_caches_when(client: Any, hosts: list[Any], keys: Iterable[KeyRef],
                    done: Callable[[dict[str, set[KeyRef]]], bool], timeout: float,
                    read: KeyCacheRead | None = None) -> dict[str, set[KeyRef]]:
    """Key caches once `done(caches)` holds, or the last caches read when `timeout` runs out.

    `keys`: the keys the caller asks about (the documented read asks about them only; ListKeys lists the
    whole cache). `read`: how to read (`key_cache_read`, decided once per test), recorded in the evidence.
    vCenter pushes keys asynchronously: a bounded wait (first read at once, then backing off),
    never a fixed sleep. The caller asserts on what it gets back.
    """
    read = read or key_cache_read(client, hosts)
    asked = sorted(set(keys))
    client.recorder.note(f"host key caches read with {read.method}", {"why": read.why, "documented": read.documented,
                                                                      "keys asked": [f"{p}/{k}" for p, k in asked]})
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        caches = key_caches(client, hosts, asked, read)
        if done(caches) or time.monotonic() >= deadline:
            return caches
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 1.0)


def disable_crypto(client: Any, host: Any) -> None:
    """CryptoManagerHostDisable (7.0): a crypto-safe host goes pendingIncapable until it reboots."""
    client.invoke(_crypto_manager(client, host), "CryptoManagerHostDisable")


def cluster_settings(client: Any, cluster: Any) -> tuple[bool, bool]:
    props = client.read(cluster, ["configurationEx"])
    cfg = props.get("configurationEx")
    return (bool(cfg and cfg.dasConfig and cfg.dasConfig.enabled), bool(cfg and cfg.drsConfig and cfg.drsConfig.enabled))


def set_cluster(client: Any, cluster: Any, ha: bool | None = None, drs: bool | None = None) -> None:
    spec = vim.cluster.ConfigSpecEx()
    if ha is not None:
        spec.dasConfig = vim.cluster.DasConfigInfo(enabled=ha)
    if drs is not None:
        spec.drsConfig = vim.cluster.DrsConfigInfo(enabled=drs)
    client.invoke(cluster, "ReconfigureComputeResource_Task", spec=spec, modify=True)
