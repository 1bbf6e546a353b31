"""Preflight: check what an inventory needs before any test runs, one line per problem.

Why: a missing CA bundle or an unset password variable used to surface as hundreds of test
errors (thousands of lines). Here each problem is a `Problem` naming the inventory key and the
cause. Configuration problems (the file is wrong or points at missing things) exit 2; an
environment that does not answer (a vCenter or KMS down) exits 3. Checks only read: a vCenter
login is logged out again, a KMS gets a DiscoverVersions request.
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from harness.inventory.schema import Inventory, InventoryError, VCenter
from harness.vsphere import sessions

EXIT_CONFIG = 2
EXIT_UNREACHABLE = 3
REACH_DEADLINE = 15.0  # seconds for all vCenter and KMS round trips together (they run in parallel)


@dataclass(frozen=True)
class Problem:
    key: str
    cause: str
    kind: Literal["config", "unreachable"] = "config"

    def line(self, inventory: Inventory | None = None) -> str:
        where = f"inventory {inventory.path}: " if inventory is not None and not self.key.startswith("--") else ""
        return f"{where}{self.key}: {self.cause}"


def exit_code(problems: list[Problem]) -> int:
    """2 when any problem is the configuration's, else 3 (the environment does not answer), 0 for none."""
    if not problems:
        return 0
    return EXIT_CONFIG if any(p.kind == "config" for p in problems) else EXIT_UNREACHABLE


# ---- files and secrets -------------------------------------------------------------------------
def _file_problem(key: str, path: Path | None) -> Problem | None:
    if path is None:
        return None
    from harness.inventory.checks import UnreadableFile, open_regular
    try:
        # Only a regular file, opened without blocking: a FIFO does not hang, /dev/zero is not read.
        os.close(open_regular(path))
    except FileNotFoundError:
        return Problem(key, f"file not found: {path}")
    except IsADirectoryError:
        return Problem(key, f"a folder, not a file: {path}")
    except UnreadableFile as err:
        return Problem(key, "a folder, not a file: " + str(path) if "(a folder)" in err.reason else err.reason)
    except OSError as err:
        return Problem(key, f"cannot read {path}: {err.strerror or err}")
    return None


def named_files(inventory: Inventory) -> list[tuple[str, Path | None]]:
    """(inventory key, path) of every file the inventory names."""
    files: list[tuple[str, Path | None]] = []
    for vc in inventory.vcenters:
        files.append((f"vcenters.{vc.name}.tls.ca_bundle", vc.tls.ca_bundle))
        files.append((f"vcenters.{vc.name}.password_file", vc.password_file))
        if vc.vcsim is not None:
            files.append((f"vcenters.{vc.name}.vcsim.binary", vc.vcsim.binary))
    for role in ("shared", "dedicated"):
        ext = getattr(inventory.kms, role)
        if ext is not None:
            files += [(f"kms.{role}.ca", ext.ca), (f"kms.{role}.client_cert", ext.client_cert),
                      (f"kms.{role}.client_key", ext.client_key), (f"kms.{role}.password_file", ext.password_file)]
            reader = ext.read_identity
            if reader is not None and reader != "none":
                files += [(f"kms.{role}.read_identity.client_cert", reader.client_cert),
                          (f"kms.{role}.read_identity.client_key", reader.client_key)]
    return files


def _kms_secret_problem(role: str, inventory: Inventory) -> Problem | None:
    """The KMIP credential's password source gives a password (never printed)."""
    ext = getattr(inventory.kms, role)
    if ext is None or not ext.username:
        return None
    if ext.password_env and not os.environ.get(ext.password_env):
        state = "is empty" if ext.password_env in os.environ else "is not set"
        return Problem(f"kms.{role}.password_env", f"environment variable {ext.password_env} {state}")
    try:
        if not ext.password(f"kms.{role}"):
            return Problem(f"kms.{role}.password_file", f"{ext.password_file} is empty")
    except InventoryError as err:
        return Problem(f"kms.{role}.password_file", str(err).split(": ", 2)[-1])
    return None


def _secret_problem(vc: VCenter) -> Problem | None:
    if vc.password_env and not os.environ.get(vc.password_env):
        state = "is empty" if vc.password_env in os.environ else "is not set"
        return Problem(f"vcenters.{vc.name}.password_env", f"environment variable {vc.password_env} {state}")
    if vc.password_file:
        try:
            if not vc.password():
                return Problem(f"vcenters.{vc.name}.password_file", f"{vc.password_file} is empty")
        except InventoryError as err:
            return Problem(f"vcenters.{vc.name}.password_file", str(err).split(": ", 2)[-1])
    return None


def config_problems(inventory: Inventory) -> list[Problem]:
    """Files the inventory names exist and are readable; password sources give a password."""
    problems = [p for key, path in named_files(inventory) if (p := _file_problem(key, path))]
    file_keys = {p.key for p in problems}
    for vc in inventory.vcenters:
        if f"vcenters.{vc.name}.password_file" in file_keys:
            continue
        problem = _secret_problem(vc)
        if problem:
            problems.append(problem)
    for role in ("shared", "dedicated"):
        if f"kms.{role}.password_file" not in file_keys and (problem := _kms_secret_problem(role, inventory)):
            problems.append(problem)
    return problems


def folder_problem(option: str, folder: Path) -> Problem | None:
    """The folder exists (or can be made) and takes a file: `reports/` must hold run folders."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not folder.is_dir():
            return Problem(option, f"{folder} is not a folder")
        with tempfile.TemporaryFile(dir=folder):
            pass
    except FileExistsError:
        return Problem(option, f"{folder} is a file, not a folder")
    except OSError as err:
        return Problem(option, f"{folder}: cannot write there: {err.strerror or err}")
    return None


# ---- the environment answers ------------------------------------------------------------------
def _vcenter_probe(vc: VCenter, timeout: float) -> Callable[[], Problem | None]:
    def probe() -> Problem | None:
        from harness.targets.connect import ConnectError, connect_soap
        try:
            si = connect_soap(vc, timeout=timeout, read_timeout=timeout)
        except ConnectError as err:
            kind = "config" if err.config else "unreachable"  # TLS or login refused: the inventory is wrong
            return Problem(f"vcenters.{vc.name}", str(err), kind)  # type: ignore[arg-type]
        except Exception as err:  # noqa: BLE001 - anything else a vCenter says is still "it did not work"
            return Problem(f"vcenters.{vc.name}", f"{type(err).__name__}: {err}", "unreachable")
        try:
            sessions.logout(si)
        except Exception:  # noqa: BLE001, S110 - the login was the check
            pass
        return None
    return probe


def _kms_client(ext, role: str, timeout: float, cert: Path | None = None, key: Path | None = None):  # noqa: ANN001, ANN202
    from harness.kms.client import KmipClient
    return KmipClient.from_paths(ext.address, ext.port, ext.ca, cert or ext.client_cert, key or ext.client_key,
                                 timeout=timeout, username=ext.username, password=ext.password(f"kms.{role}"),
                                 version=ext.kmip_version)


def _kms_probe(role: str, inventory: Inventory, timeout: float, notes: dict[str, str]) -> Callable[[], Problem | None]:
    """DiscoverVersions with the inventory's credential and version; the negotiated version goes to `notes`.

    Each way it can fail has its own message: credential required or refused, no common KMIP
    version, certificate trust (which side), not answering, an answer that is no KMS's.
    """
    ext = getattr(inventory.kms, role)

    def probe() -> Problem | None:
        from harness.kms.client import (KmsCredentialError, KmsFailure, KmsTrustError, KmsUnreachable,
                                        KmsVersionError)
        key = f"kms.{role}"
        try:
            with _kms_client(ext, role, timeout) as client:
                negotiated = client.check()
        except KmsCredentialError as err:
            hint = "" if ext.username else f" (set {key}.username and {key}.password_env or password_file)"
            return Problem(f"{key}.username", f"KMIP credential: {err.cause or err}{hint}")
        except KmsVersionError as err:
            return Problem(f"{key}.kmip_version", f"KMIP version: {err}")
        except KmsTrustError as err:
            return Problem(key, f"TLS trust (certificate) failed: {err}")
        except KmsUnreachable as err:
            return Problem(key, f"unreachable: {err}", "unreachable")
        except KmsFailure as err:
            return Problem(key, f"answers KMIP, but not as a KMS: {err}", "unreachable")
        except Exception as err:  # noqa: BLE001 - a bad PEM: name it, do not trace back
            return Problem(key, f"{type(err).__name__}: {err}")
        try:
            reads = _read_identity_note(ext, role, timeout)
        except Exception as err:  # noqa: BLE001 - the read identity's own problem, under its own key
            return Problem(f"{key}.read_identity", f"the harness's read identity cannot use this KMS: {err}")
        notes[key] = f"{key} ({ext.address}:{ext.port}): {negotiated.describe()}; {reads}"
        return None
    return probe


def _read_identity_note(ext, role: str, timeout: float) -> str:  # noqa: ANN001
    """How the harness will read vCenter's keys on this KMS (a separate identity is checked too)."""
    reader = ext.read_identity
    if reader == "none":
        return "read_identity: none: KMS-side checks are reported not observable"
    if reader is None:
        return "evidence reads with vCenter's client certificate"
    with _kms_client(ext, role, timeout, reader.client_cert, reader.client_key) as client:
        client.check()
    return "evidence reads with the read_identity certificate"


def reach_problems(inventory: Inventory, deadline: float = REACH_DEADLINE) -> list[Problem]:
    """`reach_report` without the notes."""
    return reach_report(inventory, deadline)[0]


def reach_report(inventory: Inventory, deadline: float = REACH_DEADLINE) -> tuple[list[Problem], list[str]]:
    """Each real (or already running vcsim) vCenter accepts the login; each external KMS answers KMIP.

    Returns the problems and one note per KMS that answered (what it negotiated). Fakes and vcsims
    the harness starts, and the embedded KMS, exist only once the run starts: nothing to check here.
    """
    timeout = min(inventory.timeouts.connect, deadline)
    probes: dict[str, Callable[[], Problem | None]] = {}
    notes: dict[str, str] = {}
    for vc in inventory.vcenters:
        if vc.target == "real" or (vc.target == "vcsim" and vc.url):
            probes[f"vcenters.{vc.name}"] = _vcenter_probe(vc, timeout)
    if not inventory.kms.embedded:
        for role in ("shared", "dedicated"):
            if getattr(inventory.kms, role) is not None:
                probes[f"kms.{role}"] = _kms_probe(role, inventory, timeout, notes)
    if not probes:
        return [], []
    results: dict[str, Problem | None] = {}

    def run(key: str, probe: Callable[[], Problem | None]) -> None:
        results[key] = probe()

    # Daemon threads: a vCenter that never answers must not keep the process alive past the deadline.
    threads = [threading.Thread(target=run, args=item, daemon=True, name=f"preflight {item[0]}")
               for item in probes.items()]
    for thread in threads:
        thread.start()
    end = time.monotonic() + deadline
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    problems = []
    for key in probes:
        if key not in results:
            problems.append(Problem(key, f"no answer within {deadline:g} s", "unreachable"))
        elif (problem := results[key]) is not None:
            problems.append(problem)
    return problems, [notes[key] for key in probes if key in notes]
