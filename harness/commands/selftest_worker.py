"""One `vcrypt selftest` worker: a Python process that runs many pytest sessions, one per defect.

Why: a fresh interpreter per defect paid, each time, the imports of the plugin and the fake, the
collection and assertion rewriting of every suite module and the hypothesis plugin's summary
(about 60 % of a defect's wall time, see bench/selftest_cost.py). Here those are paid once per
worker; each defect still gets its own pytest session with its own inventory, run folder and fake
world (the session fixtures start and stop it), so no state of the fake is shared between defects.
The embedded KMS pair is started once per worker and lent to each session (harness/kms/kept.py: its
start was most of a session's environment), put back between sessions as a fresh pair starts.

Protocol (private to harness/commands/selftest.py): one JSON list of pytest arguments per line on stdin
(with `--selftest-stop-when=OUTCOME` among them for a defect's session: StopWhenCaught);
one JSON object per line on the original stdout: {"exit": <pytest exit code>, "output": <tail>}.
The session's own terminal output goes to a buffer, never to the protocol channel.
"""
from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

# Plugins a selftest session does not need: the cache writes into the source tree, and hypothesis'
# terminal summary imports all of hypothesis (about a second per session). `-n 0`: one session is
# one process, whatever the ini's addopts say (the workers are the parallelism). `--results-only`: the
# selftest reads results.json alone, so report.html, OSCAL, summary and manifest are not rendered.
SESSION_FLAGS = ("-q", "-p", "no:cacheprovider", "-n", "0", "-p", "no:hypothesispytest", "--results-only")

STOP_WHEN = "--selftest-stop-when="   # `--selftest-stop-when=failed`: the worker's own argument, not pytest's


class StopWhenCaught:
    """Ends a defect's session after the first test whose outcome (results.json's, as the harness classed
    it: a product failure, or the error an imitating defect is caught as) is the one that catches the
    defect. One such test proves the defect caught; the rule's other tests would only prove it again, so
    they are `not run`. A defect not caught still runs every test (each one's outcome is reported)."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self.session: Any = None

    def pytest_sessionstart(self, session: Any) -> None:
        self.session = session

    @pytest.hookimpl(trylast=True)   # after the run plugin has recorded the test's outcome
    def pytest_runtest_logreport(self, report: Any) -> None:
        from harness.run.plugin import run_of
        run = run_of(self.session.config) if self.session is not None else None
        entry = run.results.get(report.nodeid) if run is not None and report.when == "teardown" else None
        if entry is not None and entry["outcome"] == self.outcome:
            # shouldfail, as --maxfail does: the session ends "tests failed", not "interrupted"
            self.session.shouldfail = f"the defect is caught by {report.nodeid}"


def run_session(args: list[str]) -> dict[str, object]:
    """One pytest session in this process; its terminal output is returned, not printed.

    Afterwards what survived the session (modules, pyVmomi's types, the collected suites: ~150,000
    objects) is frozen out of the garbage collector: pytest collects garbage at the end of every
    session (its unraisable-exception check), and a full pass over those objects cost ~0.3 s quiet and
    ~1 s on a loaded machine per session; after gc.freeze() a pass sees only the session's own objects.
    """
    stop = [a.removeprefix(STOP_WHEN) for a in args if a.startswith(STOP_WHEN)]
    args = [a for a in args if not a.startswith(STOP_WHEN)]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = pytest.main([*args, *SESSION_FLAGS], plugins=[StopWhenCaught(stop[0])] if stop else [])
    gc.collect()   # the session's own garbage (its fake world, clients, reports) goes first
    gc.freeze()
    return {"exit": int(code), "output": buffer.getvalue()[-1600:]}


def main() -> None:
    from harness.kms.kept import keep_embedded_kms
    folder = Path(sys.argv[sys.argv.index("--kms-folder") + 1]) if "--kms-folder" in sys.argv else None
    with keep_embedded_kms(folder) if folder else contextlib.nullcontext():
        _serve()


def _serve() -> None:
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray writes to fd 1 cannot corrupt the protocol
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = run_session(json.loads(line))
        except BaseException as err:  # noqa: BLE001 - the parent reports it as a missed defect with the cause
            reply = {"exit": -1, "output": f"{type(err).__name__}: {err}"}
        protocol.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
