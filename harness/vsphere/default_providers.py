"""Default key provider per entity (vSphere 7.0): SetDefaultKmsCluster / GetDefaultKmsCluster with an entity.

A cluster (or host folder) may have a default key provider of its own; a VM there that is encrypted
without naming a provider takes its key from it (KmipClusterInfo.useAsEntityDefault). Two reads exist
and are kept apart on purpose: `entity_default` asks the method under test, `listed_entity_default`
reads what ListKmipServers reports, so the value a test ledgers before a change (and `vcrypt sweep`
restores) never rests on the behaviour being tested.
"""
from __future__ import annotations

from typing import Any

from harness.vsphere.keys import crypto_manager, default_provider, list_providers, provider_ref


def entity_default(client: Any, entity: Any, to_parent: bool = False) -> str | None:
    """GetDefaultKmsCluster(entity, defaultsToParent): the entity's own default, or with `to_parent` the
    nearest ancestor's, else the vCenter-wide one (None when there is none)."""
    found = client.invoke(crypto_manager(client), "GetDefaultKmsCluster", entity=entity, defaultsToParent=to_parent)
    return found.id if found is not None else None


def global_default(client: Any) -> str | None:
    """GetDefaultKmsCluster without an entity: the vCenter-wide default."""
    found = client.invoke(crypto_manager(client), "GetDefaultKmsCluster")
    return found.id if found is not None else None


def listed_entity_default(client: Any, entity: Any) -> str | None:
    """The provider ListKmipServers lists with `entity` in its useAsEntityDefault (None: no own default)."""
    moid = entity._moId
    for provider_id, info in list_providers(client).items():
        if any(getattr(e, "_moId", None) == moid for e in info.useAsEntityDefault or []):
            return provider_id
    return None


def set_entity_default(client: Any, entity: Any, provider_id: str | None) -> None:
    """SetDefaultKmsCluster(entity, clusterId): make `provider_id` the entity's default, or clear it (None)."""
    client.invoke(crypto_manager(client), "SetDefaultKmsCluster", entity=entity,
                  clusterId=provider_ref(provider_id) if provider_id else None)


def inherited_listed_default(client: Any, entity: Any) -> str | None:
    """What `entity` inherits by ListKmipServers: the nearest ancestor's own default (host folder, datacenter,
    ...), else the vCenter-wide one (useAsDefault). The expected answer of GetDefaultKmsCluster(entity,
    defaultsToParent=true) for an entity without a default of its own, read without that method."""
    node = client.read(entity, ["parent"]).get("parent")
    while node is not None:
        own = listed_entity_default(client, node)
        if own is not None:
            return own
        node = client.read(node, ["parent"]).get("parent")
    return default_provider(client)
