"""CryptoManagerKmip: key providers, trust, key generation (STUB: to be completed)."""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

from harness.fakevc.model.base import MO, CallContext


class CryptoManagerKmip(MO):
    vim_type = vim.encryption.CryptoManagerKmip
    moid_prefix = "CryptoManager"

    def seed_providers(self, providers: list[Any]) -> None:
        self.seeds = list(providers)
