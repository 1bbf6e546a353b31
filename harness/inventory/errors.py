"""`InventoryError`: below both the schema and its checks, so neither imports the other for it."""
from __future__ import annotations


class InventoryError(ValueError):
    """A problem in an inventory file, already phrased for the user."""
