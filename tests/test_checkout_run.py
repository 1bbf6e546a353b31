"""`pytest suites/` in a checkout runs like `vcrypt run` (the top-level conftest.py), and only then."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.run.plugin import RUN_KEY

ROOT = Path(__file__).resolve().parent.parent
CHEAP = "test_a_fully_trusted_key_provider_reports_green"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def _shape(run_dir: Path) -> set[str]:
    """The run folder's files; Allure's random file names reduced to their kind."""
    return {_UUID.sub("<uuid>", str(path.relative_to(run_dir))) for path in run_dir.rglob("*") if path.is_file()}


def _tests(run_dir: Path) -> dict[str, tuple[str, str | None]]:
    return {t["name"]: (t["outcome"], t["category"])
            for t in json.loads((run_dir / "results.json").read_text())["tests"]}


def test_the_projects_own_session_leaves_the_plugin_inert(pytestconfig: pytest.Config) -> None:
    """This session (tests/) loaded the checkout's conftest.py, yet has no run: no run folder, no KMS."""
    assert (ROOT / "conftest.py").exists()
    assert pytestconfig.pluginmanager.get_plugin(str(ROOT / "conftest.py")) is not None
    assert pytestconfig.stash.get(RUN_KEY, None) is None
    assert pytestconfig.option.run_dir is None and pytestconfig.option.xmlpath in (None, "")


def test_collecting_the_suites_in_the_checkout_registers_the_plugin_once(tmp_path: Path) -> None:
    """The conftest lists harness.run.plugin and the installed entry point has that name: no double registration."""
    proc = _run(["-m", "pytest", str(ROOT / "suites"), "--collect-only", "-q", "-p", "no:cacheprovider"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert re.search(r"\d+ tests collected", proc.stdout)
    # collecting writes nothing (the plugin's ledger leaves an empty reports/<run-id>, as it always did)
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]


def test_pytest_suites_writes_the_run_folder_vcrypt_run_writes(tmp_path: Path) -> None:
    checkout = _run(["-m", "pytest", str(ROOT / "suites"), "-k", CHEAP, "-p", "no:cacheprovider"], tmp_path)
    assert checkout.returncode == 0, checkout.stdout[-3000:] + checkout.stderr[-2000:]
    [pytest_run] = [p for p in (tmp_path / "reports").iterdir() if p.name != "latest"]
    assert (tmp_path / "reports" / "latest").resolve() == pytest_run.resolve()

    vcrypt = _run(["-c", "from harness.cli import main; main()", "run", "--reports", str(tmp_path / "vcrypt"),
                   "--", "-k", CHEAP], tmp_path)
    assert vcrypt.returncode == 0, vcrypt.stdout[-3000:] + vcrypt.stderr[-2000:]
    [vcrypt_run] = [p for p in (tmp_path / "vcrypt").iterdir() if p.name != "latest"]

    assert _shape(pytest_run) == _shape(vcrypt_run)
    assert _tests(pytest_run) == _tests(vcrypt_run) == {CHEAP: ("passed", None)}
    assert "evidence manifest:" in checkout.stdout  # vcrypt run's closing lines
