"""`vcrypt run` preflight against the strict KMS: one line per KMS saying what it negotiated, and when it
cannot, exactly why, each with its own message (issue 22): credential required, credential refused,
version, certificate. Exit 2 for the inventory's problem, no traceback, no secret, no run folder."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from harness.kms.pki import ThrowawayCA
from tests.kms.strict import strict_lab
from tests.test_cli_bad_input import assert_clean_failure, vcrypt_command

ROOT = Path(__file__).resolve().parents[2]


def preflight(inventory: Path, tmp: Path, edit=None) -> subprocess.CompletedProcess[str]:  # noqa: ANN001
    data = yaml.safe_load(inventory.read_text())
    if edit is not None:
        edit(data["kms"]["shared"], data["kms"]["dedicated"])
    inventory.write_text(yaml.safe_dump(data))
    # --rules of a version-gated pre-7 rule: the run after a passed preflight is short
    return subprocess.run([*vcrypt_command(), "run", "-i", str(inventory), "--reports", str(tmp / "reports"),
                           "--rules", "KMS-STATUS", "-n", "0"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, env=dict(os.environ))


def no_run_folder(tmp: Path) -> bool:
    return not (tmp / "reports").exists() or not [p for p in (tmp / "reports").iterdir() if p.name != "latest"]


def test_a_kms_that_needs_a_credential_the_inventory_lacks(tmp_path: Path) -> None:
    def drop(shared: dict, dedicated: dict) -> None:
        shared.pop("username"), shared.pop("password_file")
    with strict_lab(tmp_path, "credential") as inventory:
        proc = preflight(inventory, tmp_path, drop)
    line = assert_clean_failure(proc, "kms.shared.username: KMIP credential: the KMS requires a KMIP credential", 2)
    assert "set kms.shared.username and kms.shared.password_env or password_file" in line
    assert "TLS" not in line and "certificate" not in line.split("(")[0]
    assert no_run_folder(tmp_path)


def test_a_refused_credential_names_the_user_never_the_password(tmp_path: Path) -> None:
    def wrong(shared: dict, dedicated: dict) -> None:
        Path(shared["password_file"]).write_text("not-the-password")
    with strict_lab(tmp_path, "credential") as inventory:
        secret = Path(yaml.safe_load(inventory.read_text())["kms"]["dedicated"]["password_file"]).read_text()
        proc = preflight(inventory, tmp_path, wrong)
    assert_clean_failure(proc, "kms.shared.username: KMIP credential: the KMS refused the KMIP credential of user "
                               "vcrypt-harness", 2)
    assert "not-the-password" not in proc.stdout + proc.stderr and secret not in proc.stdout + proc.stderr


def test_a_pinned_version_the_kms_does_not_speak(tmp_path: Path) -> None:
    def pin(shared: dict, dedicated: dict) -> None:
        shared["kmip_version"] = "1.4"
    with strict_lab(tmp_path, "kmip-1.1") as inventory:
        proc = preflight(inventory, tmp_path, pin)
    assert_clean_failure(proc, "kms.shared.kmip_version: KMIP version: KMS 127.0.0.1:", 2)


def test_a_client_certificate_the_kms_does_not_trust(tmp_path: Path) -> None:
    stranger = ThrowawayCA(tmp_path / "other-pki", name="another CA").issue_client("x", directory=tmp_path / "other-pki")

    def foreign(shared: dict, dedicated: dict) -> None:
        shared["client_cert"], shared["client_key"] = str(stranger.cert_path), str(stranger.key_path)
    with strict_lab(tmp_path, "plain") as inventory:
        proc = preflight(inventory, tmp_path, foreign)
    assert_clean_failure(proc, "kms.shared: TLS trust (certificate) failed: KMS 127.0.0.1:", 2)


def test_each_kms_gets_a_line_saying_what_it_negotiated(tmp_path: Path) -> None:
    with strict_lab(tmp_path, "strictest") as inventory:
        proc = preflight(inventory, tmp_path)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("preflight: kms.")]
    assert len(lines) == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    for role, line in zip(("shared", "dedicated"), lines):
        assert line.startswith(f"preflight: kms.{role} (127.0.0.1:")
        assert "KMIP 1.1 negotiated (KMS offers 1.0, 1.1); KMIP credential sent; evidence reads with the " \
               "read_identity certificate" in line, line


def test_a_kms_answering_even_discover_versions_with_an_unexpected_reason_stops_the_run_naming_it(tmp_path: Path) -> None:
    with strict_lab(tmp_path, "chaos-all") as inventory:
        proc = preflight(inventory, tmp_path)
    assert proc.returncode == 3 and "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("vcrypt: ")]
    assert [line.split(": ")[2] for line in lines] == ["kms.shared", "kms.dedicated"], lines
    for line in lines:   # one line per KMS, naming it and what it answered
        assert "answers KMIP, but not as a KMS: KMS 127.0.0.1:" in line, line
        assert "DiscoverVersions failed: UNEXPECTED_ANSWER" in line and "INDEX_OUT_OF_BOUNDS" in line, line
    assert no_run_folder(tmp_path)


def test_a_read_identity_the_kms_refuses_is_named_under_its_own_key(tmp_path: Path) -> None:
    stranger = ThrowawayCA(tmp_path / "other-pki", name="another CA").issue_client("r", directory=tmp_path / "other-pki")

    def foreign_reader(shared: dict, dedicated: dict) -> None:
        shared["read_identity"] = {"client_cert": str(stranger.cert_path), "client_key": str(stranger.key_path)}
    with strict_lab(tmp_path, "plain") as inventory:
        proc = preflight(inventory, tmp_path, foreign_reader)
    assert_clean_failure(proc, "kms.shared.read_identity: the harness's read identity cannot use this KMS: KMS 127.0.0.1:", 2)
