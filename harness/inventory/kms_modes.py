"""The strict KMS's behaviours an inventory may name (`kms.strict`), and what each reproduces.

Here, below kms/, so the schema can check the names; harness/kms/strict/modes.py turns them into
the server's flags.
"""
from __future__ import annotations

# name -> what a real KMS does that this reproduces (KMIP 1.4 clause or product behaviour)
STRICT_KMS_MODES: dict[str, str] = {
    "plain": "KMIP 1.0-1.4, keys created Pre-Active, Raw key format, any client certificate of the CA",
    "active-keys": "Create makes keys Active at once (KMIP 1.4 §3.22 Activation Date); Activate is refused",
    "owner-only": "only the client identity that created a key may read it (PERMISSION_DENIED for others)",
    "credential": "every request must carry a KMIP Username/Password credential (KMIP 1.4 §2.1.2)",
    "kmip-1.1": "speaks only KMIP 1.0 and 1.1; a request in 1.2 is refused",
    "transparent": "Get answers in Transparent Symmetric Key format only (Raw is KEY_FORMAT_TYPE_NOT_SUPPORTED)",
    "idle-disconnect": "closes a connection idle for 1 s",
    "strictest": "all of the above at once",
    "chaos": "every operation but DiscoverVersions answers OPERATION_FAILED with reason INDEX_OUT_OF_BOUNDS",
    "chaos-all": "every operation, DiscoverVersions too, answers OPERATION_FAILED with reason INDEX_OUT_OF_BOUNDS",
}
