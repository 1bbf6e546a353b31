"""Lifecycle of real PyKMIP servers run as subprocesses (the harness's embedded KMS).

Each server runs `_pykmip_serve.py` (stock PyKMIP plus a UID range, a Create fault
hook and a fast clean shutdown) in its own session, so stopping it means
signalling one process group. Everything a server owns lives in its workdir:
server.conf, kms.sqlite, server.log, stdio.log, its certificates and the
fault-injection flag.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from harness.kms import _pykmip_serve as _serve
from harness.kms.pki import CertPair, ThrowawayCA
from harness.workdirs import private_folder

__all__ = ["KmsError", "KmsServer", "EmbeddedKms", "live_group_members"]

LAUNCHER = Path(_serve.__file__).resolve()
STOP_GRACE = 5.0          # SIGINT normally ends the server in well under a second
PROBE_INTERVAL = 0.05
PROBE_CN = "vcrypt-kms-probe"
LOG_TAIL_LINES = 15


class KmsError(RuntimeError):
    """A KMS server could not be started or stopped; the message names it and says why."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def live_group_members(pgid: int) -> list[int]:
    """PIDs in process group `pgid` that are not zombies (zombies hold no resources).

    Reads /proc so an unreaped orphan (e.g. in a container without an init
    that reaps) is not mistaken for a running server.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class KmsServer:
    """One PyKMIP server as a subprocess in its own session on 127.0.0.1, on a free port."""

    def __init__(
        self,
        workdir: Path,
        ca: ThrowawayCA,
        name: str = "kms",
        uid_base: int = 0,
        ready_timeout: float = 15.0,
        port: int | None = None,
        database_path: Path | None = None,
    ) -> None:
        self.workdir = private_folder(Path(workdir).resolve())  # 0700: keys and the key database
        self.name = name
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.uid_base = uid_base
        self.ready_timeout = ready_timeout
        self.ca_path = ca.ca_path
        self.server_cert: CertPair = ca.issue_server(name, [self.host, "localhost"], directory=self.workdir)
        # Used only for readiness handshakes, so they prove mutual TLS works end to end.
        self._probe_cert = ca.issue_client(PROBE_CN, directory=self.workdir)
        # Another server's database makes this one a replica of it: both serve the same keys (ReplicatedKms).
        self.database_path = Path(database_path) if database_path else self.workdir / "kms.sqlite"
        self.log_path = self.workdir / "server.log"
        self.stdio_path = self.workdir / "stdio.log"
        self.config_path = self.workdir / "server.conf"
        self.policy_path = self.workdir / "policies"
        self._flag_path = self.workdir / _serve.REFUSE_CREATE_FLAG
        self._proc: subprocess.Popen[bytes] | None = None
        self.refuse_create(False)  # a new server object starts without faults

    # ------------------------------------------------------------------ naming
    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<KmsServer {self.name} {self.address} {state}>"

    def _error(self, cause: str, with_logs: bool = False) -> KmsError:
        message = f"KMS {self.name} ({self.address}): {cause}"
        if with_logs:
            message += self._log_tails()
        return KmsError(message)

    def _log_tails(self) -> str:
        parts = []
        for path in (self.stdio_path, self.log_path):
            tail = _tail(path)
            if tail:
                parts.append(f"\n--- last lines of {path} ---\n{tail}")
        return "".join(parts) or f"\n(no log output in {self.workdir})"

    # --------------------------------------------------------------- lifecycle
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the launcher, which is also the process-group ID (None when stopped)."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> "KmsServer":
        """Spawn the server and wait until a mutual-TLS handshake succeeds."""
        if self.running:
            return self
        self._spawn()
        self._wait_ready(time.monotonic() + self.ready_timeout)
        return self

    def stop(self) -> None:
        """SIGINT the process group, SIGKILL whatever is left after a grace period."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        pgid = proc.pid
        self._signal_group(pgid, signal.SIGINT)
        try:
            proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            self._signal_group(pgid, signal.SIGKILL)
            proc.wait()
        self._reap_group(pgid)

    def restart(self) -> None:
        """Stop and start on the same port and database: keys survive, as on a real KMS reboot."""
        self.stop()
        self.start()

    def __enter__(self) -> "KmsServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---------------------------------------------------------- fault injection
    def refuse_create(
        self, refuse: bool = True, reason: str = "key creation refused by fault injection"
    ) -> None:
        """While on, KMIP Create fails with `reason`; read per request, so no restart is needed."""
        if not refuse:
            self._flag_path.unlink(missing_ok=True)
            return
        tmp = self._flag_path.with_suffix(".tmp")
        tmp.write_text(reason + "\n")
        tmp.replace(self._flag_path)  # atomic: a request never sees a half-written reason

    @property
    def refusing_create(self) -> bool:
        return self._flag_path.exists()

    # ---------------------------------------------------------------- internals
    def _write_config(self) -> None:
        """server.conf with only keys PyKMIP knows (an unknown key stops it)."""
        self.policy_path.mkdir(exist_ok=True)  # PyKMIP scans the cwd for policies without one
        self.config_path.write_text(
            "[server]\n"
            f"hostname={self.host}\n"
            f"port={self.port}\n"
            f"certificate_path={self.server_cert.cert_path}\n"
            f"key_path={self.server_cert.key_path}\n"
            f"ca_path={self.ca_path}\n"
            "auth_suite=TLS1.2\n"
            f"policy_path={self.policy_path}\n"
            "enable_tls_client_auth=True\n"
            "logging_level=INFO\n"  # DEBUG would log every request in hex, key bytes included
            f"database_path={self.database_path}\n"
        )

    def _command(self) -> list[str]:
        # -P: the launcher's own directory (server.py, client.py, ...) must not shadow modules.
        return [
            sys.executable, "-P", str(LAUNCHER),
            "--config", str(self.config_path),
            "--log", str(self.log_path),
            "--workdir", str(self.workdir),
            "--uid-base", str(self.uid_base),
            "--parent-pid", str(os.getpid()),
        ]

    def _spawn(self) -> None:
        self._write_config()
        with open(os.open(self.stdio_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as stdio:
            stdio.write(f"=== start {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
            stdio.flush()
            try:
                self._proc = subprocess.Popen(
                    self._command(),
                    stdin=subprocess.DEVNULL,
                    stdout=stdio,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    start_new_session=True,
                    umask=0o077,  # kms.sqlite holds raw AES keys: 0600, whatever the caller's umask
                )
            except OSError as err:
                raise self._error(f"cannot spawn the server: {err}") from err

    def _wait_ready(self, deadline: float) -> None:
        context = self._probe_context()
        last_error = "no attempt yet"
        while True:
            code = self._proc.poll() if self._proc is not None else -1
            if code is not None:
                self.stop()
                raise self._error(f"server exited during start-up (exit code {code})", with_logs=True)
            try:
                self._probe(context)
                return
            except ssl.SSLError as err:
                # Something is listening and speaking TLS, but the handshake is wrong:
                # waiting will not fix a certificate problem.
                self.stop()
                raise self._error(f"TLS handshake with the new server failed: {err}", with_logs=True) from err
            except OSError as err:
                last_error = f"{type(err).__name__}: {err}"
            if time.monotonic() >= deadline:
                self.stop()
                raise self._error(
                    f"not ready within {self.ready_timeout:g} s (last probe: {last_error})",
                    with_logs=True,
                )
            time.sleep(PROBE_INTERVAL)

    def _probe_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = False
        context.load_verify_locations(cafile=str(self.ca_path))
        context.load_cert_chain(str(self._probe_cert.cert_path), str(self._probe_cert.key_path))
        return context

    def _probe(self, context: ssl.SSLContext) -> None:
        with socket.create_connection((self.host, self.port), timeout=1.0) as raw:
            with context.wrap_socket(raw) as tls:
                tls.do_handshake()

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _reap_group(self, pgid: int) -> None:
        """Make sure no member of the group outlives the launcher (e.g. PyKMIP's manager)."""
        deadline = time.monotonic() + 1.0
        while live_group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if live_group_members(pgid):
            self._signal_group(pgid, signal.SIGKILL)
            deadline = time.monotonic() + 2.0
            while live_group_members(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
        if live_group_members(pgid):
            raise self._error(f"process group {pgid} survived SIGKILL")


class EmbeddedKms:
    """The default run's KMS: a throwaway CA, a 'shared' and a 'dedicated' server, one client identity.

    Every fake vCenter and the evidence reads use the same client certificate
    (CN 'vcrypt-vcenter') because PyKMIP lets only the creating CN use a key.
    The two servers are separate clusters with disjoint UID ranges, so looking
    a key up on the wrong one fails instead of returning another key.
    """

    CLIENT_CN = "vcrypt-vcenter"
    UID_BASES = {"shared": 100000, "dedicated": 200000}

    def __init__(self, workdir: Path, ready_timeout: float = 15.0) -> None:
        self.workdir = private_folder(Path(workdir).resolve(), restrict_existing=False)
        self.ca = ThrowawayCA(private_folder(self.workdir / "pki"))
        self.client_cert: CertPair = self.ca.issue_client(self.CLIENT_CN)
        self.servers: dict[str, KmsServer] = {
            name: KmsServer(self.workdir / name, self.ca, name=name, uid_base=base, ready_timeout=ready_timeout)
            for name, base in self.UID_BASES.items()
        }

    def start(self) -> "EmbeddedKms":
        """Start all servers concurrently (spawn all, then wait for each)."""
        start_together(self.servers.values(), self.stop)
        return self

    def stop(self) -> None:
        """Stop every server; each is stopped even if another fails."""
        errors = _stop_all(self.servers.values())
        if errors:
            raise KmsError("; ".join(str(e) for e in errors))

    def client(self, name: str = "shared", timeout: float = 5.0):  # noqa: ANN201 - avoids an import cycle in hints
        """A KmipClient for one server, using the shared vCenter identity."""
        from harness.kms.client import KmipClient

        server = self.servers[name]
        return KmipClient.from_paths(
            server.host, server.port, server.ca_path,
            self.client_cert.cert_path, self.client_cert.key_path, timeout=timeout,
        )

    def describe(self) -> dict:
        """Where everything is (paths and addresses only, never key material)."""
        return {
            "workdir": str(self.workdir),
            "ca_path": str(self.ca.ca_path),
            "client_common_name": self.CLIENT_CN,
            "client_cert_path": str(self.client_cert.cert_path),
            "client_key_path": str(self.client_cert.key_path),
            "servers": {
                name: {
                    "address": server.address,
                    "host": server.host,
                    "port": server.port,
                    "running": server.running,
                    "uid_base": server.uid_base,
                    "server_cert_path": str(server.server_cert.cert_path),
                    "database_path": str(server.database_path),
                    "log_path": str(server.log_path),
                }
                for name, server in self.servers.items()
            },
        }

    def __enter__(self) -> "EmbeddedKms":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_together(servers: Iterable[KmsServer], stop: Callable[[], None]) -> None:
    """Spawn every server not yet running, then wait for each: their start-ups overlap. On any failure
    (or Ctrl-C) `stop` stops them all, so no half-started KMS is left behind."""
    pending = [server for server in servers if not server.running]
    try:
        for server in pending:
            server._spawn()
        for server in pending:
            server._wait_ready(time.monotonic() + server.ready_timeout)
    except BaseException:
        stop()
        raise


def _stop_all(servers: Iterable[KmsServer]) -> list[KmsError]:
    errors = []
    for server in servers:
        try:
            server.stop()
        except KmsError as err:
            errors.append(err)
    return errors
