"""A vcsim the harness starts serves a certificate the harness made, and the harness pins it (issue 21).

Before, the harness logged in to its own vcsims with verification off (`tls: {insecure: true}`):
whatever answered on the port got the Login. Now each vcsim gets a fresh certificate (-tlscert,
-tlskey) and the environment logs in with its SHA-256 pinned, whatever the entry's tls says.
"""
from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.inventory.schema import VCenter
from harness.targets.connect import ConnectError, connect_soap
from harness.vcsim import VcsimProcess, build_launcher
from tests.conftest import require_toolchain


@pytest.fixture(scope="module")
def vcsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VcsimProcess]:
    require_toolchain()
    with VcsimProcess(tmp_path_factory.mktemp("vcsim-tls"), binary=build_launcher(), hosts=1, vms=0) as proc:
        yield proc


def test_the_vcsim_serves_the_certificate_the_harness_made(vcsim: VcsimProcess) -> None:
    pem = ssl.get_server_certificate((vcsim.host, vcsim.port), timeout=5)
    assert hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest() == vcsim.certificate_sha256
    assert oct(Path(vcsim.tls_key_path).stat().st_mode & 0o777) == "0o600"


def test_the_pin_of_a_started_vcsim_reaches_the_login_and_another_pin_does_not(vcsim: VcsimProcess) -> None:
    def entry(pin: str) -> VCenter:
        return VCenter.model_validate({"name": "sim", "target": "vcsim", "user": "user",
                                       "tls": {"thumbprint_sha256": pin}})
    si = connect_soap(entry(vcsim.certificate_sha256), url=vcsim.url, timeout=5)
    assert si.content.about.apiType
    with pytest.raises(ConnectError, match="does not match the pin"):
        connect_soap(entry("0" * 64), url=vcsim.url, timeout=5)


def test_the_environment_pins_the_vcsims_it_starts(tmp_path: Path) -> None:
    require_toolchain()
    from harness.targets.environment import Environment
    from harness.inventory.schema import load_inventory
    inv = load_inventory(Path(__file__).resolve().parents[2] / "inventories" / "vcsim.yaml")
    env = Environment(inv, tmp_path)
    entry = inv.vcenter("vc-a")
    assert entry.tls.insecure   # what the inventory says ...

    class Sim:
        certificate_sha256 = "ab" * 32
        url = "https://127.0.0.1:1/sdk"
    env.vcsims["vc-a"] = Sim()
    assert env.login_entry(entry).tls.thumbprint_sha256 == "ab" * 32   # ... and what the harness checks
