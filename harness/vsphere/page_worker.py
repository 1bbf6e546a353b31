"""A worker process that parses raw RetrievePropertiesEx pages into VM posture records.

Run as `python -m harness.vsphere.page_worker` by `page_parsers.PageParsers`; it imports pyVmomi and
`vm_posture` only (not the harness's CLI, KMS or report code), so each worker costs ~26 MiB, not the
~45 MiB of a process that imported the whole harness. Protocol on stdin/stdout, one job at a time:
a request is the length-prefixed API version and the length-prefixed raw reply (`send_page`); the answer
a length-prefixed pickle of ("ok", records) | ("unknown-type", name) | ("error", text). EOF on stdin
ends the worker.
"""
from __future__ import annotations

import pickle
import struct
import sys
from typing import Any, BinaryIO

HEADER = struct.Struct("!Q")


def send(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def receive(stream: BinaryIO) -> Any:
    """The next message, or None at EOF."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def parse_page(version: str, raw: bytes) -> tuple[str, Any]:
    """One page's records, or why it could not be parsed (an unknown type is named, as in-process)."""
    from harness.vsphere.vm_posture import page_records
    try:
        return "ok", page_records(raw, version)
    except KeyError as err:
        return "unknown-type", str(err.args[0] if err.args else err)
    except Exception as err:  # noqa: BLE001 - reported to the parent, which raises it there
        return "error", f"{type(err).__name__}: {err}"


def send_page(stream: BinaryIO, version: str, raw: bytes) -> None:
    """A job: the API version and the raw reply as they are (no pickled copy of a 4 MiB page)."""
    name = version.encode("ascii")
    stream.write(HEADER.pack(len(name)) + name + HEADER.pack(len(raw)))
    stream.write(raw)
    stream.flush()


def receive_page(stream: BinaryIO) -> tuple[str, bytes] | None:
    """The next job, or None at EOF."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    name = stream.read(HEADER.unpack(header)[0])
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    raw = stream.read(size)
    return (name.decode("ascii"), raw) if len(raw) == size else None


def main() -> int:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while (job := receive_page(stdin)) is not None:
        version, raw = job
        del job
        answer = parse_page(version, raw)
        del raw
        send(stdout, answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
