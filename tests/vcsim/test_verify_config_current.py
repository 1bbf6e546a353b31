"""verify-config against the pinned current vcsim: every suite method probed before a yes, one-line
reasons, a made-up key never counts, and a declared version that disagrees with apiVersion is flagged."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from harness.cli import main
from tests.vcsim.conftest import require_current_vcsim

REPO = Path(__file__).resolve().parents[2]


def _inventory(tmp_path: Path, **entry_changes: object) -> Path:
    data = yaml.safe_load((REPO / "inventories" / "vcsim.yaml").read_text())
    data["vcenters"] = [{**data["vcenters"][0], **entry_changes}]
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(autouse=True)
def _current_vcsim() -> None:
    require_current_vcsim()


def test_the_pinned_vcsim_matches_its_inventory_with_every_method_probed(tmp_path):
    result = CliRunner().invoke(main, ["verify-config", "--inventory", str(_inventory(tmp_path))])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "key_providers on vc-a: yes (RegisterKmipServer, GenerateKey, QueryCryptoKeyStatus" in out
    assert "kms_trust on vc-a: no (RetrieveKmipServerCert: MethodNotFound)" in out
    assert "vm_encryption on vc-a: yes (config.keyId set after encrypt with a generated key)" in out
    assert "version on vc-a: 7.0.3 (declared; about.version 6.5.0, about.apiVersion 7.0.3.0)" in out
    reasons = [line for line in out.splitlines() if line.startswith("  ")]
    assert reasons and not any("dynamicType" in line or "faultCause" in line for line in out.splitlines())


def test_a_declared_version_the_api_version_contradicts_is_a_mismatch(tmp_path):
    result = CliRunner().invoke(main, ["verify-config", "--inventory", str(_inventory(tmp_path, version="6.7"))])
    assert result.exit_code == 1, result.output
    assert "mismatch: version on vc-a: inventory declares version 6.7 but the server's about.apiVersion is 7.0.3.0" \
        in result.output
