"""(STUB) instant_clone behaviour."""
