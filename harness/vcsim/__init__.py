"""Start and stop vcsim: the pinned current govmomi vcsim, a `vcsim` binary, or Debian's fallback.

Which one (choice.py): a binary the inventory names > `vcsim` on PATH > the pinned current vcsim
(govmomi `pinned.GOVMOMI_VERSION` = v0.56.0, the harness's launcher.go built against the govmomi
module from the Go module proxy with the newest Go >= 1.25 on the machine, cached under
~/.cache/vcrypt-harness/vcsim/v0.56.0/; `go install .../vcsim@v0.56.0` is refused by the proxy
because vcsim became a nested module in v0.47.0) > the launcher built from Debian's govmomi 0.24.2
library, which models no crypto (a run on it says the crypto rules could not be exercised).
Why v0.56.0: the newest release the proxy serves, and it models key providers, GenerateKey and
VM/disk crypto with power-state and snapshot rules (simulator/crypto_manager_kmip.go,
simulator/virtual_machine.go updateCrypto). Where it differs from vSphere: harness/data/deviations/vcsim.yaml.
"""

from harness.vcsim.build import VcsimUnavailable, build_launcher, toolchain_status
from harness.vcsim.choice import find_vcsim
from harness.vcsim.process import VcsimProcess

__all__ = ["VcsimProcess", "VcsimUnavailable", "build_launcher", "find_vcsim", "toolchain_status"]
