"""A test's evidence inside its Allure result, and API calls as Allure steps with parameters.

Allure readers should not need the run folder to see why a test passed: each result carries
the recorded checks (expected, observed), the keys observed on VMs, disks and snapshots, the
host-by-key grid (when recorded) and the full evidence JSON. Every value comes from the
recorder, which has already masked secret fields and removed registered secrets.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from harness.evidence.display import bounded, compact
from harness.evidence.recorder import Recorder, redact

STEP_PARAMETER_LIMIT = 200


@contextlib.contextmanager
def api_step(title: str, args: Mapping[str, Any]) -> Iterator[None]:
    """An Allure step with the call's (summarized, redacted) arguments as parameters.

    The step's status comes from how the block ends: a fault makes it failed or broken.
    """
    try:
        from allure_commons._allure import StepContext  # what allure.step() builds, with parameters
    except ImportError:  # pragma: no cover - allure-pytest is a dependency
        yield
        return
    params = {str(k): redact(bounded(v, STEP_PARAMETER_LIMIT)) for k, v in args.items()}
    with StepContext(redact(title), params):
        yield


def register_api_steps() -> None:
    """Show every vCenter call as an Allure step: subscribe `api_step` to the operations layer's
    call observers (harness/calls.py); idempotent, called from the plugin's pytest_configure."""
    from harness.calls import subscribe
    subscribe("allure-step", api_step)


def checks_text(recorder: Recorder) -> str:
    lines = []
    for c in recorder.checks:
        mark = "PASS" if c["passed"] else "FAIL"
        detail = f" ({c['detail']})" if c.get("detail") else ""
        lines.append(f"{mark}  {c['what']}: expected {compact(c['expected'])}, observed {compact(c['observed'])}{detail}")
    return "\n".join(lines) + "\n"


def _keys_in(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(where, key) for every CryptoKeyId inside a summarized value."""
    if isinstance(value, dict):
        if str(value.get("_type", "")).endswith("CryptoKeyId") and "keyId" in value:
            yield path or "keyId", compact(value)
            return
        for k, v in value.items():
            yield from _keys_in(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _keys_in(v, f"{path}[{i}]")


def observed_keys_text(recorder: Recorder) -> str:
    """Which key each observed object (VM home, disk backing, snapshot) was on, per observation."""
    lines = []
    for o in recorder.observations:
        found = list(_keys_in(o["properties"]))
        if found:
            lines.append(f"{o['label']} ({o['phase']}, {o['vcenter']} {o['object']}):")
            lines += [f"  {where} = {key}" for where, key in found]
    return "\n".join(lines) + "\n" if lines else ""


def grid_text(recorder: Recorder) -> str:
    """The host-by-key grid as text: the test's own keys as columns, the rest counted per host."""
    grid = recorder.host_keys
    if not grid:
        return ""
    focus = list(grid.get("focus") or [])
    keys = focus or list(grid["keys"])[:8]
    width = max([len(h) for h in grid["hosts"]] + [4])
    head = " " * width + "  " + "  ".join(keys) + "  other keys held"
    lines = [f"{len(grid['hosts'])} hosts x {len(grid['keys'])} keys" + (" (columns: this test's keys)" if focus else ""),
             head]
    for host in grid["hosts"]:
        held = set(grid["holds"].get(host, []))
        cells = "  ".join(("held" if k in held else "MISSING").ljust(len(k)) for k in keys)
        lines.append(f"{host.ljust(width)}  {cells}  {len(held - set(keys))}")
    return "\n".join(lines) + "\n"


def attach_evidence(recorder: Recorder) -> None:
    """Attach checks, observed keys, grid and the evidence JSON to the running Allure test."""
    try:
        import allure
    except ImportError:  # pragma: no cover
        return
    text = allure.attachment_type.TEXT
    for name, body in (("checks (expected, observed)", checks_text(recorder) if recorder.checks else ""),
                       ("observed keys", observed_keys_text(recorder)),
                       ("host-by-key grid", grid_text(recorder))):
        if body:
            allure.attach(redact(body), name=name, attachment_type=text)
    allure.attach(redact(json.dumps(recorder.to_json(), indent=1, default=str)), name="evidence",
                  attachment_type=allure.attachment_type.JSON)
    mark_expected_refusals(recorder)


def _open_allure_test() -> Any | None:
    """The Allure result of the test now running (allure-pytest's reporter keeps it open until teardown ends)."""
    try:
        from allure_commons import plugin_manager
    except ImportError:  # pragma: no cover
        return None
    for plugin in plugin_manager.get_plugins():
        logger = getattr(plugin, "allure_logger", None)
        if logger is not None:
            return logger.get_test(None)
    return None


def expected_faults(recorder: Recorder) -> list[str]:
    """Fault classes of the refusals the test checked and found as expected, in call order."""
    out = []
    for check in recorder.checks:
        observed = str(check.get("observed") or "")
        if check.get("passed") and observed.startswith("refused with "):
            out.append(observed.removeprefix("refused with ").split(":", 1)[0].strip())
    return out


def mark_expected_refusals(recorder: Recorder, test: Any = None) -> int:
    """Turn the API steps whose fault was an expected refusal into passed steps
    "refused as expected: <fault>": the refusal is the behaviour the rule asks for, not an error
    inside a passed test. A fault nobody checked keeps its red step."""
    test = test if test is not None else _open_allure_test()
    faults = expected_faults(recorder)
    if test is None or not faults:
        return 0
    changed = 0

    def walk(steps: list[Any]) -> None:
        nonlocal changed
        for step in steps:
            message = str(getattr(getattr(step, "statusDetails", None), "message", "") or "")
            fault = next((f for f in faults if f and f in message), None)
            if getattr(step, "status", None) in ("broken", "failed") and fault:
                faults.remove(fault)
                step.status = "passed"
                step.name = f"refused as expected: {fault} ({step.name})"
                changed += 1
            walk(list(getattr(step, "steps", []) or []))

    walk(list(getattr(test, "steps", []) or []))
    return changed
