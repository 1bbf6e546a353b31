"""`vcrypt verify-evidence`: hashes, symlinks and (with a public key) the manifest's signature.

Kept apart from the CLI so the verdict lines are the same wherever a run folder is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.evidence.manifest import SIGNATURE, verify_manifest
from harness.evidence.signing import UNSIGNED, fingerprint, load_public_key, verify_signature


@dataclass(frozen=True)
class Verification:
    problems: list[str]
    status: str  # the closing line: what was shown about the folder

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_run_folder(run_dir: Path, public_key: Path | None = None) -> Verification:
    """Every file against manifest.sha256; the signature too when a public key is given.

    Raises SigningKeyError for an unusable public key (a usage error, not a verdict).
    """
    run_dir = Path(run_dir)
    public = load_public_key(public_key) if public_key is not None else None
    problems = verify_manifest(run_dir)
    signed = (run_dir / SIGNATURE).is_file()
    if public is not None:
        problems += verify_signature(run_dir, public)
        status = f"signature valid (Ed25519, public key SHA-256 {fingerprint(public)})"
    elif signed:
        status = f"{SIGNATURE} present but not checked: give --public-key to verify it; hashes only"
    else:
        status = UNSIGNED
    return Verification(problems, status)
