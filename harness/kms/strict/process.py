"""Run the strict KMS (strictkms, built by build.py) on 127.0.0.1 with a throwaway PKI and its modes.

The server holds our pipe on its stdin and exits when it closes, so even a SIGKILLed harness leaves
nothing listening. With the `credential` mode a random password is made and handed to the server
in a private file (0600); `username`/`password` say what a client must send.
"""
from __future__ import annotations

import re
import secrets
import select
import subprocess
import time
from pathlib import Path
from types import TracebackType

from harness.kms.pki import CertPair, ThrowawayCA
from harness.kms.strict.modes import StrictModes
from harness.workdirs import private_folder

READY = re.compile(rb"strictkms listening on 127\.0\.0\.1:(\d+)")
USERNAME = "vcrypt-harness"


class StrictKmsError(RuntimeError):
    """The strict KMS did not start or stop; the message says why (with its stderr)."""


class StrictKms:
    """One strictkms process; `host`, `port`, `ca_path` and (in credential mode) `username`/`password`."""

    def __init__(self, binary: Path, workdir: Path, ca: ThrowawayCA, modes: StrictModes,
                 name: str = "strict-kms", ready_timeout: float = 15.0) -> None:
        self.binary = Path(binary)
        self.workdir = private_folder(Path(workdir).resolve())
        self.ca = ca
        self.modes = modes
        self.name = name
        self.ready_timeout = ready_timeout
        self.host = "127.0.0.1"
        self.port = 0
        self.server_cert: CertPair = ca.issue_server(name, [self.host, "localhost"], directory=self.workdir)
        self.username = USERNAME if modes.credential else None
        self.password = secrets.token_urlsafe(18) if modes.credential else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr = self.workdir / "stderr.log"

    @property
    def ca_path(self) -> Path:
        return self.ca.ca_path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __repr__(self) -> str:
        return f"<StrictKms {self.name} {self.modes.label()} {self.address}>"

    def start(self) -> "StrictKms":
        password_file = None
        if self.password is not None:
            password_file = self.workdir / "kmip-password"
            password_file.touch(mode=0o600)
            password_file.write_text(self.password)
        cmd = [str(self.binary), "-cert", str(self.server_cert.cert_path), "-key", str(self.server_cert.key_path),
               "-ca", str(self.ca.ca_path), *self.modes.flags(str(password_file) if password_file else None,
                                                               self.username)]
        with open(self._stderr, "ab") as err:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                          start_new_session=True)
        deadline = time.monotonic() + self.ready_timeout
        assert self._proc.stdout is not None
        line = b""
        while time.monotonic() < deadline and self._proc.poll() is None:
            ready, _, _ = select.select([self._proc.stdout], [], [], 0.1)
            if ready:
                line = self._proc.stdout.readline()
                match = READY.search(line)
                if match:
                    self.port = int(match.group(1))
                    return self
        code = self._proc.poll()
        self.stop()
        tail = self._stderr.read_text(errors="replace").strip().splitlines()[-3:]
        raise StrictKmsError(f"strict KMS {self.name} did not start (exit code {code}, output {line!r}): "
                             f"{' | '.join(tail) or 'no stderr'}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()          # strictkms exits when its stdin closes
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()

    def __enter__(self) -> "StrictKms":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
