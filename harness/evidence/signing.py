"""Ed25519 signature over a run's manifest.sha256: evidence that is signed, not only hashed.

A manifest alone only shows that files and their hashes agree: whoever can write the folder can
rewrite a file and its manifest line together. A detached signature (`manifest.sha256.sig`) made
with a private key the run's operator does not hand out, checked with the public key an auditor
holds, turns that into tampering that verification catches.

Key sources, in order: `vcrypt run --signing-key FILE`, the inventory's
`evidence.signing_key_file` or `evidence.signing_key_env` (an environment variable holding the
PEM). Private keys are PKCS#8 PEM, unencrypted, mode 0600; they never enter the run folder.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harness.evidence.manifest import SIGNATURE  # noqa: E402 - one name for the file
ALGORITHM = "Ed25519"
UNSIGNED = "tamper-evident only, unsigned"


class SigningKeyError(ValueError):
    """A signing or verification key that cannot be used; the message names the source."""


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    source: str  # "file /path" or "environment variable NAME": for messages, never the key

    @property
    def kind(self) -> str:
        """Where the key came from as evidence says it: "file" or "env", never the path (issue 21)."""
        return "file" if self.source.startswith("file") else "env"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.private.public_key())


def fingerprint(public: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, hex: how reports name the key that signed."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _create(path: Path, mode: int) -> int:
    """A new file (never an existing one or a symlink) with exactly `mode`, whatever the umask."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    except FileExistsError:
        raise SigningKeyError(f"{path}: already exists; not overwriting a key") from None
    os.fchmod(fd, mode)   # open()'s mode is filtered by the umask; fchmod is not
    return fd


def generate_keypair(private_path: Path, public_path: Path) -> str:
    """Write a new key pair (private 0600, public 0644, never overwritten); returns the public key's fingerprint."""
    for path in (private_path, public_path):
        if os.path.lexists(path):
            raise SigningKeyError(f"{path}: already exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public_fd = _create(public_path, 0o644)
    try:
        private_fd = _create(private_path, 0o600)
    except SigningKeyError:
        os.close(public_fd)
        public_path.unlink()
        raise
    with os.fdopen(private_fd, "wb") as fh:
        fh.write(pem)
    with os.fdopen(public_fd, "wb") as fh:
        fh.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo))
    return fingerprint(key.public_key())


def _private_from_pem(data: bytes, source: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        reason = "encrypted keys are not supported" if "password" in str(err).lower() else "not a PEM private key"
        raise SigningKeyError(f"signing key ({source}): {reason}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"signing key ({source}): not an Ed25519 key (use `vcrypt keygen`)")
    return key


def load_signing_key(path: Path | None = None, env: str | None = None) -> SigningKey | None:
    """The signing key from a file or an environment variable; None when neither is given."""
    if path is not None:
        source = f"file {path}"
        from harness.inventory.checks import UnreadableFile, read_regular_bounded
        try:
            data = read_regular_bounded(Path(path))   # a FIFO or /dev/zero is refused, not waited on or read
        except UnreadableFile as err:
            raise SigningKeyError(f"signing key ({source}): {err.reason}") from None
        except OSError as err:
            raise SigningKeyError(f"signing key ({source}): {err.strerror or err}") from None
        return SigningKey(_private_from_pem(data, source), source)
    if env:
        source = f"environment variable {env}"
        value = os.environ.get(env)
        if not value:
            raise SigningKeyError(f"signing key ({source}): not set")
        from harness.evidence.recorder import register_secret
        register_secret(value)
        return SigningKey(_private_from_pem(value.encode(), source), source)
    return None


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except OSError as err:
        raise SigningKeyError(f"public key {path}: {err.strerror or err}") from None
    except (ValueError, TypeError):
        raise SigningKeyError(f"public key {path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"public key {path}: not an Ed25519 key")
    return key


def sign_manifest(run_dir: Path, key: SigningKey) -> Path:
    """Write manifest.sha256.sig: the base64 Ed25519 signature of manifest.sha256's bytes."""
    from harness.evidence.manifest import MANIFEST
    signature = key.private.sign((Path(run_dir) / MANIFEST).read_bytes())
    path = Path(run_dir) / SIGNATURE
    path.write_text(base64.b64encode(signature).decode("ascii") + "\n", encoding="ascii")
    return path


def verify_signature(run_dir: Path, public: Ed25519PublicKey) -> list[str]:
    """Problems with the signature ([] = manifest.sha256 was signed by this key's owner)."""
    from harness.evidence.manifest import MANIFEST
    sig_path, manifest = Path(run_dir) / SIGNATURE, Path(run_dir) / MANIFEST
    if not sig_path.is_file():
        return [f"signature missing: {SIGNATURE} (the run was not signed)"]
    if not manifest.is_file():
        return ["manifest missing"]
    try:
        signature = base64.b64decode(sig_path.read_text(encoding="ascii").strip(), validate=True)
        public.verify(signature, manifest.read_bytes())
    except (ValueError, InvalidSignature, UnicodeDecodeError):
        return [f"signature invalid: {SIGNATURE} does not match manifest.sha256 for key {fingerprint(public)}"]
    return []


def manifest_digest(run_dir: Path) -> str:
    """SHA-256 of manifest.sha256 itself: one value to write down or publish per run."""
    from harness.evidence.manifest import MANIFEST
    return hashlib.sha256((Path(run_dir) / MANIFEST).read_bytes()).hexdigest()


def signing_key_for(option: str | None, inventory: Any) -> SigningKey | None:
    """The run's signing key: the `--signing-key` option, else the inventory's `evidence` section."""
    if option:
        return load_signing_key(path=Path(option))
    options = getattr(inventory, "evidence", None)
    if options is None:
        return None
    path = options.signing_key_file
    if path is not None and not path.is_absolute():
        path = Path(inventory.path).parent / path
    key_name = "signing_key_file" if path is not None else "signing_key_env"
    try:
        return load_signing_key(path=path, env=options.signing_key_env)
    except SigningKeyError as err:
        raise SigningKeyError(f"inventory {inventory.path}: evidence.{key_name}: {err}") from None


def signing_summary(key: SigningKey | None) -> dict[str, Any]:
    """What run.json, the report and the README say about the signature."""
    if key is None:
        return {"signed": False, "statement": UNSIGNED}
    return {"signed": True, "algorithm": ALGORITHM, "public_key_sha256": key.fingerprint, "key_source": key.kind,
            "signature_file": SIGNATURE,
            "statement": f"signed: {SIGNATURE} is an {ALGORITHM} signature of manifest.sha256 "
                         f"(public key SHA-256 {key.fingerprint})"}
