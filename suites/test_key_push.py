"""Hosts and key push (RULES.md: HOST-CRYPTO-MODE, PUSH-*): which hosts are crypto-safe and which
hosts' key caches list a VM's key.

Observation is per host: `runtime.cryptoState` of each host and each host's own key cache, never the
VM's view: from vSphere API 8.0.1 the documented per-host key status (CryptoManagerHost.GetCryptoKeyStatus,
asserted everywhere), before it the host crypto manager's ListKeys (UNCONFIRMED through vCenter: asserted
only where the target confirms it). vCenter pushes keys asynchronously, so expected
keys are awaited (bounded by the inventory's key_push timeout); a key that must NOT be on a host
is read once after the operation. vSphere documents no purge of host key caches, so every push
test encrypts a fresh VM with a fresh key. Tests that change HA/DRS restore them (and record the
restore for `vcrypt sweep`).
"""
from __future__ import annotations

from typing import Any

import pytest

from harness import unconfirmed
from harness.checks import check_each_equal, check_hosts_hold_key, refused, unchanged
from harness.vsphere import crypto, hosts, keys, vms
from harness.vsphere.hosts import require_some

pytestmark = pytest.mark.requires("vm_encryption", "key_providers", "storage_policies", "host_crypto_state")


def _cluster_hosts(place: Any, need_others: bool = True) -> list[Any]:
    """The usable hosts of the inventory's cluster (harness.vsphere.find: connected, not in maintenance mode,
    the inventory's `hosts` if it names them); a rule that needs a push to other hosts skips on a
    single-host cluster: the target lacks what the rule is about, nothing failed."""
    found = list(place.hosts)
    if not found or (need_others and len(found) < 2):
        needed = "a second host" if found else "a host"
        pytest.skip(f"capability: the cluster has {len(found)} usable host(s) (disconnected and maintenance-mode "
                    f"hosts excluded); this rule needs {needed} to observe")
    return found


def _cache_read(vc: Any, cluster_hosts: list[Any]) -> hosts.KeyCacheRead:
    """How this test reads the host key caches: the documented per-host key status (GetCryptoKeyStatus) on a
    vCenter and hosts at vSphere API 8.0.1 or later, ListKeys before (harness.vsphere.hosts key_cache_read)."""
    return hosts.key_cache_read(vc, cluster_hosts)


def _caches_asserted(inventory: Any, vc: Any, caches: dict[str, Any], read: hosts.KeyCacheRead) -> None:
    """From vSphere API 8.0.1 a host's key status (CryptoManagerHost.GetCryptoKeyStatus: "Whether the key is
    present in key cache") is documented: asserted on every target. Before, host key caches are read through
    vCenter with configManager.cryptoManager.ListKeys: what that returns is UNCONFIRMED (API.md 5.5), so they
    are asserted only where the target confirms it."""
    if read.documented:
        vc.recorder.note("verdict rests on the documented per-host key status", {"vcenter": vc.name, "read": read.why})
        return
    unconfirmed.gate(inventory, vc.name, "host-key-cache-through-vcenter",
                     observed={moid: sorted(map(str, keys_)) for moid, keys_ in caches.items()})


def _keep_cluster_settings(scratch: Any, vc: Any, cluster: Any) -> tuple[bool, bool]:
    ha, drs = hosts.cluster_settings(vc, cluster)
    vc.recorder.note("cluster settings before the test", {"ha": ha, "drs": drs})
    scratch.restore(f"restore HA={ha} DRS={drs} on the cluster",
                    lambda: hosts.set_cluster(vc, cluster, ha=ha, drs=drs),
                    record={"action": "cluster_ha", "vcenter": vc.name, "cluster": cluster._moId, "ha": ha,
                            "drs": drs})
    return ha, drs


def _encrypted_on(scratch: Any, vc: Any, place: Any, host: Any, provider: str, policies: Any,
                  label: str) -> tuple[Any, Any]:
    """A fresh VM registered on `host`, encrypted with a fresh key; returns (vm, key)."""
    vm, key = scratch.encrypted_vm(vc, place, provider, policies.encryption, label, host=host)
    state = vms.state(vc, vm, label=f"{label} after encrypt", phase="after")
    assert state.host == host._moId, f"{label} is registered on {state.host}, not on {host._moId}"
    assert state.key == key
    return vm, key


def _named(vc: Any, cluster_hosts: list[Any], moids: set[str] | list[str]) -> list[str]:
    names = hosts.names(vc, cluster_hosts)
    return sorted(names.get(m, m) for m in moids)


# ---- HOST-CRYPTO-MODE -----------------------------------------------------------------------------
@pytest.mark.rule("HOST-CRYPTO-MODE")
@pytest.mark.destructive   # a crypto-safe host goes back only by CryptoManagerHostDisable and a reboot
@pytest.mark.test_id("accab31f-ef8a-4784-9b4c-0a8663552150")
def test_a_crypto_operation_on_a_host_outside_encryption_mode_first_makes_it_crypto_safe(
        scratch, vc, place, provider, policies_a):
    # Only the inventory cluster's usable hosts: making a host crypto-safe cannot be undone without
    # CryptoManagerHostDisable and a reboot, so no host outside what the inventory hands the run is touched.
    candidates = _cluster_hosts(place, need_others=False)
    before = hosts.crypto_states(vc, candidates, label="host crypto states before", phase="before")
    outside = [h for h in candidates if before[h._moId] in ("incapable", "prepared")]
    if not outside:
        pytest.skip(f"capability: every usable host of the inventory's cluster on {vc.name} is already crypto-safe "
                    f"or pending a reboot ({before}): no usable host left to watch entering crypto-safe mode")
    host = outside[-1]

    _encrypted_on(scratch, vc, place, host, provider, policies_a, "host-mode")

    after = hosts.crypto_states(vc, [host], label="host crypto state after encrypt", phase="after")
    assert after[host._moId] == "safe", \
        f"host {_named(vc, candidates, [host._moId])[0]} runs an encrypted VM but is {after[host._moId]}"


@pytest.mark.rule("HOST-CRYPTO-MODE")
@pytest.mark.destructive   # a crypto-safe host goes back only by CryptoManagerHostDisable and a reboot
@pytest.mark.test_id("df8d5573-fb4c-4a99-9b89-7fc8fb358576")
def test_a_crypto_safe_host_stays_safe_after_the_vm_that_needed_it_is_decrypted(
        scratch, vc, place, provider, policies_a):
    cluster_hosts = _cluster_hosts(place, need_others=False)
    vm, _ = _encrypted_on(scratch, vc, place, cluster_hosts[-1], provider, policies_a, "stays-safe")
    before = hosts.crypto_states(vc, cluster_hosts, label="host crypto states while encrypted", phase="before")
    safe = require_some([m for m, s in before.items() if s == "safe"], "crypto-safe host")

    crypto.decrypt(vc, vm, policies_a.plain)

    assert not vms.state(vc, vm, label="after decrypt").encrypted
    after = hosts.crypto_states(vc, cluster_hosts, label="host crypto states after decrypt", phase="after")
    reverted = [m for m in safe if after[m] != "safe"]
    assert not reverted, f"hosts went back from crypto-safe: {_named(vc, cluster_hosts, reverted)} " \
                         f"({[after[m] for m in reverted]})"


@pytest.mark.rule("HOST-CRYPTO-MODE")
@pytest.mark.destructive
@pytest.mark.requires("fault_injection")
@pytest.mark.test_id("5dce23cb-be83-4416-8c7c-1e3f49c57726")
def test_a_crypto_operation_on_a_host_that_cannot_become_crypto_safe_fails_and_changes_nothing(
        control, scratch, vc, place, provider, policies_a):
    if vc.version_tuple() < (7, 0):
        pytest.skip(f"capability: target {vc.name} ({vc.version}) cannot disable host encryption "
                    "(CryptoManagerHostDisable is a 7.0 method)")
    cluster_hosts = _cluster_hosts(place, need_others=False)
    host = cluster_hosts[-1]
    _encrypted_on(scratch, vc, place, host, provider, policies_a, "before-disable")
    hosts.disable_crypto(vc, host)  # safe -> pendingIncapable: no way back to safe before a reboot
    scratch.cleanup.push(f"reboot host {host._moId} (fake)", lambda: control.reboot_host(host))
    assert hosts.crypto_states(vc, [host], label="host after disable")[host._moId] == "pendingIncapable"
    vm = scratch.vm(vc, place, "on-disabled-host", host=host)
    key = keys.generate_key(vc, provider)
    before = vms.state(vc, vm, label="before encrypt", phase="before")

    refused(lambda: crypto.encrypt(vc, vm, key, policies_a.encryption), "encrypt on a host with encryption disabled")

    unchanged(before, vms.state(vc, vm, label="after refused encrypt", phase="after"), "encrypt on a disabled host")
    state = hosts.crypto_states(vc, [host], label="host after the refused encrypt", phase="after")[host._moId]
    assert state == "pendingIncapable", f"the refused operation moved the host to {state}"


# ---- PUSH-NO-HA / PUSH-DRS ------------------------------------------------------------------------
@pytest.mark.rule("PUSH-NO-HA")
@pytest.mark.destructive
@pytest.mark.requires("host_key_cache", "cluster_ha")
@pytest.mark.test_id("5849d88a-2828-415f-aa36-9243d13f1c1c")
def test_without_ha_a_vms_key_goes_only_to_the_host_it_is_registered_on(
        serial, scratch, inventory, vc, place, provider, policies_a):
    cluster_hosts = _cluster_hosts(place)
    _keep_cluster_settings(scratch, vc, place.cluster)
    hosts.set_cluster(vc, place.cluster, ha=False)
    home = cluster_hosts[0]

    _, key = _encrypted_on(scratch, vc, place, home, provider, policies_a, "no-ha")

    read = _cache_read(vc, cluster_hosts)
    caches = hosts.key_caches_when(vc, cluster_hosts, [key], lambda c: key in c[home._moId],
                                   inventory.timeouts.key_push, read)
    _caches_asserted(inventory, vc, caches, read)
    assert key in caches[home._moId], f"the host the VM is registered on does not list its key {key[1]}"
    elsewhere = hosts.holders(caches, key) - {home._moId}
    assert not elsewhere, f"without HA, key {key[1]} was pushed to other hosts: {_named(vc, cluster_hosts, elsewhere)}"


@pytest.mark.rule("PUSH-DRS")
@pytest.mark.destructive
@pytest.mark.requires("host_key_cache", "cluster_ha")
@pytest.mark.test_id("75fca15c-7988-4309-a35f-b1ca4b6c303d")
@pytest.mark.parametrize("ha", [False, True], ids=["ha-off", "ha-on"])
def test_turning_drs_on_does_not_change_which_hosts_get_a_vms_keys(
        ha, serial, scratch, inventory, vc, place, provider, policies_a):
    cluster_hosts = _cluster_hosts(place)
    _keep_cluster_settings(scratch, vc, place.cluster)
    home = cluster_hosts[0]
    timeout = inventory.timeouts.key_push

    def pushed(key: Any) -> Any:
        return (lambda c: all(key in k for k in c.values())) if ha else (lambda c: key in c[home._moId])

    read = _cache_read(vc, cluster_hosts)
    hosts.set_cluster(vc, place.cluster, ha=ha, drs=False)
    _, key_off = _encrypted_on(scratch, vc, place, home, provider, policies_a, "drs-off")
    with_drs_off = hosts.holders(hosts.key_caches_when(vc, cluster_hosts, [key_off], pushed(key_off), timeout, read),
                                 key_off)

    hosts.set_cluster(vc, place.cluster, drs=True)
    assert hosts.cluster_settings(vc, place.cluster) == (ha, True)
    _, key_on = _encrypted_on(scratch, vc, place, home, provider, policies_a, "drs-on")
    caches = hosts.key_caches_when(vc, cluster_hosts, [key_off, key_on], pushed(key_on), timeout, read)

    _caches_asserted(inventory, vc, caches, read)
    assert home._moId in with_drs_off
    assert hosts.holders(caches, key_off) == with_drs_off, \
        f"turning DRS on moved key {key_off[1]}: {_named(vc, cluster_hosts, with_drs_off)} -> " \
        f"{_named(vc, cluster_hosts, hosts.holders(caches, key_off))}"
    assert hosts.holders(caches, key_on) == with_drs_off, \
        f"with DRS on the key went to {_named(vc, cluster_hosts, hosts.holders(caches, key_on))}, " \
        f"with DRS off to {_named(vc, cluster_hosts, with_drs_off)}"


# ---- PUSH-PRE7 ------------------------------------------------------------------------------------
@pytest.mark.rule("PUSH-PRE7")
@pytest.mark.requires("host_key_cache")
@pytest.mark.test_id("061e4600-1875-4f46-99af-002b49daf11a")
def test_before_7_when_one_host_of_a_cluster_goes_crypto_safe_every_host_does_and_gets_the_keys(
        scratch, inventory, vc, place, provider, policies_a):
    cluster_hosts = _cluster_hosts(place)
    ha, drs = hosts.cluster_settings(vc, place.cluster)
    vc.recorder.note("cluster settings (unchanged)", {"ha": ha, "drs": drs})

    _, key = _encrypted_on(scratch, vc, place, cluster_hosts[0], provider, policies_a, "pre7-push")

    read = _cache_read(vc, cluster_hosts)
    caches = hosts.key_caches_when(vc, cluster_hosts, [key], lambda c: all(key in k for k in c.values()),
                                   inventory.timeouts.key_push, read)
    # The other hosts follow asynchronously (like the key push): wait for "safe" up to the key_push timeout.
    states = hosts.crypto_states_when(vc, cluster_hosts, lambda s: all(v == "safe" for v in s.values()),
                                      inventory.timeouts.key_push, label="host crypto states after encrypt",
                                      phase="after")
    not_safe = [m for m, s in states.items() if s != "safe"]
    assert not not_safe, f"hosts not crypto-safe: {_named(vc, cluster_hosts, not_safe)}"
    _caches_asserted(inventory, vc, caches, read)
    missing = [m for m, k in caches.items() if key not in k]
    assert not missing, f"hosts without key {key[1]}: {_named(vc, cluster_hosts, missing)}"


# ---- PUSH-HA --------------------------------------------------------------------------------------
@pytest.mark.rule("PUSH-HA")
@pytest.mark.destructive
@pytest.mark.requires("host_key_cache", "cluster_ha")
@pytest.mark.test_id("2e4dc5f0-8c72-48b6-9157-6390809c48ac")
@pytest.mark.parametrize("order", ["ha-then-encrypt", "encrypt-then-ha"])
def test_with_ha_every_host_of_the_cluster_is_crypto_safe_and_holds_the_key_of_an_encrypted_vm(
        order, serial, scratch, inventory, vc, place, provider, policies_a):
    cluster_hosts = _cluster_hosts(place)
    _keep_cluster_settings(scratch, vc, place.cluster)
    hosts.set_cluster(vc, place.cluster, ha=(order == "ha-then-encrypt"))

    _, key = _encrypted_on(scratch, vc, place, cluster_hosts[0], provider, policies_a, f"ha-{order}")
    if order == "encrypt-then-ha":
        hosts.set_cluster(vc, place.cluster, ha=True)

    read = _cache_read(vc, cluster_hosts)
    caches = hosts.key_caches_when(vc, cluster_hosts, [key], lambda c: all(key in k for k in c.values()),
                                   inventory.timeouts.key_push, read)
    # Enabling HA reaches each host asynchronously: wait for "safe" up to the key_push timeout, then assert.
    states = hosts.crypto_states_when(vc, cluster_hosts, lambda s: all(v == "safe" for v in s.values()),
                                      inventory.timeouts.key_push, label="host crypto states with HA", phase="after")
    host_names = hosts.names(vc, cluster_hosts)
    check_each_equal([(f"host {host_names[m]} crypto state with HA on", s) for m, s in states.items()], "safe")
    _caches_asserted(inventory, vc, caches, read)
    check_hosts_hold_key(host_names, caches, key, {"the VM's key": key})
