"""Fixtures the suites use: inventory, vc / vc_b, kms, place, policies, scratch, serial.

Loaded by harness.run.plugin (`pytest_plugins`); the run they serve is `vcrypt_run`, the plugin's
object in `config.stash`.

Each xdist worker starts its own environment (embedded KMS, fake vCenters or vcsims) from the
inventory, so workers never share mutable state on the fake; on a real vCenter, tests that change
global state take the `serial` lock.
"""
from __future__ import annotations

import fcntl
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from harness.run.cleanup import Cleanup, Ledger, annotation
from harness.targets.environment import Environment, KmsEndpoint, open_environment
from harness.evidence.recorder import current_recorder, register_secret
from harness.inventory.schema import Inventory
from harness.run.kms_reads import KmsEvidence
from harness.run.plugin import RUN_KEY, VcryptRun
from harness.safety import MutationGate
from harness.vsphere import find, keys, policies, vms
from harness.vsphere.client import VCenterClient


def worker_id(config: pytest.Config) -> str:
    return getattr(config, "workerinput", {}).get("workerid", "main")


@pytest.fixture(scope="session")
def vcrypt_run(pytestconfig: pytest.Config) -> VcryptRun:
    """The session's run (harness.run.plugin.VcryptRun): inventory, run ID and folder, ledger, results."""
    return pytestconfig.stash[RUN_KEY]


@pytest.fixture(scope="session")
def inventory(vcrypt_run: VcryptRun) -> Inventory:
    return vcrypt_run.inventory


@pytest.fixture(scope="session")
def environment(pytestconfig: pytest.Config, vcrypt_run: VcryptRun, inventory: Inventory) -> Iterator[Environment]:
    """This worker's environment; started once, stopped at the end of the session."""
    state = vcrypt_run
    for vc in inventory.vcenters:
        if vc.password_env or vc.password_file:
            register_secret(vc.password())
    workdir = state.work_dir / worker_id(pytestconfig)
    with open_environment(inventory, workdir=workdir) as env:
        for endpoint in env.kms_endpoints.values():
            register_secret(endpoint.client_key_pem)
            if endpoint.password:
                register_secret(endpoint.password)
        state.environment = env
        from harness.evidence.results import write_target_info
        write_target_info(state)
        yield env


def _client(env: Environment, inventory: Inventory, name: str) -> VCenterClient:
    entry = inventory.vcenter(name)
    return VCenterClient(name=entry.name, si=env.service_instance(entry.name), timeouts=inventory.timeouts,
                         target=entry.target, relogin=lambda: env.relogin(entry.name),
                         gate=MutationGate.for_inventory(inventory), clone_crypto_shape=entry.clone_crypto_shape)


@pytest.fixture(scope="session")
def vc(environment: Environment, inventory: Inventory) -> VCenterClient:
    """The primary vCenter of the inventory."""
    return _client(environment, inventory, inventory.vcenters[0].name)


@pytest.fixture(scope="session")
def vc_b(environment: Environment, inventory: Inventory) -> VCenterClient:
    """The second vCenter (cross-vCenter rules); skipped when the inventory has only one."""
    if len(inventory.vcenters) < 2:
        pytest.skip("capability: inventory lacks a second vCenter (cross_vcenter)")
    return _client(environment, inventory, inventory.vcenters[1].name)


@pytest.fixture(scope="session")
def place(vc: VCenterClient, inventory: Inventory) -> find.Placement:
    entry = inventory.vcenter(vc.name)
    return find.placement_for(vc, entry)


@pytest.fixture(scope="session")
def place_b(vc_b: VCenterClient, inventory: Inventory) -> find.Placement:
    entry = inventory.vcenter(vc_b.name)
    return find.placement_for(vc_b, entry)


@pytest.fixture(scope="session")
def policies_a(environment: Environment, vc: VCenterClient) -> policies.Policies:
    """The encryption and plain storage policies of the primary vCenter (PBM)."""
    return policies.discover(environment.pbm(vc.name), environment.inventory.vcenter(vc.name).plain_policy)


@pytest.fixture(scope="session")
def policies_b(environment: Environment, vc_b: VCenterClient) -> policies.Policies:
    return policies.discover(environment.pbm(vc_b.name), environment.inventory.vcenter(vc_b.name).plain_policy)


@pytest.fixture(scope="session")
def kms(environment: Environment, inventory: Inventory) -> Iterator[KmsEvidence]:
    evidence = KmsEvidence(environment.kms_endpoints, MutationGate.for_inventory(inventory))
    evidence.native.update(vc.key_provider.id for vc in inventory.vcenters if vc.key_provider is not None)
    yield evidence
    evidence.close()


class Scratch:
    """Creates what a test needs, named with the run prefix and marked with the run ID; removes it LIFO."""

    def __init__(self, state: Any, test_id: str, nodeid: str, worker: str) -> None:
        self.state = state
        self.test_id = test_id
        self.nodeid = nodeid
        self.worker = worker
        self.cleanup = Cleanup()
        self.ledger: Ledger = state.ledger

    def name(self, label: str) -> str:
        """A name unique per run, worker and test: <prefix><run>-<worker>-<n>-<label>."""
        prefix = self.state.inventory.safety.name_prefix
        return f"{prefix}{self.state.run_id}-{self.worker}-{next(self.state.names)}-{label}"[:80]

    @property
    def marker(self) -> str:
        return annotation(self.state.run_id, self.test_id)

    def track_vm(self, client: VCenterClient, vm: Any, name: str) -> Any:
        """Its undo first, then its ledger line: a Ctrl-C between the two (the fsync'd write is the slow
        part) still removes the VM at teardown; the "creating" line already covers a kill."""
        def remove() -> None:
            vms.destroy(client, vm)
            self.ledger.append(kind="vm", vcenter=client.name, moid=vm._moId, name=name, run_id=self.state.run_id,
                               test_id=self.test_id, phase="removed")

        self.cleanup.push(f"destroy VM {name}", remove)
        self.ledger.append(kind="vm", vcenter=client.name, moid=vm._moId, name=name, run_id=self.state.run_id,
                           test_id=self.test_id, phase="created")
        return vm

    def expect_vm(self, client: VCenterClient, name: str) -> None:
        """Write the intent to the ledger before a create call, so a kill mid-call leaves a record."""
        self.ledger.append(kind="vm", vcenter=client.name, name=name, run_id=self.state.run_id,
                           test_id=self.test_id, phase="creating")

    def vm(self, client: VCenterClient, place: find.Placement, label: str = "vm", disks: int = 1,
           host: Any = None, disk_kib: int = 64) -> Any:
        """A fresh powered-off unencrypted VM on `client`."""
        name = self.name(label)
        self.expect_vm(client, name)
        vm = vms.create_vm(client, place, name, self.marker, disk_kib=disk_kib, disks_count=disks, host=host)
        return self.track_vm(client, vm, name)

    def encrypted_vm(self, client: VCenterClient, place: find.Placement, provider: str, policy: str,
                     label: str = "enc", disks: int = 1, disk_kib: int = 64, host: Any = None) -> tuple[Any, Any]:
        """A fresh VM encrypted with a fresh key of `provider` under `policy`: (vm, key)."""
        from harness.vsphere import crypto
        vm = self.vm(client, place, label, disks=disks, host=host, disk_kib=disk_kib)
        key = keys.generate_key(client, provider)
        crypto.encrypt(client, vm, key, policy)
        return vm, key

    def adopt_vm(self, client: VCenterClient, name: str) -> Any | None:
        """Track a VM an operation created by name (a clone), on whichever vCenter holds it."""
        from harness.vsphere.clones import find_vm
        vm = find_vm(client, name)
        if vm is not None:
            self.track_vm(client, vm, name)
        return vm

    def provider(self, client: VCenterClient, endpoint: KmsEndpoint, provider_id: str, make_default: bool = False) -> str:
        """Register a key provider through the trust flow; removed at teardown if this added it."""
        return self.custom_provider(client, provider_id,
                                    lambda: keys.register_provider(client, endpoint, provider_id, make_default=make_default,
                                                                   with_trust=self.state.inventory.features.get("kms_trust", False)),
                                    servers=[endpoint.server_name])

    def custom_provider(self, client: VCenterClient, provider_id: str, register: Any,
                        servers: list[str] | None = None) -> str:
        """Register a provider with `register()` (True/None: it added one); ledgered so `vcrypt sweep`
        removes it after a killed run (only if its id carries this run's mark, harness.run.markers), and
        removed at teardown: only the `servers` it added (all of them when None)."""
        entry = {"kind": "key_provider", "vcenter": client.name, "provider_id": provider_id,
                 "run_id": self.state.run_id, "test_id": self.test_id}
        self.ledger.append(**entry, phase="creating")
        if register() is False:
            return provider_id  # it was there already: not ours to remove

        def remove() -> None:
            keys.remove_provider(client, provider_id, only_servers=servers)
            self.ledger.append(**entry, phase="removed")
        self.cleanup.push(f"remove key provider {provider_id}", remove)   # before its ledger line, as track_vm
        self.ledger.append(**entry, phase="created")  # vcrypt sweep removes only what a run added
        return provider_id

    def restore(self, description: str, action: Any, record: dict[str, Any] | None = None) -> None:
        """Register an undo for a change to shared state (HA, default provider, KMS).

        `record` (e.g. {"action": "cluster_ha", "vcenter": ..., "cluster": moid, "ha": True, "drs": False},
        the values before the change, optionally "after": {...} the values the test sets; format in
        harness/commands/sweep.py) lets `vcrypt sweep` redo the restore after a killed run.
        """
        restore_id = uuid.uuid4().hex
        if record:   # the change and its restore, paired: what `vcrypt sweep` may redo after a kill
            self.ledger.record_change(record, description, self.state.run_id, self.test_id, restore_id)
        else:        # a restore sweep cannot redo: it reports it
            self.ledger.append(kind="restore", description=description, run_id=self.state.run_id,
                               test_id=self.test_id, restore_id=restore_id)

        def undo() -> None:
            action()
            self.ledger.append(kind="restore", phase="done", restore_id=restore_id, run_id=self.state.run_id)
        self.cleanup.push(description, undo)


@pytest.fixture
def scratch(request: pytest.FixtureRequest, vcrypt_run: VcryptRun, inventory: Inventory) -> Iterator[Scratch]:
    if not inventory.safety.allow_mutations:
        pytest.skip("safety: inventory does not allow mutations (safety.allow_mutations: false)")
    marker = request.node.get_closest_marker("test_id")
    scratch = Scratch(vcrypt_run, marker.args[0] if marker else "", request.node.nodeid, worker_id(request.config))
    yield scratch
    problems = scratch.cleanup.run()
    if problems:
        current_recorder().note("cleanup problems", problems)


def workers_share_state(inventory: Inventory) -> bool:
    """Whether xdist workers act on the same vCenters or KMS (false: fakes and embedded KMS, one set per worker)."""
    return not (inventory.kms.embedded and all(vc.target == "fake" for vc in inventory.vcenters))


@pytest.fixture
def serial(vcrypt_run: VcryptRun) -> Iterator[None]:
    """One lock across xdist workers for tests that change global state (HA, default provider, KMS).

    Not taken when every vCenter is a fake and the KMS is embedded: each worker then starts its own
    fake world and KMS pair (`environment`), so there is no shared state, and the lock only made
    the other worker wait (bench/suite_wall_time.py)."""
    if not workers_share_state(vcrypt_run.inventory):
        yield
        return
    path: Path = vcrypt_run.run_dir / "serial.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _provider(config: pytest.Config, client: VCenterClient, environment: Environment, role: str) -> Iterator[str]:
    """The KMS of `role` as a key provider of `client` (harness/run/session_providers.py: the lab's is used,
    never changed; otherwise registered under this run's mark, ledgered, and removed at the end)."""
    from harness.run.session_providers import session_provider
    yield from session_provider(config.stash[RUN_KEY], worker_id(config), client, environment, role)


@pytest.fixture(scope="session")
def provider(pytestconfig: pytest.Config, vc: VCenterClient, environment: Environment) -> Iterator[str]:
    """The shared KMS as a key provider of the primary vCenter (made default only if none was)."""
    yield from _provider(pytestconfig, vc, environment, "shared")


@pytest.fixture(scope="session")
def provider_b(pytestconfig: pytest.Config, vc_b: VCenterClient, environment: Environment) -> Iterator[str]:
    """The same shared KMS cluster registered on the second vCenter (cross-vCenter rules)."""
    yield from _provider(pytestconfig, vc_b, environment, "shared")


@pytest.fixture(scope="session")
def dedicated_provider(pytestconfig: pytest.Config, vc: VCenterClient, environment: Environment) -> Iterator[str]:
    """A KMS cluster only the primary vCenter has (KMS-DEDICATED)."""
    yield from _provider(pytestconfig, vc, environment, "dedicated")


@pytest.fixture
def unreachable_kms(inventory: Inventory, scratch: Scratch, vc: VCenterClient) -> tuple[str, int]:
    """(address, port) where no KMS answers: the inventory's `kms.unreachable`, or on a fake or vcsim a
    closed loopback port (on a real target loopback is the vCenter appliance itself: never used).

    A provider there raises the vCenter-wide KMS-health alarm: its state before the test is read now,
    and restored or acknowledged after everything else the test set up is undone (the undo is pushed
    first, so it runs last; harness/vsphere/alarm_guard.py), with the outcome in the evidence."""
    if inventory.kms.unreachable is not None:
        where = inventory.kms.unreachable.address, inventory.kms.unreachable.port
    elif any(entry.target == "real" for entry in inventory.vcenters):
        pytest.skip("capability: inventory names no address without a KMS (kms.unreachable.address)")
    else:
        from harness.kms.server import free_port
        where = "127.0.0.1", free_port("127.0.0.1")
    from harness.vsphere import events
    from harness.vsphere.alarm_guard import AlarmGuard
    guard = AlarmGuard.watch(vc, events.KMS_UNREACHABLE)
    scratch.cleanup.push("restore or acknowledge the KMS health alarm",
                         lambda: guard.restore(inventory.timeouts.event))
    return where


@pytest.fixture
def encrypted_vm(scratch: Scratch, vc: VCenterClient, place: find.Placement, provider: str,
                 policies_a: policies.Policies) -> Any:
    """A powered-off VM encrypted with a fresh key of the shared provider."""
    from harness.vsphere import crypto
    vm = scratch.vm(vc, place, "enc")
    crypto.encrypt(vc, vm, keys.generate_key(vc, provider), policies_a.encryption)
    return vm


@pytest.fixture
def control(environment: Environment, vc: VCenterClient) -> Any:
    """Fault injection on the target (harness/targets/control.py): a real vCenter cannot be asked to fail
    on cue, so on any target but the fake the test skips here, before it changes anything."""
    from harness.targets.control import NoFaultInjection
    facade = environment.control(vc.name)
    if isinstance(facade, NoFaultInjection):
        pytest.skip(f"capability: target {vc.name} lacks fault_injection (not a fake vCenter)")
    return facade


__all__ = ["inventory", "environment", "vc", "vc_b", "place", "place_b", "policies_a", "policies_b", "kms",
           "scratch", "serial", "control", "provider", "provider_b", "dedicated_provider", "encrypted_vm",
           "unreachable_kms",
           "vcrypt_run", "Scratch", "KmsEvidence", "worker_id"]


@pytest.fixture(autouse=True)
def _vcrypt_version_gate(request: pytest.FixtureRequest) -> None:
    """Skip a rule's test when the target's version is outside the rule's span (before other fixtures)."""
    state = request.config.stash.get(RUN_KEY, None)
    rule_ids = [rid for marker in request.node.iter_markers("rule") for rid in marker.args]
    if state is None or not rule_ids:
        return
    from harness.rules import load_rules
    from harness.run.version_gate import skip_reason, target_version
    from harness.vsphere import sessions
    primary = state.inventory.vcenters[0]
    if state.target_version is None:  # read once per worker: a target's version does not change mid-run
        env = request.getfixturevalue("environment")
        found = target_version(primary, sessions.about(env.service_instance(primary.name)))
        state.target_version, state.target_version_source = found.text, found.source
    catalogue = load_rules()
    reason = skip_reason([catalogue[rid] for rid in rule_ids], state.target_version, primary.name,
                         state.target_version_source)
    if reason:
        pytest.skip(reason)
