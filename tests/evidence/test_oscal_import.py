"""OSCAL another tool can import: valid URI references, hashed evidence, parties, provenance."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from trestle.oscal import assessment_results

from harness.evidence.oscal import uri_reference, write_oscal_results

from .conftest import T_CLONE

# RFC 3986 relative-ref / URI-reference: only these characters, every "%" starts an escape, and
# (outside an IP-literal host, which run-folder paths never have) no "[" or "]".
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]*")


def is_uri_reference(value: str) -> bool:
    return bool(_URI_CHARS.fullmatch(value)) and not re.search(r"%(?![0-9A-Fa-f]{2})", value)


def _hrefs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "href"] + [h for v in node.values() for h in _hrefs(v)]
    if isinstance(node, list):
        return [h for v in node for h in _hrefs(v)]
    return []


def _odd_test_id(run_dir: Path) -> str:
    """A parametrized test id as the plugin writes it: brackets and spaces in the file name."""
    odd = f"{T_CLONE}[plain policy]"
    results = json.loads((run_dir / "results.json").read_text())
    results["tests"][0]["test_id"] = odd
    results["tests"][0]["evidence_file"] = f"evidence/{odd}.json"
    (run_dir / "results.json").write_text(json.dumps(results))
    (run_dir / "evidence" / f"{T_CLONE}.json").rename(run_dir / "evidence" / f"{odd}.json")
    return odd


def _provenance(run_dir: Path) -> None:
    run = json.loads((run_dir / "run.json").read_text())
    run["provenance"] = {
        "operator": {"user": "alice", "host": "lab-ws-1"},
        "command_line": ["vcrypt", "run", "--compliance"],
        "harness": {"version": "0.1.0", "git_commit": "a" * 40, "git_dirty": True, "source": "/src"},
        "python": "3.11.7", "packages": {"pyVmomi": "9.1.1.0", "PyKMIP": "0.11.0", "pytest": "9.2.0"},
        "inventory": {"path": "inv.yaml", "sha256": "b" * 64, "redacted_copy": "inventory.redacted.yaml"},
        "fake_defects": ["clone-encrypt-ignored"],
        "kms_product": {"product": "PyKMIP server (embedded, started by the harness)", "version": "0.11.0"},
        "signing": {"signed": False, "statement": "tamper-evident only, unsigned"},
    }
    (run_dir / "run.json").write_text(json.dumps(run))


def test_every_href_is_a_uri_reference_and_evidence_files_resolve(run_dir: Path) -> None:
    odd = _odd_test_id(run_dir)
    doc = json.loads(write_oscal_results(run_dir).read_text())
    hrefs = _hrefs(doc)
    assert hrefs and [h for h in hrefs if not is_uri_reference(h)] == []
    encoded = uri_reference(f"evidence/{odd}.json")
    assert encoded == f"evidence/{T_CLONE}%5Bplain%20policy%5D.json" and encoded in hrefs
    for href in hrefs:
        if not href.startswith("#"):
            assert (run_dir / unquote(href)).is_file(), href
    assessment_results.Model.model_validate(doc)


def test_the_uri_reference_check_itself_rejects_raw_spaces_and_brackets() -> None:
    assert not is_uri_reference("evidence/x[plain policy].json")
    assert not is_uri_reference("evidence/100%.json")
    assert is_uri_reference("evidence/x%5Bplain%20policy%5D.json") and is_uri_reference("#abc")


def test_evidence_is_linked_to_back_matter_resources_with_sha256(run_dir: Path) -> None:
    doc = json.loads(write_oscal_results(run_dir).read_text())["assessment-results"]
    resources = {r["uuid"]: r for r in doc["back-matter"]["resources"]}
    observations = doc["results"][0]["observations"]
    for obs in observations:
        evidence = obs["relevant-evidence"][0]
        (link,) = evidence["links"]
        resource = resources[link["href"].removeprefix("#")]
        (rlink,) = resource["rlinks"]
        assert rlink["href"] == evidence["href"]
        (digest,) = rlink["hashes"]
        data = (run_dir / unquote(rlink["href"])).read_bytes()
        assert digest == {"algorithm": "SHA-256", "value": hashlib.sha256(data).hexdigest()}
    titles = {r["title"] for r in resources.values()}
    assert {"run.json", "results.json", "junit.xml"} <= titles


def test_metadata_names_parties_responsible_parties_and_provenance(run_dir: Path) -> None:
    _provenance(run_dir)
    meta = json.loads(write_oscal_results(run_dir).read_text())["assessment-results"]["metadata"]
    parties = {p["uuid"]: p for p in meta["parties"]}
    roles = {r["id"] for r in meta["roles"]}
    responsible = {r["role-id"]: r["party-uuids"] for r in meta["responsible-parties"]}
    assert "assessor" in roles and set(responsible) <= roles
    (operator,) = [parties[u] for u in responsible["assessor"]]
    assert operator["type"] == "person" and operator["name"] == "alice@lab-ws-1"
    props = {p["name"]: p["value"] for p in meta["props"]}
    assert props["git-commit"] == "a" * 40 and props["git-dirty"] == "true"
    assert props["inventory-sha256"] == "b" * 64 and props["fake-defects"] == "clone-encrypt-ignored"
    assert props["pykmip-version"] == "0.11.0" and props["python-version"] == "3.11.7"
    assert props["kms-product"].startswith("PyKMIP") and props["signing"] == "tamper-evident only, unsigned"
    assert props["command-line"] == "vcrypt run --compliance"
