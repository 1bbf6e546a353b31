"""Serving in the foreground until Ctrl-C or SIGTERM (`vcrypt kms serve`, `vcrypt vcsim serve`)."""
from __future__ import annotations

import signal
import time

import click


def stop_on_sigterm() -> None:
    """SIGTERM becomes Ctrl-C, so a stop at any moment (even while starting) still runs the cleanup."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt()


def wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("stopping")
