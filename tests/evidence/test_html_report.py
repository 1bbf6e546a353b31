"""report.html: summary first, everything escaped, nothing loaded from outside."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.evidence.html_report import render_html, short_text, tls_view, write_html_report
from harness.evidence.verdicts import load_catalogue

from .conftest import EXPECTED, INJECTED, RUN_ID, T_REKEY


class _Page(HTMLParser):
    """Collect tags, attributes and the text of <script>/<style> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.raw: dict[str, list[str]] = {"script": [], "style": []}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in self.raw:
            self._in = tag
            self.raw[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.raw[self._in][-1] += data

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == val for k, val in attrs.items())]


@pytest.fixture
def html(run_dir: Path) -> str:
    return write_html_report(run_dir).read_text(encoding="utf-8")


@pytest.fixture
def page(html: str) -> _Page:
    parser = _Page()
    parser.feed(html)
    return parser


def test_written_into_run_folder(run_dir: Path) -> None:
    path = write_html_report(run_dir)
    assert path == run_dir / "report.html" and path.stat().st_size > 0


def test_summary_matrix_has_one_row_per_rule_with_its_verdict(page: _Page, html: str) -> None:
    rows = [a for t, a in page.tags if t == "tr" and "data-rule" in a]
    catalogue = load_catalogue()
    assert [r["data-rule"] for r in rows] == [r.id for r in catalogue]
    by_rule = {r["data-rule"]: r["data-verdict"] for r in rows}
    for rule_id, expected in EXPECTED.items():
        assert by_rule[rule_id] == expected
    # grouped by area, areas in catalogue order
    areas = list(dict.fromkeys(r.area_title for r in catalogue))
    positions = [html.index(f'<tr class="area"><th colspan="10">{a}</th></tr>') for a in areas]
    assert positions == sorted(positions)
    # the summary comes before any detail
    assert html.index('id="matrix"') < html.index('id="details"')


def test_header_shows_target_tls_kms_and_counts(page: _Page, html: str) -> None:
    assert RUN_ID in html
    assert "fake (in-process simulated vCenter, real KMS)" in html
    assert '<span class="tls tls-insecure">insecure: certificate not verified</span>' in html
    assert '<span class="tls tls-pinned">pinned thumbprint</span>' in html
    assert re.search(r"yes – \d+ rule\(s\) not demonstrated, so the run fails \(exit status 1\)", html)
    assert "every rule ran" not in html
    assert "8.0.3" in html and "24022515" in html
    assert "127.0.0.1:5696" in html
    counts = re.search(r'<div class="counts" id="counts">(.*?)</div>\s*<p', html, re.S)
    assert counts is not None
    numbers = re.findall(r"<b>(\d+)</b>([a-z ]+)<", counts.group(1))
    assert numbers[:4] == [
        ("4", "tests passed"),
        ("1", "product failures"),
        ("2", "environment errors"),
        ("4", "skipped"),
    ]
    assert "Product failures: 2 rule(s) violated" in html


def test_vcenter_read_error_is_shown(run_dir: Path) -> None:
    run = json.loads((run_dir / "run.json").read_text())
    run["vcenters"][1] = {
        "name": "vc-b",
        "target": "real",
        "tls_mode": "verified against system CAs",
        "error": "vim.fault.InvalidLogin: bad password",
    }
    (run_dir / "run.json").write_text(json.dumps(run))
    html = write_html_report(run_dir).read_text()
    assert "Could not read this vCenter's details: vim.fault.InvalidLogin: bad password" in html
    assert '<span class="tls tls-verified">verified</span>' in html


def test_details_have_evidence_and_host_key_grid(page: _Page, html: str) -> None:
    assert page.find("details", id="rule-PUSH-HA")
    grid = re.search(r'<table class="grid">(.*?)</table>', html, re.S)
    assert grid is not None
    rows = re.findall(r'<tr><th class="host mono">([^<]+)</th>(.*?)</tr>', grid.group(1), re.S)
    marks = {host: re.findall(r'class="(yes|no)"', cells) for host, cells in rows}
    assert marks == {"esx-01": ["yes", "yes"], "esx-02": ["yes", "no"], "esx-03": ["no", "no"]}
    assert "CloneVM_Task" in html and "vim.fault.GenericVmConfigFault" in html
    assert "AES-256, active" in html  # KMIP read
    assert "<dt>config.keyId</dt><dd>{keyId=7, providerId=vcrypt-kms}</dd>" in html  # observation, compact
    assert f"evidence/{T_REKEY}.json" in html


def test_skips_listed_with_reasons(html: str) -> None:
    skips = html[html.index('id="skips"') : html.index('id="details"')]
    for heading, reason in [
        ("Target lacks a capability (2)", "skipped: vcsim lacks host key caches"),
        ("Not applicable to the target&#39;s version (1)", "rule applies before vSphere 7.0; target is 8.0.3"),
        (
            "Not allowed by the inventory (mutating or destructive) (1)",
            "destructive tests are not allowed by the inventory",
        ),
    ]:
        assert heading in skips and reason in skips


def test_not_run_rule_and_unmapped_test_are_visible(html: str) -> None:
    kms_required = html[html.index('id="rule-KMS-REQUIRED"') :]
    assert "Not run:" in kms_required[: kms_required.index("</details>")]
    assert "suites/test_misc.py::test_unknown_rule" in html[html.index('id="unmapped"') :]


def test_target_values_are_escaped(page: _Page, html: str) -> None:
    assert INJECTED not in html
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html
    assert len(page.find("script")) == 1  # only our own inline script


def test_evil_values_everywhere_are_escaped(run_dir: Path) -> None:
    evil = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
    run = json.loads((run_dir / "run.json").read_text())
    run["run_id"] = evil
    run["vcenters"][0].update(name=evil, build=evil, tls_mode=evil, url=evil)
    run["kms"]["servers"][0]["address"] = evil
    (run_dir / "run.json").write_text(json.dumps(run))
    results = json.loads((run_dir / "results.json").read_text())
    results["tests"][0].update(nodeid=evil, message=evil)
    (run_dir / "results.json").write_text(json.dumps(results))
    evidence = run_dir / "evidence" / f"{results['tests'][0]['test_id']}.json"
    data = json.loads(evidence.read_text())
    data["calls"][0]["args"] = {evil: evil}
    data["observations"][0]["properties"] = {evil: {evil: [evil]}}
    data["notes"] = [{"label": evil, "value": evil}]
    evidence.write_text(json.dumps(data))
    page = _Page()
    page.feed(write_html_report(run_dir).read_text(encoding="utf-8"))
    assert page.find("img") == [] and len(page.find("script")) == 1
    assert not any(k.startswith("on") for _, attrs in page.tags for k in attrs)


def test_self_contained_and_offline(page: _Page, html: str) -> None:
    for tag, attrs in page.tags:
        for name in ("src", "href", "action", "srcset", "poster", "data", "formaction"):
            value = attrs.get(name)
            if value is not None:
                # in-page anchors, or links to files of the run folder itself (never a scheme or host)
                inside = value.startswith("#") or not re.match(r"^([a-z][a-z0-9+.-]*:|/|\.\.)", value, re.I)
                assert name == "href" and inside and ".." not in value.split("/"), f"<{tag} {name}={value!r}>"
        assert tag not in ("link", "iframe", "object", "embed", "img", "base", "form")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    css = "".join(page.raw["style"])
    assert "url(" not in css and "@import" not in css and "@font-face" not in css
    js = "".join(page.raw["script"])
    assert not re.search(r"fetch|XMLHttpRequest|import\(|https?:", js)


def test_csp_allows_only_the_inline_style_and_script(page: _Page) -> None:
    (meta,) = page.find("meta", **{"http-equiv": "Content-Security-Policy"})
    csp = meta["content"] or ""
    assert "default-src 'none'" in csp

    def sha(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert f"style-src {sha(page.raw['style'][0])};" in csp
    assert f"script-src {sha(page.raw['script'][0])};" in csp


def test_rewrite_is_identical(run_dir: Path) -> None:
    first = write_html_report(run_dir).read_bytes()
    assert write_html_report(run_dir).read_bytes() == first


@pytest.mark.parametrize(
    ("mode", "css"),
    [
        ("insecure (verification off)", "tls-insecure"),  # the labels harness.inventory.schema.Tls.mode gives
        ("pinned SHA-256 thumbprint", "tls-pinned"),
        ("verified against system CAs", "tls-verified"),
        ("verified against /etc/insecure-lab/ca.pem", "tls-verified"),
        ("insecure", "tls-insecure"),
        ("thumbprint", "tls-pinned"),
        ("verify", "tls-verified"),
        ("", "tls-unknown"),
        ("something else", "tls-unknown"),
    ],
)
def test_tls_mode_labels(mode: str, css: str) -> None:
    assert tls_view(mode).css == css


def test_short_text_is_first_sentence_and_bounded() -> None:
    assert short_text("Decrypting needs the VM powered off. More text.") == "Decrypting needs the VM powered off."
    long = "word " * 60
    assert len(short_text(long)) <= 122 and short_text(long).endswith("…")


def test_a_compliant_run_says_so_and_names_what_was_out_of_scope(tmp_path: Path) -> None:
    """Compliance statement and overall sentence agree with the verdicts that set the exit status."""
    catalogue = load_catalogue()
    tests = [{"nodeid": f"s::t{i}", "name": f"t{i}", "rules": [r.id], "outcome": "passed"} for i, r in enumerate(catalogue)]
    tests[0].update(outcome="skipped", category="version_skip", message="version: not this target")
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "r", "compliance": True, "compliance_gaps": [],
                                                   "exit_status": 0}))
    (tmp_path / "results.json").write_text(json.dumps({"tests": tests}))
    html = render_html(tmp_path)
    assert 'id="compliance">yes – every applicable rule demonstrated<' in html
    assert "All applicable rules demonstrated (1 not applicable to the target&#39;s version)" in html
    assert "not demonstrated" not in html.split('id="summary"')[0]


def test_a_merged_assessment_says_so_first_with_its_partial_reasons_and_a_verdict_per_lab(run_dir: Path) -> None:
    """`vcrypt merge` wrote the per-lab verdicts and --allow-partial's reasons into run.json, but the
    report a reader opens showed neither: a partial assessment of two labs read like one whole run."""
    run = json.loads((run_dir / "run.json").read_text())
    run["merge"] = {
        "inputs": [], "partial": True,
        "partial_reasons": ["lab lab-80: shard 2/2 missing (--allow-partial)"],
        "labs": {"lab-70": {"shards": ["1/2", "2/2"], "inventory": "lab70.yaml", "overall": "failed",
                            "verdicts": {"REKEY-SHALLOW": "failed", "KMS-STATUS": "passed"}},
                 "lab-80": {"shards": ["1/2"], "inventory": "lab80.yaml", "overall": "partly demonstrated",
                            "verdicts": {"REKEY-SHALLOW": "not run", "KMS-STATUS": "passed"}}},
        "verdicts": {}, "overall": "failed",
    }
    (run_dir / "run.json").write_text(json.dumps(run))
    html = render_html(run_dir)
    header = html.split("</header>")[0]
    assert 'id="merged"' in header and "2 labs" in header and "3 shards" in header, header[-3000:]
    assert 'id="partial"' in header and "shard 2/2 missing" in header
    for lab, overall in (("lab-70", "failed"), ("lab-80", "partly demonstrated")):
        assert re.search(rf"<td[^>]*>{lab}</td>\s*<td[^>]*>{overall}</td>", header), lab
    assert "REKEY-SHALLOW" in header.split('id="merged"')[1]   # the rules a lab did not pass are named


def test_an_ordinary_run_has_no_merge_section(run_dir: Path) -> None:
    html = render_html(run_dir)
    assert 'id="merged"' not in html and 'id="partial"' not in html
