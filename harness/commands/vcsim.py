"""`vcrypt vcsim serve` (a vcsim on 127.0.0.1 in the foreground) and `vcrypt vcsim build`."""
from __future__ import annotations

import shutil

import click

from harness.commands.foreground import stop_on_sigterm, wait_for_interrupt


def serve(api_version: str | None, hosts: int, vms: int, source: str) -> None:
    """Serve until Ctrl-C; raises VcsimUnavailable when no vcsim can be had."""
    from harness.vcsim.choice import find_vcsim
    from harness.vcsim.process import VcsimProcess
    from harness.workdirs import make_workdir
    binary = find_vcsim(source=source)
    stop_on_sigterm()  # a stop while starting still cleans up
    folder = make_workdir("vcrypt-vcsim-")
    try:
        with VcsimProcess(folder, binary=binary, api_version=api_version, hosts=hosts, vms=vms) as sim:
            click.echo(f"vcsim at {sim.url} ({binary}; any user and password); Ctrl-C stops it.")
            wait_for_interrupt()
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def build(source: str) -> None:
    """Say which Go and which vcsim runs would use, building the pinned one if needed.

    Raises VcsimUnavailable when none can be had.
    """
    from harness.vcsim import pinned
    from harness.vcsim.choice import choose_vcsim
    toolchain = pinned.select_go()
    click.echo(f"pinned: govmomi {pinned.GOVMOMI_VERSION}; Go toolchain for it: "
               + (f"{toolchain.release} at {toolchain.path}" if toolchain else f"none ({pinned.pinned_status()})"))
    choice = choose_vcsim(source=source)  # type: ignore[arg-type]
    click.echo(f"vcsim: {choice.path} (source {choice.source}, govmomi {choice.govmomi or 'unknown'})")
    if choice.note:
        click.echo(f"note: {choice.note}")
