"""Which vSphere version a target is, for the rules' version gate, and skips by version.

Why not `about.version` alone: vcsim leaves it at 6.5.0 whatever `-api-version` says; only
`about.apiVersion` follows (govmomi vcsim/main.go; API.md 12). So the inventory's declared `version`
is the target's version, cross-checked against `about.apiVersion` (major.minor: vCenter 6.7 U3
reports version 6.7.0 and apiVersion 6.7.3). On a mismatch the server's apiVersion wins (pyVmomi
speaks that version to it) and `vcrypt verify-config` reports the mismatch. Without a declared
version a real vCenter's `about.version` is used, a vcsim's apiVersion.

The gate runs twice: before any fixture from the declared version (so a version skip wins over a
session fixture that errors, e.g. a provider the target cannot register), and once the target is
connected with the cross-checked version.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.rules import Rule, version_tuple


@dataclass(frozen=True)
class TargetVersion:
    text: str              # the version the gate uses
    source: str            # "declared", "apiVersion" or "about.version"
    mismatch: str = ""     # non-empty: the declared version disagrees with apiVersion


def api_mismatch(declared: str | None, api_version: str | None) -> str:
    """'' when the declared version agrees with apiVersion on major.minor (or either is unknown)."""
    if not declared or not api_version:
        return ""
    if version_tuple(declared)[:2] == version_tuple(api_version)[:2]:
        return ""
    return f"inventory declares version {declared} but the server's about.apiVersion is {api_version}"


def target_version(entry: Any, about: Any) -> TargetVersion:
    """The version of an inventory entry's target, from its declared version and `about`."""
    api = getattr(about, "apiVersion", None)
    if entry.target == "fake":
        return TargetVersion(about.version, "about.version")
    mismatch = api_mismatch(entry.version, api)
    if entry.version and not mismatch:
        return TargetVersion(entry.version, "declared")
    if entry.target == "vcsim" or mismatch:
        return TargetVersion(".".join(str(p) for p in version_tuple(api or about.version)[:3]), "apiVersion", mismatch)
    return TargetVersion(about.version, "about.version")


def skip_reason(rules: list[Rule], version_text: str, vcenter: str, source: str = "") -> str | None:
    """'version: ...' when a rule of the test does not describe this version; else None."""
    version = version_tuple(version_text)
    for rule in rules:
        if not rule.applies_to(version):
            span = f"vSphere {rule.since}" + (f" to {rule.until}" if rule.until else " and later")
            said = {"declared": "is declared as", "apiVersion": "reports apiVersion"}.get(source, "reports")
            return f"version: rule {rule.id} describes {span}; target {vcenter} {said} {version_text}"
    return None
