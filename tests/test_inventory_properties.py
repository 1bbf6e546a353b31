"""Property tests: whatever an inventory file holds, loading it gives an Inventory or an
InventoryError phrased `inventory <file>: ...` on one line, never another exception.

The CLI relies on this: it catches InventoryError only, so any other exception would reach the
user as a traceback. Mutations start from the shipped inventories so that the fuzzing gets past
the first validator and into the deep ones (TLS, KMS, vcsim/fake options, key path rendering).
"""
from __future__ import annotations

import copy
import datetime
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.inventory.capabilities import KNOWN_CAPABILITIES
from harness.inventory.schema import (Audit, ExternalKms, FakeOptions, Inventory, InventoryError, Kms, Safety, Timeouts,
                               Tls, VCenter, VcsimOptions, load_inventory, parse_inventory)

INVENTORIES = Path(__file__).resolve().parent.parent / "inventories"
SHIPPED = ["fake.yaml", "fake-67.yaml", "fake-80.yaml", "fake-lab.yaml", "vcsim.yaml", "vcsim-debian.yaml", "lab.example.yaml"]
BASES = {name: yaml.safe_load((INVENTORIES / name).read_text()) for name in SHIPPED}
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])
FAKE_PATH = Path("/fuzz/inventory.yaml")

# Keys the models know, so inserted keys often hit a real field with a wrong value.
KNOWN_KEYS = sorted({*KNOWN_CAPABILITIES, "password", "path", "name", *(
    field for model in (Inventory, VCenter, Tls, Kms, ExternalKms, Timeouts, Safety, Audit, VcsimOptions, FakeOptions)
    for field in model.model_fields)})
# Values that the validators treat specially: targets, loopback, versions, pins, bad paths, edges.
INTERESTING = st.sampled_from([
    "fake", "vcsim", "real", "127.0.0.1", "::1", "localhost", "vcsa.lab.example", "7.0.3", "6.7", "7.0.3.0",
    "AB" * 32, ":".join(["ab"] * 32), "", " ", "\x00", "a\x00b", "ca.pem", "/etc/ssl/ca.pem", "VC_PASSWORD",
    "x y", "\n", "vc-a", "vc-b", "-", "[key]", "function-after[x]", 0, -1, 1, 443, 65535, 65536, 10**30,
    0.0, -0.0, 6.7, 1e308, math.inf, -math.inf, math.nan, True, False, None,
])


def yaml_scalars() -> st.SearchStrategy[Any]:
    """Scalars safe_load can produce (datetimes and bytes included)."""
    return st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20), st.dates(), st.datetimes(timezones=st.just(datetime.timezone.utc)),
        st.binary(max_size=8), INTERESTING,
    )


def yaml_keys() -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=12), st.integers(), st.booleans(), st.none(),
                     st.floats(allow_nan=False), st.dates())


def yaml_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Arbitrary YAML-able structures: scalars nested in lists and mappings."""
    return st.recursive(
        yaml_scalars(),
        lambda children: st.one_of(st.lists(children, max_size=4),
                                   st.dictionaries(yaml_keys(), children, max_size=4)),
        max_leaves=max_leaves,
    )


def check(load: Any, path: Path) -> Inventory | None:
    """The property: an Inventory, or an InventoryError naming the file, on one line."""
    try:
        result = load()
    except InventoryError as err:
        message = str(err)
        assert message.startswith(f"inventory {path}: "), message
        assert "\n" not in message, message
        return None
    assert isinstance(result, Inventory)
    return result


# ---- arbitrary data ----------------------------------------------------------------------------

@FUZZ
@given(data=yaml_values())
def test_arbitrary_data_never_escapes_as_another_exception(data: Any) -> None:
    check(lambda: parse_inventory(data, FAKE_PATH), FAKE_PATH)


@FUZZ
@given(vcenters=yaml_values(10), rest=st.dictionaries(yaml_keys(), yaml_values(6), max_size=4))
def test_arbitrary_data_with_a_vcenters_key(vcenters: Any, rest: dict[Any, Any]) -> None:
    """Most random mappings fail on the missing `vcenters`; this one always has it."""
    data = {**rest, "vcenters": vcenters}
    check(lambda: parse_inventory(data, FAKE_PATH), FAKE_PATH)


@FUZZ
@given(data=yaml_values())
def test_arbitrary_data_through_a_yaml_file(tmp_path_factory: pytest.TempPathFactory, data: Any) -> None:
    path = tmp_path_factory.mktemp("inv") / "inventory.yaml"
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:
        return
    path.write_text(text, encoding="utf-8")
    check(lambda: load_inventory(path), path)


YAML_TOKENS = st.sampled_from([
    "vcenters:", "- ", "  ", "\n", "name: vc-a", "target: fake", "target: real", "tls:", "{", "}", "[", "]",
    ",", ":", "&a ", "*a", "<<: ", "!!binary ", "!!python/object:os.system ", "!!set ", "? ", "|", ">", "'",
    '"', "#", "---", "...", "%YAML 1.1", "\t", "2024-13-45", "9" * 5000, "yes", "~", "version: 6.7",
    "kms: {embedded: false}", "features: {events: true}", "\x00", "\ufeff", "\\u0000",
])


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.lists(YAML_TOKENS, max_size=30).map("".join)))
def test_arbitrary_text_never_escapes_as_another_exception(tmp_path_factory: pytest.TempPathFactory,
                                                           text: str) -> None:
    path = tmp_path_factory.mktemp("inv") / "inventory.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    check(lambda: load_inventory(path), path)


# ---- mutations of the shipped inventories -------------------------------------------------------

def all_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a nested structure, the root included."""
    paths = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            paths += all_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            paths += all_paths(value, (*prefix, index))
    return paths


def get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def mutate(data: Any, draw: st.DataObject) -> Any:
    """One random edit: delete, replace, change type, or insert a key or item, at a random path."""
    path = draw.draw(st.sampled_from(all_paths(data)), label="path")
    op = draw.draw(st.sampled_from(["delete", "replace", "retype", "insert"]), label="op")
    target = get(data, path)
    if op == "insert" and isinstance(target, dict):
        target[draw.draw(yaml_keys(), label="new key")] = draw.draw(yaml_values(6), label="new value")
        return data
    if op == "insert" and isinstance(target, list):
        target.insert(draw.draw(st.integers(0, len(target))), draw.draw(yaml_values(6), label="new item"))
        return data
    if op == "delete" and path:
        parent = get(data, path[:-1])
        del parent[path[-1]]
        return data
    if op == "retype":
        new = draw.draw(st.sampled_from([str(target), [target], {"value": target}, None, 1, 1.5, True, ""]),
                        label="retyped")
    else:
        new = draw.draw(yaml_values(6), label="replacement")
    if not path:
        return new
    get(data, path[:-1])[path[-1]] = new
    return data


@FUZZ
@given(base=st.sampled_from(SHIPPED), edits=st.integers(1, 3), draw=st.data())
def test_mutated_shipped_inventory(base: str, edits: int, draw: st.DataObject) -> None:
    data = copy.deepcopy(BASES[base])
    for _ in range(edits):
        data = mutate(data, draw)
    check(lambda: parse_inventory(data, FAKE_PATH), FAKE_PATH)


@FUZZ
@given(base=st.sampled_from(SHIPPED), draw=st.data())
def test_mutated_inventory_through_a_yaml_file(tmp_path_factory: pytest.TempPathFactory, base: str,
                                               draw: st.DataObject) -> None:
    data = mutate(copy.deepcopy(BASES[base]), draw)
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:
        return
    path = tmp_path_factory.mktemp("inv") / "inventory.yaml"
    path.write_text(text, encoding="utf-8")
    inventory = check(lambda: load_inventory(path), path)
    if inventory is not None:  # a surviving inventory is still usable by later layers
        assert inventory.path == path
        assert all(vc.service_url.startswith(("https://", "http://")) or vc.url for vc in inventory.vcenters)


@pytest.mark.parametrize("name", SHIPPED)
def test_unmutated_bases_are_valid(name: str) -> None:
    """The mutation tests only mean something if the starting points load."""
    assert isinstance(parse_inventory(copy.deepcopy(BASES[name]), INVENTORIES / name), Inventory)
