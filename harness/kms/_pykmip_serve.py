"""Subprocess entry point for one PyKMIP server (run by path: `python -P .../_pykmip_serve.py`).

It runs stock `kmip.services.server.KmipServer` with four harness additions that
PyKMIP cannot be configured to do:

* UID range: the sqlite autoincrement counter is seeded to `--uid-base`, so
  separate clusters never hand out the same UID.
* Fault injection: while `<workdir>/refuse_create` exists, every KMIP Create
  fails (PyKMIP never policy-checks Create). Checked per request, so it takes
  effect without a restart.
* Idle client connections do not time out (PyKMIP's 10 s default only logs a
  traceback every 10 s and keeps the session anyway).
* Fast, clean shutdown on SIGINT: PyKMIP's own stop() joins every session
  thread for up to 10 s each; we wait for the engine lock (no request half
  done), stop the multiprocessing manager and exit.

It also exits if the harness process that started it disappears, so a crashed
run does not leave a KMS behind. It imports nothing from `harness` (only the
standard library and PyKMIP), so it starts fast and runs by file path.
"""

from __future__ import annotations

import argparse
import configparser
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

REFUSE_CREATE_FLAG = "refuse_create"
EXIT_STARTUP_FAILED = 3


def _import_kmip():  # noqa: ANN202 - returns modules
    """Import PyKMIP with its import-time deprecation noise silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from kmip.core import enums, exceptions
        from kmip.pie import objects as pie_objects  # noqa: F401 - registers tables
        from kmip.pie import sqltypes
        from kmip.services.server import engine, server
    return enums, exceptions, sqltypes, engine, server


def seed_uid_base(database_path: str, uid_base: int, sqltypes) -> None:  # noqa: ANN001
    """Make the next managed-object UID at least uid_base + 1 (never lowers it)."""
    import sqlalchemy

    db = sqlalchemy.create_engine(f"sqlite:///{database_path}")
    sqltypes.Base.metadata.create_all(db)
    db.dispose()
    if uid_base <= 0:
        return
    con = sqlite3.connect(database_path)
    try:
        with con:
            row = con.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'managed_objects'"
            ).fetchone()
            if row is None:
                con.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('managed_objects', ?)",
                    (uid_base,),
                )
            elif row[0] < uid_base:
                con.execute(
                    "UPDATE sqlite_sequence SET seq = ? WHERE name = 'managed_objects'",
                    (uid_base,),
                )
    finally:
        con.close()


def install_create_fault(workdir: Path, enums, exceptions, engine) -> None:  # noqa: ANN001
    """Wrap KmipEngine._process_create so a flag file makes Create fail."""
    flag = workdir / REFUSE_CREATE_FLAG
    original = engine.KmipEngine._process_create

    def _process_create(self, payload):  # noqa: ANN001, ANN202
        try:
            reason = flag.read_text().strip() or "key creation refused"
        except FileNotFoundError:
            return original(self, payload)
        self._logger.warning("Create refused by harness fault injection: %s", reason)
        raise exceptions.KmipError(
            status=enums.ResultStatus.OPERATION_FAILED,
            reason=enums.ResultReason.GENERAL_FAILURE,
            message=f"Create refused: {reason}",
        )

    engine.KmipEngine._process_create = _process_create


def keep_idle_sessions_quiet(server) -> None:  # noqa: ANN001
    """Accepted connections inherit PyKMIP's 10 s socket timeout; clear it (see module doc)."""
    original = server.KmipServer._setup_connection_handler

    def _setup_connection_handler(self, connection, address):  # noqa: ANN001, ANN202
        connection.settimeout(None)
        return original(self, connection, address)

    server.KmipServer._setup_connection_handler = _setup_connection_handler


def watch_parent(parent_pid: int) -> None:
    """Interrupt ourselves when the harness process is gone (re-parented)."""

    def _watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGINT)
                return

    threading.Thread(target=_watch, name="parent-watch", daemon=True).start()


def fast_exit(kmip_server, code: int) -> None:  # noqa: ANN001
    """Stop the manager process and exit without joining session threads."""
    lock = getattr(getattr(kmip_server, "_engine", None), "_lock", None)
    if lock is not None:
        lock.acquire(timeout=5.0)
    try:
        sock = getattr(kmip_server, "_socket", None)
        if sock is not None:
            sock.close()
    except OSError:
        pass
    manager = getattr(kmip_server, "manager", None)
    if manager is not None:
        try:
            manager.shutdown()
        except Exception:  # noqa: BLE001 - exiting anyway
            pass
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="_pykmip_serve")
    parser.add_argument("--config", required=True, help="PyKMIP server.conf")
    parser.add_argument("--log", required=True, help="server log file")
    parser.add_argument("--workdir", required=True, help="holds the fault-injection flag")
    parser.add_argument("--uid-base", type=int, default=0)
    parser.add_argument("--parent-pid", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    enums, exceptions, sqltypes, engine, server = _import_kmip()
    conf = configparser.ConfigParser()
    conf.read(args.config)
    seed_uid_base(conf.get("server", "database_path"), args.uid_base, sqltypes)
    install_create_fault(Path(args.workdir), enums, exceptions, engine)
    keep_idle_sessions_quiet(server)
    if args.parent_pid:
        watch_parent(args.parent_pid)

    warnings.simplefilter("ignore")  # PROTOCOL_TLSv1_2 etc. are deprecated names
    kmip_server = server.KmipServer(
        config_path=args.config, log_path=args.log, live_policies=False
    )
    try:
        kmip_server.start()
    except BaseException:  # noqa: BLE001 - report any start-up failure and exit
        print("KMS start-up failed:", file=sys.stderr)
        traceback.print_exc()
        fast_exit(kmip_server, EXIT_STARTUP_FAILED)
    print(f"KMS serving on {conf.get('server', 'hostname')}:{conf.get('server', 'port')}", flush=True)
    try:
        kmip_server.serve()
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
    fast_exit(kmip_server, 0)


if __name__ == "__main__":
    main()
