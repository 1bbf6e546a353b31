"""The embedded KMS: a throwaway PKI, real PyKMIP servers as subprocesses, and a small KMIP client.

`EmbeddedKms` is what a default run starts; `KmipClient` is what a fake vCenter
and the evidence reads use to talk KMIP over mutual TLS 1.2.
"""

from harness.kms.client import (
    KmipClient,
    KmsKeyNotFound,
    KmsOperationFailed,
    KmsTrustError,
    KmsUnreachable,
    fetch_server_certificate,
)
from harness.kms.pki import CertPair, ThrowawayCA
from harness.kms.server import EmbeddedKms, KmsError, KmsServer

__all__ = [
    "CertPair",
    "EmbeddedKms",
    "KmipClient",
    "KmsError",
    "KmsKeyNotFound",
    "KmsOperationFailed",
    "KmsServer",
    "KmsTrustError",
    "KmsUnreachable",
    "ThrowawayCA",
    "fetch_server_certificate",
]
