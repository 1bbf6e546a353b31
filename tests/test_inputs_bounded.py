"""Every input bounded, every failure one line (issue 21, points 2 and 6).

Each test was written against the code before the fix and failed there: credentials in a URL were
accepted (and written into run.json, targets.json, inventory.redacted.yaml, report.html, OSCAL), a
FIFO password_file hung, /dev/zero ran out of memory, keygen wrote outside --out, ...
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.inventory.schema import InventoryError, load_inventory
from tests.test_cli_bad_input import assert_clean_failure, vcrypt_command

ROOT = Path(__file__).resolve().parent.parent
URL_PASSWORD = "Hunter2-in-url"


def vcrypt(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*vcrypt_command(), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})


def fake_inventory(tmp: Path, **vc_a: object) -> Path:
    data = yaml.safe_load((ROOT / "inventories" / "fake.yaml").read_text())
    data["vcenters"][0].update(vc_a)
    path = tmp / "inv.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# ---- 2: no secret from anywhere but password_env / password_file ---------------------------------
@pytest.mark.parametrize(("target", "url"), [
    ("real", f"https://admin:{URL_PASSWORD}@vcsa.lab.example/sdk"),
    ("real", f"https://:{URL_PASSWORD}@vcsa.lab.example/sdk"),
    ("real", "https://admin@vcsa.lab.example/sdk"),
    ("vcsim", f"https://user:{URL_PASSWORD}@127.0.0.1:8989/sdk"),
    ("real", f"http://admin:{URL_PASSWORD}@vcsa.lab.example/sdk"),   # refused for the credentials, not echoed
])
def test_credentials_in_a_url_are_refused_and_never_echoed(tmp_path: Path, target: str, url: str) -> None:
    entry = {"name": "vc-a", "target": target, "url": url, "password_env": "VCRYPT_TEST_PW"}
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump({"vcenters": [entry], "kms": {"embedded": True}}))
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert "vcenters.vc-a.url" in str(caught.value) and "credentials" in str(caught.value), caught.value
    assert URL_PASSWORD not in str(caught.value)


def test_credentials_in_a_url_stop_vcrypt_run_before_anything_is_written(tmp_path: Path) -> None:
    entry = {"name": "vc-a", "target": "real", "url": f"https://admin:{URL_PASSWORD}@127.0.0.1:1/sdk",
             "password_env": "VCRYPT_TEST_PW", "tls": {"insecure": True}}
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump({"vcenters": [entry], "kms": {"embedded": True}}))
    proc = vcrypt("run", "-i", str(path), "--reports", "r", cwd=tmp_path, env={"VCRYPT_TEST_PW": "x"})
    assert_clean_failure(proc, "vcenters.vc-a.url", 2)
    assert URL_PASSWORD not in proc.stdout + proc.stderr
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


@pytest.mark.parametrize("host", [f"admin:{URL_PASSWORD}@vcsa.lab.example", "vcsa.lab.example/sdk"])
def test_a_host_is_a_host_name_only(tmp_path: Path, host: str) -> None:
    entry = {"name": "vc-a", "target": "real", "host": host, "password_env": "VCRYPT_TEST_PW"}
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump({"vcenters": [entry], "kms": {"embedded": True}}))
    with pytest.raises(InventoryError, match="vcenters.vc-a.host") as caught:
        load_inventory(path)
    assert URL_PASSWORD not in str(caught.value)
