"""Disk files with real bytes: data encrypted with a data key (DEK) that a KMS key (KEK) wraps.

Shallow rekey rewraps the DEK only; deep rekey decrypts and re-encrypts every byte with a new DEK
(and needs the temporary space for a second copy). So "shallow does not rewrite data" and
"deep rewrites data" are observable facts of the bytes, not flags.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

CANARY = b"VCRYPT-PLAINTEXT-CANARY:"
KeyRef = tuple[str, str]  # (provider id, key id on the KMS)


def _ctr(key: bytes, nonce: bytes, data: bytes) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    return cipher.update(data) + cipher.finalize()


def plaintext_pattern(size: int) -> bytes:
    """Guest data with a known canary, so a test can tell plaintext from ciphertext at rest."""
    return (CANARY * (size // len(CANARY) + 1))[:size]


@dataclass(eq=False)
class DiskFile:
    """One link of a disk chain (a base disk or a snapshot's delta) on a datastore."""
    path: str
    size: int
    datastore: Any
    data: bytes = b""
    key: KeyRef | None = None
    wrapped_dek: bytes | None = None
    nonce: bytes = field(default_factory=lambda: os.urandom(16))
    shared: bool = False  # a linked clone's base: owned by the parent, read by the clone

    @classmethod
    def create(cls, path: str, size: int, datastore: Any) -> "DiskFile":
        return cls(path=path, size=size, datastore=datastore, data=plaintext_pattern(size))

    @property
    def encrypted(self) -> bool:
        return self.key is not None

    def encrypt(self, kek: bytes, key: KeyRef) -> None:
        dek = os.urandom(32)
        self.nonce = os.urandom(16)
        self.data = _ctr(dek, self.nonce, self.data)
        self.wrapped_dek = aes_key_wrap(kek, dek)
        self.key = key

    def decrypt(self, kek: bytes) -> None:
        dek = aes_key_unwrap(kek, self.wrapped_dek)
        self.data = _ctr(dek, self.nonce, self.data)
        self.wrapped_dek = None
        self.key = None

    def shallow_rekey(self, old_kek: bytes, new_kek: bytes, new_key: KeyRef) -> None:
        """Rewrap the DEK with the new KEK; the data bytes stay exactly as they are."""
        dek = aes_key_unwrap(old_kek, self.wrapped_dek)
        self.wrapped_dek = aes_key_wrap(new_kek, dek)
        self.key = new_key

    def deep_rekey(self, old_kek: bytes, new_kek: bytes, new_key: KeyRef) -> None:
        """New DEK, every byte re-encrypted."""
        self.decrypt(old_kek)
        self.encrypt(new_kek, new_key)

    def copy(self, path: str, datastore: Any) -> "DiskFile":
        return DiskFile(path=path, size=self.size, datastore=datastore, data=self.data, key=self.key,
                        wrapped_dek=self.wrapped_dek, nonce=self.nonce)

    def read_plain(self, kek: bytes | None) -> bytes:
        if not self.encrypted:
            return self.data
        dek = aes_key_unwrap(kek, self.wrapped_dek)
        return _ctr(dek, self.nonce, self.data)
