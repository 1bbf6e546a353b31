"""(STUB) snapshots behaviour."""
