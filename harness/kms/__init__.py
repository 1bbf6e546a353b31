"""The embedded KMS: a throwaway PKI, real PyKMIP servers as subprocesses, and a small KMIP client.

`EmbeddedKms` is what a default run starts; `KmipClient` is what a fake vCenter
and the evidence reads use to talk KMIP over mutual TLS 1.2 to any compliant KMS
(every failure a `KmsFailure`); `harness.kms.strict` is the strict second KMS.
"""

from harness.kms.client import (
    KmipClient,
    KmsCredentialError,
    KmsFailure,
    KmsKeyNotFound,
    KmsOperationFailed,
    KmsPermissionDenied,
    KmsProtocolError,
    KmsTrustError,
    KmsUnreachable,
    KmsVersionError,
    Negotiation,
    fetch_server_certificate,
)
from harness.kms.pki import CertPair, ThrowawayCA
from harness.kms.server import EmbeddedKms, KmsError, KmsServer

__all__ = [
    "CertPair",
    "EmbeddedKms",
    "KmipClient",
    "KmsCredentialError",
    "KmsError",
    "KmsFailure",
    "KmsKeyNotFound",
    "KmsOperationFailed",
    "KmsPermissionDenied",
    "KmsProtocolError",
    "KmsServer",
    "KmsTrustError",
    "KmsUnreachable",
    "KmsVersionError",
    "Negotiation",
    "ThrowawayCA",
    "fetch_server_certificate",
]
