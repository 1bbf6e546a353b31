"""Start and stop vcsim: a `vcsim` binary, or a small launcher built from Debian's govmomi."""

from harness.vcsim.build import VcsimUnavailable, build_launcher, find_vcsim, toolchain_status
from harness.vcsim.process import VcsimProcess

__all__ = ["VcsimProcess", "VcsimUnavailable", "build_launcher", "find_vcsim", "toolchain_status"]
