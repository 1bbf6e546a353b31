"""Smoke test of bench/: every script runs with --quick, exits 0 and ends with a ratio block.

Timings are never asserted (they depend on the machine and on what else runs on it): only that
each script works end to end on a fresh checkout and prints its answers in the agreed shape.
The whole module takes about 25 s on 2 cores.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = ["op_overhead", "task_waits", "inventory_reads", "suite_wall_time", "kms_path", "rekey_cost", "fake_speed"]
SCRIPTS += ["selftest_cost"]  # one defect's session both ways, ~20 s
SCRIPTS += ["audit_vs_govc"]  # issue 26.4: vcsim, govc and three audits at 20 VMs, ~30 s
NEEDS_VCSIM = {"inventory_reads", "audit_vs_govc"}
RATIO_LINE = re.compile(r"^  \S.*: -?\d+(\.\d+)?(\s|$)")


def _vcsim_missing() -> str | None:
    try:
        from harness.vcsim.build import toolchain_status
    except ImportError as err:  # pragma: no cover
        return str(err)
    return toolchain_status()


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_script_quick(script: str, tmp_path: Path) -> None:
    if script in NEEDS_VCSIM and (why := _vcsim_missing()):
        pytest.skip(f"capability: no vcsim ({why})")
    if script == "audit_vs_govc":
        from harness.vcsim.pinned import pinned_status
        if why := pinned_status():
            pytest.skip(f"capability: no Go toolchain to build govc ({why})")
    out_json = tmp_path / f"{script}.json"
    proc = subprocess.run([sys.executable, str(BENCH / f"{script}.py"), "--quick", "--json", str(out_json)],
                          cwd=BENCH.parent, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    lines = proc.stdout.splitlines()
    assert "ratios:" in lines, f"{script} printed no ratio block:\n{proc.stdout[-2000:]}"
    block = lines[lines.index("ratios:") + 1:]
    assert block and all(RATIO_LINE.match(line) for line in block), \
        f"{script}: the ratio block must come last, one 'name: number' line each:\n" + "\n".join(block)
    assert "processes left running by this script: none" in proc.stdout, proc.stdout[-2000:]
    assert out_json.exists()
