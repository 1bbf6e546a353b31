"""The `kms:` options of issue 22 as a user writes them: the lab example's commented lines parse when
uncommented, and each mistake is one line naming the key."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from harness.inventory.schema import InventoryError, parse_inventory

ROOT = Path(__file__).resolve().parent.parent


def test_the_lab_examples_credential_version_and_read_identity_lines_parse_uncommented(tmp_path: Path) -> None:
    text = (ROOT / "inventories" / "lab.example.yaml").read_text()
    wanted = ("username:", "password_env:", "kmip_version:", "read_identity: {")
    lines = [re.sub(r"^(\s*)# ", r"\1", line) if line.lstrip().startswith(tuple(f"# {w}" for w in wanted)) else line
             for line in text.splitlines()]
    inventory = parse_inventory(yaml.safe_load("\n".join(lines)), tmp_path / "lab.yaml")
    shared = inventory.kms.shared
    assert shared.username == "vcrypt-harness" and shared.password_env == "VCRYPT_KMIP_PASSWORD"
    assert shared.kmip_version == "1.1"
    assert shared.read_identity.client_cert == tmp_path / "certs" / "vcrypt-reader.pem"


@pytest.mark.parametrize(("change", "message"), [
    ({"username": "u"}, "kms.shared: username needs password_env or password_file"),
    ({"password_env": "X"}, "kms.shared: a KMIP password needs a username"),
    ({"username": "u", "password": "hunter2"}, "kms.shared: an inline password is not allowed"),
    ({"username": "u", "password_env": "hunter2!"}, "kms.shared.password_env: must be an environment variable name"),
    ({"kmip_version": "2.0"}, "kms.shared.kmip_version: Input should be '1.0', '1.1', '1.2', '1.3' or '1.4'"),
    ({"read_identity": "all"}, "kms.shared.read_identity: must be none or a mapping with client_cert and client_key"),
])
def test_kms_credential_mistakes_are_one_line_naming_the_key(tmp_path: Path, change: dict, message: str) -> None:
    data = yaml.safe_load((ROOT / "inventories" / "fake.yaml").read_text())
    data["kms"] = {"embedded": False, "shared": {"provider_id": "p", "address": "127.0.0.1", "ca": "a.pem",
                                                 "client_cert": "c.pem", "client_key": "c.key", **change}}
    with pytest.raises(InventoryError) as info:
        parse_inventory(data, tmp_path / "inv.yaml")
    assert message in str(info.value) and "hunter2" not in str(info.value)


def test_strict_modes_need_the_embedded_kms_and_known_names(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "inventories" / "fake.yaml").read_text())
    data["kms"] = {"embedded": True, "strict": ["owner-only", "pykmip"]}
    with pytest.raises(InventoryError, match=r"kms.strict: unknown strict KMS mode 'pykmip'; known: active-keys"):
        parse_inventory(data, tmp_path / "inv.yaml")
