"""manifest.sha256: sha256sum-compatible, and verify names every change."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.evidence.manifest import MANIFEST, verify_manifest, write_manifest

from .conftest import T_CLONE


def test_format_is_sha256sum(run_dir: Path) -> None:
    path = write_manifest(run_dir)
    lines = path.read_text().splitlines()
    names = [line.split("  ", 1)[1] for line in lines]
    assert names == sorted(names)
    assert MANIFEST not in names
    assert f"evidence/{T_CLONE}.json" in names and "allure-results/0000-result.json" in names
    expected = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()} - {MANIFEST}
    assert set(names) == expected
    digest, name = lines[0].split("  ", 1)
    assert digest == hashlib.sha256((run_dir / name).read_bytes()).hexdigest()


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="coreutils sha256sum not installed")
def test_sha256sum_accepts_it(run_dir: Path) -> None:
    write_manifest(run_dir)
    done = subprocess.run(["sha256sum", "--check", "--strict", MANIFEST], cwd=run_dir, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_untouched_folder_is_intact(run_dir: Path) -> None:
    write_manifest(run_dir)
    assert verify_manifest(run_dir) == []


def test_flipped_byte_is_changed(run_dir: Path) -> None:
    write_manifest(run_dir)
    target = run_dir / "evidence" / f"{T_CLONE}.json"
    data = bytearray(target.read_bytes())
    data[10] ^= 0x01
    target.write_bytes(bytes(data))
    assert verify_manifest(run_dir) == [f"changed: evidence/{T_CLONE}.json"]


def test_missing_added_and_changed_are_all_reported(run_dir: Path) -> None:
    write_manifest(run_dir)
    (run_dir / "junit.xml").unlink()
    (run_dir / "extra.txt").write_text("late addition")
    (run_dir / "results.json").write_text("{}")
    assert verify_manifest(run_dir) == ["added: extra.txt", "missing: junit.xml", "changed: results.json"]


def test_manifest_missing(run_dir: Path) -> None:
    assert verify_manifest(run_dir) == ["manifest missing"]


def test_malformed_line_is_reported(run_dir: Path) -> None:
    path = write_manifest(run_dir)
    path.write_text(path.read_text() + "not a manifest line\n")
    assert verify_manifest(run_dir) == ["malformed manifest line " + str(len(path.read_text().splitlines()))]


def test_odd_file_names_round_trip(run_dir: Path) -> None:
    (run_dir / "back\\slash.txt").write_text("x")
    (run_dir / "new\nline.txt").write_text("y")
    (run_dir / "space name.txt").write_text("z")
    write_manifest(run_dir)
    assert verify_manifest(run_dir) == []
    if shutil.which("sha256sum"):
        done = subprocess.run(["sha256sum", "--check", "--strict", MANIFEST], cwd=run_dir, capture_output=True)
        assert done.returncode == 0, done.stdout + done.stderr
