"""One `vcrypt selftest` worker: a Python process that runs many pytest sessions, one per defect.

Why: a fresh interpreter per defect paid, each time, the imports of the plugin and the fake, the
collection and assertion rewriting of every suite module and the hypothesis plugin's summary
(about 60 % of a defect's wall time, see bench/selftest_cost.py). Here those are paid once per
worker; each defect still gets its own pytest session with its own inventory, run folder, KMS
and fake world (the session fixtures start and stop them), so no state of the fake or the KMS
is shared between defects.

Protocol (private to harness/commands/selftest.py): one JSON list of pytest arguments per line on stdin;
one JSON object per line on the original stdout: {"exit": <pytest exit code>, "output": <tail>}.
The session's own terminal output goes to a buffer, never to the protocol channel.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys

# Plugins a selftest session does not need: the cache writes into the source tree, and hypothesis'
# terminal summary imports all of hypothesis (about a second per session). `-n 0`: one session is
# one process, whatever the ini's addopts say (the workers are the parallelism).
SESSION_FLAGS = ("-q", "-p", "no:cacheprovider", "-n", "0", "-p", "no:hypothesispytest")


def run_session(args: list[str]) -> dict[str, object]:
    """One pytest session in this process; its terminal output is returned, not printed."""
    import pytest
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = pytest.main([*args, *SESSION_FLAGS])
    return {"exit": int(code), "output": buffer.getvalue()[-1600:]}


def main() -> None:
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
