"""The fake's KMIP side: key providers, connections to their KMS, key operations, KMS health."""
