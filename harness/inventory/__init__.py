"""The inventory: what the user points the harness at, validated before anything starts.

schema.py (the typed models and `load_inventory`), checks.py (bounds, URLs, flags), secret.py
(passwords that never print), capabilities.py (what a target may declare), errors.py.
"""
