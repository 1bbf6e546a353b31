"""(STUB) clone behaviour."""
