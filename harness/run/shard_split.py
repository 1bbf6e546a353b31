"""`--shard K/N`: run one deterministic part of the suites, so a CI job matrix can share the work.

Why a split of its own (not pytest-split or xdist): a rule's verdict needs all of its tests in one
run, so tests are grouped by the rules they carry (a test with two rules joins both rules' groups:
union-find), and the groups, not the tests, are dealt out. Every job computes the same split
from the same collection, with no coordinator: groups are dealt largest first to the least loaded
shard (ties: the lower index), by the durations of an earlier run folder (`--durations-from`) or,
without one, by test counts. The shard and its planned tests go into run.json, so `vcrypt merge`
can prove that the shards together ran every test exactly once.

`--shard auto` reads the CI's own index: VCRYPT_SHARD=K/N (set it from a GitHub Actions matrix
value or a Jenkins parallel stage), else GitLab's 1-based CI_NODE_INDEX / CI_NODE_TOTAL
(https://docs.gitlab.com/ci/yaml/#parallel, https://docs.gitlab.com/ci/variables/predefined_variables/).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")
MAX_SHARDS = 1000
NO_TESTS_COLLECTED = 5  # pytest.ExitCode.NO_TESTS_COLLECTED


class ShardError(ValueError):
    """A --shard or --durations-from value the harness refuses, phrased for the user (one line)."""


@dataclass(frozen=True)
class Shard:
    index: int   # 1-based
    total: int
    source: str  # where K/N came from: "--shard", "VCRYPT_SHARD", "CI_NODE_INDEX/CI_NODE_TOTAL"

    @property
    def label(self) -> str:
        return f"{self.index}/{self.total}"


def _parse(text: str, where: str) -> Shard:
    m = _SPEC.fullmatch(text)
    if not m:
        raise ShardError(f"{where}: {text!r} is not K/N (e.g. 1/2: the first of two shards)")
    index, total = int(m.group(1)), int(m.group(2))
    if total < 1 or total > MAX_SHARDS:
        raise ShardError(f"{where}: {text!r}: N must be between 1 and {MAX_SHARDS}")
    if not 1 <= index <= total:
        raise ShardError(f"{where}: {text!r}: K must be between 1 and N ({total}); shards count from 1")
    return Shard(index, total, where if where != "--shard" else "--shard")


def parse_shard(text: str, environ: Mapping[str, str] | None = None) -> Shard:
    """K/N, or `auto`: VCRYPT_SHARD, else GitLab's CI_NODE_INDEX/CI_NODE_TOTAL. Raises ShardError."""
    if text.strip().lower() != "auto":
        return _parse(text, "--shard")
    env = os.environ if environ is None else environ
    if env.get("VCRYPT_SHARD", "").strip():
        return _parse(env["VCRYPT_SHARD"], "VCRYPT_SHARD")
    index, total = env.get("CI_NODE_INDEX", "").strip(), env.get("CI_NODE_TOTAL", "").strip()
    # GitLab's predefined variables: CI_NODE_INDEX (1-based) only for `parallel:` jobs; CI_NODE_TOTAL "is set
    # to 1" for a job that is not parallelized (quoted in https://gitlab.com/gitlab-org/gitlab/-/issues/30902).
    if total and not index and total == "1":
        return Shard(1, 1, "CI_NODE_TOTAL")
    if index or total:
        return _parse(f"{index or '?'}/{total or '?'}", "CI_NODE_INDEX/CI_NODE_TOTAL")
    raise ShardError("--shard auto: neither VCRYPT_SHARD (K/N) nor CI_NODE_INDEX/CI_NODE_TOTAL is set; "
                     "give --shard K/N")


def load_durations(run_dir: Path) -> dict[str, float]:
    """nodeid -> seconds from an earlier run folder's results.json. Raises ShardError."""
    path = Path(run_dir) / "results.json"
    try:
        tests = json.loads(path.read_text(encoding="utf-8")).get("tests")
    except (OSError, ValueError, AttributeError) as err:
        reason = getattr(err, "strerror", None) or err
        raise ShardError(f"--durations-from {run_dir}: not a run folder (results.json: {reason})") from None
    if not isinstance(tests, list):
        raise ShardError(f"--durations-from {run_dir}: results.json has no tests list")
    out: dict[str, float] = {}
    for entry in tests:
        if isinstance(entry, dict) and isinstance(entry.get("nodeid"), str):
            try:
                out[entry["nodeid"]] = max(0.0, float(entry.get("duration_s") or 0.0))
            except (TypeError, ValueError):
                continue
    return out


class _Groups:
    """Union-find over test indices, joined through shared rule ids."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def rule_groups(tests: Sequence[tuple[str, Sequence[str]]]) -> list[list[str]]:
    """Node ids grouped so that every rule's tests share one group; sorted, deterministic."""
    groups = _Groups(len(tests))
    first_of_rule: dict[str, int] = {}
    for i, (_, rules) in enumerate(tests):
        for rule in rules:
            groups.union(i, first_of_rule.setdefault(rule, i))
    by_root: dict[int, list[str]] = {}
    for i, (nodeid, _) in enumerate(tests):
        by_root.setdefault(groups.find(i), []).append(nodeid)
    return sorted((sorted(g) for g in by_root.values()), key=lambda g: g[0])


def split(tests: Sequence[tuple[str, Sequence[str]]], total: int,
          durations: Mapping[str, float] | None = None) -> list[list[str]]:
    """The node ids of each shard (index 0 = shard 1): rule groups dealt largest first to the lightest shard.

    A test the durations do not know weighs their median (a new test is an average one); without
    durations every test weighs 1.
    """
    known = sorted(v for v in (durations or {}).values())
    default = known[len(known) // 2] if known else 1.0
    weight = (lambda n: durations.get(n, default)) if durations else (lambda n: 1.0)  # noqa: E731
    groups = [(sum(weight(n) for n in g), g) for g in rule_groups(tests)]
    groups.sort(key=lambda wg: (-wg[0], wg[1][0]))
    loads = [0.0] * total
    shards: list[list[str]] = [[] for _ in range(total)]
    for w, group in groups:
        target = min(range(total), key=lambda i: (loads[i], i))
        loads[target] += w
        shards[target].extend(group)
    return [sorted(s) for s in shards]


def collection_digest(nodeids: Sequence[str]) -> str:
    """SHA-256 of the collection a split was made from: shards of one run must share it."""
    return hashlib.sha256("\n".join(sorted(nodeids)).encode("utf-8")).hexdigest()


def empty_shard_status(run_dir: Path, code: int, echo: Callable[[str], None]) -> int:
    """An empty shard of a non-empty selection (more shards than rule groups) is no "nothing selected"
    (exit 5) but a designed, finished part of the matrix: exit 0, saying so. Its folder still merges."""
    if code != NO_TESTS_COLLECTED:
        return code
    try:
        info = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8")).get("shard") or {}
    except (OSError, ValueError):
        return code
    if info.get("collected") and info.get("tests") == []:
        echo(f"shard {info['index']}/{info['total']} holds no test: the {info['collected']} selected test(s) "
             f"form fewer rule groups than shards")
        return 0
    return code
