"""Red-team inputs to `vcrypt run` / `vcrypt verify-config`: each gives one line naming the inventory key
(or option) and the cause, the documented exit code (2 configuration, 3 unreachable), within 5 s, and
creates no run folder. Run as the installed console script, as a user or CI job does."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from harness.kms.pki import ThrowawayCA
from tests.test_cli_bad_input import assert_clean_failure, vcrypt_command

ROOT = Path(__file__).resolve().parent.parent
FAST = 5.0


def timed(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    proc = subprocess.run([*vcrypt_command(), *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    return proc, time.monotonic() - began


def real_inventory(tmp: Path, **vcenter: object) -> Path:
    entry = {"name": "lab", "target": "real", "host": "127.0.0.1", "port": 1, "password_env": "VCRYPT_TEST_PW",
             "tls": {"insecure": True}, **vcenter}
    path = tmp / "lab.yaml"
    path.write_text(yaml.safe_dump({"vcenters": [entry], "kms": {"embedded": True}}))
    return path


def external_kms_inventory(tmp: Path, missing: str | None = None) -> Path:
    ca = ThrowawayCA(tmp / "pki")
    client = ca.issue_client("vcrypt-test", directory=tmp / "pki")
    kms = {"provider_id": "lab-kms", "address": "127.0.0.1", "port": 1, "ca": str(ca.ca_path),
           "client_cert": str(client.cert_path), "client_key": str(client.key_path)}
    if missing:
        kms[missing] = str(tmp / "no-such.pem")
    path = tmp / "kms.yaml"
    data = yaml.safe_load((ROOT / "inventories" / "fake.yaml").read_text())
    data["kms"] = {"embedded": False, "shared": kms}
    path.write_text(yaml.safe_dump(data))
    return path


def assert_refused(proc: subprocess.CompletedProcess[str], seconds: float, needle: str, code: int,
                   reports: Path | None = None) -> str:
    line = assert_clean_failure(proc, needle, code)
    assert seconds < FAST, f"{seconds:.1f} s: {line}"
    if reports is not None:
        assert not reports.exists() or not [p for p in reports.iterdir() if p.name != "latest"], list(reports.iterdir())
    return line


def test_an_unset_password_env_is_one_line_naming_the_key_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "VCRYPT_TEST_PW"}
    proc = subprocess.run([*vcrypt_command(), "run", "-i", str(real_inventory(tmp_path)), "--reports",
                           str(tmp_path / "r")], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    line = assert_clean_failure(proc, "vcenters.lab.password_env: environment variable VCRYPT_TEST_PW is not set")
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").iterdir()), line


@pytest.mark.parametrize("command", ["run", "verify-config"])
def test_a_missing_ca_bundle_names_the_key_and_the_file(tmp_path, command):
    inventory = real_inventory(tmp_path, tls={"ca_bundle": "certs/vc-ca.pem"})
    proc, seconds = timed(command, "-i", str(inventory), cwd=tmp_path, env={"VCRYPT_TEST_PW": "x"})
    line = assert_refused(proc, seconds, "vcenters.lab.tls.ca_bundle: file not found: ", 2, tmp_path / "reports")
    assert str(tmp_path / "certs" / "vc-ca.pem") in line


@pytest.mark.parametrize("command", ["run", "verify-config"])
def test_a_missing_kms_ca_is_one_line_not_a_traceback(tmp_path, command):
    proc, seconds = timed(command, "-i", str(external_kms_inventory(tmp_path, missing="ca")), cwd=tmp_path)
    assert_refused(proc, seconds, "kms.shared.ca: file not found: ", 2, tmp_path / "reports")


def test_an_unreadable_password_file_names_the_key(tmp_path):
    (tmp_path / "pw").mkdir()
    proc, seconds = timed("run", "-i", str(real_inventory(tmp_path, password_env=None, password_file="pw")),
                          cwd=tmp_path)
    assert_refused(proc, seconds, "vcenters.lab.password_file: a folder, not a file", 2)


def test_a_vcenter_that_does_not_answer_exits_3(tmp_path):
    proc, seconds = timed("run", "-i", str(real_inventory(tmp_path)), "--reports", str(tmp_path / "r"),
                          cwd=tmp_path, env={"VCRYPT_TEST_PW": "x"})
    assert_refused(proc, seconds, "vcenters.lab: vCenter lab (127.0.0.1:1) unreachable", 3, tmp_path / "r")


def test_a_kms_that_does_not_answer_kmip_exits_3(tmp_path):
    proc, seconds = timed("run", "-i", str(external_kms_inventory(tmp_path)), "--reports", str(tmp_path / "r"),
                          cwd=tmp_path)
    assert_refused(proc, seconds, "kms.shared: unreachable", 3, tmp_path / "r")


@pytest.mark.parametrize("shape", ["file", "under_a_file"])
def test_a_file_shaped_reports_folder_is_one_line_exit_2(tmp_path, shape):
    (tmp_path / "reports").write_text("not a folder")
    reports = tmp_path / "reports" if shape == "file" else tmp_path / "reports" / "sub"
    proc, seconds = timed("run", "--reports", str(reports), cwd=tmp_path)
    assert_refused(proc, seconds, "--reports: ", 2)
    assert (tmp_path / "reports").read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_an_unwritable_reports_folder_is_one_line_exit_2(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir(mode=0o500)
    proc, seconds = timed("run", "--reports", str(reports), cwd=tmp_path)
    assert_refused(proc, seconds, "--reports: ", 2)
    assert list(reports.iterdir()) == []


@pytest.mark.parametrize("run_id, needle", [
    ("..", "run id '..': use letters"), ("../x", "run id '../x': use letters"), ("a/b", "run id 'a/b'"),
    (".hidden", "run id '.hidden'"), ("x" * 300, "300 characters; at most 64"), ("", "run id ''"),
])
def test_a_run_id_that_is_a_path_or_too_long_is_refused(tmp_path, run_id, needle):
    proc, seconds = timed("run", "--reports", str(tmp_path / "reports"), "--run-id", run_id, cwd=tmp_path)
    assert_refused(proc, seconds, needle, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["reports"])
    assert not (tmp_path / "reports").exists() or list((tmp_path / "reports").iterdir()) == []


def test_a_reused_run_id_is_refused_and_the_old_folder_is_untouched(tmp_path):
    old = tmp_path / "reports" / "nightly"
    old.mkdir(parents=True)
    (old / "results.json").write_text('{"tests": []}')
    proc, seconds = timed("run", "--reports", str(tmp_path / "reports"), "--run-id", "nightly", cwd=tmp_path)
    assert_refused(proc, seconds, "run id 'nightly': ", 2)
    assert [p.name for p in old.iterdir()] == ["results.json"]


def test_a_run_id_passed_to_pytest_is_refused(tmp_path):
    proc, seconds = timed("run", "--reports", str(tmp_path / "reports"), "--", "--run-id", "../x", cwd=tmp_path)
    assert_refused(proc, seconds, "--run-id after --: use vcrypt run --run-id", 2)
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["reports"])


def test_a_50_mb_inventory_is_refused_at_once(tmp_path):
    big = tmp_path / "big.yaml"
    with big.open("w") as handle:
        handle.write("vcenters:\n")
        line = "  - {name: vc, target: fake}\n"
        handle.write(line * (50 * 1024 * 1024 // len(line)))
    proc, seconds = timed("run", "-i", str(big), cwd=tmp_path)
    assert_refused(proc, seconds, "(file): larger than 128 KiB", 2)


def test_a_vcsim_that_would_rebind_is_refused(tmp_path):
    data = {"vcenters": [{"name": "sim", "target": "vcsim", "vcsim": {"extra_args": ["-l", "0.0.0.0:8989"]}}]}
    (tmp_path / "sim.yaml").write_text(yaml.safe_dump(data))
    proc, seconds = timed("run", "-i", str(tmp_path / "sim.yaml"), cwd=tmp_path)
    assert_refused(proc, seconds, "vcenters.sim.vcsim.extra_args: '-l': the harness chooses vcsim's listen address", 2)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://vc.example/sdk", "https:///sdk"])
def test_a_real_target_url_must_be_https_with_a_host(tmp_path, url):
    inventory = real_inventory(tmp_path, host=None, url=url)
    proc, seconds = timed("run", "-i", str(inventory), cwd=tmp_path, env={"VCRYPT_TEST_PW": "x"})
    assert_refused(proc, seconds, "vcenters.lab.url: ", 2)


def test_an_unknown_fake_defect_lists_the_known_ones(tmp_path):
    data = yaml.safe_load((ROOT / "inventories" / "fake.yaml").read_text())
    data["vcenters"][0]["fake"] = {"defects": ["op-state-ignoerd"]}
    (tmp_path / "f.yaml").write_text(yaml.safe_dump(data))
    proc, seconds = timed("run", "-i", str(tmp_path / "f.yaml"), cwd=tmp_path)
    line = assert_refused(proc, seconds, "vcenters.vc-a.fake.defects: unknown fake defect 'op-state-ignoerd'; known: ", 2)
    assert "op-state-ignored" in line


# ---- reachability, classified (in-process, with the vCenter connection replaced) -------------------
def _lab(tmp_path: Path):
    from harness.inventory.schema import load_inventory
    return load_inventory(real_inventory(tmp_path))


def test_a_refused_login_is_a_configuration_problem_and_a_silent_vcenter_hits_the_deadline(tmp_path, monkeypatch):
    import threading

    import harness.targets.connect
    from harness.run import preflight
    inv = _lab(tmp_path)

    def refused(entry, **_):
        raise harness.targets.connect.ConnectError(f"vCenter {entry.name} (127.0.0.1:1): login refused for {entry.user}",
                                                 config=True)
    monkeypatch.setattr(harness.targets.connect, "connect_soap", refused)
    problems = preflight.reach_problems(inv)
    assert [(p.key, p.kind) for p in problems] == [("vcenters.lab", "config")]
    assert preflight.exit_code(problems) == 2

    release = threading.Event()
    monkeypatch.setattr(harness.targets.connect, "connect_soap", lambda entry, **_: release.wait(30))
    began = time.monotonic()
    problems = preflight.reach_problems(inv, deadline=0.5)
    release.set()
    assert time.monotonic() - began < 2.0
    assert [(p.key, p.kind) for p in problems] == [("vcenters.lab", "unreachable")]
    assert problems[0].cause.startswith("no answer within")
    assert preflight.exit_code(problems) == 3


def test_a_vcenter_that_accepts_the_login_is_logged_out_again(tmp_path, monkeypatch):
    import harness.targets.connect
    from harness.run import preflight
    calls = []

    class Session:
        def Logout(self):  # noqa: N802 - pyVmomi's name
            calls.append("logout")

    class Si:
        content = type("Content", (), {"sessionManager": Session()})()
    monkeypatch.setattr(harness.targets.connect, "connect_soap", lambda entry, **_: Si())
    assert preflight.reach_problems(_lab(tmp_path)) == [] and calls == ["logout"]


def test_a_kms_that_answers_kmip_passes_the_preflight_and_a_stopped_one_does_not(tmp_path):
    from harness.run import preflight
    from harness.inventory.schema import load_inventory
    from harness.kms.server import EmbeddedKms
    with EmbeddedKms(tmp_path / "kms") as kms:
        server = kms.servers["shared"]
        data = yaml.safe_load((ROOT / "inventories" / "fake.yaml").read_text())
        data["kms"] = {"embedded": False, "shared": {
            "provider_id": "lab-kms", "address": server.host, "port": server.port, "ca": str(kms.ca.ca_path),
            "client_cert": str(kms.client_cert.cert_path), "client_key": str(kms.client_cert.key_path)}}
        (tmp_path / "inv.yaml").write_text(yaml.safe_dump(data))
        inv = load_inventory(tmp_path / "inv.yaml")
        assert preflight.config_problems(inv) == [] and preflight.reach_problems(inv) == []
        server.stop()
        problems = preflight.reach_problems(inv)
    assert [(p.key, p.kind) for p in problems] == [("kms.shared", "unreachable")]
