"""A mutating call whose reply is lost on the wire is sent once (issue 21 point 4), over real pyVmomi SOAP.

A loopback proxy between pyVmomi and a vcsim forwards bytes untouched (TLS end to end) and, once
armed, closes the client's connection instead of forwarding the next response: the request reached
vcsim and ran, its reply never came. Reproduced first: with the client before the fix, invoke sent
CreateVM_Task again (two VMs or DuplicateName); now it raises OutcomeUnknown and vcsim holds one VM.
"""
from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from harness.inventory.schema import parse_inventory
from harness.safety import MutationGate
from harness.targets.environment import open_environment
from harness.vsphere import find, vms
from harness.vsphere.client import VCenterClient
from harness.vsphere.errors import OutcomeUnknown
from harness.vsphere.props import retrieve_all
from tests.conftest import require_toolchain

REQUEST_BYTES = 1500   # more than a TLS ClientHello: the armed turn is a SOAP request, not a handshake


class DropReplyProxy:
    """127.0.0.1 -> target; `arm()` makes it swallow the next response after a request went up."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.armed_up = -1            # bytes sent up since arming; -1: not armed
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self) -> None:
        with self.lock:
            self.armed_up = 0

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while data := src.recv(65536):
                with self.lock:
                    if up and self.armed_up >= 0:
                        self.armed_up += len(data)
                    drop = not up and self.armed_up >= REQUEST_BYTES
                    if drop:
                        self.armed_up = -1
                if drop:   # the request ran on the target; the client never sees its reply
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Any]:
    require_toolchain()
    from harness.vcsim import VcsimProcess, build_launcher
    with VcsimProcess(tmp_path / "sim", binary=build_launcher(), api_version="7.0.3.0") as process:
        yield process


def test_create_vm_whose_reply_is_lost_on_the_wire_runs_once(sim: Any, tmp_path: Path) -> None:
    from urllib.parse import urlparse
    proxy = DropReplyProxy(urlparse(sim.url).port)
    try:
        data = {"vcenters": [{"name": "sim", "target": "vcsim", "url": f"https://127.0.0.1:{proxy.port}/sdk",
                              "user": "u", "tls": {"insecure": True}, "datacenter": "DC0", "cluster": "DC0_C0"}],
                "safety": {"allow_mutations": True}}
        with open_environment(parse_inventory(data, tmp_path / "sim.yaml"), workdir=tmp_path / "env") as env:
            entry = env.inventory.vcenter("sim")
            client = VCenterClient("sim", env.service_instance("sim"), env.inventory.timeouts, "vcsim",
                                   relogin=lambda: env.relogin("sim"), gate=MutationGate(allow_mutations=True))
            place = find.placement_for(client, entry)
            original = client.invoke

            def invoke(obj: Any, called: str, /, **kwargs: Any) -> Any:
                if called == "CreateVM_Task":
                    proxy.arm()
                return original(obj, called, **kwargs)
            client.invoke = invoke  # type: ignore[method-assign]
            with pytest.raises(OutcomeUnknown, match="CreateVM_Task may or may not have run on sim"):
                vms.create_vm(client, place, "vcrypt-lost-on-the-wire", "")
            del client.invoke
            names = [p.get("name") for _, p in retrieve_all(client, vms.vim.VirtualMachine, ["name"]).values()]
        assert names.count("vcrypt-lost-on-the-wire") == 1, names
    finally:
        proxy.close()
