"""Run one vcsim as a subprocess in its own session, and stop all of it.

vcsim listens on 127.0.0.1:0 and prints `export GOVC_URL=https://user:pass@127.0.0.1:PORT/sdk`,
so the chosen port is read from its output (no free-port race). It is ready once its HTTPS
endpoint answers an HTTP request. Stopping signals the whole process group, because a wrapper
script or a vcsim child would otherwise outlive us.
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from harness.vcsim.build import LAUNCHER_NAME, VcsimUnavailable
from harness.vcsim.choice import find_vcsim

LISTEN_HOST = "127.0.0.1"
STOP_GRACE = 5.0
_URL_RE = re.compile(r"GOVC_URL=(\S+)")
_POLL = 0.05


class VcsimProcess:
    """One vcsim as a subprocess in its own session on 127.0.0.1 with a free port."""

    def __init__(
        self,
        workdir: Path,
        binary: Path | None = None,
        api_version: str | None = None,
        datacenters: int = 1,
        clusters: int = 1,
        hosts: int = 3,
        vms: int = 2,
        standalone_hosts: int = 0,
        extra_args: Sequence[str] = (),
        ready_timeout: float = 30.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.binary = Path(binary) if binary is not None else None
        self.api_version = api_version
        self.counts = {"-dc": datacenters, "-cluster": clusters, "-host": hosts,
                       "-vm": vms, "-standalone-host": standalone_hosts}
        from harness.inventory.checks import refuse_bind_flags
        self.extra_args = refuse_bind_flags(list(extra_args))  # ValueError: only the harness picks the address
        self.ready_timeout = ready_timeout
        self.host = LISTEN_HOST
        self.port = 0
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path = self.workdir / "vcsim.log"  # one workdir per instance
        self.certificate_sha256: str | None = None   # of the certificate it serves (made per start), to pin
        self.tls_key_path: Path | None = None

    # ------------------------------------------------------------------ state

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The vcsim's pid, which is also its process-group id (own session)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path:
        return self._log_path

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self._log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    # ------------------------------------------------------------------ start

    def command(self, binary: Path) -> list[str]:
        """The vcsim command line; flags are the real vcsim's, so either binary works."""
        args = [str(binary)]
        for flag, value in self.counts.items():
            args += [flag, str(value)]
        if self.api_version:
            args += ["-api-version", self.api_version]
        if binary.name == LAUNCHER_NAME:
            args.append("-stdinexit")  # our launcher exits if we die without stopping it
        if not any(a.lstrip("-").split("=")[0].startswith("tls") for a in self.extra_args):
            from harness.vcsim.certificate import make_certificate
            cert, key, self.certificate_sha256 = make_certificate(self.workdir / "tls", LISTEN_HOST)
            self.tls_key_path = key
            args += ["-tlscert", str(cert), "-tlskey", str(key)]
        return args + self.extra_args + ["-l", f"{LISTEN_HOST}:0"]  # last: a Go flag given twice keeps the last

    def start(self) -> VcsimProcess:
        """Spawn vcsim and wait until its SOAP endpoint answers; on failure leave nothing running."""
        if self.running:
            return self
        binary = find_vcsim(self.binary)  # an explicit binary is checked to exist and be executable
        self._spawn(binary)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, binary: Path) -> None:
        tmp = self.workdir / "tmp"  # vcsim's datastore dirs land here, not in /tmp
        tmp.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, TMPDIR=str(tmp))
        self.url, self.port = "", 0
        with open(self._log_path, "wb") as log:  # fresh per start: the URL is parsed from it
            self._proc = subprocess.Popen(
                self.command(binary), cwd=self.workdir, env=env, stdin=subprocess.PIPE,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        atexit.register(self.stop)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise VcsimUnavailable(
                    f"vcsim exited with status {self._proc.returncode} before it was ready: {self.log_tail()}"
                )
            if not self.url:
                self._read_url()
            if self.url and self._answers(min(2.0, max(0.1, deadline - time.monotonic()))):
                return
            time.sleep(_POLL)
        state = f"listening on {self.url} but not answering" if self.url else "no GOVC_URL line printed"
        raise VcsimUnavailable(f"vcsim not ready within {self.ready_timeout:.1f}s ({state}): {self.log_tail()}")

    def _read_url(self) -> None:
        """Take host and port from the `export GOVC_URL=...` line vcsim prints once listening."""
        try:
            text = self._log_path.read_text(errors="replace")
        except OSError:
            return
        match = _URL_RE.search(text)
        if match is None:
            return
        parts = urlsplit(match.group(1))
        if parts.hostname and parts.port:
            self.host, self.port = parts.hostname, parts.port
            self.url = f"{parts.scheme}://{self.host}:{self.port}{parts.path or '/sdk'}"

    def _answers(self, timeout: float) -> bool:
        """True once vcsim answers HTTP at /about; any status code means the server is up."""
        parts = urlsplit(self.url)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # vcsim's own self-signed certificate
        try:
            with urllib.request.urlopen(f"{parts.scheme}://{parts.netloc}/about", timeout=timeout, context=ctx):
                return True
        except urllib.error.HTTPError:
            return True
        except (OSError, ValueError):
            return False

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        """SIGTERM the whole process group, SIGKILL it after a grace period; idempotent."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is None:
            return
        _close_stdin(proc)
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(proc.pid, signal.SIGKILL)  # stragglers in the group, or a hung leader
        proc.wait()
        _wait_group_gone(proc.pid, STOP_GRACE)

    def __enter__(self) -> VcsimProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"VcsimProcess(url={self.url!r}, pid={self.pid}, running={self.running})"


def _close_stdin(proc: subprocess.Popen[bytes]) -> None:
    try:
        if proc.stdin is not None:
            proc.stdin.close()
    except OSError:
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process of the group exists.

    Zombies are skipped: an orphaned child is reaped by init on init's schedule, which can lag
    by a second in containers, and a zombie holds no port, file or CPU.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return _group_signalable(pgid)
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _group_signalable(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_group_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(_POLL)
