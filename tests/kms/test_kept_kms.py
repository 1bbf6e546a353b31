"""harness/kms/kept.py: one embedded KMS pair lent to environment after environment (selftest workers),
put back as a fresh pair starts; nothing kept outside `keep_embedded_kms`."""
from __future__ import annotations

from pathlib import Path

from harness.kms import kept
from harness.targets.environment import open_environment

FAKE = Path(__file__).resolve().parents[2] / "inventories" / "fake.yaml"


def test_nothing_is_kept_outside_the_context():
    assert kept.take() is None


def test_the_pair_is_lent_once_at_a_time_put_back_as_fresh_and_stopped_at_the_end(tmp_path):
    with kept.keep_embedded_kms(tmp_path):
        kms = kept.take()
        assert kms is not None and all(s.running for s in kms.servers.values())
        assert kept.take() is None                       # lent: a second environment starts its own
        shared = kms.servers["shared"]
        shared.stop()                                    # what a KMS-outage test does
        kms.servers["dedicated"].refuse_create(True)     # what a KMS-refusal test does
        assert kept.give_back(kms)
        again = kept.take()
        assert again is kms and shared.running and not kms.servers["dedicated"].refusing_create
        assert kept.give_back(again)
        assert not kept.give_back(object())              # not the kept pair: its owner stops it
    assert not any(s.running for s in kms.servers.values())
    assert kept.take() is None


def test_environments_inside_the_context_share_the_pair_and_leave_it_running(tmp_path):
    with kept.keep_embedded_kms(tmp_path / "kept"):
        with open_environment(FAKE) as first:
            ports = {r: e.port for r, e in first.kms_endpoints.items()}
            pair = first.kms
        assert all(s.running for s in pair.servers.values())       # closing the environment kept it up
        with open_environment(FAKE) as second:
            assert second.kms is pair and {r: e.port for r, e in second.kms_endpoints.items()} == ports
    assert not any(s.running for s in pair.servers.values())
    with open_environment(FAKE) as alone:                            # outside: its own pair, stopped on close
        own = alone.kms
        assert own is not pair
    assert not any(s.running for s in own.servers.values())
