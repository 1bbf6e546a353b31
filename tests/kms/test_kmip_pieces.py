"""The small pieces of the KMIP client (issue 22): reading a Transparent Symmetric Key from TTLV, choosing
the protocol version, and the strict KMS's builder without a Go toolchain."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from harness.kms import versions
from harness.kms.key_material import key_bytes_from_ttlv
from harness.kms.strict import StrictKmsUnavailable, StrictModes, build


def item(tag: int, kind: int, value: bytes) -> bytes:
    return tag.to_bytes(3, "big") + bytes([kind]) + len(value).to_bytes(4, "big") + value + b"\0" * (-len(value) % 8)


KEY = bytes(range(32))


def test_a_transparent_symmetric_key_is_read_from_the_get_answer() -> None:
    material = item(0x420043, 0x01, item(0x42003F, 0x08, KEY))           # Key Material { Key }
    block = item(0x420040, 0x01, item(0x420042, 0x05, (2).to_bytes(4, "big") + b"\0" * 4)
                 + item(0x420045, 0x01, material))                       # Key Block { format, Key Value }
    response = item(0x42007B, 0x01, item(0x42000F, 0x01, item(0x42007C, 0x01, item(0x42008F, 0x01, block))))
    assert key_bytes_from_ttlv(response) == KEY


def test_raw_material_and_answers_without_a_key() -> None:
    assert key_bytes_from_ttlv(item(0x420043, 0x08, KEY)) == KEY
    with pytest.raises(ValueError, match="no Key Material"):
        key_bytes_from_ttlv(item(0x42007B, 0x01, item(0x42007F, 0x05, b"\0" * 8)))
    with pytest.raises(ValueError, match="truncated"):
        key_bytes_from_ttlv(item(0x420043, 0x08, KEY)[:20])


@pytest.mark.parametrize(("offered", "chosen"), [
    (["1.0", "1.1"], "1.1"),                  # github.com/ovh/kmip-go lists ascending
    (["1.4", "1.2", "1.0"], "1.4"),
    (["2.0", "1.2"], "1.2"),                  # 2.0 is not spoken by this client
    (["2.0"], None),
])
def test_the_highest_common_version_is_chosen(offered: list[str], chosen: str | None) -> None:
    assert versions.choose(offered) == chosen


def test_without_go_the_strict_kms_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builder = importlib.import_module("harness.kms.strict.build")  # the module, not the package's build()
    monkeypatch.setattr(builder, "select_go", lambda: None)  # a machine with no Go new enough
    with pytest.raises(StrictKmsUnavailable, match=r"no Go >= 1\.25 to build the strict KMS \(github.com/ovh/kmip-go v0\.8\.0\)"):
        build(None, cache_root=tmp_path)


def test_modes_expand_and_unknown_ones_are_named() -> None:
    assert StrictModes.parse("strictest").names >= {"owner-only", "credential", "kmip-1.1", "transparent"}
    assert "-max-version" in StrictModes.parse(["kmip-1.1"]).flags()
    with pytest.raises(ValueError, match="unknown strict KMS mode 'loose'"):
        StrictModes.parse(["loose"])
