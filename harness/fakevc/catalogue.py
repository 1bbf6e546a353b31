"""Every seeded defect of the fake: the modules that register defects, listed by name.

A defect is registered when its module is imported (`defects.defect(...)`); this explicit list
(rather than a walk over the packages) is what makes the catalogue complete, and
tests/test_layers.py checks that every module calling `defect(...)` is on it.
"""
from __future__ import annotations

from types import ModuleType

from harness.fakevc.behaviours import (clone, core_dumps, crypto_rules, default_providers, destination, instant_clone,
                                       key_push, locked_vms, reconfigure, relocate, snapshots, space, vtpm)
from harness.fakevc.defects import CATALOGUE, Defect
from harness.fakevc.kmip import keys, kms_health, multi_server, native
from harness.fakevc.model import alarms, authorization, crypto_manager

DEFECT_MODULES: tuple[ModuleType, ...] = (
    # model: refusals of the API objects themselves
    alarms, authorization, crypto_manager,
    # kmip: key generation and KMS health
    keys, kms_health,
    # behaviours: the rules of the operations
    clone, core_dumps, crypto_rules, destination, instant_clone, key_push, reconfigure, relocate, snapshots, space,
    # KMS-MULTI: a key provider with several servers
    multi_server,
    # LOCK-*: locked VMs and missing keys
    locked_vms,
    # vTPM family (VTPM-*)
    vtpm,
    # Issue 25 family 3: default key provider per cluster (KMS-DEFAULT-*)
    default_providers,
    # Native Key Provider (issue 25 family 5)
    native,
)


def load_all() -> dict[str, Defect]:
    """Every defect by name (all DEFECT_MODULES are imported with this module)."""
    return CATALOGUE
