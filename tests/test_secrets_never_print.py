"""The vCenter password never reaches junit.xml, Allure or the evidence (issue 12, item 9).

Today's leak was `-l`: a failing cross-vCenter test shows its locals, and the ServiceLocator
credential (a pyVmomi object whose repr lists every field) carried the password. Passwords are now
`harness.inventory.secret.Secret`, whose repr is masked, so locals, reprs and assertion texts show
`Secret('********')`. Proved with a seeded defect that makes a cross-vCenter clone raise inside clones.clone under -l
(its frame's locals hold the ServiceLocator).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "pw-4f9c1e-never-printed"


def test_a_failing_cross_vcenter_test_under_dash_l_shows_no_password(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "inventories" / "fake.yaml").read_text(encoding="utf-8"))
    for entry in data["vcenters"]:
        entry["password_env"] = "VCRYPT_SECRET_PROOF"
        entry["fake"] = {"defects": ["xvc-migrate-new-key"]}
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(data), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", "run", "--inventory",
                           str(inventory), "--reports", str(tmp_path / "reports"), "--run-id", "secret-proof",
                           "--rules", "XVC-MIGRATE", "--", "-l", "--tb=long"],
                          cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "VCRYPT_SECRET_PROOF": PASSWORD})
    run_dir = tmp_path / "reports" / "secret-proof"
    junit = (run_dir / "junit.xml").read_text(encoding="utf-8")
    assert "<failure" in junit and "password = Secret(" in junit, \
        "the defect must fail a test with a credential shown"
    leaks = [str(p) for p in run_dir.rglob("*") if p.is_file() and PASSWORD in p.read_text("utf-8", "replace")]
    assert leaks == [] and PASSWORD not in proc.stdout + proc.stderr, leaks


def test_a_kms_endpoint_in_an_assertion_message_shows_no_private_key(tmp_path: Path) -> None:
    """Seen in a vcsim run (issue 25, KMS-MULTI): pytest's assertion rewriting printed a KmsEndpoint, and its
    dataclass repr carried the client's PEM private key into the run's text."""
    from harness.targets.environment import KmsEndpoint
    armour = "PRIVATE" + " KEY"   # assembled, so the repository holds no PEM-shaped key, not even a fake one
    canary = f"-----BEGIN {armour}-----\nCANARY-KEY-0f3a\n-----END {armour}-----"
    endpoint = KmsEndpoint(role="shared", provider_id="p", server_name="s", address="127.0.0.1", port=5696,
                           ca_pem="CA-PEM", client_cert_pem="CERT-PEM", client_key_pem=canary,
                           ca_path=tmp_path / "ca", client_cert_path=tmp_path / "c", client_key_path=tmp_path / "k")
    for text in (repr(endpoint), str(endpoint), f"{[endpoint]}"):
        assert "CANARY-KEY" not in text and armour not in text, text
    assert "127.0.0.1" in repr(endpoint)   # still a useful repr
