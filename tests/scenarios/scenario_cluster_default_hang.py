"""Sets the inventory cluster's default key provider the way suites/test_kms_default.py does (ledgered first),
then waits: the test harness kills the run meanwhile, and `vcrypt sweep` must put the default back."""
from __future__ import annotations

import os
import time

import pytest

from suites.test_kms_default import _set_cluster_default


@pytest.mark.rule("KMS-DEFAULT-SET")
@pytest.mark.test_id("22222222-0000-4000-8000-0000000000d1")
def test_sets_the_clusters_default_key_provider_and_hangs(scratch, vc, place):
    _set_cluster_default(scratch, vc, place.cluster, os.environ["VCRYPT_SCENARIO_PROVIDER"])
    time.sleep(120)
