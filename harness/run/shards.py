"""The pytest side of `--shard K/N`: options, selection at collection time, the shard in run.json.

Listed in the plugin's `pytest_plugins`, so `pytest suites/ --shard 1/2` works as `vcrypt run
--shard 1/2` does. The split itself (and why it is made that way) is harness/run/shard_split.py.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from harness.run.shard_split import ShardError, collection_digest, load_durations, parse_shard, split

SHARD_KEY: pytest.StashKey[dict[str, Any]] = pytest.StashKey()
_WORKER_KEY = "vcrypt_shard"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vcrypt", "vcrypt-harness")
    group.addoption("--shard", default=None, metavar="K/N",
                    help="run only shard K of N (rule groups kept together); 'auto': VCRYPT_SHARD or "
                         "CI_NODE_INDEX/CI_NODE_TOTAL")
    group.addoption("--durations-from", default=None, metavar="RUN_DIR",
                    help="balance --shard by the test durations of this earlier run folder (default: test counts)")


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a bad --shard or --durations-from before anything starts (pytest usage error)."""
    text = config.getoption("--shard")
    if text is None:
        if config.getoption("--durations-from"):
            raise pytest.UsageError("--durations-from: only with --shard K/N")
        return
    try:
        parse_shard(text)
        if config.getoption("--durations-from"):
            load_durations(Path(config.getoption("--durations-from")))
    except ShardError as err:
        raise pytest.UsageError(str(err)) from None


def _rules_of(item: pytest.Item) -> list[str]:
    return [rid for marker in item.iter_markers("rule") for rid in marker.args]


@pytest.hookimpl(trylast=True)  # after --rules / --test-id: a shard splits what was selected
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    text = config.getoption("--shard")
    if text is None:
        return
    shard = parse_shard(text)
    source = config.getoption("--durations-from")
    durations = load_durations(Path(source)) if source else None
    nodeids = [item.nodeid for item in items]
    shards = split([(item.nodeid, _rules_of(item)) for item in items], shard.total, durations)
    mine = set(shards[shard.index - 1])
    keep = [item for item in items if item.nodeid in mine]
    info = {"index": shard.index, "total": shard.total, "source": shard.source,
            "balanced_by": f"durations of {source}" if source else "test counts",
            "collected": len(nodeids), "collection_sha256": collection_digest(nodeids),
            "split_sha256": hashlib.sha256(json.dumps(shards).encode("utf-8")).hexdigest(),
            "tests": sorted(mine)}
    config.stash[SHARD_KEY] = info
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # xdist: the controller collects nothing; it hears from its workers
        workeroutput[_WORKER_KEY] = json.dumps(info)
    config.hook.pytest_deselected(items=[item for item in items if item.nodeid not in mine])
    items[:] = keep


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: keep the shard a worker computed (every worker computes the same)."""
    raw = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    if raw and SHARD_KEY not in node.config.stash:
        node.config.stash[SHARD_KEY] = json.loads(raw)


@pytest.hookimpl(trylast=True)  # after the plugin wrote run.json
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        return
    text = config.getoption("--shard")
    if text is None:
        return
    run_dir = config.getoption("--run-dir")
    info = config.stash.get(SHARD_KEY, None)
    if info is None:  # nothing was collected (or no worker came up): say which shard it was meant to be
        shard = parse_shard(text)
        info = {"index": shard.index, "total": shard.total, "source": shard.source, "tests": None}
    if run_dir:
        record_shard(Path(run_dir), info)


def record_shard(run_dir: Path, info: Mapping[str, Any]) -> None:
    """Put the shard into run.json (written by the plugin just before), so the evidence says which part it is."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        return
    run = json.loads(path.read_text(encoding="utf-8"))
    run["shard"] = dict(info)
    path.write_text(json.dumps(run, indent=1, default=str), encoding="utf-8")
