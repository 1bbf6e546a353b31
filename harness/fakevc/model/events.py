"""EventManager: posted events and QueryEvents (STUB: to be completed)."""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

from harness.fakevc.model.base import MO, CallContext


class EventManager(MO):
    vim_type = vim.event.EventManager
    moid_prefix = "EventManager"

    def __init__(self, vc: Any, moid: str | None = None) -> None:
        super().__init__(vc, moid)
        self.events: list[Any] = []

    def post(self, type_id: str, *, entity: MO | None = None, severity: str = "info", message: str = "",
             arguments: dict[str, str] | None = None) -> Any:
        """Record an EventEx, as vCenter posts one for crypto conditions."""
        raise NotImplementedError
