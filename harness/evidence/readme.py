"""README.txt of a run folder: what each file is and how to check the folder's integrity.

The folder travels without the harness; its README must tell an auditor, in plain text, whether
the run is signed (and with which key) or only tamper-evident, and the commands that check it.
"""

from __future__ import annotations

from pathlib import Path

from harness.evidence.signing import ALGORITHM, SIGNATURE, UNSIGNED, SigningKey

FILENAME = "README.txt"


def readme_text(run_id: str, signing_key: SigningKey | None) -> str:
    if signing_key is None:
        integrity = (f"Integrity: {UNSIGNED}.\n"
                     "  manifest.sha256 lists the SHA-256 of every file, but nothing signs it: whoever can\n"
                     "  write this folder can change a file and its manifest line together. Sign runs with\n"
                     "  `vcrypt keygen` and `vcrypt run --signing-key FILE` (or the inventory's evidence section).\n"
                     "  Check: sha256sum -c manifest.sha256   or   vcrypt verify-evidence .\n")
    else:
        integrity = (f"Integrity: signed. {SIGNATURE} is an {ALGORITHM} signature of manifest.sha256;\n"
                     f"  the signing key's public key has SHA-256 fingerprint {signing_key.fingerprint}.\n"
                     "  Check with the public key you hold (not one found in this folder):\n"
                     "  vcrypt verify-evidence . --public-key signing.pub\n")
    return (f"vcrypt-harness run {run_id}\n\n"
            "report.html                     the report: verdict per rule, checks, evidence (open in a browser)\n"
            "run.json                        what was tested: targets, versions, operator, provenance\n"
            "results.json                    each test's outcome; evidence/<test id>.json its recorded evidence\n"
            "oscal-assessment-results.json   the same as OSCAL 1.1 assessment results\n"
            "oscal-assessment-plan.json      the OSCAL assessment plan those results import (by SHA-256)\n"
            "junit.xml, allure-results/      for CI and Allure 2 (allure generate allure-results)\n"
            "allurerc.json, allure-history.jsonl  Allure 3's config and history (npx allure generate allure-results)\n"
            "summary.md                      the verdict in a few lines, for a CI job summary\n"
            "inventory.redacted.yaml         the inventory used, secrets redacted (its SHA-256 is in run.json)\n"
            "manifest.sha256                 SHA-256 of every other file (sha256sum format)\n\n"
            + integrity)


def write_readme(run_dir: Path, signing_key: SigningKey | None) -> Path:
    path = Path(run_dir) / FILENAME
    path.write_text(readme_text(Path(run_dir).name, signing_key), encoding="utf-8")
    return path
