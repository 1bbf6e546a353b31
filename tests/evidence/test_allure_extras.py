"""Allure environment.properties and categories.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.evidence.allure_extras import write_allure_extras


def _properties(path: Path) -> dict[str, str]:
    """Just enough of java.util.Properties to read what we write."""
    result = {}
    for line in path.read_text(encoding="ascii").splitlines():
        key, value = re.split(r"(?<!\\)=", line, maxsplit=1)

        def unescape(text: str) -> str:
            text = re.sub(r"\\u([0-9a-f]{4})", lambda m: chr(int(m.group(1), 16)), text)
            return re.sub(
                r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r", "f": "\f"}.get(m.group(1), m.group(1)), text
            )

        result[unescape(key)] = unescape(value)
    return result


def test_environment_properties(run_dir: Path) -> None:
    write_allure_extras(run_dir)
    env = _properties(run_dir / "allure-results" / "environment.properties")
    assert env["Target.Kind"] == "fake"
    assert env["Harness.Version"] == "0.1.0"
    assert env["vCenter.vc-a.Version"] == "8.0.3" and env["vCenter.vc-a.Build"] == "24022515"
    assert env["vCenter.vc-a.TLS"] == "insecure (verification off)"
    assert env["vCenter.vc-b.TLS"] == "pinned SHA-256 thumbprint"
    assert env["KMS.Servers"] == "127.0.0.1:5696"
    assert env["KMS.Embedded"] == "yes"


def test_environment_properties_escape_odd_values(run_dir: Path) -> None:
    run = json.loads((run_dir / "run.json").read_text())
    run["vcenters"][0]["name"] = "vc a=1"
    run["vcenters"][0]["build"] = "Ünïcode\nnext=line"
    (run_dir / "run.json").write_text(json.dumps(run))
    write_allure_extras(run_dir)
    env = _properties(run_dir / "allure-results" / "environment.properties")
    assert env["vCenter.vc a=1.Build"] == "Ünïcode\nnext=line"


def test_categories(run_dir: Path) -> None:
    write_allure_extras(run_dir)
    cats = json.loads((run_dir / "allure-results" / "categories.json").read_text())
    names = [c["name"] for c in cats]
    for name in ("Product failures", "Environment errors", "Capability skips", "Safety skips", "Version skips"):
        assert name in names

    def matching(status: str, message: str) -> set[str]:
        return {
            c["name"]
            for c in cats
            if status in c["matchedStatuses"] and re.fullmatch(c.get("messageRegex", "(?s).*"), message)
        }

    assert matching("failed", "AssertionError: disk ciphertext changed") == {"Product failures"}
    assert matching("broken", "KMS unreachable: connection refused (127.0.0.1:5696)") == {"Environment errors"}
    assert matching("broken", "TimeoutError: waited 300 s for task-9") == {"Environment errors"}
    # a failure the plugin classified as an environment error is not a product failure
    assert matching("failed", "Timeout waiting for task-77 (last state: running, 300 s)") == {"Environment errors"}
    assert matching("skipped", "Skipped: skipped: vcsim lacks host key caches") == {"Capability skips"}
    assert matching("skipped", "Skipped: rule applies before vSphere 7.0; target is 8.0.3") == {"Version skips"}
    assert matching("skipped", "Skipped: destructive tests are not allowed by the inventory") == {"Safety skips"}
    assert matching("skipped", "Skipped: real-lab lacks a second vCenter") == {"Capability skips"}
