"""One VM's encryption posture as plain data: the record `vcrypt audit` reports for each VM.

Why plain data (str, bool, None, dicts and lists of them): the record is made where a page of
RetrievePropertiesEx is parsed, which may be a worker process (`page_parsers.py`); plain data
crosses the pipe cheaply and the parent never holds pyVmomi objects for the whole inventory.
Only this module turns `posture.VM_PATHS` values into the record, in a worker and in-process alike,
so both give the same report.
"""
from __future__ import annotations

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


def page_postures(result: Any) -> list[dict[str, Any]]:
    """The records of one RetrievePropertiesEx reply (a RetrieveResult, or None for no objects)."""
    if result is None:
        return []
    return [vm_posture(o.obj._moId, {p.name: p.val for p in o.propSet or []}) for o in result.objects or []]
