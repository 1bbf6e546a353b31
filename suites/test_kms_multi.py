"""A key provider with several KMIP servers (RULES: KMS-MULTI-*): one server down shows as a degraded
provider whose keys are still created and served by the other; every server down shows red and no key
is made up.

The family has a provider of its own (two PyKMIP servers on one key database, harness/kms/replicas.py),
so stopping its servers touches no other test. Only the harness's embedded KMS can be stopped on cue: on
a lab (or the strict second KMS) the tests skip with `capability: ...`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from harness import unconfirmed
from harness.checks import ControlFailed, precondition
from harness.vsphere import crypto, events, keys, vms
from harness.vsphere.hosts import require_some

pytestmark = pytest.mark.requires("key_providers")


@dataclass(frozen=True)
class MultiProvider:
    """A provider registered with every server of one KMS cluster, in registration order."""
    provider_id: str
    servers: tuple[str, ...]
    # How a server goes out of service and comes back (stop_server / start_server / start_all): the embedded
    # replicas' processes (harness.targets.multi_kms.MultiServerKms) or a lab server redirected; never printed.
    outage: Any = field(repr=False)

    @property
    def first(self) -> str:
        """The server registered first: taken down, so a vCenter that never fails over is caught."""
        return self.servers[0]

    @property
    def survivor(self) -> str:
        return self.servers[1]


class Redirect:
    """A lab's KMS server is never stopped: its entry in the family's own provider is pointed where no KMS
    answers (UpdateKmipServer), which is the same outage as seen from vCenter, and pointed back after."""

    def __init__(self, vc: Any, provider_id: str, endpoints: list[Any], down: tuple[str, int]) -> None:
        self.vc, self.provider_id, self.down = vc, provider_id, down
        self.endpoints = {e.server_name: e for e in endpoints}
        self.redirected: set[str] = set()

    def stop_server(self, name: str) -> None:
        endpoint = self.endpoints[name]
        keys.move_server(self.vc, self.provider_id, name, *self.down, username=endpoint.username,
                         password=endpoint.password)
        self.redirected.add(name)

    def start_server(self, name: str) -> None:
        endpoint = self.endpoints[name]
        keys.move_server(self.vc, self.provider_id, name, endpoint.address, endpoint.port, username=endpoint.username,
                         password=endpoint.password)
        self.redirected.discard(name)

    def start_all(self) -> None:
        for name in sorted(self.redirected):
            self.start_server(name)


def _down_address(inventory: Any) -> tuple[str, int]:
    """Where no KMS answers: the inventory's kms.unreachable, else a closed loopback port (not on a real
    vCenter, where loopback is the appliance itself)."""
    if inventory.kms.unreachable is not None:
        return inventory.kms.unreachable.address, inventory.kms.unreachable.port
    if any(entry.target == "real" for entry in inventory.vcenters):
        pytest.skip("capability: inventory names no address without a KMS (kms.unreachable) to take a server of "
                    "the lab's KMS out of service")
    from harness.kms.server import free_port
    return "127.0.0.1", free_port("127.0.0.1")


@pytest.fixture
def multi_provider(environment: Any, inventory: Any, scratch: Any, vc: Any, kms: Any) -> MultiProvider:
    """The family's own provider on `vc` with every server of one KMS cluster, through the trust flow, read with
    failover by `kms`. The KMS health alarm is put back and every server is in service again at teardown. The
    tests take `serial` first: an outage may raise the vCenter-wide KMS health alarm other tests watch."""
    provider_id = scratch.name("multi-kms")
    endpoints = environment.multi_server_endpoints(provider_id)
    if len(endpoints) < 2:
        pytest.skip("capability: no KMS cluster with two servers: the KMS is neither the harness's embedded PyKMIP "
                    "nor a lab KMS with kms.shared.replicas")
    from harness.targets.health import kms_problem
    problems = [p for p in (kms_problem(e) for e in endpoints) if p]   # a server down before the test is the lab's
    precondition(not problems, f"every server of the KMS cluster answers KMIP before the test: {'; '.join(problems)}")
    cluster = environment.multi_server_kms()
    down = None if cluster is not None else _down_address(inventory)
    from harness.vsphere.alarm_guard import AlarmGuard
    guard = AlarmGuard.watch(vc, events.KMS_UNREACHABLE)
    scratch.cleanup.push("restore or acknowledge the KMS health alarm", lambda: guard.restore(inventory.timeouts.event))
    with_trust = inventory.features.get("kms_trust", False)

    def register() -> bool:
        added = False
        for endpoint in endpoints:
            added = keys.register_provider(vc, endpoint, provider_id, make_default=False,
                                           with_trust=with_trust) or added
        return added

    scratch.custom_provider(vc, provider_id, register, servers=[e.server_name for e in endpoints])
    outage = cluster if cluster is not None else Redirect(vc, provider_id, endpoints, down)
    scratch.cleanup.push("put every server of the multi-server provider back in service", outage.start_all)
    kms.add_cluster(provider_id, endpoints)
    registered = keys.list_providers(vc)[provider_id]
    precondition(sorted(s.name for s in registered.servers or []) == sorted(e.server_name for e in endpoints),
                 f"{vc.name} lists the servers {[s.name for s in registered.servers or []]} for {provider_id}")
    vc.recorder.note("multi-server provider", {
        "provider": provider_id, "servers": [e.describe() for e in endpoints],
        "outage": "the embedded server's process is stopped" if cluster is not None
                  else f"the server is pointed at {down[0]}:{down[1]}, where no KMS answers (UpdateKmipServer)"})
    return MultiProvider(provider_id, tuple(e.server_name for e in endpoints), outage)


def _by_name(status: keys.ProviderStatus) -> dict[str, dict[str, Any]]:
    return {server["name"]: server for server in require_some(list(status.servers), f"KMIP server of {status.provider_id}")}


def _has_7_0_api(client: Any) -> bool:
    return client.version_tuple() >= (7, 0)


def _all_green_first(vc: Any, multi: MultiProvider) -> None:
    """Positive control: with every server up the provider is green, or a colour later proves nothing."""
    status = keys.status(vc, multi.provider_id)
    vc.recorder.note("status with every server up", status.__dict__)
    not_green = {n: s["status"] for n, s in _by_name(status).items() if s["status"] != "green"}
    if not_green or set(_by_name(status)) != set(multi.servers):
        raise ControlFailed(f"positive control failed: with every server up {multi.provider_id} reports {not_green} "
                            f"for servers {sorted(_by_name(status))}; a colour with one down proves nothing")


# ---- KMS-MULTI-DEGRADED ---------------------------------------------------------------------------
@pytest.mark.rule("KMS-MULTI-DEGRADED")
@pytest.mark.destructive   # a server of the provider out of service: may raise the KMS health alarm
@pytest.mark.requires("kms_status", "kms_trust")
@pytest.mark.test_id("5d0c2f4e-7a61-4f0b-9f54-1c9b1e2a7d13")
def test_with_one_server_down_the_provider_is_yellow_the_down_server_red_and_the_other_green(
        serial, inventory, vc, multi_provider):
    multi = multi_provider
    _all_green_first(vc, multi)
    multi.outage.stop_server(multi.first)

    status = keys.status(vc, multi.provider_id)
    vc.recorder.note("status with one server down", status.__dict__)
    if _has_7_0_api(vc):
        vc.recorder.note("IsKmsClusterActive with one server down (recorded)", keys.is_active(vc, multi.provider_id))
    servers = _by_name(status)
    assert servers[multi.first]["status"] == "red", \
        f"stopped server {multi.first}: {servers[multi.first]['status']} ({servers[multi.first]['connection']})"
    assert servers[multi.survivor]["status"] == "green", \
        f"answering server {multi.survivor}: {servers[multi.survivor]['status']} ({servers[multi.survivor]['connection']})"
    if _has_7_0_api(vc):
        unconfirmed.gate(inventory, vc.name, "kms-overall-yellow-partial-outage", observed=status.overall)
        assert status.overall == "yellow", \
            f"overall status of {multi.provider_id} with {multi.first} down and {multi.survivor} up: {status.overall}"

    multi.outage.start_server(multi.first)
    after = keys.status(vc, multi.provider_id)
    vc.recorder.note("status once the server is back", after.__dict__)
    assert all(s["status"] == "green" for s in _by_name(after).values()), \
        f"with {multi.first} back the servers report {[(n, s['status']) for n, s in _by_name(after).items()]}"


# ---- KMS-MULTI-KEYGEN -----------------------------------------------------------------------------
@pytest.mark.rule("KMS-MULTI-KEYGEN")
@pytest.mark.destructive   # a server of the provider out of service: may raise the KMS health alarm
@pytest.mark.test_id("a3e8b5f1-2c47-4d9e-8b06-6f5d4c3b2a19")
def test_a_key_generated_while_one_server_is_down_is_served_by_the_survivor_and_by_the_other_once_back(
        serial, vc, multi_provider, kms):
    multi = multi_provider
    multi.outage.stop_server(multi.first)

    result = keys.generate_key_result(vc, multi.provider_id)
    vc.recorder.note(f"GenerateKey with {multi.first} down",
                     {"success": result.success, "reason": result.reason,
                      "key": result.keyId.keyId if result.keyId else None})
    assert result.success, f"GenerateKey on {multi.provider_id} with only {multi.first} down failed: {result.reason}"
    key = (result.keyId.providerId.id, result.keyId.keyId)
    assert key[0] == multi.provider_id, f"GenerateKey on {multi.provider_id} returned a key of {key[0]!r}"
    assert kms.key_exists_on(key, multi.survivor), \
        f"GenerateKey returned {key[1]}, which the surviving server {multi.survivor} does not serve"

    multi.outage.start_server(multi.first)
    assert kms.key_exists_on(key, multi.first), \
        f"key {key[1]} is not served by {multi.first} once it is back: the servers of one provider do not serve " \
        "the same keys (replication is the KMS's job)"


# ---- KMS-MULTI-SURVIVOR ---------------------------------------------------------------------------
@pytest.mark.rule("KMS-MULTI-SURVIVOR")
@pytest.mark.destructive   # a server of the provider out of service: may raise the KMS health alarm
@pytest.mark.requires("vm_encryption", "storage_policies")
@pytest.mark.covers(power="on")
@pytest.mark.test_id("c71f0d2a-94b3-4e6c-a5d8-3e2b1f0c9a47")
def test_a_vm_is_encrypted_through_the_surviving_server_and_powers_on(serial, scratch, vc, place, policies_a,
                                                                       multi_provider, kms):
    multi = multi_provider
    key = keys.generate_key(vc, multi.provider_id)         # with every server up: this rule is about fetching it
    vm = scratch.vm(vc, place, "multi-survivor")
    multi.outage.stop_server(multi.first)

    crypto.encrypt(vc, vm, key, policies_a.encryption)

    state = vms.state(vc, vm, label=f"encrypted with {multi.first} down", phase="after")
    assert state.key == key, f"VM home on {state.key}, expected {key}"
    for disk_key in require_some([k for k in state.disk_keys if k is not None], "encrypted disk"):
        assert disk_key[0] == multi.provider_id, f"disk key {disk_key} is not of {multi.provider_id}"
    assert kms.key_exists(key), f"VM key {key[1]} is served by no running server of {multi.provider_id}"
    vms.power_on(vc, vm)
    power = vc.read(vm, ["runtime.powerState"])["runtime.powerState"]
    assert power == "poweredOn", f"the VM encrypted through {multi.survivor} is {power} after PowerOnVM_Task"


# ---- KMS-MULTI-ALLDOWN ----------------------------------------------------------------------------
@pytest.mark.rule("KMS-MULTI-ALLDOWN")
@pytest.mark.destructive   # every server down: vCenter-wide KMS-health alarm and critical events
@pytest.mark.requires("kms_status", "kms_trust")
@pytest.mark.test_id("e2b94c7d-1f38-4a5e-b6c0-8d7e9f1a2b35")
def test_with_every_server_down_the_provider_is_red_and_generate_key_fails_without_creating_a_key(
        serial, vc, multi_provider, kms):
    multi = multi_provider          # its teardown puts the servers back, then the KMS health alarm
    _all_green_first(vc, multi)
    for name in multi.servers:
        multi.outage.stop_server(name)

    status = keys.status(vc, multi.provider_id)
    vc.recorder.note("status with every server down", status.__dict__)
    for name, server in _by_name(status).items():
        assert server["status"] == "red", f"server {name} (stopped): {server['status']} ({server['connection']})"
    if _has_7_0_api(vc):
        assert status.overall == "red", f"overall status of {multi.provider_id} with every server down: {status.overall}"
        assert not keys.is_active(vc, multi.provider_id), f"{multi.provider_id} is active with every server down"
    result = keys.generate_key_result(vc, multi.provider_id)
    vc.recorder.note("GenerateKey with every server down", {"success": result.success, "reason": result.reason})
    assert result.success is False, f"GenerateKey on {multi.provider_id} reported success with every server down"
    assert result.reason, "GenerateKey failed without a reason"

    multi.outage.start_all()
    if result.keyId and result.keyId.keyId:
        assert kms.key_absent((multi.provider_id, result.keyId.keyId)), \
            f"GenerateKey failed, yet key {result.keyId.keyId} exists on {multi.provider_id}'s KMS"
