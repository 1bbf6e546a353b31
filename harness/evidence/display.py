"""How recorded values appear on the report page: compact, readable, bounded.

The evidence files keep every value in full (JSON); the page shows a short form a person can
read (`VirtualDisk(key=2000, backing=FlatVer2BackingInfo(keyId=CryptoKeyId(keyId=100128, ...)))`,
no JSON quotes, which HTML escaping would multiply) and cuts long values with a note saying where
the full value is. This keeps the default report small enough to open and print.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from harness.evidence.verdicts import HostKeys

# Characters of one value (an argument, a property, a result) shown on the page.
VALUE_LIMIT = 180
ARG_LIMIT = 48
RESULT_LIMIT = 44
# Raw calls shown per test (the evidence file has all of them).
CALLS_SHOWN = 15
# A passed test's calls are context, not the finding: the first few show the path, the evidence
# file has all of them (keeps report.html small enough to mail with 100+ tests).
CALLS_SHOWN_PASSED = 5
# Columns of the host-by-key grid when a test names no keys of its own.
GRID_KEYS = 8


# Fields the page leaves out of data objects (the evidence file keeps them): layout and bookkeeping
# that bury the encryption facts (keyId, crypto, policy) a reader looks for.
_NOISE = frozenset({"deviceInfo", "datastore", "diskMode", "thinProvisioned", "controllerKey", "unitNumber",
                    "busNumber", "sharedBus", "capacityInKB", "capacityInBytes", "parent", "description",
                    "createTime", "quiesced", "vm", "backupManifest", "replaySupported", "uuid", "contentId",
                    "digestEnabled", "sharing", "storageIOAllocation", "connectable", "slotInfo", "fileName"})


def _short_type(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def compact(value: Any) -> str:
    """A JSON value as one readable line: data objects as `Type(field=value)`, strings bare."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return short_ref(value) if value.startswith("vim.") else value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(compact(v) for v in value) + "]"
    if isinstance(value, dict):
        fields = [f"{k}={compact(v)}" for k, v in value.items()
                  if k != "_type" and k not in _NOISE and v not in ("", None)]
        kind = _short_type(str(value.get("_type", "")))
        if kind == "CryptoKeyId" and "keyId" in value:  # 100128@vcrypt-shared-kms, as the grid shows keys
            provider = value.get("providerId")
            return f"{value['keyId']}@{provider.get('id', '') if isinstance(provider, dict) else provider or ''}"
        if kind == "KeyProviderId" and "id" in value:
            return str(value["id"])
        body = ", ".join(fields)
        return f"{_short_type(str(value['_type']))}({body})" if "_type" in value else "{" + body + "}"
    return str(value)


def _brief(value: Any) -> str:
    """A list item reduced to its type and first scalar field: `VirtualLsiLogicController(key=1000)`."""
    if isinstance(value, dict) and "_type" in value:
        first = next(((k, v) for k, v in value.items() if k != "_type" and isinstance(v, (str, int, float))), None)
        return f"{_short_type(str(value['_type']))}({first[0]}={compact(first[1])})" if first else _short_type(value["_type"])
    return compact(value)


def _key_bearing(value: Any) -> bool:
    return "keyId" in compact(value) or "crypto" in compact(value).lower()


def bounded(value: Any, limit: int = VALUE_LIMIT) -> str:
    """`compact(value)`, cut at `limit` characters with a pointer to the evidence file.

    A long list keeps its key-bearing items (disks with a `keyId`) whole and shows the others
    by type only, so cutting never hides the encryption facts the report is about.
    """
    text = compact(value)
    if len(text) <= limit:
        return text
    if isinstance(value, list) and any(_key_bearing(v) for v in value):
        text = "[" + ", ".join(compact(v) if _key_bearing(v) else _brief(v) for v in value) + "]"
        if len(text) <= 2 * limit:
            return text + " (shortened)"
        others = Counter(_brief(v).split("(", 1)[0] for v in value if not _key_bearing(v))
        listed = ", ".join(f"{n}× {kind}" for kind, n in others.most_common())
        keyed = ", ".join(compact(v) for v in value if _key_bearing(v))
        return f"[{keyed}, … +{sum(others.values())} other items: {listed}] (shortened)"
    return f"{text[:limit]}…(+{len(text) - limit})"


@dataclass(frozen=True)
class GridView:
    """The host-by-key grid reduced to the keys that matter, and a count of the others."""

    hosts: tuple[str, ...]
    keys: tuple[str, ...]  # shown columns
    focus: frozenset[str]  # highlighted columns (the keys the test is about)
    holds: dict[str, frozenset[str]]
    other_held: dict[str, int]  # per host: keys held that are not shown
    total_keys: int

    @property
    def hidden(self) -> int:
        return self.total_keys - len(self.keys)

    @staticmethod
    def key_id(key: str) -> str:
        """`vcrypt-shared-kms/100128` -> `100128` (the provider is in the cell's title)."""
        return key.rsplit("/", 1)[-1]


def grid_view(grid: HostKeys, limit: int = GRID_KEYS) -> GridView:
    """Show the test's own keys (or, if it named none, the first `limit`); count the rest per host."""
    keys = tuple(grid.focus) if grid.focus else grid.keys[:limit]
    shown = set(keys)
    holds = {h: frozenset(grid.holds.get(h, frozenset())) for h in grid.hosts}
    return GridView(
        hosts=grid.hosts,
        keys=keys,
        focus=frozenset(grid.focus),
        holds=holds,
        other_held={h: len(held - shown) for h, held in holds.items()},
        total_keys=len(grid.keys),
    )


def short_ref(text: str) -> str:
    """`vim.encryption.CryptoManagerKmip:CryptoManager` -> `CryptoManagerKmip:CryptoManager`."""
    kind, sep, moid = str(text).partition(":")
    return f"{_short_type(kind)}{sep}{moid}" if sep and kind.startswith("vim.") and " " not in kind else str(text)


@dataclass(frozen=True)
class ObservationRow:
    """One observation with only what differs from the previous read of the same object."""

    label: str
    phase: str
    vcenter: str
    object: str
    changed: dict[str, Any]
    same: tuple[str, ...]  # properties equal to the earlier read
    same_as: str  # label of that earlier read ("" if none)


def observation_rows(observations: Any) -> list[ObservationRow]:
    """Before/after reads of one object: the later row lists the changed properties in full and
    names the unchanged ones, which is what a reader compares anyway (and keeps the page small)."""
    last: dict[tuple[str, str], Any] = {}
    rows = []
    for o in observations:
        key = (o.vcenter, o.object)
        previous = last.get(key)
        same = tuple(p for p, v in o.properties.items() if previous is not None and p in previous.properties
                     and previous.properties[p] == v)
        rows.append(ObservationRow(o.label, o.phase, o.vcenter, o.object,
                                   {p: v for p, v in o.properties.items() if p not in same}, same,
                                   previous.label if previous is not None and same else ""))
        last[key] = o
    return rows


def notes_not_in_checks(evidence: Any) -> list[Any]:
    """Notes, less the `refusal: <what>` notes whose fault the checks table already shows."""
    checked = {c.what for c in getattr(evidence, "checks", ())}
    return [n for n in evidence.notes if not (n.label.startswith("refusal: ") and n.label[9:] in checked)]
