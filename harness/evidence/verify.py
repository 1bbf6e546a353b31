"""`vcrypt verify-evidence`: hashes, symlinks and the manifest's signature, with no downgrade.

Kept apart from the CLI so the verdict lines are the same wherever a run folder is checked.
A manifest alone can be rewritten together with a file, so a folder that *says* it was signed
(run.json's provenance, README.txt, report.html) must carry a valid signature: deleting the
.sig does not turn a signed folder into an "intact, unsigned" one. A signed folder checked
without a public key is not called verified unless the caller asks for hashes only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.evidence.manifest import SIGNATURE, verify_manifest
from harness.evidence.signing import UNSIGNED, fingerprint, load_public_key, verify_signature


@dataclass(frozen=True)
class Verification:
    problems: list[str]
    status: str  # the closing line: what was shown about the folder
    needs_key: bool = False  # signed, but no key was given and hashes only were not asked for

    @property
    def ok(self) -> bool:
        return not self.problems and not self.needs_key


def signing_claims(run_dir: Path) -> list[str]:
    """The files of the folder that state it was signed (each is covered by the manifest)."""
    claims = []
    try:
        run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        if isinstance(run, dict) and (run.get("provenance") or {}).get("signing", {}).get("signed") is True:
            claims.append("run.json")
    except (OSError, ValueError, AttributeError):
        pass
    for name, marker in (("README.txt", "Integrity: signed."), ("report.html", 'class="integrity signed"')):
        try:
            if marker in (run_dir / name).read_text(encoding="utf-8", errors="replace"):
                claims.append(name)
        except OSError:
            pass
    return claims


def run_id_problem(run_dir: Path) -> list[str]:
    """A run folder is named after its run id (`vcrypt run`); a renamed one is reported."""
    try:
        run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    run_id = run.get("run_id") if isinstance(run, dict) else None
    folder = run_dir.resolve().name
    if isinstance(run_id, str) and run_id and run_id != folder:
        return [f"run id {run_id} (run.json) does not match the folder name {folder}: the folder was renamed "
                "or holds another run's files"]
    return []


def verify_run_folder(run_dir: Path, public_key: Path | None = None, hashes_only: bool = False,
                      named_by_run_id: bool = True) -> Verification:
    """Every file against manifest.sha256; the signature when a key is given or the folder claims one.

    `named_by_run_id` False: a folder under another name is no problem (`vcrypt merge` takes shard
    folders as CI artifact downloads name them, and identifies each by its hashed run.json).

    Raises SigningKeyError for an unusable public key (a usage error, not a verdict).
    """
    run_dir = Path(run_dir)
    public = load_public_key(public_key) if public_key is not None else None
    problems = verify_manifest(run_dir) + (run_id_problem(run_dir) if named_by_run_id else [])
    signed = (run_dir / SIGNATURE).is_file()
    claims = signing_claims(run_dir)
    if claims and not signed:
        problems.append(f"signature missing: {SIGNATURE} is gone, but the folder says it was signed "
                        f"({', '.join(claims)})")
    if public is not None:
        problems += [p for p in verify_signature(run_dir, public) if not (claims and p.startswith("signature missing"))]
        return Verification(problems, f"signature valid (Ed25519, public key SHA-256 {fingerprint(public)})")
    if signed or claims:
        if hashes_only:
            return Verification(problems, f"{SIGNATURE} not checked (--hashes-only): hashes only, which a "
                                          "tamperer can rewrite together with a file")
        return Verification(problems, f"signed folder: give --public-key KEY.pub to verify {SIGNATURE}, or "
                                      "--hashes-only to check only the hashes", needs_key=True)
    return Verification(problems, UNSIGNED)
