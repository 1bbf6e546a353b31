"""The inputs of `vcrypt merge`: run folders checked before anything of them is believed.

Each folder is verified against its manifest (and signature, given a public key) by the same code
as `vcrypt verify-evidence`; then grouped by lab (the inventory it ran, by content, and its vCenter
pair) and, per lab, its shards checked to fit together: one split (the same N and collection),
each shard at most once, no test in two shards, every planned test with a result. What does not
fit is refused, or with `--allow-partial` left out / marked "not run", and said.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.evidence.manifest import MANIFEST, SIGNATURE, read_manifest
from harness.evidence.verify import verify_run_folder


class MergeRefused(Exception):
    """Nothing is written; `lines` name each input and its problem."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("; ".join(lines))


@dataclass
class ShardInput:
    path: Path
    run: dict[str, Any]
    tests: list[dict[str, Any]]
    lab_key: str
    lab_name: str
    index: int
    total: int
    collection: str | None
    split: str | None
    planned: list[str] | None
    manifest_sha256: str
    signature: str
    tampered: list[str]
    listed: dict[str, str] = field(default_factory=dict)  # the manifest: path -> SHA-256
    unfinished: list[str] = field(default_factory=list)  # why this input is incomplete
    lab: str = ""  # the label in the merged folder, set once all inputs are known

    @property
    def shard_label(self) -> str:
        return f"{self.index}/{self.total}"

    @property
    def slug(self) -> str:
        return f"{self.lab}-shard-{self.index}-of-{self.total}"


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _lab_identity(run: dict[str, Any]) -> tuple[str, str]:
    """(key, name): the inventory's content and the vCenter pair it names; the name from its file."""
    prov = run.get("provenance") if isinstance(run.get("provenance"), dict) else {}
    inventory = prov.get("inventory") if isinstance(prov.get("inventory"), dict) else {}
    digest = str(inventory.get("sha256") or run.get("inventory") or "")
    vcenters = ",".join(str(v.get("name")) for v in run.get("vcenters") or [] if isinstance(v, dict))
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(str(run.get("inventory") or "lab")).stem).strip("-.") or "lab"
    return f"{run.get('target')}|{vcenters}|{digest}", name


def load_input(path: Path, public_key: Path | None) -> ShardInput:
    """One input folder; raises MergeRefused when it is no run folder at all."""
    if not path.is_dir():
        raise MergeRefused([f"{path}: no such run folder"])
    raw = {name: _bytes(path / name) for name in ("run.json", "results.json")}  # read once, before the check
    # SigningKeyError: the caller's usage error. Folders are taken under any name (CI artifact downloads).
    verification = verify_run_folder(path, public_key, named_by_run_id=False)
    listed = read_manifest(path)[0] if (path / MANIFEST).is_file() else {}
    for name, data in raw.items():  # what is merged is exactly what was verified
        if data is not None and listed.get(name) not in (None, hashlib.sha256(data).hexdigest()) \
                and f"changed: {name}" not in verification.problems:
            verification.problems.append(f"changed: {name} (while being read)")
    try:
        missing = [name for name, data in raw.items() if data is None]
        if missing:
            raise ValueError(f"{missing[0]} missing")
        run = json.loads(raw["run.json"] or b"")
        tests = json.loads(raw["results.json"] or b"")["tests"]
        if not isinstance(run, dict) or not isinstance(tests, list):
            raise ValueError("unexpected shape")
    except (OSError, ValueError, KeyError, TypeError) as err:
        if verification.problems:  # e.g. results.json changed into something unreadable
            return _unreadable(path, verification.problems)
        raise MergeRefused([f"{path}: not a run folder ({err})"]) from None
    if "merge" in run:
        raise MergeRefused([f"{path}: is a merged folder; merge the shards' own run folders (its inputs/ names them)"])
    shard = run.get("shard") if isinstance(run.get("shard"), dict) else {}
    index, total = shard.get("index") or 1, shard.get("total") or 1
    if not (isinstance(index, int) and isinstance(total, int) and 1 <= index <= total):
        raise MergeRefused([f"{path}: run.json: shard {index!r}/{total!r} is not K/N"])
    planned = shard.get("tests")
    key, name = _lab_identity(run)
    item = ShardInput(
        path=path, run=run, tests=[t for t in tests if isinstance(t, dict)], lab_key=key, lab_name=name,
        index=index, total=total, collection=shard.get("collection_sha256"), split=shard.get("split_sha256"),
        planned=[str(n) for n in planned] if isinstance(planned, list) else None,
        manifest_sha256=_sha256(path / MANIFEST), signature=verification.status, tampered=verification.problems,
        listed=listed)
    item.unfinished = _unfinished(item)
    return item


def _unreadable(path: Path, problems: list[str]) -> ShardInput:
    return ShardInput(path=path, run={}, tests=[], lab_key=f"unreadable|{path}", lab_name="unreadable", index=1,
                      total=1, collection=None, split=None, planned=None, manifest_sha256=_sha256(path / MANIFEST),
                      signature="", tampered=problems)


def _bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def copy_verified(item: "ShardInput", rel: str, dst: Path) -> None:
    """Copy one file of a verified input; refuse if it no longer matches the input's manifest."""
    data = (item.path / rel).read_bytes()
    if item.listed.get(rel) != hashlib.sha256(data).hexdigest():
        raise MergeRefused([f"{item.path}: changed: {rel} (after it was verified)"])
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data)


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _unfinished(item: ShardInput) -> list[str]:
    reasons = []
    if item.run.get("interrupted"):
        reasons.append("the run was interrupted (Ctrl-C or SIGTERM)")
    stopped = [t.get("nodeid") for t in item.tests if t.get("outcome") == "interrupted"]
    if stopped:
        reasons.append(f"{len(stopped)} test(s) never finished, e.g. {stopped[0]}")
    if item.run.get("exit_status") == 70:
        reasons.append("the run ended in an internal error (exit 70)")
    if item.planned is not None:
        seen = {t.get("nodeid") for t in item.tests}
        missing = [n for n in item.planned if n not in seen]
        if missing:
            reasons.append(f"{len(missing)} planned test(s) have no result, e.g. {missing[0]}")
    return reasons


@dataclass
class Plan:
    """What will be merged, and every reason the result is partial."""
    inputs: list[ShardInput]
    left_out: list[ShardInput]
    labs: dict[str, list[ShardInput]]  # label -> its inputs, in shard order
    partial: list[str]


def plan_merge(inputs: list[ShardInput], allow_partial: bool) -> Plan:
    """Group by lab and check the shards fit; raises MergeRefused (always for doubled work)."""
    refused: list[str] = []   # never merged
    partial: list[str] = []   # merged with --allow-partial, else refused
    left_out = [i for i in inputs if i.tampered]
    for item in left_out:
        partial.append(f"{item.path}: does not match its manifest or signature "
                       f"({'; '.join(item.tampered[:3])})" + (": left out" if allow_partial else ""))
    kept = [i for i in inputs if not i.tampered]
    for item in kept:
        partial += [f"{item.path}: incomplete: {reason}" for reason in item.unfinished]
    by_key: dict[str, list[ShardInput]] = {}
    for item in kept:
        by_key.setdefault(item.lab_key, []).append(item)
    labs = _label_labs(by_key)
    for label, group in labs.items():
        refused += _doubled(label, group)
        partial += _missing(label, group)
    if refused:
        raise MergeRefused(refused)
    if partial and not allow_partial:
        raise MergeRefused(partial + ["give --allow-partial to merge what there is; the result then says it is partial"])
    if not kept:
        raise MergeRefused(["nothing to merge: every input was left out"])
    return Plan(inputs=kept, left_out=left_out, labs=labs, partial=partial)


def _label_labs(by_key: dict[str, list[ShardInput]]) -> dict[str, list[ShardInput]]:
    labs: dict[str, list[ShardInput]] = {}
    for key in sorted(by_key, key=lambda k: (by_key[k][0].lab_name, k)):
        group = sorted(by_key[key], key=lambda i: (i.index, str(i.path)))
        label, n = group[0].lab_name, 2
        while label in labs:
            label, n = f"{group[0].lab_name}-{n}", n + 1
        for item in group:
            item.lab = label
        labs[label] = group
    return labs


def _doubled(label: str, group: list[ShardInput]) -> list[str]:
    """Work that would count twice (or come from two different splits): never merged."""
    problems = []
    totals = sorted({i.total for i in group})
    if len(totals) > 1:
        problems.append(f"lab {label}: its shards were split differently (N = {', '.join(map(str, totals))})")
    collections = {i.collection for i in group if i.collection}
    if len(collections) > 1:
        problems.append(f"lab {label}: its shards were split from different collections of tests "
                        "(another harness version or selection)")
    elif len({i.split for i in group if i.split}) > 1:
        problems.append(f"lab {label}: its shards were balanced differently (give every shard the same "
                        "--durations-from, or none)")
    seen: dict[int, Path] = {}
    for item in group:
        if item.index in seen:
            problems.append(f"lab {label}: shard {item.shard_label} given twice: {seen[item.index]} and {item.path}")
        seen.setdefault(item.index, item.path)
    owner: dict[str, Path] = {}
    for item in group:
        for test in item.tests:
            nodeid = str(test.get("nodeid"))
            if nodeid in owner and owner[nodeid] != item.path:
                problems.append(f"lab {label}: test {nodeid} ran in both {owner[nodeid]} and {item.path}")
                break
            owner[nodeid] = item.path
    return problems


def _missing(label: str, group: list[ShardInput]) -> list[str]:
    total = max(i.total for i in group)
    have = {i.index for i in group}
    return [f"lab {label}: shard {k}/{total} missing: its rules are not run" for k in range(1, total + 1) if k not in have]


def describe_input(item: ShardInput, included: bool) -> dict[str, Any]:
    """The input as the merged run.json records it."""
    return {"path": str(item.path), "run_id": item.run.get("run_id"), "lab": item.lab or item.lab_name,
            "shard": item.shard_label, "manifest_sha256": item.manifest_sha256, "signature": item.signature,
            "included": included, "problems": item.tampered + item.unfinished,
            "copy": f"inputs/{item.slug}/" if included else None}


SIGNED_FILES = (MANIFEST, SIGNATURE, "run.json")
