"""run.json at session finish describes the target from what was read while it was up.

pytest_sessionfinish runs after the session fixtures are torn down: the environment is closed (its
sessions logged out, the fake's world and vcsims stopped). Describing the vCenters then must not log
in again; targets.json, written when the environment came up, already holds versions, builds and hosts.
"""
from __future__ import annotations

import datetime
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harness.evidence.results import write_results, write_target_info
from harness.inventory.schema import load_inventory


class ClosedEnvironment:
    """An environment after close(): every new login is counted (none may happen)."""

    defects = None
    startup_s = 0.0

    def __init__(self) -> None:
        self.logins = 0
        self.vcsim_choices: dict[str, Any] = {}

    def service_instance(self, name: str | None = None) -> Any:
        self.logins += 1
        raise ConnectionRefusedError(f"{name} is stopped")

    def url_of(self, entry: Any) -> str:
        return entry.service_url

    def describe(self) -> dict[str, Any]:
        return {"kms": {"embedded": True, "servers": []}}


def _state(tmp_path: Path, environment: Any) -> Any:
    return SimpleNamespace(run_dir=tmp_path / "run", run_id="r1", results={}, write_results=True,
                           started=datetime.datetime.now(datetime.timezone.utc), inventory=load_inventory(None),
                           environment=environment)


def _session() -> Any:
    return SimpleNamespace(config=SimpleNamespace(invocation_params=SimpleNamespace(args=())))


def test_run_json_reuses_the_targets_read_while_the_environment_was_up(tmp_path):
    state = _state(tmp_path, ClosedEnvironment())
    up = {"vcenters": [{"name": "vc-a", "version": "7.0.3", "build": "19193900", "hosts": []}],
          "kms": {"embedded": True, "servers": [{"name": "shared-kms"}]}}
    state.run_dir.mkdir()
    (state.run_dir / "targets.json").write_text(json.dumps(up), encoding="utf-8")

    write_results(state, _session(), 0, compliance=False)

    assert state.environment.logins == 0, "run.json logged in again to a closed environment"
    run = json.loads((state.run_dir / "run.json").read_text(encoding="utf-8"))
    assert run["vcenters"] == up["vcenters"] and run["kms"] == up["kms"]


def test_without_targets_json_run_json_names_the_vcenters_without_logging_in(tmp_path):
    state = _state(tmp_path, ClosedEnvironment())

    write_results(state, _session(), 0, compliance=False)

    assert state.environment.logins == 0
    run = json.loads((state.run_dir / "run.json").read_text(encoding="utf-8"))
    assert [v["name"] for v in run["vcenters"]] == [v.name for v in state.inventory.vcenters]
    assert all("version" not in v for v in run["vcenters"])


class LiveEnvironment(ClosedEnvironment):
    def service_instance(self, name: str | None = None) -> Any:
        self.logins += 1
        about = SimpleNamespace(apiVersion="7.0.3.0", version="7.0.3", build="1", instanceUuid="u")
        return SimpleNamespace(content=SimpleNamespace(about=about))


def test_targets_json_is_read_from_the_live_environment(tmp_path):
    state = _state(tmp_path, LiveEnvironment())

    write_target_info(state)

    targets = json.loads((state.run_dir / "targets.json").read_text(encoding="utf-8"))
    assert state.environment.logins > 0
    assert {v["version"] for v in targets["vcenters"]} == {"7.0.3"}
