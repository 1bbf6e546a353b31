"""Who, what, from where: provenance in run.json, the report and the bundle; seeded defects in red.

The end-to-end test runs `vcrypt run` on the fake with a seeded defect and a signing key (only the
tests of one rule, to stay short) and reads the run folder as an auditor would.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.evidence.html_report import render_html
from harness.evidence.provenance import REDACTED, provenance_view, redacted_inventory

ROOT = Path(__file__).resolve().parents[2]
VCRYPT = [sys.executable, "-c", "from harness.cli import main; main()"]
DEFECT = "clone-encrypt-ignored"


def test_the_redacted_inventory_keeps_references_and_drops_secret_looking_values():
    text = yaml.safe_dump({
        "vcenters": [{"name": "vc-a", "target": "real", "host": "vc.lab", "password_env": "VC_PASSWORD",
                      "password_file": "secrets/vc.txt", "api_token": "abc", "note": "-----BEGIN " + "PRIVATE KEY-----x"}],
        "kms": {"embedded": False, "shared": {"client_key": "certs/client.key", "address": "kms.lab"}},
        "evidence": {"signing_key_env": "VCRYPT_SIGNING_KEY"},
        "extra": {"session_secret": "s3cr3t", "opaque": "A" * 48},
    })
    data = yaml.safe_load(redacted_inventory(text))
    vc = data["vcenters"][0]
    assert vc["password_env"] == "VC_PASSWORD" and vc["password_file"] == "secrets/vc.txt"  # references stay
    assert vc["api_token"] == REDACTED and vc["note"] == REDACTED and vc["host"] == "vc.lab"
    assert data["kms"]["shared"]["client_key"] == REDACTED  # a key path is still not shown
    assert data["evidence"]["signing_key_env"] == "VCRYPT_SIGNING_KEY"
    assert data["extra"] == {"session_secret": REDACTED, "opaque": REDACTED}


def test_an_old_run_without_provenance_still_renders_and_says_so(run_dir: Path):
    assert provenance_view({})["recorded"] is False
    html = render_html(run_dir)
    assert "not recorded in run.json" in html and 'id="defects"' not in html


def test_seeded_defects_are_announced_in_the_header(run_dir: Path):
    run = json.loads((run_dir / "run.json").read_text())
    run["provenance"] = {"fake_defects": [DEFECT], "operator": {"user": "alice", "host": "ws"}}
    (run_dir / "run.json").write_text(json.dumps(run))
    html = render_html(run_dir)
    banner = re.search(r'<div class="defects" id="defects">(.*?)</div>', html, re.S).group(1)
    assert DEFECT in banner and "say nothing about any product" in banner
    assert html.index('id="defects"') < html.index('id="counts"')  # seen before any number


@pytest.fixture(scope="module")
def defect_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path, Path]:
    tmp = tmp_path_factory.mktemp("provenance")
    subprocess.run([*VCRYPT, "keygen", "--out", str(tmp)], check=True, capture_output=True, cwd=ROOT)
    inventory = yaml.safe_load((ROOT / "inventories" / "fake.yaml").read_text())
    inventory["vcenters"][0]["fake"] = {"defects": [DEFECT]}
    inv_path = tmp / "inventory.yaml"
    inv_path.write_text(yaml.safe_dump(inventory))
    proc = subprocess.run([*VCRYPT, "run", "-i", str(inv_path), "--reports", str(tmp / "reports"), "--run-id", "prov",
                           "--signing-key", str(tmp / "vcrypt-signing.key"), "--rules", "CLONE-ENCRYPT"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, env=os.environ.copy())
    return proc, tmp / "reports" / "prov", tmp


def test_run_json_says_who_ran_what_from_where(defect_run):
    proc, run_dir, tmp = defect_run
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]  # the seeded defect is caught
    prov = json.loads((run_dir / "run.json").read_text())["provenance"]
    assert prov["operator"]["user"] and prov["operator"]["host"]
    assert prov["command_line"][1:3] == ["run", "-i"]
    assert re.fullmatch(r"[0-9a-f]{40}", prov["harness"]["git_commit"]) and isinstance(prov["harness"]["git_dirty"], bool)
    assert prov["python"] == ".".join(map(str, sys.version_info[:3]))
    assert {"pyVmomi", "PyKMIP", "pytest"} <= set(prov["packages"])
    inv_bytes = (tmp / "inventory.yaml").read_bytes()
    assert prov["inventory"]["sha256"] == hashlib.sha256(inv_bytes).hexdigest()
    assert yaml.safe_load((run_dir / "inventory.redacted.yaml").read_text())["vcenters"][0]["fake"]["defects"] == [DEFECT]
    assert prov["fake_defects"] == [DEFECT]
    assert prov["kms_product"]["product"].startswith("PyKMIP") and prov["kms_product"]["version"] == "0.11.0"
    assert prov["signing"]["signed"] is True
    for vc in json.loads((run_dir / "run.json").read_text())["vcenters"]:
        assert vc["version"] and vc["build"] and vc["hosts"]
        assert all(h["version"] and h["build"] for h in vc["hosts"])


def test_report_and_readme_carry_the_provenance_and_the_signature(defect_run):
    proc, run_dir, tmp = defect_run
    html = (run_dir / "report.html").read_text()
    assert 'id="defects"' in html and DEFECT in html
    assert "ESXi hosts:" in html and "PyKMIP server (embedded" in html and "Signed." in html
    assert "Integrity: signed." in (run_dir / "README.txt").read_text()
    digest = hashlib.sha256((run_dir / "manifest.sha256").read_bytes()).hexdigest()
    assert f"sha256 {digest}\n  signed: manifest.sha256.sig" in proc.stdout
    verify = subprocess.run([*VCRYPT, "verify-evidence", str(run_dir), "--public-key", str(tmp / "vcrypt-signing.pub")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0 and "signature valid" in verify.stdout, verify.stdout + verify.stderr
