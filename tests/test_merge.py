"""Shards merged (`vcrypt run --shard K/N`, `vcrypt merge`): the same assessment as one run, or a refusal.

One unsharded run and two shards of the default fake (balanced by the unsharded run's durations)
are made once for the module; every other input is a copy of them, changed the way a real problem
would change it (one byte of a file, a shard given twice, a missing shard, a failed test, another
lab) and, where the copy stands for an honest run rather than tampering, re-manifested.
"""
from __future__ import annotations

import re

import hashlib
import json
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.evidence.manifest import write_manifest
from harness.evidence.verdicts import load_catalogue, load_results, rule_verdicts
from tests.test_cli_bad_input import vcrypt, vcrypt_command

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, default_fake_run: tuple[subprocess.CompletedProcess, Path]
         ) -> dict[str, Path]:
    """The unsharded run is the default serial run test_run_fake.py reads too (tests/shared_runs.py)."""
    reports = tmp_path_factory.mktemp("reports")
    whole_proc, whole = default_fake_run
    assert whole_proc.returncode == 0, whole_proc.stdout[-3000:] + whole_proc.stderr[-3000:]
    out: dict[str, Path] = {"whole": whole}
    # shard 2 on two xdist workers: its controller collects nothing and learns the shard from them
    for name, args in (("s1", ["--shard", "1/2"]), ("s2", ["--shard", "2/2", "-n", "2"])):
        extra = ["--durations-from", str(whole)]
        proc = subprocess.run([*vcrypt_command(), "run", "--reports", str(reports), "--run-id", name, *args, *extra],
                              cwd=ROOT, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        out[name] = reports / name
    return out


@pytest.fixture(scope="module")
def merged(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("merged") / "merged-1"
    proc = vmerge(str(runs["s1"]), str(runs["s2"]), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@dataclass
class Proc:
    returncode: int
    stdout: str
    stderr: str


def vmerge(*args: str, cwd: Path = ROOT) -> Proc:
    """`vcrypt merge ...` in-process (the CLI's own code, without a second interpreter's start-up)."""
    import contextlib

    from click.testing import CliRunner

    from harness import cli
    with contextlib.chdir(cwd):
        result = CliRunner().invoke(cli.main, ["merge", *args], prog_name="vcrypt", catch_exceptions=False)
    return Proc(result.exit_code, result.stdout, result.stderr)


def _verdicts(run_dir: Path) -> dict[str, str]:
    return {rid: v.verdict for rid, v in rule_verdicts(load_catalogue(), load_results(run_dir)).items()}


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _honest_copy(src: Path, dst: Path, edit_run=None, edit_tests=None) -> Path:
    """A copy standing for another honest run: edited, then manifested again (not tampering)."""
    shutil.copytree(src, dst)
    for name, edit in (("run.json", edit_run), ("results.json", edit_tests)):
        if edit is not None:
            data = _json(dst / name)
            edit(data)
            (dst / name).write_text(json.dumps(data), encoding="utf-8")
    write_manifest(dst)
    return dst


def test_shards_split_the_tests_keep_each_rule_whole_and_say_which_shard_they_are(runs):
    infos = [_json(runs[s] / "run.json")["shard"] for s in ("s1", "s2")]
    assert [(i["index"], i["total"]) for i in infos] == [(1, 2), (2, 2)]
    assert all(i["balanced_by"].startswith("durations of") for i in infos)
    assert infos[0]["split_sha256"] == infos[1]["split_sha256"]
    rules = [{r for t in load_results(runs[s]) for r in t.rules} for s in ("s1", "s2")]
    assert rules[0] and rules[1] and not rules[0] & rules[1]  # no rule is split across shards
    for shard, info in zip(("s1", "s2"), infos):
        assert {t.nodeid for t in load_results(runs[shard])} == set(info["tests"])


def test_shard_1_and_2_merged_give_the_unsharded_verdicts_and_the_same_tests(runs, merged):
    whole, joined = load_results(runs["whole"]), load_results(merged)
    assert Counter(t.nodeid for t in joined) == Counter(t.nodeid for t in whole)  # nothing lost, nothing doubled
    assert max(Counter(t.nodeid for t in joined).values()) == 1
    assert _verdicts(merged) == _verdicts(runs["whole"])
    assert {t.nodeid: t.status for t in joined} == {t.nodeid: t.status for t in whole}
    proc = vcrypt("diff", str(runs["whole"]), str(merged), cwd=ROOT)
    assert proc.returncode == 0 and "no verdict changed" in proc.stdout, proc.stdout + proc.stderr


def test_the_merged_folder_is_a_complete_verifiable_run_folder(runs, merged):
    for name in ("report.html", "junit.xml", "oscal-assessment-results.json", "summary.md", "README.txt",
                 "inventory.redacted.yaml", "allure-results/categories.json"):
        assert (merged / name).is_file(), name
    proc = vcrypt("verify-evidence", str(merged), cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _json(merged / "run.json")["compliance"] is False
    whole_allure = len(list((runs["whole"] / "allure-results").glob("*-result.json")))
    assert len(list((merged / "allure-results").glob("*-result.json"))) == whole_allure
    for test in load_results(merged):
        assert test.evidence_file is None or (merged / test.evidence_file).is_file(), test.nodeid
    junit = (merged / "junit.xml").read_text(encoding="utf-8")
    assert junit.count("<testcase ") == len(load_results(runs["whole"]))
    assert 'name="verdict:REKEY-SHALLOW" value="passed"' in junit and 'name="shard:2/2" value="s2"' in junit


def test_the_oscal_results_name_each_shard_and_hash_each_input_manifest(runs, merged):
    from trestle.oscal import assessment_results
    doc = _json(merged / "oscal-assessment-results.json")
    assessment_results.AssessmentResults.parse_obj(doc["assessment-results"])
    result = doc["assessment-results"]["results"][0]
    items = {i["uuid"]: i for i in result["local-definitions"]["inventory-items"]}
    shards = {p["value"]: uuid for uuid, i in items.items() for p in i.get("props", []) if p["name"] == "shard"}
    assert set(shards) == {"1/2", "2/2"}
    s1_nodeids = set(_json(runs["s1"] / "run.json")["shard"]["tests"])
    for obs in result["observations"]:
        nodeid = next(p["value"] for p in obs["props"] if p["name"] == "nodeid")
        subjects = {s["subject-uuid"] for s in obs["subjects"]}
        assert shards["1/2" if nodeid in s1_nodeids else "2/2"] in subjects, nodeid
    hashes = {h["value"] for r in doc["assessment-results"]["back-matter"]["resources"]
              for link in r.get("rlinks", []) for h in link.get("hashes", [])}
    for shard in ("s1", "s2"):
        assert hashlib.sha256((runs[shard] / "manifest.sha256").read_bytes()).hexdigest() in hashes


def test_a_tampered_shard_is_refused_and_allow_partial_leaves_it_out_and_says_so(runs, tmp_path):
    bad = tmp_path / "s2-tampered"
    shutil.copytree(runs["s2"], bad)
    data = bytearray((bad / "results.json").read_bytes())
    data[data.index(b'"passed"') + 1] ^= 0x01  # one byte: "passed" -> "qassed"
    (bad / "results.json").write_bytes(bytes(data))
    out = tmp_path / "out"
    proc = vmerge(str(runs["s1"]), str(bad), "--out", str(out))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert f"{bad}: does not match its manifest or signature (changed: results.json)" in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.*"))  # nothing written, no scratch left
    proc = vmerge(str(runs["s1"]), str(bad), "--out", str(out), "--allow-partial")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "partial:" in proc.stdout and "left out" in proc.stdout
    merge = _json(out / "run.json")["merge"]
    assert merge["partial"] and any("changed: results.json" in r for r in merge["partial_reasons"])
    assert any("shard 2/2 missing" in r for r in merge["partial_reasons"])
    assert "Partial merge" in (out / "summary.md").read_text(encoding="utf-8")
    assert 'name="partial"' in (out / "junit.xml").read_text(encoding="utf-8")
    strict = vmerge(str(runs["s1"]), str(bad), "--out", str(tmp_path / "strict"), "--allow-partial", "--compliance")
    assert strict.returncode == 1, strict.stdout + strict.stderr  # compliance: rules left out are gaps
    s2_rules = {r for t in load_results(runs["s2"]) for r in t.rules}
    verdicts = _verdicts(out)
    assert s2_rules and all(verdicts[r] == "not run" for r in s2_rules)  # never passed on what was left out


def test_a_missing_or_doubled_shard_is_refused(runs, tmp_path):
    proc = vmerge(str(runs["s1"]), "--out", str(tmp_path / "a"))
    assert proc.returncode == 2 and "lab fake: shard 2/2 missing" in proc.stderr, proc.stderr
    twice = _honest_copy(runs["s1"], tmp_path / "s1-again")
    proc = vmerge(str(runs["s1"]), str(twice), str(runs["s2"]), "--out", str(tmp_path / "b"),
                  "--allow-partial")
    assert proc.returncode == 2 and "shard 1/2 given twice" in proc.stderr, proc.stderr  # never, even partial
    assert not (tmp_path / "b").exists()


def test_an_interrupted_shard_is_refused_unless_allow_partial_and_its_tests_are_not_run(runs, tmp_path):
    def stop_first(data):
        data["tests"][0].update(outcome="interrupted", category="interrupted")
    first = load_results(runs["s2"])[0]
    stopped = _honest_copy(runs["s2"], tmp_path / "s2-stopped", edit_run=lambda r: r.update(interrupted=True),
                           edit_tests=stop_first)
    proc = vmerge(str(runs["s1"]), str(stopped), "--out", str(tmp_path / "a"))
    assert proc.returncode == 2 and "incomplete: the run was interrupted" in proc.stderr, proc.stderr
    proc = vmerge(str(runs["s1"]), str(stopped), "--out", str(tmp_path / "b"), "--allow-partial")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # never passed: "not run", or "partly demonstrated" where the rule's other tests passed (issue 23)
    assert all(_verdicts(tmp_path / "b")[r] in ("not run", "partly demonstrated") for r in first.rules)


def test_a_failed_test_in_one_shard_fails_its_rule_in_the_merge_and_the_exit_status(runs, tmp_path):
    victim = load_results(runs["s2"])[0]

    def fail_it(data):
        data["tests"][0].update(outcome="failed", category="product_failure", message="seeded for the test")
    failed = _honest_copy(runs["s2"], tmp_path / "s2-failed", edit_tests=fail_it)
    proc = vmerge(str(runs["s1"]), str(failed), "--out", str(tmp_path / "m"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert all(_verdicts(tmp_path / "m")[r] == "failed" for r in victim.rules)


def test_two_labs_give_a_verdict_per_lab_and_an_overall_one(runs, merged, tmp_path):
    dropped = load_results(runs["whole"])[0]

    def other_lab(run):
        run["inventory"] = "/labs/lab-b.yaml"
        run["provenance"]["inventory"] = {"path": "/labs/lab-b.yaml", "sha256": "b" * 64}

    def drop_rule(data):  # lab-b never ran the first test's rules
        data["tests"] = [t for t in data["tests"] if not set(t["rules"]) & set(dropped.rules)]
    lab_b = _honest_copy(runs["whole"], tmp_path / "lab-b", edit_run=other_lab, edit_tests=drop_rule)
    out = tmp_path / "two-labs"
    proc = vmerge(str(runs["s1"]), str(runs["s2"]), str(lab_b), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    merge = _json(out / "run.json")["merge"]
    assert set(merge["labs"]) == {"fake", "lab-b"}
    rule = dropped.rules[0]
    assert merge["labs"]["fake"]["verdicts"][rule] == "passed"
    assert merge["labs"]["lab-b"]["verdicts"][rule] == "not run"
    # passed in one lab and not run in the other is not passed: partly demonstrated overall
    assert merge["verdicts"][rule] == "partly demonstrated" == _verdicts(out)[rule]
    assert merge["labs"]["fake"]["overall"] == "passed" and merge["overall"] != "passed"
    tests = load_results(out)
    assert len({t.nodeid for t in tests}) == len(tests)
    doc = _json(out / "oscal-assessment-results.json")
    observations = doc["assessment-results"]["results"][0]["observations"]
    assert len({o["uuid"] for o in observations}) == len(observations)
    assert (out / "evidence" / "lab-b").is_dir() and (out / "evidence" / "fake").is_dir()


def test_a_signed_merge_verifies_and_unsigned_inputs_fail_a_public_key_check(runs, merged, tmp_path):
    proc = vcrypt("keygen", "--out", str(tmp_path), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "signed"
    proc = vmerge(str(runs["s1"]), str(runs["s2"]), "--out", str(out), "--signing-key",
                  str(tmp_path / "vcrypt-signing.key"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = vcrypt("verify-evidence", str(out), "--public-key", str(tmp_path / "vcrypt-signing.pub"), cwd=ROOT)
    assert proc.returncode == 0 and "signature valid" in proc.stdout, proc.stdout + proc.stderr
    from harness.evidence.signing import load_signing_key, sign_manifest
    signed_s1 = _honest_copy(runs["s1"], tmp_path / "s1-signed")
    sign_manifest(signed_s1, load_signing_key(path=tmp_path / "vcrypt-signing.key"))
    noted = vmerge(str(signed_s1), str(runs["s2"]), "--out", str(tmp_path / "y"))
    assert noted.returncode == 0 and f"note: {signed_s1}: carries a signature that was not checked" in noted.stdout
    proc = vmerge(str(runs["s1"]), str(runs["s2"]), "--out", str(tmp_path / "x"), "--public-key",
                  str(tmp_path / "vcrypt-signing.pub"))
    assert proc.returncode == 2 and "signature missing" in proc.stderr, proc.stderr


@pytest.mark.parametrize("args,needle", [
    (["nowhere", "--out", "o"], "nowhere: no such run folder"),
    (["{s1}", "--out", "{s1}"], "exists and is not empty"),
    (["{s1}", "--out", "o", "--public-key", "nokey.pub"], "public key nokey.pub"),
])
def test_bad_merge_arguments_give_one_line_and_exit_2(runs, tmp_path, args, needle):
    from tests.test_cli_bad_input import assert_clean_failure
    args = [a.format(s1=runs["s1"]) for a in args]
    assert_clean_failure(vmerge(*args, cwd=tmp_path), needle)


def test_the_ci_example_runs_n_shards_per_lab_then_merges_with_options_vcrypt_has():
    """examples/sharded-labs.yml: a matrix of SHARDS x labs, each `vcrypt run --shard K/N`, then one merge job."""
    import re
    import shlex

    import yaml

    from harness import cli
    workflow = yaml.safe_load((ROOT / "examples" / "sharded-labs.yml").read_text(encoding="utf-8"))
    shard_job, merge_job = workflow["jobs"]["shard"], workflow["jobs"]["merge"]
    matrix = shard_job["strategy"]["matrix"]
    assert matrix["shard"] == list(range(1, int(workflow["env"]["SHARDS"]) + 1)) and len(matrix["lab"]) >= 2
    assert all((ROOT / lab["inventory"]).is_file() for lab in matrix["lab"])
    assert merge_job["needs"] == "shard" and merge_job["if"] == "always()"
    scripts = [str(s.get("run", "")) for job in (shard_job, merge_job) for s in job["steps"]]
    calls = [shlex.split(re.sub(r"\$\{\{[^}]*\}\}|\\\n", "X", line.strip()))
             for script in scripts for line in script.replace("\\\n", " ").splitlines() if line.strip().startswith("vcrypt ")]
    assert {c[1] for c in calls} == {"run", "merge"}
    for call in calls:
        known = {opt for param in cli.main.commands[call[1]].params for opt in param.opts}
        assert {a for a in call[2:] if a.startswith("--")} <= known, call
    assert any("--shard" in c for c in calls if c[1] == "run") and any("--signing-key" in c for c in calls)
    uses = [s.get("uses", "") for s in merge_job["steps"]]
    assert any(u.startswith("actions/download-artifact") for u in uses)
    assert any(u.startswith("mikepenz/action-junit-report") for u in uses)
    assert any("GITHUB_STEP_SUMMARY" in str(s.get("run", "")) and "summary.md" in str(s.get("run", ""))
               for s in merge_job["steps"])


def test_a_merged_folder_or_an_out_inside_an_input_is_refused(runs, merged, tmp_path):
    from tests.test_cli_bad_input import assert_clean_failure
    assert_clean_failure(vmerge(str(merged), "--out", str(tmp_path / "again")), "is a merged folder")
    assert_clean_failure(vmerge(str(runs["s1"]), str(runs["s2"]), "--out", str(runs["s1"] / "merged"),
                                cwd=ROOT), "lies inside the input")
    assert not (runs["s1"] / "merged").exists()


def test_a_file_changed_after_verification_is_not_copied(runs, tmp_path):
    from harness.commands.merge_inputs import MergeRefused, copy_verified, load_input
    shard = _honest_copy(runs["s1"], tmp_path / "s1")
    item = load_input(shard, None)
    assert not item.tampered
    rel = next(t["evidence_file"] for t in item.tests if t.get("evidence_file"))
    copy_verified(item, rel, tmp_path / "out" / rel)
    assert (tmp_path / "out" / rel).read_bytes() == (shard / rel).read_bytes()
    (shard / rel).write_text("{}", encoding="utf-8")  # swapped between the check and the copy
    with pytest.raises(MergeRefused, match=re.escape(f"changed: {rel} (after it was verified)")):  # rel: "[param]"
        copy_verified(item, rel, tmp_path / "out2" / rel)
    assert not (tmp_path / "out2").exists()
