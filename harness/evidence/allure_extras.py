"""Allure environment and categories for a run.

Allure shows `environment.properties` on its overview page and sorts non-passing tests into
the buckets of `categories.json`. Without them an Allure report cannot tell a product failure
from a lab problem, nor say which vCenter build was tested.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.evidence.verdicts import Run, TestResult, load_results, load_run

RESULTS_DIR = "allure-results"

# Generic patterns, for messages this run did not classify itself (see categories()).
ENVIRONMENT_PATTERN = r"KMS (?:is )?unreachable|[Cc]onnection|[Tt]ime(?:d )?out|[Tt]imeout"
CAPABILITY_PATTERN = r"lacks"
SAFETY_PATTERN = r"destructive|mutation|not allowed|[Ss]afety"
UNCONFIRMED_PATTERN = r"[Uu]nconfirmed"
VERSION_PATTERN = r"[Vv]ersion|vSphere \d|requires \d|before 7|older than"


def _escape_properties(text: str, is_key: bool) -> str:
    """java.util.Properties escaping, ASCII only (Allure reads the file as ISO-8859-1)."""
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch in "\n\r\t\f":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}[ch])
        elif ch in "=:#!" or (ch == " " and (is_key or i == 0)):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) > 0x7E:
            out.extend(f"\\u{unit:04x}" for unit in _utf16_units(ch))
        else:
            out.append(ch)
    return "".join(out)


def _utf16_units(ch: str) -> list[int]:
    data = ch.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def environment(run: Run) -> dict[str, str]:
    """Key/value pairs shown on Allure's overview page."""
    env: dict[str, str] = {
        "Run.ID": run.run_id,
        "Target.Kind": run.target,
        "Harness.Version": run.harness_version,
    }
    for vc in run.vcenters:
        env[f"vCenter.{vc.name}.Version"] = vc.version
        env[f"vCenter.{vc.name}.Build"] = vc.build
        env[f"vCenter.{vc.name}.API"] = vc.api_version
        env[f"vCenter.{vc.name}.TLS"] = vc.tls_mode
        env[f"vCenter.{vc.name}.Target"] = vc.target
    if run.kms_embedded is not None:
        env["KMS.Embedded"] = "yes" if run.kms_embedded else "no"
    env["KMS.Servers"] = ", ".join(s.address or s.name for s in run.kms_servers)
    return {k: v for k, v in env.items() if v}


def _first_lines(tests: list[TestResult]) -> list[str]:
    """First line of each message: Allure shows the exception text, which contains it."""
    lines = ((t.message or "").strip().splitlines() for t in tests)
    return list(dict.fromkeys(ls[0].strip()[:200] for ls in lines if ls and ls[0].strip()))


def _regex(include: Sequence[str], exclude: Sequence[str] = ()) -> str:
    """Java regex over the whole message (Allure uses matches(), not find()).

    include: plain patterns, any of which may occur; exclude: literal messages that belong to
    another category (Allure files a result under *every* category that matches).
    """
    neg = "(?!.*(?:" + "|".join(re.escape(m) for m in exclude) + "))" if exclude else ""
    body = ".*(?:" + "|".join(include) + ").*" if include else ".*"
    return "(?s)" + neg + body


def _literal(messages: list[str]) -> list[str]:
    return [re.escape(m) for m in messages]


def categories(tests: list[TestResult]) -> list[dict[str, Any]]:
    """Allure categories, built from this run's own classification plus generic patterns."""

    def of(category: str, outcome: str | None = None) -> list[TestResult]:
        return [t for t in tests if t.category == category and (outcome is None or t.outcome == outcome)]

    env_failed = _first_lines(of("environment_error", "failed"))
    skips = {c: _first_lines(of(c)) for c in ("capability_skip", "safety_skip", "version_skip", "unconfirmed_skip")}

    def skip_regex(category: str, generic: str) -> str:
        others = [m for c, ms in skips.items() if c != category for m in ms]
        return _regex([generic, *_literal(skips[category])], others)

    product: dict[str, Any] = {
        "name": "Product failures",
        "description": "The product did not behave as the rule says.",
        "matchedStatuses": ["failed"],
    }
    if env_failed:
        product["messageRegex"] = _regex([], env_failed)
    result = [
        product,
        {
            "name": "Environment errors",
            "description": "The test could not complete: KMS, network or target problem. Not a verdict on the product.",
            "matchedStatuses": ["broken"],
            "messageRegex": _regex([ENVIRONMENT_PATTERN, *_literal(_first_lines(of("environment_error")))]),
        },
    ]
    if env_failed:
        result.append({**result[1], "matchedStatuses": ["failed"], "messageRegex": _regex(_literal(env_failed))})
    result += [
        {
            "name": "Capability skips",
            "description": "The target lacks a capability the rule needs; the rule was not demonstrated.",
            "matchedStatuses": ["skipped"],
            "messageRegex": skip_regex("capability_skip", CAPABILITY_PATTERN),
        },
        {
            "name": "Safety skips",
            "description": "The inventory does not allow the mutations or destructive changes this test needs.",
            "matchedStatuses": ["skipped"],
            "messageRegex": skip_regex("safety_skip", SAFETY_PATTERN),
        },
        {
            "name": "Version skips",
            "description": "The rule does not apply to the target's vSphere version.",
            "matchedStatuses": ["skipped"],
            "messageRegex": skip_regex("version_skip", VERSION_PATTERN),
        },
        {
            "name": "Unconfirmed skips",
            "description": "The rule rests on a behaviour vSphere leaves unconfirmed; observed and recorded, not asserted.",
            "matchedStatuses": ["skipped"],
            "messageRegex": skip_regex("unconfirmed_skip", UNCONFIRMED_PATTERN),
        },
    ]
    return result


def write_allure_extras(run_dir: Path) -> list[Path]:
    """Write environment.properties and categories.json into allure-results/."""
    run_dir = Path(run_dir)
    out = run_dir / RESULTS_DIR
    out.mkdir(exist_ok=True)
    env = environment(load_run(run_dir))
    props = "".join(f"{_escape_properties(k, True)}={_escape_properties(v, False)}\n" for k, v in env.items())
    env_path = out / "environment.properties"
    env_path.write_text(props, encoding="ascii", newline="\n")
    cat_path = out / "categories.json"
    cat_path.write_text(json.dumps(categories(load_results(run_dir)), indent=2) + "\n", encoding="utf-8")
    return [env_path, cat_path]
