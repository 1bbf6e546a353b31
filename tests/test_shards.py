"""`--shard K/N` (harness/run/shard_split.py, harness/run/shards.py): a deterministic split that never separates a rule's tests.

The split is checked as a pure function (every test in exactly one shard, rule groups whole,
balance by durations), `auto` against the CI variables, and bad values through the installed
`vcrypt` (one line, exit 2, nothing created). The end-to-end shard + merge runs live in
tests/test_merge.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.run.shard_split import ShardError, load_durations, parse_shard, rule_groups, split
from tests.test_cli_bad_input import assert_clean_failure, vcrypt

RULES = [f"R{i}" for i in range(8)]
tests_strategy = st.lists(
    st.tuples(st.from_regex(r"t[0-9]{1,4}", fullmatch=True), st.lists(st.sampled_from(RULES), max_size=2)),
    max_size=40, unique_by=lambda t: t[0])


@settings(max_examples=150, deadline=None)
@given(tests_strategy, st.integers(min_value=1, max_value=6))
def test_every_test_lands_in_exactly_one_shard_and_no_rule_is_split(tests, total):
    shards = split(tests, total)
    assert len(shards) == total
    placed = [n for s in shards for n in s]
    assert sorted(placed) == sorted(n for n, _ in tests)  # nothing lost, nothing doubled
    shard_of = {n: i for i, s in enumerate(shards) for n in s}
    for rule in RULES:
        assert len({shard_of[n] for n, rules in tests if rule in rules}) <= 1, rule
    assert split(list(reversed(tests)), total) == shards  # the order of collection does not matter


def test_a_test_with_two_rules_keeps_both_rules_tests_together():
    tests = [("a", ["X"]), ("b", ["X", "Y"]), ("c", ["Y"]), ("d", ["Z"]), ("e", ["W"])]
    assert ["a", "b", "c"] in rule_groups(tests)
    shards = split(tests, 2)
    assert ["a", "b", "c"] in shards  # X and Y joined through b; the others fill shard 2
    assert shards[1] == ["d", "e"]


def test_counts_balance_without_durations_and_durations_balance_with_them():
    tests = [(f"t{i}", [f"R{i}"]) for i in range(6)]
    assert [len(s) for s in split(tests, 2)] == [3, 3]
    slow = {"t0": 10.0, "t1": 1.0, "t2": 1.0, "t3": 1.0, "t4": 1.0, "t5": 1.0}
    shards = split(tests, 2, slow)
    assert ["t0"] in shards and sorted(len(s) for s in shards) == [1, 5]  # 10 s alone against 5 x 1 s


@pytest.mark.parametrize("text,expected", [("1/2", (1, 2)), (" 2 / 2 ", (2, 2)), ("1/1", (1, 1))])
def test_k_of_n_parses(text, expected):
    shard = parse_shard(text, {})
    assert (shard.index, shard.total) == expected


@pytest.mark.parametrize("text", ["0/2", "3/2", "abc", "1/0", "-1/2", "1/2/3", ""])
def test_bad_values_are_refused_naming_the_value(text):
    with pytest.raises(ShardError, match="--shard"):
        parse_shard(text, {})


@pytest.mark.parametrize("environ,expected", [
    ({"VCRYPT_SHARD": "2/3", "CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "5"}, (2, 3, "VCRYPT_SHARD")),
    ({"CI_NODE_INDEX": "4", "CI_NODE_TOTAL": "5"}, (4, 5, "CI_NODE_INDEX/CI_NODE_TOTAL")),  # GitLab: 1-based
    ({"CI_NODE_TOTAL": "1"}, (1, 1, "CI_NODE_TOTAL")),  # GitLab without `parallel:`
])
def test_auto_reads_the_ci_variables(environ, expected):
    shard = parse_shard("auto", environ)
    assert (shard.index, shard.total, shard.source) == expected


@pytest.mark.parametrize("environ,needle", [({}, "neither VCRYPT_SHARD"), ({"VCRYPT_SHARD": "0/2"}, "VCRYPT_SHARD"),
                                            ({"CI_NODE_INDEX": "0", "CI_NODE_TOTAL": "2"}, "CI_NODE_INDEX")])
def test_auto_without_usable_variables_is_refused(environ, needle):
    with pytest.raises(ShardError, match=needle):
        parse_shard("auto", environ)


def test_durations_come_from_results_json_and_a_non_run_folder_is_refused(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"tests": [{"nodeid": "a", "duration_s": 2.5},
                                                                {"nodeid": "b", "duration_s": None}]}))
    assert load_durations(tmp_path) == {"a": 2.5, "b": 0.0}
    with pytest.raises(ShardError, match="not a run folder"):
        load_durations(tmp_path / "nothing")


@pytest.mark.parametrize("args,needle", [
    (["--shard", "0/2"], "'0/2': K must be between 1 and N"),
    (["--shard", "3/2"], "'3/2': K must be between 1 and N"),
    (["--shard", "abc"], "'abc' is not K/N"),
    (["--shard", "1/2", "--durations-from", "no-such-run"], "--durations-from no-such-run: not a run folder"),
    (["--durations-from", "no-such-run"], "--durations-from: only with --shard"),
    (["--shard", "1/2", "--compliance"], "--compliance with --shard"),
    (["--", "--shard", "1/2"], "--shard after --"),
])
def test_vcrypt_run_refuses_bad_shard_options_in_one_line_and_creates_nothing(tmp_path: Path, args, needle):
    proc = vcrypt("run", "--reports", str(tmp_path / "reports"), *args, cwd=tmp_path)
    assert_clean_failure(proc, needle)
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


def test_an_empty_shard_of_a_non_empty_selection_finishes_with_0_and_says_so(tmp_path):
    from harness.run.shard_split import empty_shard_status
    lines: list[str] = []
    (tmp_path / "run.json").write_text(json.dumps({"shard": {"index": 3, "total": 3, "collected": 2, "tests": []}}))
    assert empty_shard_status(tmp_path, 5, lines.append) == 0
    assert lines == ["shard 3/3 holds no test: the 2 selected test(s) form fewer rule groups than shards"]
    (tmp_path / "run.json").write_text(json.dumps({"shard": {"index": 1, "total": 3, "collected": 0, "tests": []}}))
    assert empty_shard_status(tmp_path, 5, lines.append) == 5  # nothing selected at all stays exit 5
    assert empty_shard_status(tmp_path, 1, lines.append) == 1


def test_pytest_suites_with_shard_selects_disjoint_halves_of_the_collection():
    import re
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    halves = []
    for shard in ("1/2", "2/2"):
        proc = subprocess.run([sys.executable, "-m", "pytest", "suites/", "--shard", shard, "--collect-only", "-q",
                               "-n", "0", "-p", "no:cacheprovider"], cwd=root, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        selected, total = map(int, re.search(r"(\d+)/(\d+) tests collected", proc.stdout).groups())
        halves.append(({line for line in proc.stdout.splitlines() if "::" in line}, total))
        assert len(halves[-1][0]) == selected
    (first, total), (second, _) = halves
    assert first and second and not first & second and len(first) + len(second) == total
