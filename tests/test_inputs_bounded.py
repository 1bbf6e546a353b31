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


# ---- 6: secret files are bounded and regular ------------------------------------------------------
def _secret_file(tmp: Path, kind: str) -> str:
    if kind == "fifo":
        os.mkfifo(tmp / "pw.fifo")
        return str(tmp / "pw.fifo")
    if kind == "big":
        (tmp / "big.pw").write_bytes(b"x" * (1024 * 1024))
        return str(tmp / "big.pw")
    return "/dev/zero"


@pytest.mark.parametrize(("kind", "needle"), [("fifo", "not a regular file"), ("zero", "not a regular file"),
                                              ("big", "larger than")])
@pytest.mark.parametrize("command", [["run", "--reports", "r"], ["verify-config"]])
def test_a_password_file_that_is_a_fifo_a_device_or_huge_is_one_line_exit_2(tmp_path: Path, kind: str, needle: str,
                                                                             command: list[str]) -> None:
    entry = {"name": "lab", "target": "real", "host": "127.0.0.1", "port": 1, "tls": {"insecure": True},
             "password_file": _secret_file(tmp_path, kind)}
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump({"vcenters": [entry], "kms": {"embedded": True}}))
    proc = vcrypt(command[0], "-i", str(path), *command[1:], cwd=tmp_path, timeout=20)
    line = assert_clean_failure(proc, "vcenters.lab.password_file", 2)
    assert needle in line, line


def test_reading_a_password_from_a_fifo_does_not_block(tmp_path: Path) -> None:
    from harness.inventory.schema import read_password
    os.mkfifo(tmp_path / "pw")
    with pytest.raises(InventoryError, match="not a regular file"):
        read_password(None, tmp_path / "pw", "vcenters.lab")


# ---- 6: keygen writes only inside --out, with fixed modes -------------------------------------------
@pytest.mark.parametrize("name", ["../escape", "sub/key", "/tmp/vcrypt-abs-i21", "..", ".hidden", "a\nb", ""])
def test_keygen_refuses_a_name_that_is_not_a_plain_file_stem(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = vcrypt("keygen", "--out", str(out), "--name", name, cwd=tmp_path)
    assert_clean_failure(proc, "--name", 2)
    assert list(out.iterdir()) == [] and not (tmp_path / "escape.key").exists() and not Path("/tmp/vcrypt-abs-i21.key").exists()


def test_keygen_modes_do_not_depend_on_the_umask(tmp_path: Path) -> None:
    import stat
    proc = subprocess.run(["sh", "-c", 'umask 000 && exec "$@"', "sh", *vcrypt_command(), "keygen", "--out",
                           str(tmp_path), "--name", "k"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k.pub").stat().st_mode) == 0o644


def test_keygen_does_not_leave_a_private_key_when_the_public_one_exists(tmp_path: Path) -> None:
    (tmp_path / "k.pub").write_text("someone else's\n")
    proc = vcrypt("keygen", "--out", str(tmp_path), "--name", "k", cwd=tmp_path)
    assert_clean_failure(proc, "already exists", 2)
    assert not (tmp_path / "k.key").exists() and (tmp_path / "k.pub").read_text() == "someone else's\n"


# ---- 6: the signing key's path is never in evidence -------------------------------------------------
def test_the_signing_key_path_is_not_written_into_the_run_folder(tmp_path: Path) -> None:
    from harness.evidence.bundle import finalize_run_folder
    from harness.evidence.signing import generate_keypair, load_signing_key
    from tests.evidence.conftest import make_run_folder
    keys = tmp_path / "secret-key-folder-xyz"
    keys.mkdir()
    generate_keypair(keys / "operator-key-abc.key", keys / "operator-key-abc.pub")
    run_dir = make_run_folder(tmp_path / "reports" / "signed")
    finalize_run_folder(run_dir, load_signing_key(path=keys / "operator-key-abc.key"))
    leaked = [p.name for p in run_dir.rglob("*") if p.is_file() and b"operator-key-abc" in p.read_bytes()
              or p.is_file() and b"secret-key-folder-xyz" in p.read_bytes()]
    assert leaked == []
    import json
    assert json.loads((run_dir / "run.json").read_text())["provenance"]["signing"]["key_source"] == "file"


def test_the_command_line_and_the_redacted_inventory_withhold_the_signing_key_path() -> None:
    from harness.evidence.provenance import _command_line, redacted_inventory
    shown = " ".join(_command_line(["pytest", "--signing-key", "/keys/operator-key-abc.key",
                                    "--signing-key=/keys/operator-key-abc.key", "-n", "0"]))
    assert "operator-key-abc" not in shown and "-n 0" in shown, shown
    text = redacted_inventory("vcenters: []\nevidence: {signing_key_file: /keys/operator-key-abc.key}\n")
    assert "operator-key-abc" not in text, text


# ---- 6: --run-dir onto an existing run is refused like a reused run id ------------------------------
def test_pytest_run_dir_onto_an_existing_run_is_refused_and_the_run_is_untouched(tmp_path: Path) -> None:
    import sys
    from harness.evidence.bundle import finalize_run_folder
    from tests.evidence.conftest import make_run_folder
    run_dir = make_run_folder(tmp_path / "reports" / "old-run")
    finalize_run_folder(run_dir, None)
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "suites/test_kms.py",
                           "--inventory", "inventories/fake.yaml", "--run-dir", str(run_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]   # pytest's usage error
    assert "already holds a run" in proc.stderr and "passed" not in proc.stdout, proc.stderr[-2000:]
    after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert after == before


# ---- 6: control and bidi characters never print raw ------------------------------------------------
RLO = "\u202e"


@pytest.mark.parametrize(("key", "value"), [("name", f"vc{RLO}a-lanigiro"), ("cluster", f"DC0{RLO}C0"),
                                            ("datacenter", "DC0\nPASSED"), ("user", f"admin{RLO}@vsphere.local"),
                                            ("datastore", f"ds{RLO}1")])
def test_control_and_bidi_characters_in_inventory_names_are_one_escaped_line(tmp_path: Path, key: str,
                                                                            value: str) -> None:
    path = fake_inventory(tmp_path, **{key: value})
    proc = vcrypt("verify-config", "-i", str(path), cwd=tmp_path)
    line = assert_clean_failure(proc, "inventory", 2)
    assert RLO not in proc.stdout + proc.stderr and "\nPASSED" not in proc.stderr, line
    assert "\\u202e" in line or "\\u000a" in line, line


def test_printable_escapes_bidi_and_controls_and_keeps_ordinary_text() -> None:
    from harness.printable import printable
    assert printable(f"vc{RLO}a\x1b[31m\ttab") == "vc\\u202ea\\u001b[31m\\u0009tab"
    assert printable("Zürich vc-a (DC0_C0)") == "Zürich vc-a (DC0_C0)"


def test_an_inventory_file_name_with_bidi_characters_is_escaped_in_the_run_header(tmp_path: Path) -> None:
    path = tmp_path / f"lab{RLO}lmay.yaml"
    path.write_text("vcenters: [{name: vc-a, target: real}]\n")
    proc = vcrypt("run", "-i", str(path), cwd=tmp_path)
    assert_clean_failure(proc, "inventory", 2)
    assert RLO not in proc.stdout + proc.stderr


# ---- 6: a full reports filesystem: one line, exit 70, nothing signed or called complete ------------
def test_a_full_reports_filesystem_is_one_line_exit_70_and_nothing_signed(tmp_path: Path) -> None:
    from harness.evidence.signing import generate_keypair
    generate_keypair(tmp_path / "k.key", tmp_path / "k.pub")
    reports = tmp_path / "reports"
    proc = vcrypt("run", "--reports", str(reports), "--run-id", "full", "--signing-key", str(tmp_path / "k.key"),
                  "--rules", "KMS-REQUIRED", "--", "-p", "tests.enospc_plugin", cwd=ROOT, timeout=300,
                  env={"PYTHONPATH": str(ROOT)})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 70, output[-3000:]
    assert "Traceback" not in output and "INTERNALERROR" not in output, output[-3000:]
    lines = [line for line in proc.stderr.splitlines() if "No space left on device" in line]
    assert len(lines) == 1 and "vcrypt: " in lines[0] and "not signed" in lines[0], proc.stderr[-3000:]
    run_dir = reports / "full"
    assert not (run_dir / "manifest.sha256").exists() and not (run_dir / "manifest.sha256.sig").exists()
    assert not (reports / "latest").exists()
    assert "manifest" not in proc.stdout.lower() or "no manifest" in proc.stdout.lower(), proc.stdout[-2000:]


def test_a_signed_vcrypt_run_writes_the_key_path_nowhere(tmp_path: Path) -> None:
    from harness.evidence.signing import generate_keypair
    keys = tmp_path / "keysdir-q7"
    keys.mkdir()
    generate_keypair(keys / "opkey-q7.key", keys / "opkey-q7.pub")
    reports = tmp_path / "reports"
    proc = vcrypt("run", "--reports", str(reports), "--run-id", "signed", "--signing-key", str(keys / "opkey-q7.key"),
                  "--rules", "KMS-REQUIRED", cwd=ROOT, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    leaked = [str(p.relative_to(reports)) for p in (reports / "signed").rglob("*") if p.is_file()
              and (b"opkey-q7" in p.read_bytes() or b"keysdir-q7" in p.read_bytes())]
    assert leaked == []


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_signing_key_that_is_a_fifo_or_a_device_is_one_line_exit_2(tmp_path: Path, kind: str) -> None:
    key = _secret_file(tmp_path, kind)
    proc = vcrypt("run", "--reports", str(tmp_path / "r"), "--signing-key", key, cwd=tmp_path, timeout=20)
    line = assert_clean_failure(proc, "signing key", 2)
    assert "not a regular file" in line, line


def test_audit_lines_with_a_bidi_name_from_the_server_print_escaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from harness import cli
    from harness.commands import audit
    monkeypatch.setattr(audit, "summary_lines", lambda outcome: [f"principal admin{RLO}nimda holds Cryptographer.Decrypt"])
    result = CliRunner().invoke(cli.main, ["audit", "--reports", str(tmp_path / "r")])
    assert RLO not in result.output and "admin\\u202enimda" in result.output, result.output
