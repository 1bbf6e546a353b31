"""The terminal's last screen (issue 24): banners first, one line per rule that fits the width, FAILED/ERROR
lines naming the tests, and what needs attention worst first with the cause in full."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.evidence.attention import attention, banners, deciding_test, label, rank
from harness.evidence.summary import print_run_summary
from harness.evidence.terminal_table import fit, shorten_name, wrap
from harness.evidence.verdicts import RuleVerdict, TestResult, load_catalogue, load_results, load_run, rule_verdicts
from tests.evidence.conftest import INJECTED

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _printed(run_dir: Path, columns: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
             filtered: bool = False) -> list[str]:
    monkeypatch.setenv("COLUMNS", str(columns))
    print_run_summary(run_dir, 12.0, filtered=filtered)
    return [ANSI.sub("", line) for line in capsys.readouterr().out.splitlines()]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[\w.\-\[\]]+", text))


@pytest.mark.parametrize("text", ["a few short words that go on and on past the edge of the line",
                                  "REKEY-SHALLOW  failed  0/1 passed · test_shallow_rekey_keeps: disk ciphertext"])
@pytest.mark.parametrize("width", [20, 33, 47])
def test_fit_cuts_between_words_and_never_exceeds_the_width(text: str, width: int) -> None:
    line = fit(text, width)
    assert len(line) <= width and line.endswith("…")
    assert all(word in _words(text) for word in _words(line[:-1]))  # every word shown is whole


def test_a_long_test_name_is_cut_between_its_words_and_keeps_its_parameters() -> None:
    name = "test_a_shallow_recrypt_gives_the_vm_and_its_disks_the_new_key_powered_on_or_off[poweredOff]"
    short = shorten_name(name, 40)
    assert len(short) <= 40 and short.endswith("…[poweredOff]") and name.startswith(short.split("…")[0] + "_")


@pytest.mark.parametrize("columns", [80, 200])
def test_the_table_has_one_line_per_rule_and_fits_the_terminal(run_dir, monkeypatch, capsys, columns) -> None:
    lines = _printed(run_dir, columns, monkeypatch, capsys)
    paths = [line for line in lines if str(run_dir) in line]  # paths print whole, to be copied
    assert all(len(line) <= columns for line in lines if line not in paths), [l for l in lines if len(l) > columns]
    catalogue = load_catalogue()
    header = next(i for i, line in enumerate(lines) if line.startswith("rule "))
    end = lines.index("", header)
    rows = lines[header + 1: end]
    named = " ".join(rows).split()
    assert all(rule.id in named for rule in catalogue), rows   # every rule named: its own line or its area's
    verdicts = rule_verdicts(catalogue, load_results(run_dir))
    own = {row.split()[0] for row in rows}
    assert {rid for rid, v in verdicts.items() if v.verdict not in ("passed", "not applicable")} <= own
    row = next(r for r in rows if r.startswith("PUSH-HA "))
    assert re.match(r"PUSH-HA\s+partly demonstrated\s+1/2 passed · " + ("test_ha_pushes" if columns == 200 else ""),
                    row), row


def test_compliance_banner_comes_first_and_names_the_rules_worst_first(run_dir, monkeypatch, capsys) -> None:
    lines = [line for line in _printed(run_dir, 200, monkeypatch, capsys) if line.strip()]
    assert lines[0].startswith("Compliance: FAIL — REKEY-SHALLOW, DATA-AT-REST, KMS-STATUS, CLONE-KEEP, "), lines[0]


def test_failed_and_error_short_lines_name_every_test(run_dir, monkeypatch, capsys) -> None:
    lines = _printed(run_dir, 200, monkeypatch, capsys)
    assert any(line.startswith("FAILED suites/test_rekey.py::test_shallow_rekey_keeps_ciphertext - disk ciphertext")
               for line in lines)
    errors = [line for line in lines if line.startswith("ERROR ")]
    assert {e.split()[1] for e in errors} == {"suites/test_kms.py::test_status_green",
                                              "suites/test_clone.py::test_clone_keeps_key_cross_host"}


def test_what_needs_attention_is_worst_first_with_deciding_test_fault_and_full_cause(run_dir, monkeypatch,
                                                                                     capsys) -> None:
    lines = _printed(run_dir, 80, monkeypatch, capsys)
    start = lines.index(next(line for line in lines if line.startswith("What needs attention")))
    block = "\n".join(lines[start:])
    order = [m for m in re.findall(r"^([A-Z][A-Z0-9-]+)  ", block, re.M)]
    assert order[:4] == ["REKEY-SHALLOW", "DATA-AT-REST", "KMS-STATUS", "CLONE-KEEP"], order
    assert "deciding test: suites/test_rekey.py::test_shallow_rekey_keeps_ciphertext" in block
    assert "fault: vim.fault.GenericVmConfigFault" in block  # from the deciding test's evidence
    cause = " ".join(line.strip() for line in lines[start:] if line.strip())
    assert f"disk ciphertext changed {INJECTED}" in cause  # in full, never cut
    assert f"{run_dir}/report.html#rule-REKEY-SHALLOW" in block
    counts = " ".join(lines[next(i for i, line in enumerate(lines) if line.startswith("rules: ")):])
    assert "2 failed (REKEY-SHALLOW, DATA-AT-REST)" in counts and "2 error (KMS-STATUS, CLONE-KEEP)" in counts


def test_seeded_defects_are_a_banner(run_dir, monkeypatch, capsys) -> None:
    run = json.loads((run_dir / "run.json").read_text())
    run["provenance"] = {"fake_defects": ["op-state-ignored"]}
    (run_dir / "run.json").write_text(json.dumps(run))
    text = "\n".join(_printed(run_dir, 80, monkeypatch, capsys)[:6])
    assert "Seeded fake defects: op-state-ignored" in text and "broken on purpose" in text


def test_an_unknown_verdict_state_is_shown_by_name_and_needs_attention(run_dir) -> None:
    tests = load_results(run_dir)
    verdicts = rule_verdicts(load_catalogue(), tests)
    odd = TestResult(nodeid="suites/x.py::test_odd", name="test_odd", rules=("CLONE-ENCRYPT",), outcome="weird",
                     category="weird", message="nobody taught the writers this")
    verdicts["CLONE-ENCRYPT"] = RuleVerdict("half-seen", (odd,))
    items = attention(verdicts, run_dir)
    odd_item = next(i for i in items if i.rule_id == "CLONE-ENCRYPT")
    assert odd_item.label == label("half-seen") == "half-seen" and odd_item.cause == "nobody taught the writers this"
    assert rank("failed") < rank("error") < rank("half-seen") < rank("skipped")
    assert [i.rule_id for i in items].index("CLONE-ENCRYPT") < [i.rule_id for i in items].index("PUSH-HA")
    assert deciding_test(verdicts["CLONE-ENCRYPT"]) == odd
    compliance = banners(load_run(run_dir), verdicts)[0]
    assert compliance.kind == "compliance-fail" and "CLONE-ENCRYPT" in compliance.text


def test_a_compliant_run_gets_a_green_pass_banner_everywhere(run_dir, monkeypatch, capsys) -> None:
    from harness.evidence.html_report import render_html
    from harness.evidence.summary_md import render_summary
    tests = [{"nodeid": f"suites/x.py::test_{i}", "test_id": f"t-{i}", "name": f"test_{i}", "rules": [rule.id],
              "outcome": "passed"} for i, rule in enumerate(load_catalogue())]
    (run_dir / "results.json").write_text(json.dumps({"tests": tests}))
    lines = [line for line in _printed(run_dir, 80, monkeypatch, capsys) if line.strip()]
    assert lines[0] == "Compliance: PASS — every applicable rule demonstrated"
    assert not any(line.startswith("What needs attention") for line in lines)
    html = render_html(run_dir)
    assert 'class="banner compliance-pass" id="compliance-banner"' in html and 'id="attention"' not in html
    assert "> 🟢 **Compliance: PASS" in render_summary(run_dir)


def test_a_bidi_override_or_newline_in_a_cause_prints_escaped_never_raw() -> None:
    """A server's fault text reaches the terminal: U+202E would reverse what follows, a newline forge a line."""
    forged = "refused\u202eDESSAP\nPASSED test_x"
    for line in [fit(forged, 80), *wrap(forged, 80)]:
        assert "\u202e" not in line and "\n" not in line, line
        assert "\\u202e" in line, line


def test_a_rule_nobody_needs_to_act_on_shows_why_it_was_not_passed_not_a_bare_count() -> None:
    """A not-applicable (or plain skipped) row with no attention item once read "0/3 passed" and nothing
    else: the reader could not tell a version gate from a missing capability."""
    from harness.evidence.terminal_table import rule_lines
    skip = "version: CLONE-PRE7 describes vSphere 6.5 to 6.7; the target is 7.0.3"
    verdict = RuleVerdict("not applicable", tests=tuple(
        TestResult(nodeid=f"suites/t.py::t{i}", name=f"t{i}", rules=("CLONE-PRE7",), outcome="skipped",
                   category="version_skip", message=skip) for i in range(3)))
    lines = rule_lines({"CLONE-PRE7": verdict}, [], 200, selected_only=False)
    row = ANSI.sub("", lines[1])
    assert row.split()[:2] == ["CLONE-PRE7", "not"] and "0/3 passed · " in row and "6.5 to 6.7" in row, row


def test_past_one_screen_of_rules_the_quiet_ones_share_a_line_per_area_and_every_rule_is_named() -> None:
    """Issue 24 wants one line per rule and at most 60 lines; the catalogue outgrew one screen (issue 25).
    The rules nobody needs to act on are then counted per area, naming each; the others keep their line."""
    from harness.evidence.terminal_table import rule_lines
    passed = RuleVerdict("passed", tests=(TestResult(nodeid="t::a", outcome="passed"),))
    failed = RuleVerdict("failed", tests=(TestResult(nodeid="t::b", outcome="failed", category="product_failure",
                                                     message="NotRefused: boom"),))
    verdicts = {f"R-{i:02d}": (failed if i == 7 else passed) for i in range(60)}
    areas = {rid: ("Area one" if i < 30 else "Area two") for i, rid in enumerate(verdicts)}
    lines = [ANSI.sub("", line) for line in rule_lines(verdicts, [], 100, False, areas)]
    assert len(lines) < 20, lines
    assert any(line.startswith("R-07 ") and "failed" in line for line in lines)       # its own line
    assert any(line.startswith("Area one: 29 rules passed – R-00") for line in lines), lines
    table = " ".join(lines)
    assert all(rid in table.split() for rid in verdicts), table
    assert all(len(line) <= 100 for line in lines)
    # within one screen nothing is grouped
    few = [ANSI.sub("", line) for line in rule_lines(dict(list(verdicts.items())[:10]), [], 100, False, areas)]
    assert [line.split()[0] for line in few[1:]] == list(verdicts)[:10]
