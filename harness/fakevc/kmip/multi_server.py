"""A key provider with several KMIP servers (KMS-MULTI-*): which server vCenter asks, and the provider's colour.

Sources:
- A key provider (KMS cluster) may hold several KMS instances; they must come from one vendor and
  replicate keys (vSphere Web Services SDK Programming Guide 6.5/6.7, "Key Management Server"): any
  server serves every key of the provider, so vCenter may ask whichever answers. The fake asks the
  servers in registration order and takes the first answer (keys.py `_on_kms`); the order is the
  fake's choice (vSphere does not say which server it asks first).
- `CryptoManagerKmipServerStatus.status` is per server and `CryptoManagerKmipClusterStatus.overallStatus`
  (since 7.0) is "KMS cluster overall status", a `ManagedEntityStatus`: green "the entity is OK", yellow
  "the entity might have a problem", red "the entity definitely has a problem" (vSphere API reference,
  ManagedEntity.Status). How the overall colour is derived from the servers' is not documented: the
  fake's choice (UNCONFIRMED, behaviour `kms-overall-yellow-partial-outage`) is green when every server
  is green, red when no server answers (nothing can be served), otherwise yellow (one server down:
  keys still served, but the provider "might have a problem").
- govmomi's vcsim reports every server and the overall status green whatever answers
  (simulator/crypto_manager_kmip.go retrieveKmipServerStatusTask.Run): no model of an outage.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.fakevc.defects import defect

if TYPE_CHECKING:
    from harness.fakevc.kmip.provider import Provider

DEGRADED_GREEN = defect(
    "kms-multi-degraded-reported-green", "KMS-MULTI-DEGRADED",
    "a provider with one of its servers down reports overall green (any green server makes it green)")
DEGRADED_RED = defect(
    "kms-multi-degraded-reported-red", "KMS-MULTI-DEGRADED",
    "one server down makes the whole provider red and inactive although the other server serves its keys")
DOWN_SERVER_GREEN = defect(
    "kms-multi-down-server-green", "KMS-MULTI-DEGRADED",
    "the stopped server of a provider whose other server answers is reported green (the provider's colour)")
CREATE_NO_FAILOVER = defect(
    "kms-multi-create-no-failover", "KMS-MULTI-KEYGEN",
    "KMIP Create goes to the provider's first server only: GenerateKey fails while that server is down")
GET_NO_FAILOVER = defect(
    "kms-multi-get-no-failover", "KMS-MULTI-SURVIVOR",
    "key material (KMIP Get) is fetched from the provider's first server only: encrypting with a key of the "
    "provider fails while that server is down")
ALL_DOWN_YELLOW = defect(
    "kms-multi-all-down-yellow", "KMS-MULTI-ALLDOWN",
    "a provider none of whose servers answers is reported yellow and active (a server counts as 'might have "
    "a problem')")
ALL_DOWN_INVENTED_KEY = defect(
    "kms-multi-all-down-invented-key", "KMS-MULTI-ALLDOWN",
    "with every server of the provider down, GenerateKey reports success with a key id no KMS holds")

_FIRST_ONLY = {"KMIP Create": CREATE_NO_FAILOVER, "KMIP Get": GET_NO_FAILOVER}


def servers_to_ask(vc: Any, provider: "Provider", operation: str) -> list[str]:
    """The servers an operation tries, in order (every one: a cluster fails over)."""
    names = list(provider.servers)
    first_only = _FIRST_ONLY.get(operation)
    if first_only and len(names) > 1 and vc.world.defects.on(first_only):
        return names[:1]
    return names


def server_colour(vc: Any, colour: str, others_answer: bool) -> str:
    """One server's reported colour (the DOWN_SERVER_GREEN defect paints a down server green)."""
    if colour == "red" and others_answer and vc.world.defects.on(DOWN_SERVER_GREEN):
        return "green"
    return colour


def overall(vc: Any, colours: list[str]) -> str:
    """The provider's overall colour from its servers' (the fake's choice: see the module's docstring)."""
    if not colours:
        return "gray"
    several = len(colours) > 1
    if all(c == "green" for c in colours):
        return "green"
    if all(c == "red" for c in colours):
        return "yellow" if several and vc.world.defects.on(ALL_DOWN_YELLOW) else "red"
    if several and "green" in colours and vc.world.defects.on(DEGRADED_GREEN):
        return "green"
    if several and "red" in colours and vc.world.defects.on(DEGRADED_RED):
        return "red"
    return "yellow"


def active(vc: Any, provider: "Provider", usable: list[bool], answered: list[bool]) -> bool:
    """IsKmsClusterActive: some server answers with mutual trust (defects aside)."""
    several = len(usable) > 1
    if several and not any(answered) and vc.world.defects.on(ALL_DOWN_YELLOW):
        return True
    if several and not all(answered) and any(usable) and vc.world.defects.on(DEGRADED_RED):
        return False
    return any(usable)


def invents_key(vc: Any, provider: "Provider") -> bool:
    """Whether GenerateKey, having found no server of a multi-server provider, invents a key (defect)."""
    return len(provider.servers) > 1 and vc.world.defects.on(ALL_DOWN_INVENTED_KEY)
