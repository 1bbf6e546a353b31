"""What a vCenter says about itself (`ServiceInstance.content.about`), read through the operations layer.

The plugin's version gate needs the target's `AboutInfo` (version, apiVersion) before any test
runs; reading it here keeps pyVmomi calls inside harness/vsphere (issue 16, item 3).
"""
from __future__ import annotations

from typing import Any


def about_info(service_instance: Any) -> Any:
    """The target's `vim.AboutInfo` (vSphere API reference: ServiceInstance.content.about)."""
    return service_instance.content.about
