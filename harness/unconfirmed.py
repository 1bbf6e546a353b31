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
from harness.inventory.behaviours import BEHAVIOURS


def models_unconfirmed(entry: Any) -> bool:
    """A fake models every behaviour of BEHAVIOURS unless its inventory switches that off (fake-lab.yaml)."""
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



def refusal_confirmed(inventory: Any, vcenter: str, behaviour: str) -> bool:
    """For a change vSphere documents as "not supported" without saying whether it is refused or ignored
    (`behaviour` names the refusal): True where the refusal is confirmed (the caller asserts it; the verdict
    rests on it and says so). False elsewhere: a refusal and an ignored change both hold the rule's intent
    (`checks.refused_or_accepted`), and the caller must then prove the change was ignored."""
    if confirmed_on(inventory, vcenter, behaviour):
        gate(inventory, vcenter, behaviour)
        return True
    current_recorder().note(f"refused or ignored both hold the rule: {behaviour} is not confirmed",
                            {"behaviour": BEHAVIOURS[behaviour], "vcenter": vcenter})
    return False
