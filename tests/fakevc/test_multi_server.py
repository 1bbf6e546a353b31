"""harness/fakevc/kmip/multi_server.py: the colour of a key provider with several servers and which servers
vCenter asks (KMS-MULTI), with and without the seeded defects. End to end (real KMIP servers stopped and
started) in suites/test_kms_multi.py."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.fakevc.kmip import multi_server


def _vc(*defects: str) -> SimpleNamespace:
    return SimpleNamespace(world=SimpleNamespace(defects=SimpleNamespace(on=lambda name: name in defects)))


@pytest.mark.parametrize("colours,expected", [
    ([], "gray"), (["green"], "green"), (["red"], "red"), (["yellow"], "yellow"),
    (["green", "green"], "green"), (["red", "green"], "yellow"), (["green", "yellow"], "yellow"),
    (["red", "red"], "red"), (["red", "yellow"], "yellow"),
])
def test_the_overall_colour_is_green_only_when_every_server_is_and_red_only_when_none_answers(colours, expected):
    assert multi_server.overall(_vc(), colours) == expected


def test_the_defects_change_only_a_provider_of_several_servers():
    assert multi_server.overall(_vc(multi_server.DEGRADED_GREEN), ["red", "green"]) == "green"
    assert multi_server.overall(_vc(multi_server.DEGRADED_RED), ["red", "green"]) == "red"
    assert multi_server.overall(_vc(multi_server.ALL_DOWN_YELLOW), ["red", "red"]) == "yellow"
    for name in (multi_server.DEGRADED_GREEN, multi_server.DEGRADED_RED, multi_server.ALL_DOWN_YELLOW):
        assert multi_server.overall(_vc(name), ["red"]) == "red"      # KMS-STATUS's single server: unchanged


def test_every_server_is_asked_in_order_unless_a_defect_stops_at_the_first():
    provider = SimpleNamespace(servers={"multi-1": None, "multi-2": None})
    assert multi_server.servers_to_ask(_vc(), provider, "KMIP Create") == ["multi-1", "multi-2"]
    assert multi_server.servers_to_ask(_vc(multi_server.CREATE_NO_FAILOVER), provider, "KMIP Create") == ["multi-1"]
    assert multi_server.servers_to_ask(_vc(multi_server.CREATE_NO_FAILOVER), provider, "KMIP Get") == ["multi-1", "multi-2"]
    assert multi_server.servers_to_ask(_vc(multi_server.GET_NO_FAILOVER), provider, "KMIP Get") == ["multi-1"]


def test_a_down_server_is_painted_green_only_by_its_defect_and_only_beside_one_that_answers():
    assert multi_server.server_colour(_vc(), "red", others_answer=True) == "red"
    assert multi_server.server_colour(_vc(multi_server.DOWN_SERVER_GREEN), "red", others_answer=True) == "green"
    assert multi_server.server_colour(_vc(multi_server.DOWN_SERVER_GREEN), "red", others_answer=False) == "red"
