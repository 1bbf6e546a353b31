"""Hosts: crypto state per host, key caches per host, and cluster HA/DRS settings."""
from __future__ import annotations

import time
from typing import Any, Callable

from pyVmomi import vim

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


def key_cache(client: Any, host: Any) -> set[KeyRef]:
    """The keys in one host's cache, from that host's own crypto manager (never the VM's view)."""
    manager = client.read(host, ["configManager.cryptoManager"]).get("configManager.cryptoManager")
    if manager is None:
        from harness.vsphere.errors import TargetLacks
        raise TargetLacks(client.name, "HostSystem.configManager.cryptoManager")
    return {key_of(k) for k in client.invoke(manager, "ListKeys") or []}


def key_caches(client: Any, hosts: list[Any]) -> dict[str, set[KeyRef]]:
    """host moId -> its key cache; recorded as a hosts-by-keys grid in the evidence."""
    require_some(hosts, "host")
    caches = {h._moId: key_cache(client, h) for h in hosts}
    host_names = names(client, hosts)
    client.recorder.record_host_keys({host_names[m]: [f"{p}/{k}" for p, k in sorted(keys)] for m, keys in caches.items()})
    return caches


def holders(caches: dict[str, set[KeyRef]], key: KeyRef) -> set[str]:
    """The moIds of the hosts whose cache lists `key`."""
    return {moid for moid, keys in caches.items() if key in keys}


def key_caches_when(client: Any, hosts: list[Any], done: Callable[[dict[str, set[KeyRef]]], bool],
                    timeout: float) -> dict[str, set[KeyRef]]:
    """Key caches once `done(caches)` holds, or the last caches read when `timeout` runs out.

    vCenter pushes keys asynchronously: a bounded wait (first read at once, then backing off),
    never a fixed sleep. The caller asserts on what it gets back.
    """
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        caches = key_caches(client, hosts)
        if done(caches) or time.monotonic() >= deadline:
            return caches
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 1.0)


def disable_crypto(client: Any, host: Any) -> None:
    """CryptoManagerHostDisable (7.0): a crypto-safe host goes pendingIncapable until it reboots."""
    manager = client.read(host, ["configManager.cryptoManager"]).get("configManager.cryptoManager")
    if manager is None:
        from harness.vsphere.errors import TargetLacks
        raise TargetLacks(client.name, "HostSystem.configManager.cryptoManager")
    client.invoke(manager, "CryptoManagerHostDisable")


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
