"""Assertions the suites share: refusals checked twice (the fault, then the unchanged state).

Where API.md marks a fault class UNCONFIRMED, pass `expected=None`: the refusal is asserted and the
concrete fault class and message are recorded as evidence instead of asserting a guessed class.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

from pyVmomi import vmodl

from harness.evidence.recorder import current_recorder
from harness.vsphere.errors import EnvironmentFault, TaskFailed, UnknownFault, fault_class_name, fault_message
from harness.vsphere.fault_kinds import TRANSPORT_ERRORS, environment_cause, not_by_product
from harness.vsphere.vms import exists as vm_exists


@dataclass(frozen=True)
class Refusal:
    fault: Any
    fault_class: str
    message: str


@contextmanager
def for_rule(rule_id: str) -> Iterator[None]:
    """The steps inside demonstrate `rule_id` (one of the test's rules): their checks carry it, and a
    product failure inside fails that rule only; the test's other rules are then not demonstrated
    rather than failed (issue 23: a shallow-step failure used to fail REKEY-DEEP too)."""
    recorder = current_recorder()
    previous, recorder.rule = recorder.rule, rule_id
    try:
        yield
    except AssertionError:
        if rule_id not in recorder.blamed:
            recorder.blamed.append(rule_id)
        raise
    finally:
        recorder.rule = previous


class UndecidableRefusal(EnvironmentFault):
    """Refused, but with a fault whose class cannot be read: the expected class cannot be checked."""


class NotRefused(AssertionError):
    """An operation the rules say must be refused succeeded."""


def refused(action: Callable[[], Any], what: str, expected: type | tuple[type, ...] | None = None) -> Refusal:
    """Run `action`; it must fail with a vmodl fault (of `expected`, when the class is confirmed)."""
    try:
        action()
    except TaskFailed as err:
        fault = err.fault
    except vmodl.MethodFault as err:
        fault = err
    except TRANSPORT_ERRORS as err:
        raise not_by_product(what, err) from err
    else:
        _record_refusal(what, expected, None)
        raise NotRefused(f"{what}: expected a refusal, but the operation succeeded")
    refusal = Refusal(fault, fault_class_name(fault), fault_message(fault))
    current_recorder().note(f"refusal: {what}", {"class": refusal.fault_class, "message": refusal.message})
    if expected is not None and isinstance(fault, UnknownFault):
        _record_refusal(what, expected, refusal, "undecidable: a fault type pyVmomi does not know")
        raise UndecidableRefusal(f"{what}: refused with {refusal.fault_class}, a fault type pyVmomi does not know; "
                                 f"cannot tell whether it is the expected class")
    wanted = () if expected is None else (expected if isinstance(expected, tuple) else (expected,))
    if environment_cause(fault, wanted) is not None:  # recorded as what it is before it becomes an error
        _record_refusal(what, expected, refusal, "not a product refusal: an environment fault")
    else:
        _record_refusal(what, expected, refusal)
    reject_environment_fault(fault, what, expected)
    if expected is not None and not isinstance(fault, expected):
        names = ", ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
        raise AssertionError(f"{what}: refused with {refusal.fault_class} ({refusal.message}), expected {names}")
    return refusal


def refused_or_accepted(action: Callable[[], Any], what: str) -> Refusal | None:
    """Run `action` where vSphere leaves open whether it is refused or ignored (harness.unconfirmed
    .refusal_confirmed): a fault is checked as any refusal (environment faults stay errors) and returned;
    an accepted call returns None, and the caller must prove the change was ignored."""
    try:
        action()
    except (TaskFailed, vmodl.MethodFault, *TRANSPORT_ERRORS) as err:
        caught = err

        def again() -> None:
            raise caught
        return refused(again, what)
    current_recorder().check(f"{what}: refused or ignored", "refused, or accepted with the change ignored",
                             "accepted: the change must have been ignored", True)
    return None


def unchanged(before: Any, after: Any, what: str) -> None:
    """The state after a refusal equals the state before (keys, power, snapshots, location...)."""
    _record_unchanged(before, after, what)
    if before != after:
        diffs = [f"{name}: {getattr(before, name)!r} -> {getattr(after, name)!r}"
                 for name in getattr(before, "__dataclass_fields__", {}) if getattr(before, name) != getattr(after, name)]
        raise AssertionError(f"{what}: state changed although the operation was refused: " + "; ".join(diffs or [f"{before!r} -> {after!r}"]))


def reject_environment_fault(fault: Any, what: str, expected: type | tuple[type, ...] | None = None) -> None:
    """A TLS, login, session, connection or (unexpected) permission fault is no refusal: raise an
    EnvironmentFault so the plugin reports an error (harness/vsphere/fault_kinds.py)."""
    wanted = () if expected is None else (expected if isinstance(expected, tuple) else (expected,))
    cause = environment_cause(fault, wanted)
    if cause is not None:
        raise not_by_product(what, cause)


class ControlFailed(EnvironmentFault):
    """The positive control of a refusal test failed: the refusal cannot be put down to the forbidden change."""


def positive_control(action: Callable[[], Any], what: str) -> Any:
    """Run the same operation without the forbidden change (on a twin): it must succeed in this run,
    or the refusal test next to it reports an error instead of a verdict."""
    try:
        result = action()
    except (TaskFailed, vmodl.MethodFault, EnvironmentFault, *TRANSPORT_ERRORS) as err:
        fault = getattr(err, "fault", err)
        current_recorder().note(f"positive control failed: {what}", {"class": fault_class_name(fault),
                                                                     "message": fault_message(fault)})
        raise ControlFailed(f"positive control failed: {what} ({fault_class_name(fault)}: {fault_message(fault)}); "
                            "the refusal next to it proves nothing about the product") from err
    current_recorder().note(f"positive control succeeded: {what}", True)
    return result


class PreconditionUnmet(EnvironmentFault):
    """The lab is not as the rule needs it (e.g. a leftover of a killed run): no verdict either way."""


def precondition(holds: bool, problem: str) -> None:
    """A state the test needs before it acts; unmet, it is an environment error, never a product failure
    (a vCenter that already holds a provider the test must add proves nothing about the product)."""
    current_recorder().note(f"precondition {'met' if holds else 'unmet'}", problem if not holds else True)
    if not holds:
        raise PreconditionUnmet(f"precondition unmet: {problem}")


# ---- recorded checks: each assertion as a sentence with expected and observed values ----------
# The report shows these first in each test's section, so an auditor sees what was checked and
# why it passed without reading raw API calls.

def key_text(key: Any, names: dict[str, Any] | None = None) -> str:
    """A KeyRef as its key id (`100128`), with its role when known (`100128 (new)`); None is "none"."""
    if key is None:
        return "none (not encrypted)"
    text = f"{key[1]}" if isinstance(key, tuple) and len(key) == 2 else str(key)
    roles = [role for role, k in (names or {}).items() if k == key]
    return f"{text} ({', '.join(roles)})" if roles else text


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def check_that(what: str, passed: bool, expected: str, observed: str, detail: str = "") -> None:
    """Record one check as a sentence and fail the test if it did not hold."""
    current_recorder().check(what, expected, observed, passed, detail)
    if not passed:
        raise AssertionError(f"{what}: expected {expected}, observed {observed}" + (f" ({detail})" if detail else ""))


def check_equal(what: str, expected: Any, observed: Any, detail: str = "") -> None:
    """`what: expected X, observed Y`, passing when X == Y."""
    check_that(what, expected == observed, _value_text(expected), _value_text(observed), detail)


def check_each_equal(items: list[tuple[str, Any]], expected: Any) -> None:
    """Record one equality check per item, then fail naming every item that differed."""
    wrong = []
    for what, observed in items:
        try:
            check_equal(what, expected, observed)
        except AssertionError as err:
            wrong.append(str(err))
    if wrong:
        raise AssertionError("; ".join(wrong))


def check_on_key(what: str, expected: Any, observed: Any, names: dict[str, Any] | None = None) -> None:
    """`snapshot s2 key: expected 100128 (new), observed 100128 (new)`; providers must match too."""
    detail = "" if expected == observed or observed is None or expected is None or expected[0] == observed[0] \
        else f"key provider {observed[0]}, expected {expected[0]}"
    check_that(what, expected == observed, key_text(expected, names), key_text(observed, names), detail)


def check_each_on_key(items: list[tuple[str, Any]], expected: Any, names: dict[str, Any] | None = None) -> None:
    """Record one key check per item (snapshot, disk...), then fail listing every item off the key."""
    wrong = []
    for what, observed in items:
        try:
            check_on_key(what, expected, observed, names)
        except AssertionError as err:
            wrong.append(str(err))
    if wrong:
        raise AssertionError("; ".join(wrong))


def check_hosts_hold_key(host_names: dict[str, str], caches: dict[str, set[Any]], key: Any,
                         names: dict[str, Any] | None = None) -> None:
    """Per host: its own key cache lists `key`; the host-by-key grid highlights that key."""
    recorder = current_recorder()
    if recorder.host_keys is not None:
        recorder.host_keys["focus"] = sorted({*recorder.host_keys.get("focus", []), f"{key[0]}/{key[1]}"})
    missing = []
    for moid, held in caches.items():
        host = host_names.get(moid, moid)
        has = key in held
        recorder.check(f"host {host} key cache holds {key_text(key, names)}", "held",
                       f"held (cache lists {len(held)} keys)" if has else f"not held (cache lists {len(held)} keys)",
                       has)
        if not has:
            missing.append(host)
    if missing:
        raise AssertionError(f"hosts without key {key_text(key, names)}: {', '.join(sorted(missing))}")


_REFUSED = "refused"


def _record_refusal(what: str, expected: Any, refusal: Refusal | None, not_by_product: str = "") -> None:
    """One row per refusal check; passed only for a product refusal of the expected class (issue 23:
    an InvalidLogin used to be recorded as a passed "refused with vim.fault.InvalidLogin")."""
    wanted = _REFUSED + (" with " + ", ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
                         if expected is not None else " (fault class recorded, not asserted)")
    if refusal is None:
        current_recorder().check(f"{what}", wanted, "the operation succeeded", False)
        return
    if not_by_product:
        current_recorder().check(f"{what}", wanted, f"{not_by_product} ({refusal.fault_class}: {refusal.message})", False)
        return
    ok = expected is None or isinstance(refusal.fault, expected)
    current_recorder().check(f"{what}", wanted, f"refused with {refusal.fault_class}: {refusal.message}", ok)


def _state_label(what: str) -> str:
    """What the state row follows, from what happened: the last refusal check recorded for `what`."""
    rows = [r for r in current_recorder().checks
            if r.get("what") == what and str(r.get("expected", "")).startswith(_REFUSED)]
    if not rows:
        return "state after the operation"  # e.g. the source of a clone that was meant to succeed
    return "state after the refusal" if rows[-1].get("passed") is True else "state after the operation (which was not refused)"


def _record_unchanged(before: Any, after: Any, what: str) -> None:
    fields = getattr(before, "__dataclass_fields__", {})
    changed = [name for name in fields if getattr(before, name) != getattr(after, name)]
    observed = "unchanged" if before == after else "changed: " + ", ".join(changed or ["(whole state)"])
    kept = ", ".join(fields) if fields else "state"
    current_recorder().check(f"{what}: {_state_label(what)}", f"unchanged ({kept})", observed, before == after)


def assert_disks_encrypted(state: Any, what: str) -> None:
    """Every disk of a VM state (and there is at least one) is encrypted, whatever its key."""
    disks = list(state.disk_keys or ())
    check_that(f"{what}: disks encrypted", bool(disks) and all(k is not None for k in disks),
               "every disk encrypted (at least one disk)",
               f"disks on {[key_text(k) for k in disks]}" if disks else "no disk")


# ---- VMs that arrive somewhere (a clone, a cross-vCenter migration) ------------------------------
# What arrives under the expected name is tracked for cleanup whatever the operation does, so a
# half-done or wrongly accepted operation leaves nothing behind.

def arrived(scratch: Any, client: Any, name: str, act: Callable[[], Any]) -> Any:
    """Run `act`, which must make a VM named `name` appear on `client`; returns that VM."""
    scratch.expect_vm(client, name)
    try:
        act()
    finally:
        landed = scratch.adopt_vm(client, name)
    check_that(f"a VM named {name} on {client.name}", landed is not None, "arrived",
               "arrived" if landed is not None else "no VM of that name")
    return landed


def refused_crossing(scratch: Any, client: Any, name: str, act: Callable[[], Any], what: str,
                     source: tuple[Any, Any] | None = None) -> Refusal:
    """`act` (a clone to `name`, a migration) must be refused: no VM named `name` on `client` afterwards,
    and with `source=(source_client, vm)` that VM still registered where it was."""
    scratch.expect_vm(client, name)
    try:
        refusal = refused(act, what)
    finally:
        landed = scratch.adopt_vm(client, name)
    check_that(f"{what}: a VM named {name} on {client.name}", landed is None, "none arrived",
               "none arrived" if landed is None else "arrived although the operation was refused")
    if source is not None:
        source_client, vm = source
        present = vm_exists(source_client, vm)
        check_that(f"{what}: the source VM on {source_client.name}", present, "still registered",
                   "still registered" if present else "no longer registered")
    return refusal


def assert_on_key(state: Any, key: Any, what: str) -> None:
    """The VM home and every disk of a VM state (at least one) are on `key`; `key=None`: all unencrypted."""
    disks = list(state.disk_keys or ())
    check_that(f"{what}: VM home and disks on one key", state.key == key and bool(disks) and all(k == key for k in disks),
               f"VM home and every disk (at least one) on {key_text(key)}",
               f"VM home on {key_text(state.key)}, disks on {[key_text(k) for k in disks]}")


def require_kmip_refusal(endpoint: Any, reason: str | None) -> None:
    """For tests whose verdict rests on a KMS *refusing*: an outage is not a refusal.

    Raises KmsUnreachable (an environment error) when the reason names an outage rather than a
    KMIP answer, or when the KMS does not answer a KMIP round trip now.
    """
    from harness.kms.client import KmsUnreachable
    from harness.targets.health import kms_problem
    from harness.targets.outage import names_an_outage
    address = f"{endpoint.address}:{endpoint.port}"
    if reason and names_an_outage(reason):
        raise KmsUnreachable.at(address, f"the failure's reason is an outage, not a KMIP refusal: {reason}")
    problem = kms_problem(endpoint)
    if problem:
        raise KmsUnreachable.at(address, f"the KMS does not answer, so the failure is not its refusal ({problem})")
