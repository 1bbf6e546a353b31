"""`vcrypt keygen` and `vcrypt verify-evidence --public-key`: a signed run verifies, a re-hashed
tampered one does not, an unsigned one says it is only tamper-evident, symlinks are reported.

Keys are generated in tmp folders by each test; no key is ever kept in the repository.
"""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import cli
from harness.evidence.bundle import finalize_run_folder
from harness.evidence.manifest import MANIFEST, SIGNATURE
from harness.evidence.signing import load_signing_key
from tests.evidence.conftest import RUN_ID, T_CLONE, make_run_folder


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    code, out = invoke("keygen", "--out", str(tmp_path))
    assert code == 0, out
    return tmp_path / "vcrypt-signing.key", tmp_path / "vcrypt-signing.pub"


@pytest.fixture
def signed_run(tmp_path: Path, keys: tuple[Path, Path]) -> Path:
    run_dir = make_run_folder(tmp_path / "reports" / RUN_ID)
    finalize_run_folder(run_dir, load_signing_key(path=keys[0]))
    return run_dir


def _rehash(run_dir: Path, name: str, data: bytes) -> None:
    """What a careful tamperer does: rewrite a file and its manifest line together."""
    (run_dir / name).write_bytes(data)
    lines = (run_dir / MANIFEST).read_text().splitlines()
    digest = hashlib.sha256(data).hexdigest()
    fixed = [f"{digest}  {name}" if line.endswith(f"  {name}") else line for line in lines]
    (run_dir / MANIFEST).write_text("\n".join(fixed) + "\n")


def test_keygen_writes_a_private_key_only_its_owner_can_read_and_never_overwrites(keys, tmp_path):
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in private.read_bytes() and b"PUBLIC KEY" in public.read_bytes()
    before = private.read_bytes()
    code, out = invoke("keygen", "--out", str(tmp_path))
    assert code == 2 and out.count("\n") == 1 and "already exists" in out and "Traceback" not in out
    assert private.read_bytes() == before


def test_a_signed_run_verifies_with_its_public_key(signed_run, keys):
    assert (signed_run / SIGNATURE).is_file()
    code, out = invoke("verify-evidence", str(signed_run), "--public-key", str(keys[1]))
    assert code == 0, out
    assert "intact" in out and "signature valid" in out


def test_a_rehashed_tampered_signed_run_fails_verification(signed_run, keys):
    name = f"evidence/{T_CLONE}.json"
    _rehash(signed_run, name, b'{"test_id": "forged", "calls": []}\n')
    # The hashes alone cannot tell: every file matches its (rewritten) manifest line ...
    code, out = invoke("verify-evidence", str(signed_run), "--hashes-only")
    assert code == 0 and "not checked" in out
    # ... the signature can.
    code, out = invoke("verify-evidence", str(signed_run), "--public-key", str(keys[1]))
    assert code == 1, out
    assert "signature invalid" in out


def test_another_key_does_not_verify_the_signature(signed_run, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    invoke("keygen", "--out", str(other))
    code, out = invoke("verify-evidence", str(signed_run), "--public-key", str(other / "vcrypt-signing.pub"))
    assert code == 1 and "signature invalid" in out


def test_an_unsigned_run_says_it_is_only_tamper_evident_everywhere(tmp_path, keys):
    run_dir = make_run_folder(tmp_path / "reports" / RUN_ID)
    finalize_run_folder(run_dir)
    code, out = invoke("verify-evidence", str(run_dir))
    assert code == 0 and "tamper-evident only, unsigned" in out
    assert "tamper-evident only, unsigned" in (run_dir / "README.txt").read_text()
    assert "tamper-evident only, unsigned" in (run_dir / "report.html").read_text()
    code, out = invoke("verify-evidence", str(run_dir), "--public-key", str(keys[1]))
    assert code == 1 and "signature missing" in out


def test_a_symlinked_directory_is_reported(signed_run, tmp_path, keys):
    elsewhere = tmp_path / "elsewhere"
    (signed_run / "evidence").rename(elsewhere)
    os.symlink(elsewhere, signed_run / "evidence")
    code, out = invoke("verify-evidence", str(signed_run), "--public-key", str(keys[1]))
    assert code == 1
    assert f"symlink: evidence -> {elsewhere} (directory" in out
    assert f"missing: evidence/{T_CLONE}.json" in out  # a link's content is never taken as the folder's


def test_an_unusable_public_key_is_a_one_line_usage_error(signed_run, tmp_path):
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key")
    code, out = invoke("verify-evidence", str(signed_run), "--public-key", str(bad))
    assert code == 2 and out.strip().count("\n") == 0 and "not a PEM public key" in out


def test_run_refuses_an_unusable_signing_key_before_starting(tmp_path):
    code, out = invoke("run", "--reports", str(tmp_path / "r"), "--signing-key", str(tmp_path / "missing.key"))
    assert code == 2 and "signing key (file" in out and out.strip().count("\n") == 0
    assert not (tmp_path / "r").exists()


def test_run_refuses_a_signing_key_env_that_is_not_set(tmp_path, monkeypatch):
    inventory = Path(__file__).resolve().parent.parent / "inventories" / "fake.yaml"
    text = inventory.read_text() + "evidence:\n  signing_key_env: VCRYPT_TEST_UNSET_SIGNING_KEY\n"
    copy = tmp_path / "inv.yaml"
    copy.write_text(text)
    monkeypatch.delenv("VCRYPT_TEST_UNSET_SIGNING_KEY", raising=False)
    code, out = invoke("run", "-i", str(copy), "--reports", str(tmp_path / "r"))
    assert code == 2 and "evidence.signing_key_env" in out and "VCRYPT_TEST_UNSET_SIGNING_KEY): not set" in out


def test_pytest_with_an_unusable_signing_key_stops_before_any_test(tmp_path):
    import subprocess
    import sys
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "suites/test_kms.py",
                           "--inventory", "inventories/fake.yaml", "--run-dir", str(tmp_path / "run"),
                           "--signing-key", str(tmp_path / "missing.key")],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]  # pytest's usage error
    assert "signing key (file" in proc.stderr and "passed" not in proc.stdout


# ---- issue 24: a signed folder cannot be downgraded to "unsigned" --------------------------------
def test_a_signed_folder_without_its_signature_fails_even_when_rehashed(signed_run, keys):
    """Delete the .sig, change results.json and rewrite its manifest line: the folder still says "Signed"."""
    (signed_run / SIGNATURE).unlink()
    _rehash(signed_run, "results.json", b'{"tests": []}\n')
    code, out = invoke("verify-evidence", str(signed_run))
    assert code == 1, out
    assert "signature missing" in out and "says it was signed" in out and "intact" not in out
    code, out = invoke("verify-evidence", str(signed_run), "--hashes-only")
    assert code == 1 and "signature missing" in out, out


def test_a_signed_folder_checked_without_a_key_is_not_called_verified(signed_run, keys):
    code, out = invoke("verify-evidence", str(signed_run))
    assert code == 1, out
    assert "--public-key" in out and "--hashes-only" in out and "intact" not in out
    code, out = invoke("verify-evidence", str(signed_run), "--hashes-only")
    assert code == 0 and "hashes only" in out and "not checked" in out, out


def test_a_renamed_run_folder_is_reported(signed_run, keys):
    renamed = signed_run.with_name("20991231-000000-ffff")
    signed_run.rename(renamed)
    code, out = invoke("verify-evidence", str(renamed), "--public-key", str(keys[1]))
    assert code == 1, out
    assert f"run id {RUN_ID}" in out and "20991231-000000-ffff" in out
