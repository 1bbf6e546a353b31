"""(STUB) relocate behaviour."""
