"""(STUB) reconfigure behaviour."""
