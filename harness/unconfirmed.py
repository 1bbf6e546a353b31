"""Behaviours vSphere leaves UNCONFIRMED (API.md 10/11) and where a test may assert them.

The fake models each of these because vSphere is silent and a choice had to be made. A test
asserts such a behaviour only where the target confirms it: on a fake that models it (the
default), or on a vCenter whose inventory entry lists the behaviour id under `confirmed`.
Everywhere else the test records what it saw and skips with `unconfirmed: <what>`, so no
verdict on a real target rests on something the fake invented.
"""
from __future__ import annotations

from typing import Any

import pytest

from harness.evidence.recorder import current_recorder

BEHAVIOURS: dict[str, str] = {
    "kms-alarm-clears-on-vendor-event":
        "the KMS health alarm returns to green on com.vmware.vc.kms.crypto.Vendor (API.md 11: no "
        "'KMS reachable again' event exists)",
    "host-key-cache-through-vcenter":
        "a host's configManager.cryptoManager.ListKeys() called through vCenter lists that host's key cache "
        "(API.md 5.5)",
    "instant-clone-refuses-crypto-change":
        "InstantClone_Task refuses a storage policy or crypto spec in location (API.md 11: the reference says "
        "'NOT supported', not 'refused')",
    "migrate-encryption-not-relaxable":
        "vCenter itself refuses to relax migrateEncryption on an encrypted VM (PowerCLI refuses client-side; "
        "API.md 2.4)",
    "server-trust-client-false-without-cert":
        "RetrieveKmipServersStatus reports serverTrustClient == False for a provider that sent no client "
        "certificate (API.md 1.2: trust fields, semantics unconfirmed)",
    "kmip-key-state-active":
        "a key vCenter generated is in KMIP state ACTIVE on the KMS (API.md 1.1: key state not documented)",
    "locator-needs-thumbprint":
        "a cross-vCenter ServiceLocator without the destination's sslThumbprint is refused when the vCenters "
        "do not share certificate trust (API.md 11, community.vmware vmware_guest_cross_vc_clone)",
    "clone-rejects-disk-crypto-with-policy":
        "CloneVM_Task rejects location.disk[].backing.crypto together with an encryption storage policy "
        "(API.md 11, terraform-provider-vsphere issue 2241: a user report, not documentation)",
    "invalid-power-state-fault":
        "an encrypt of a powered-on VM is refused with vim.fault.InvalidPowerState (API.md 4/10: the class "
        "is vcsim's, the real one unconfirmed)",
}


def models_unconfirmed(entry: Any) -> bool:
    """A fake models every behaviour above unless its inventory switches that off (fake-lab.yaml)."""
    return entry.target == "fake" and (entry.fake is None or entry.fake.models_unconfirmed)


def confirmed_on(inventory: Any, vcenter: str, behaviour: str) -> bool:
    """May a test assert `behaviour` on this vCenter?"""
    if behaviour not in BEHAVIOURS:
        raise KeyError(f"unknown behaviour id {behaviour!r}")
    entry = inventory.vcenter(vcenter)
    return models_unconfirmed(entry) or behaviour in entry.confirmed


def gate(inventory: Any, vcenter: str, behaviour: str, observed: Any = None) -> None:
    """Call right before asserting `behaviour`: returns where it may be asserted (noting that the verdict
    rests on it), else records `observed` and skips with `unconfirmed: ...`."""
    entry = inventory.vcenter(vcenter)
    recorder = current_recorder()
    if confirmed_on(inventory, vcenter, behaviour):
        source = "the fake's model" if models_unconfirmed(entry) and behaviour not in entry.confirmed \
            else "the inventory's `confirmed` list"
        recorder.note(f"verdict rests on an UNCONFIRMED behaviour ({behaviour})",
                      {"behaviour": BEHAVIOURS[behaviour], "vcenter": vcenter, "asserted because of": source})
        return
    recorder.note(f"observed, not asserted: {behaviour}", {"vcenter": vcenter, "observed": observed})
    pytest.skip(f"unconfirmed: {BEHAVIOURS[behaviour]}; {vcenter} does not list {behaviour!r} under "
                "`confirmed` (observed value recorded as evidence)")


def observe_then_skip(inventory: Any, vcenter: str, behaviour: str, action: Any) -> None:
    """Where `behaviour` (a refusal) is unconfirmed: run `action` once, record whether and how it was
    refused, and skip; where it is confirmed, return at once so the caller asserts the refusal."""
    if confirmed_on(inventory, vcenter, behaviour):
        return
    from harness.vsphere.errors import fault_class_name, fault_message
    try:
        action()
        seen: dict[str, Any] = {"refused": False}
    except Exception as err:  # noqa: BLE001 - recorded, never asserted: the behaviour is unconfirmed
        fault = getattr(err, "fault", err)
        seen = {"refused": True, "class": fault_class_name(fault), "message": fault_message(fault)}
    gate(inventory, vcenter, behaviour, observed=seen)
