"""`vcrypt kms serve` (the embedded KMS pair in the foreground) and `vcrypt kms register`."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import click

from harness.commands.foreground import stop_on_sigterm, wait_for_interrupt


def serve(workdir: Path | None) -> None:
    """Serve until Ctrl-C; a temporary folder (no workdir given) is removed on exit."""
    from harness.kms.server import EmbeddedKms
    from harness.workdirs import make_workdir
    # SIGTERM becomes Ctrl-C before anything is created, so a stop at any moment (even while the
    # KMS is starting or right after it says it is running) still removes the temporary folder.
    stop_on_sigterm()
    folder = workdir or make_workdir("vcrypt-kms-")
    try:
        with EmbeddedKms(folder) as embedded:
            info = embedded.describe()
            click.echo(json.dumps(info, indent=2, default=str))
            click.echo("KMS running; Ctrl-C stops it.")
            wait_for_interrupt()
    finally:
        if workdir is None:
            shutil.rmtree(folder, ignore_errors=True)


class RegisterRefused(Exception):
    """The inventory has no such KMS, or the mutation gate refused: a usage error, exit 2."""


def register(inv: Any, entry: Any, role: str) -> str:
    """Register the inventory's KMS with one vCenter through the full trust flow (idempotent)."""
    from harness.safety import MutationGate, MutationRefused
    from harness.targets.environment import open_environment
    from harness.vsphere import keys
    from harness.vsphere.client import VCenterClient
    with open_environment(inv) as env:
        endpoint = env.kms_endpoints.get(role)
        if endpoint is None:
            raise RegisterRefused(f"inventory has no {role} KMS")
        client = VCenterClient(entry.name, env.service_instance(entry.name), inv.timeouts, entry.target,
                               gate=MutationGate.for_inventory(inv))
        try:
            added = keys.register_provider(client, endpoint)
        except MutationRefused as err:
            raise RegisterRefused(str(err)) from err
        state = keys.status(client, endpoint.provider_id)
        return (f"{'registered' if added else 'already registered'}: provider {endpoint.provider_id} on "
                f"{entry.name}; status {state.overall}")
