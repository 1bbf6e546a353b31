"""AlarmManager with the KMS health alarm (STUB: to be completed)."""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

from harness.fakevc.model.base import MO, CallContext


class AlarmManager(MO):
    vim_type = vim.alarm.AlarmManager
    moid_prefix = "AlarmManager"

    def triggered_on(self, entity: MO) -> list:
        return []
