"""A strict second KMS: our KMIP server on github.com/ovh/kmip-go (strictkms.go), its build and its launcher.

`build.build(go)` compiles it once into the user cache; `StrictKms(binary, workdir, ca, modes)` runs it
on 127.0.0.1 with the behaviours `modes.MODES` lists.
"""
from harness.kms.strict.build import KMIP_GO_VERSION, StrictKmsUnavailable, build, cached_binary
from harness.kms.strict.modes import MODES, STRICTEST, StrictModes
from harness.kms.strict.process import StrictKms, StrictKmsError

__all__ = ["KMIP_GO_VERSION", "MODES", "STRICTEST", "StrictKms", "StrictKmsError", "StrictKmsUnavailable",
           "StrictModes", "build", "cached_binary"]
