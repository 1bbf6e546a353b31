"""examples/fake_tour.py runs end to end on the fake pair, shows every step, and leaves no KMS behind."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "fake_tour.py"
KEY = r"tour-kms/\d+"


def _kms_children(pid: int) -> list[str]:
    """Command lines of the embedded KMS servers a given process started (they carry --parent-pid)."""
    # -ww: never cut command lines to a terminal width (pytest may set COLUMNS)
    ps = subprocess.run(["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in ps.splitlines()
            if "_pykmip_serve" in line and re.search(rf"--parent-pid {pid}(\s|$)", line)]


@dataclass
class TourRun:
    code: int
    out: str
    err: str
    seen_kms: bool           # its KMS processes were seen while it ran (so the leftover check can see them)
    leftovers: list[str]     # its KMS processes still alive after it exited


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> TourRun:
    """Run the tour once as a user would: `python examples/fake_tour.py` from the repository root."""
    logs = tmp_path_factory.mktemp("fake-tour")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(logs / "stdout", "w+") as stdout, open(logs / "stderr", "w+") as stderr:   # files: never a full pipe
        proc = subprocess.Popen([sys.executable, str(SCRIPT.relative_to(REPO))], cwd=REPO, env=env,
                                stdout=stdout, stderr=stderr, text=True)
        seen_kms = False
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            seen_kms = seen_kms or bool(_kms_children(proc.pid))
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            pytest.fail(f"the tour did not finish in 120 s\n{(logs / 'stdout').read_text()}\n"
                        f"{(logs / 'stderr').read_text()}")
    return TourRun(proc.returncode, (logs / "stdout").read_text(), (logs / "stderr").read_text(), seen_kms,
                   _kms_children(proc.pid))


def _clean_up(out: str) -> str:
    return out.partition("\nClean-up\n")[2]


def _section(out: str, number: int) -> str:
    match = re.search(rf"^Step {number}: .*?(?=^Step {number + 1}: |^Clean-up)", out, re.S | re.M)
    assert match, f"no 'Step {number}' section in the output:\n{out}"
    return match.group(0)


def test_tour_exits_zero_and_completes(tour):
    assert tour.code == 0, f"exit {tour.code}\n--- stdout\n{tour.out}\n--- stderr\n{tour.err}"
    assert "Tour complete" in tour.out
    assert re.search(r"removed tour-kms from 2 vCenter\(s\); left behind: nothing", _clean_up(tour.out))


def test_tour_leaves_no_kms_process(tour):
    assert tour.seen_kms, "the tour's KMS processes were never seen running: the leftover check would prove nothing"
    assert not tour.leftovers, f"KMS processes left behind by the tour: {tour.leftovers}"


def test_step1_new_provider_is_trusted_green_and_active(tour):
    step = _section(tour.out, 1)
    assert "vc-a: RegisterKmipServer tour-kms" in step
    assert re.search(r"RetrieveKmipServerCert subject=\S+ fingerprint=[0-9A-F:]+", step)
    assert "UploadKmipServerCert + UploadClientCert done" in step
    assert "managementType=vCenter" in step
    assert "status=green clientTrustServer=True serverTrustClient=True" in step
    assert "IsKmsClusterActive(tour-kms) = True" in step


def test_step2_vm_encrypted_with_the_generated_key(tour):
    step = _section(tour.out, 2)
    key = re.search(rf"GenerateKey\(tour-kms\) -> ({KEY})", step).group(1)
    assert "CreateVM_Task -> tour-vm with 1 disk(s), config.keyId=none" in step
    assert "'VM Encryption Policy' = " in step
    assert re.search(rf"after encrypt:\s+tour-vm\s+config.keyId={key}\s+disks=\['{key}'\]", step)
    assert "runtime.cryptoState=unlocked" in step


def test_step3_clones_keep_recrypt_decrypt_encrypt(tour):
    out = tour.out
    source = re.search(rf"after encrypt:\s+tour-vm\s+config.keyId=({KEY})", _section(out, 2)).group(1)
    step = _section(out, 3)
    keep = re.search(rf"keep \(no crypto\):\s+tour-clone-keep\s+config.keyId=({KEY})", step).group(1)
    recrypt = re.search(rf"recrypt \(shallow\):\s+tour-clone-recrypt\s+config.keyId=({KEY})", step).group(1)
    encrypt = re.search(rf"encrypt \(plain source\):\s+tour-clone-encrypt\s+config.keyId=({KEY})", step).group(1)
    assert keep == source
    assert recrypt != source
    assert encrypt not in (source, recrypt)
    assert re.search(r"decrypt:\s+tour-clone-decrypt\s+config.keyId=none\s+disks=\['none'\]", step)


def test_step4_every_snapshot_on_the_new_key(tour):
    step = _section(tour.out, 4)
    old = re.search(rf"two snapshots taken, VM on ({KEY})", step).group(1)
    new = re.search(rf"after shallow rekey:\s+tour-vm\s+config.keyId=({KEY})", step).group(1)
    assert new != old
    snaps = re.findall(rf"snapshot (tour-snap-\d)\s+config.keyId=({KEY})", step)
    assert [name for name, _ in snaps] == ["tour-snap-1", "tour-snap-2"]
    assert all(key == new for _, key in snaps)


def test_step5_instant_clone_shares_key_and_parent_rekey_refused(tour):
    step = _section(tour.out, 5)
    parent = re.search(rf"parent:\s+tour-clone-recrypt\s+config.keyId=({KEY})", step).group(1)
    child = re.search(rf"instant clone:\s+tour-instant\s+config.keyId=({KEY})", step).group(1)
    assert child == parent
    assert "instant clone power state: poweredOn" in step
    assert re.search(r"shallow rekey of the parent refused: [\w.]+: \S", step)
    assert f"parent still on {parent}" in step


def test_step6_migrated_to_vc_b_with_the_same_key(tour):
    out = tour.out
    rekeyed = re.search(rf"after shallow rekey:\s+tour-vm\s+config.keyId=({KEY})", _section(out, 4)).group(1)
    step = _section(out, 6)
    assert "vc-b: IsKmsClusterActive(tour-kms) = True" in step
    assert re.search(r"RelocateVM_Task tour-vm -> https://\S+/sdk \(instanceUuid [0-9a-f-]+\)", step)
    assert re.search(rf"on vc-b:\s+tour-vm\s+config.keyId={rekeyed}\b", step)
    assert "still on vc-a: False" in step


def test_step7_ha_pushes_the_key_to_every_host(tour):
    step = _section(tour.out, 7)
    assert "HA on DC0_C0: True" in step
    hosts = re.findall(r"(\S+): runtime.cryptoState=(\w+) cached keys=\d+ has VM key=(\w+)", step)
    assert len(hosts) >= 2
    assert all(state == "safe" and has == "True" for _, state, has in hosts), hosts
    assert "HA off again: False" in step


def test_step8_kms_outage_events_and_alarm(tour):
    step = _section(tour.out, 8)
    assert re.search(r"KMS health alarm: '.+' \(watches com.vmware.vc.kms.crypto.Unreachable\), now green", step)
    down, _, up = step.partition("shared KMS started again")
    assert "shared KMS stopped" in down
    assert "IsKmsClusterActive(tour-kms) = False" in down
    assert re.search(r"event com.vmware.vc.kms.crypto.Unreachable \[error\]: .*tour-kms", down)
    assert re.search(r"alarm '.+': red", down)
    assert re.search(r"IsKmsClusterActive\(tour-kms\) = True; alarm '.+': green", up)
