"""PRIV-DECRYPT and PRIV-AUDIT log in as the inventory's `test_user` when it names one (a real lab's
second SSO user); on a fake the fake plays SSO and knows that user (issue 12, item 9)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_priv_tests_run_as_the_inventorys_test_user(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "inventories" / "fake.yaml").read_text(encoding="utf-8"))
    data["vcenters"][0]["test_user"] = {"user": "qa-second@vsphere.local", "password_env": "VCRYPT_USER2"}
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(data), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", "run", "--inventory",
                           str(inventory), "--reports", str(tmp_path / "reports"), "--run-id", "second-user",
                           "--rules", "PRIV-DECRYPT,PRIV-AUDIT"],
                          cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "VCRYPT_USER2": "user2-password-not-printed"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    run_dir = tmp_path / "reports" / "second-user"
    tests = json.loads((run_dir / "results.json").read_text())["tests"]
    assert tests and all(t["outcome"] == "passed" for t in tests), tests
    notes = [n for f in (run_dir / "evidence").glob("*.json") for n in json.loads(f.read_text()).get("notes", [])]
    users = {n["value"] for n in notes if n["label"] == "second user (inventory test_user)"}
    assert users == {"qa-second@vsphere.local"}, notes
    assert not [p for p in run_dir.rglob("*") if p.is_file() and "user2-password-not-printed" in p.read_text("utf-8", "replace")]
