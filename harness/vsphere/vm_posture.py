"""One VM's encryption posture as plain data: the record `vcrypt audit` reports for each VM.

Why plain data (str, bool, None, dicts and lists of them): the record is made where a page of
RetrievePropertiesEx is parsed, which may be a worker process (`page_parsers.py`); plain data
crosses the pipe cheaply and the parent never holds pyVmomi objects for the whole inventory.
Only this module turns `posture.VM_PATHS` values into the record, in a worker and in-process alike,
so both give the same report.
"""
from __future__ import annotations

import sys
from typing import Any

from pyVmomi import vim


def key_ref(key_id: Any) -> dict[str, str] | None:
    """A CryptoKeyId as {"provider", "key"}; None when unset (the object is not encrypted)."""
    if key_id is None:
        return None
    return {"provider": str(key_id.providerId.id) if key_id.providerId else "", "key": str(key_id.keyId)}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)   # pyVmomi enum values are str subclasses: plain str


def vm_posture(moid: str, props: dict[str, Any]) -> dict[str, Any]:
    """The audit's record of one VM from its `VM_PATHS` values (unset paths absent from `props`).

    Every VirtualDisk is listed with its own key (VirtualDisk.backing.keyId): a disk may be encrypted
    on a VM whose home is not (a state vSphere should refuse, which is why an auditor must see it).
    """
    disks = [{"label": str(d.deviceInfo.label) if d.deviceInfo else str(d.key),
              "key": key_ref(getattr(d.backing, "keyId", None))}
             for d in props.get("config.hardware.device") or [] if isinstance(d, vim.vm.device.VirtualDisk)]
    key = key_ref(props.get("config.keyId"))
    return {"name": str(props.get("name", moid)), "moid": str(moid), "encrypted": key is not None, "key": key,
            "disks": disks, "migrate_encryption": _text(props.get("config.migrateEncryption")),
            "crypto_state": _text(props.get("runtime.cryptoState")),
            "power": _text(props.get("runtime.powerState")), "template": bool(props.get("config.template"))}


def page_records(raw: bytes, version: str) -> list[dict[str, Any]]:
    """The records of one raw RetrievePropertiesEx reply, each VM's objects dropped once recorded.

    Equal key dicts within a page are one object (and interned labels and states): 10,000 records
    stay small in the parent, and pickling them from a worker keeps the sharing."""
    from harness.vsphere.raw_soap import parse_objects
    records: list[dict[str, Any]] = []
    shared: dict[Any, Any] = {}

    def take(content: Any) -> None:
        record = vm_posture(content.obj._moId, {p.name: p.val for p in content.propSet or []})
        records.append(_share(record, shared))

    parse_objects(raw, version, take)
    return records


def _share(record: dict[str, Any], shared: dict[Any, Any]) -> dict[str, Any]:
    def one(key: dict[str, str] | None) -> dict[str, str] | None:
        return None if key is None else shared.setdefault((key["provider"], key["key"]), key)
    record["key"] = one(record["key"])
    for disk in record["disks"]:
        disk["label"] = sys.intern(disk["label"])
        disk["key"] = one(disk["key"])
    for field in ("migrate_encryption", "crypto_state", "power"):
        if record[field] is not None:
            record[field] = sys.intern(record[field])
    return record
