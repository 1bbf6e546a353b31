"""AuthorizationManager: roles, privileges, permissions, and privilege checks (STUB)."""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

from harness.fakevc.model.base import MO, CallContext


class AuthorizationManager(MO):
    vim_type = vim.AuthorizationManager
    moid_prefix = "AuthorizationManager"

    def require(self, ctx: CallContext, entity: MO, privilege: str) -> None:
        """Raise vim.fault.NoPermission unless the caller holds `privilege` on `entity`."""

    def permissions_on(self, entity: MO) -> list:
        return []
