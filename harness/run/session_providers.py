"""The session's key providers (`provider`, `provider_b`, `dedicated_provider` fixtures).

Two cases, decided by the inventory through the environment's KMS endpoints:

- the lab's provider (`KmsEndpoint.lab_owned`: an external KMS with `registered: true`, or the
  provider a fake lab starts with): checked, protected in the mutation gate, used for keys, and
  compared byte for byte at the end of the session. Nothing is registered, uploaded or removed.
- otherwise the harness registers the KMS under an id carrying this run's mark
  (`harness.run.markers.provider_id`), writes it to the ledger before and after, and at the end removes
  only the server it added. That needs `safety.allow_mutations` (the gate refuses it otherwise).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterator

from harness.run import lab_providers
from harness.run.markers import provider_id as marked_provider_id
from harness.vsphere import keys


def session_provider(state: Any, worker: str, client: Any, environment: Any, role: str) -> Iterator[str]:
    import pytest
    declared = environment.inventory.vcenter(client.name).key_provider
    if role == "shared" and declared is not None:   # the lab's Native Key Provider is this vCenter's provider
        yield from _use_native_provider(client, declared.id)
        return
    endpoint = environment.kms_endpoints.get(role)
    if endpoint is None:
        pytest.skip(f"capability: inventory has no {role} KMS")
    if endpoint.lab_owned:
        yield from _use_lab_provider(client, endpoint, role)
    else:
        yield from _register_own(state, worker, client, environment, endpoint, role)


def _use_lab_provider(client: Any, endpoint: Any, role: str) -> Iterator[str]:
    """The lab's provider is protected and compared at the end; the harness's own embedded KMS that
    the fake starts with registered (`harness_started`) is used the same way, but a test may remove
    and register it again (KMS-REQUIRED before 7.0 has no other way to clear the default)."""
    own = getattr(endpoint, "harness_started", False)
    before = lab_providers.use(client, endpoint.provider_id, endpoint.server_name, f"kms.{role}", protect=not own)
    yield endpoint.provider_id
    if not own:
        lab_providers.require_unchanged(client, endpoint.provider_id, before)


def _use_native_provider(client: Any, provider_id: str) -> Iterator[str]:
    """A Native Key Provider the inventory declares (`key_provider: {id, type: native}`): checked, protected and
    compared at the end like a lab's KMIP provider; its keys are vCenter's own, so the KMS-side checks of every
    test using it are not observable (harness/run/kms_reads.py)."""
    before = lab_providers.use_native(client, provider_id)
    _require_key_generation(client, provider_id)
    yield provider_id
    lab_providers.require_native_unchanged(client, provider_id, before)


def _require_key_generation(client: Any, provider_id: str) -> None:
    """The suites take a fresh key per test with GenerateKey. Whether vCenter generates keys on a Native Key
    Provider that way is not documented (govmomi's vcsim refuses: "Cannot generate keys with native key
    provider"; vm-operator never asks, it sends an empty key id), so it is tried once: a vCenter that refuses
    makes every test using the provider a capability skip naming the answer, never a product failure."""
    import pytest
    from pyVmomi import vmodl

    from harness.vsphere.errors import fault_class_name, fault_message
    if not client.gate.allow_mutations:
        return   # the tests that would generate keys are skipped by the gate anyway
    try:
        result = keys.generate_key_result(client, provider_id)
    except vmodl.MethodFault as fault:   # a refusal (environment faults are not caught: they are errors)
        answer = f"{fault_class_name(fault)}: {fault_message(fault)}"
    else:
        if result.success:
            return
        answer = f"success false: {result.reason}"
    pytest.skip(f"capability: {client.name} does not generate keys on Native Key Provider {provider_id} with "
                f"GenerateKey ({answer}); the suites take a fresh key per test that way")


def _register_own(state: Any, worker: str, client: Any, environment: Any, endpoint: Any, role: str) -> Iterator[str]:
    own_id = environment.kms_endpoints[role].provider_id
    if not own_id.startswith(f"{state.inventory.safety.name_prefix}{state.run_id}-"):
        own_id = marked_provider_id(state.inventory.safety.name_prefix, state.run_id, worker, f"kms-{role}")
        endpoint = dataclasses.replace(endpoint, provider_id=own_id)
        environment.kms_endpoints[role] = endpoint  # KmsEvidence.for_provider finds it by this id
    entry = {"kind": "key_provider", "vcenter": client.name, "provider_id": own_id, "run_id": state.run_id,
             "test_id": "session"}
    state.ledger.append(**entry, phase="creating")
    added = keys.register_provider(client, endpoint, own_id, make_default=(role == "shared"),
                                   with_trust=environment.inventory.features.get("kms_trust", False))
    if added:
        state.ledger.append(**entry, phase="created")
    yield own_id
    if not added:
        return
    down = state.outages.down_problem("vcenter", client.name)
    if down:  # circuit breaker: a vCenter known down is not called again. The ledger keeps "created", so
        # `vcrypt sweep --run-id` removes the provider later; a teardown error here would only blur verdicts.
        import warnings
        warnings.warn(f"teardown: key provider {own_id} left on {client.name}, which is down (circuit breaker: "
                      f"{down}); remove it with vcrypt sweep --run-id {state.run_id}", stacklevel=1)
        return
    keys.remove_provider(client, own_id, only_servers=[endpoint.server_name])
    state.ledger.append(**entry, phase="removed")
