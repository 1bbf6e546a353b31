"""Allure environment, categories, executor and history for a run.

Allure shows `environment.properties` on its overview page and sorts non-passing tests into
the buckets of `categories.json`. Without them an Allure report cannot tell a product failure
from a lab problem, nor say which vCenter build was tested. `executor.json` and `history/`
(allure_history) give the Trend across runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness.evidence.allure_history import ALLURE3_HISTORY, carry_allure3_history, carry_history, executor
from harness.evidence.verdicts import Run, TestResult, load_run

RESULTS_DIR = "allure-results"

# Stable patterns, the same for every run (never one run's messages). The plugin's own skips
# start with a category prefix ("capability: ...", "safety: ...", "version: ...", RULES.md's
# "unconfirmed: ..."); a skip without one is filed by its words, the way the plugin defaults it.
SKIPPED = r"(?:Skipped: )?"
NO_PREFIX = rf"(?!{SKIPPED}(?:capability|safety|version|unconfirmed):)"
ENVIRONMENT_PATTERN = (r"environment error|KMS (?:is )?unreachable|[Uu]nreachable|[Cc]onnection|[Tt]ime(?:d )?out|"
                       r"[Tt]imeout|KmsUnreachable|VCenterUnreachable|ConnectError|EnvironmentFault")
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
    env["Compliance"] = compliance_statement(run)
    env["Seeded.Defects"] = ", ".join(run.fake_defects) or "none"
    return {k: v for k, v in env.items() if v}


def compliance_statement(run: Run) -> str:
    """PASS, FAIL: <rules> or not requested: the same words as JUnit's `compliance` property."""
    if not run.compliance:
        return "not requested"
    rules = [gap.split(":", 1)[0] for gap in run.compliance_gaps]
    return "FAIL: " + ", ".join(rules) if rules else "PASS"


def executor_statement(run: Run) -> str:
    parts = [f"compliance {compliance_statement(run)}"] if run.compliance else []
    if run.fake_defects:
        parts.append(f"seeded fake defects: {', '.join(run.fake_defects)}")
    return "; ".join(parts)


def _skip_category(name: str, description: str, prefix: str, words: str | None, not_words: str = "") -> dict[str, Any]:
    """A skip category: the plugin's prefix, or (for a skip without one) the category's words."""
    exclude = f"(?!.*(?:{not_words}))" if not_words else ""
    fallback = f"|{NO_PREFIX}{exclude}.*(?:{words}).*" if words else (f"|{NO_PREFIX}{exclude}.*" if words is None else "")
    return {"name": name, "description": description, "matchedStatuses": ["skipped"],
            "messageRegex": f"(?s)(?:{SKIPPED}{prefix}:.*{fallback})"}


def categories(tests: list[TestResult] | None = None) -> list[dict[str, Any]]:
    """Allure 2 categories from stable patterns (Java regexes, matched against the whole message);
    `tests` is accepted for callers of the old signature."""
    env = f"(?s).*(?:{ENVIRONMENT_PATTERN}).*"
    return [
        {"name": "Product failures", "description": "The product did not behave as the rule says.",
         "matchedStatuses": ["failed"], "messageRegex": f"(?s)(?!.*(?:{ENVIRONMENT_PATTERN})).*"},
        {"name": "Environment errors",
         "description": "The test could not complete: KMS, network or target problem. Not a verdict on the product.",
         "matchedStatuses": ["broken", "failed"], "messageRegex": env},
        {"name": "Test or harness errors",
         "description": "The test broke for a reason that is neither the product nor the lab: look at the harness.",
         "matchedStatuses": ["broken"], "messageRegex": f"(?s)(?!.*(?:{ENVIRONMENT_PATTERN})).*"},
        _skip_category("Capability skips", "The target lacks a capability the rule needs; the rule was not demonstrated.",
                       "capability", None, f"{SAFETY_PATTERN}|{VERSION_PATTERN}"),
        _skip_category("Safety skips", "The inventory does not allow the mutations or destructive changes this test needs.",
                       "safety", SAFETY_PATTERN),
        _skip_category("Version skips", "The rule does not apply to the target's vSphere version.",
                       "version", VERSION_PATTERN, SAFETY_PATTERN),
        _skip_category("Unconfirmed behaviour skips",
                       "The rule's behaviour is unconfirmed on this target kind (API.md); nothing was asserted.",
                       "unconfirmed", ""),
    ]


def js_categories() -> list[dict[str, Any]]:
    """The same categories for Allure 3, which tests a JavaScript RegExp anywhere in the message
    (@allurereport/core-api categories.js: `new RegExp(v).test(message)`): no inline `(?s)`, a dot
    that also matches newlines, anchored at both ends like Java's matches()."""
    out = []
    for category in categories():
        regex = category["messageRegex"].removeprefix("(?s)")
        regex = re.sub(r"(?<!\\)\.", r"[\\s\\S]", regex)
        out.append({**category, "messageRegex": f"^(?:{regex})$"})
    return out


def allurerc(run: Run) -> dict[str, Any]:
    """allurerc.json for Allure 3, run from the run folder (`npx allure generate allure-results`):
    categories and history where it reads them; its report goes to allure-report-3/, and it does not
    append to the (hashed) history file: the next run adds this one itself."""
    return {"name": f"vcrypt-harness run {run.run_id}", "output": "allure-report-3", "historyPath": ALLURE3_HISTORY,
            "appendHistory": False, "categories": js_categories()}


def write_allure_extras(run_dir: Path) -> list[Path]:
    """Write environment.properties, categories.json, executor.json and history/ into allure-results/."""
    run_dir = Path(run_dir)
    out = run_dir / RESULTS_DIR
    out.mkdir(exist_ok=True)
    env = environment(load_run(run_dir))
    props = "".join(f"{_escape_properties(k, True)}={_escape_properties(v, False)}\n" for k, v in env.items())
    env_path = out / "environment.properties"
    env_path.write_text(props, encoding="ascii", newline="\n")
    cat_path = out / "categories.json"
    cat_path.write_text(json.dumps(categories(), indent=2) + "\n", encoding="utf-8")
    executor_path = out / "executor.json"
    run = load_run(run_dir)
    executor_path.write_text(json.dumps(executor(run_dir, executor_statement(run)), indent=2) + "\n", encoding="utf-8")
    history = carry_history(run_dir)
    history3 = carry_allure3_history(run_dir)
    rc_path = run_dir / "allurerc.json"
    rc_path.write_text(json.dumps(allurerc(run), indent=2) + "\n", encoding="utf-8")
    return [env_path, cat_path, executor_path, rc_path, *([history] if history else []), *([history3] if history3 else [])]
