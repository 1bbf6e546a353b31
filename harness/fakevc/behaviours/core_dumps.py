"""Encrypted core dumps on hosts (EVT-COREDUMP): a fault injection a real vCenter cannot be asked for.

A crashing hostd, vpxa or application on an ESXi host in crypto-safe mode writes its core file
encrypted with the host key; the host reports it and vCenter shows a warning EventEx
`esx.problem.{hostd,vpxa,application}.core.dumped.encrypted` on the host, naming the file and
where it is. Arguments are positional, as ESXi's VOB-based events carry them:
application: 1 = application, 2 = crash count, 3 = key id, 4 = core file path;
hostd / vpxa: 1 = crash count, 2 = key id, 3 = core file path (plain dumps: no key id argument).
"""
from __future__ import annotations

import posixpath
from typing import Any

from harness.fakevc.defects import defect
from harness.fakevc.model.host import HostSystem
from harness.fakevc.server import FakeVCenter

CORE_DIR = "/var/core"
KINDS = ("hostd", "vpxa", "application")

NO_FILE_NAME = defect(
    "evt-coredump-no-filename", "EVT-COREDUMP",
    "the encrypted core dump event does not say which file was written, nor where")
WRONG_SEVERITY = defect(
    "evt-coredump-wrong-severity", "EVT-COREDUMP",
    "the encrypted core dump event is posted as info instead of a warning")


def _host(vc: FakeVCenter, host: Any) -> HostSystem:
    """The host model for a model object, a moId, a MoRef or a host name."""
    if isinstance(host, HostSystem):
        return host
    key = getattr(host, "_moId", host)
    found = vc.objects.get(key)
    if isinstance(found, HostSystem):
        return found
    for candidate in vc.hosts():
        if candidate.name == key:
            return candidate
    raise ValueError(f"no host {host!r} on fake vCenter {vc.name}")


def add_core_dump(vc: FakeVCenter, host: Any, kind: str, file_name: str, *, encrypted: bool = True,
                  application: str = "vmx", key: tuple[str, str] | None = None) -> Any:
    """Simulate a crash of `kind` on `host` that left `file_name` in /var/core; returns the posted event.

    An encrypted dump uses `key` or else the host key, so the host must be in crypto-safe mode
    (ValueError otherwise: an ESXi host without a host key writes plain core dumps).
    """
    if kind not in KINDS:
        raise ValueError(f"core dump kind must be one of {KINDS}, not {kind!r}")
    model = _host(vc, host)
    dump_key = key or model.host_key
    if encrypted and dump_key is None:
        raise ValueError(f"host {model.name} has no host key (not crypto-safe): its core dumps are not encrypted")
    path = file_name if file_name.startswith("/") else posixpath.join(CORE_DIR, file_name)
    model.core_dumps.append(path)
    crashes = 1 + len([s for s in vc.events.events
                       if s.type_id.startswith(f"esx.problem.{kind}.core.dumped") and model.moid in s.entities])
    name, location = posixpath.basename(path), posixpath.dirname(path)
    key_text = dump_key[1] if dump_key else ""
    suffix = ".encrypted" if encrypted else ""
    what = {"hostd": "Hostd", "vpxa": "Vpxa", "application": f"Application {application}"}[kind]
    hidden = vc.world.defects.on(NO_FILE_NAME)
    if encrypted:
        where = "" if hidden else f" An encrypted core file {name} might have been created in {location}."
        message = (f"{what} crashed ({crashes} time(s) so far) and an encrypted core file using keyId "
                   f"{key_text} was created.{where}")
    else:
        where = "" if hidden else f" A core file {name} might have been created in {location}."
        message = f"{what} crashed ({crashes} time(s) so far).{where}"
    values = ([application] if kind == "application" else []) + [str(crashes)]
    values += ([key_text] if encrypted else []) + ["" if hidden else path]
    arguments = {str(i): v for i, v in enumerate(values, start=1)}
    severity = "info" if vc.world.defects.on(WRONG_SEVERITY) else "warning"
    return vc.events.post(f"esx.problem.{kind}.core.dumped{suffix}", entity=model, severity=severity,
                          message=message, arguments=arguments)


def add_encrypted_core_dump(vc: FakeVCenter, host: Any, kind: str, file_name: str, **options: Any) -> Any:
    """The EVT-COREDUMP fault injection: an encrypted core dump of `kind` on `host`."""
    return add_core_dump(vc, host, kind, file_name, encrypted=True, **options)

