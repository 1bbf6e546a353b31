"""Inventory loading: every malformed file gets `inventory <file>: <key path>: <problem>`, and the
shipped inventories load with the meaning they claim.

The message shape is a contract: the CLI prints it verbatim (exit 2) and users fix their file from
it, so each case pins the key path exactly and the problem by a recognisable phrase.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.inventory.capabilities import KNOWN_CAPABILITIES
from harness.inventory.schema import DEFAULT_INVENTORY, InventoryError, load_inventory, parse_inventory

INVENTORIES = Path(__file__).resolve().parent.parent / "inventories"

EXTERNAL_KMS = {"provider_id": "lab-kms", "address": "kms.lab.example", "ca": "ca.pem",
                "client_cert": "client.pem", "client_key": "client.key"}


def real_vc(name: str = "vc-a", **extra: Any) -> dict[str, Any]:
    """A minimal valid real vCenter entry; cases break one thing about it."""
    return {"name": name, "target": "real", "host": f"{name}.lab.example", "password_env": "VC_PASSWORD",
            **extra}


def valid(**top: Any) -> dict[str, Any]:
    """A minimal valid inventory (two real vCenters, external KMS), with top-level overrides."""
    return {"vcenters": [real_vc("vc-a"), real_vc("vc-b")], "kms": {"embedded": False, "shared": EXTERNAL_KMS},
            **top}


def with_vc(index: int = 0, drop: tuple[str, ...] = (), **changes: Any) -> dict[str, Any]:
    """The valid inventory with one vCenter entry changed."""
    data = valid()
    entry = {k: v for k, v in data["vcenters"][index].items() if k not in drop}
    entry.update(changes)
    data["vcenters"][index] = entry
    return data


def write(tmp_path: Path, content: object, name: str = "inv.yaml") -> Path:
    """Write YAML data (or raw text, for syntax cases) to a file."""
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
    return path


def expect_error(path: Path, key_path: str, problem: str) -> InventoryError:
    """Load and assert the whole message: `inventory <file>: <key path>: ...<problem>...`, one line."""
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    message = str(caught.value)
    pattern = rf"inventory {re.escape(str(path))}: {re.escape(key_path)}: .*{problem}.*"
    assert re.fullmatch(pattern, message), f"{message!r} does not match {pattern!r}"
    assert "\n" not in message
    return caught.value


_KMS_SHARED_NO_KEY = {k: v for k, v in EXTERNAL_KMS.items() if k != "client_key"}

# (id, file content, key path, problem regex)
MALFORMED: list[tuple[str, object, str, str]] = [
    ("list-not-mapping", "- vc-a\n- vc-b\n", "(top level)", "must be a mapping with a 'vcenters' list"),
    ("scalar-not-mapping", "just some words\n", "(top level)", "must be a mapping"),
    ("empty-file", "", "(top level)", "must be a mapping"),
    ("no-vcenters", {"kms": {"embedded": True}}, "vcenters", "required key is missing"),
    ("empty-vcenters", valid(vcenters=[]), "vcenters", "at least 1 item"),
    ("vcenters-not-list", valid(vcenters={"name": "vc-a"}), "vcenters", "valid list"),
    ("vcenter-not-mapping", valid(vcenters=["vc-a"]), "vcenters[0]", "valid dictionary"),
    ("unknown-top-level-key", valid(featurs={"events": True}), "featurs", "unknown key"),
    ("path-key-not-settable", valid(path="/etc/passwd"), "path", "unknown key"),
    ("unknown-vcenter-key", with_vc(pasword_env="VC_PASSWORD"), "vcenters.vc-a.pasword_env", "unknown key"),
    ("unknown-key-names-second-vcenter", with_vc(1, datacentre="DC0"), "vcenters.vc-b.datacentre", "unknown key"),
    ("vcenter-without-name", with_vc(drop=("name",)), "vcenters[0].name", "required key is missing"),
    ("vcenter-name-not-string", with_vc(name=["vc-a"]), "vcenters[0].name", "valid string"),
    ("inline-password", with_vc(password="hunter2"), "vcenters.vc-a",
     "an inline password is not allowed; use password_env or password_file"),
    ("both-password-sources", with_vc(password_file="vc-a.pw"), "vcenters.vc-a",
     "give password_env or password_file, not both"),
    ("password-env-is-a-value", with_vc(password_env="s3cret pass!"), "vcenters.vc-a.password_env",
     "must be an environment variable name"),
    ("password-file-empty", with_vc(drop=("password_env",), password_file=""), "vcenters.vc-a.password_file",
     "non-empty file path"),
    ("bad-target", with_vc(target="simulator"), "vcenters.vc-a.target", "'fake', 'vcsim' or 'real'"),
    ("port-too-high", with_vc(port=70000), "vcenters.vc-a.port", "less than or equal to 65535"),
    ("port-zero", with_vc(port=0), "vcenters.vc-a.port", "greater than or equal to 1"),
    ("port-not-int", with_vc(port="https"), "vcenters.vc-a.port", "valid integer"),
    ("real-without-host-or-url", with_vc(drop=("host",)), "vcenters.vc-a", "a real vCenter needs host or url"),
    ("real-without-password", with_vc(drop=("password_env",)), "vcenters.vc-a",
     "a real vCenter needs password_env or password_file"),
    ("two-tls-modes", with_vc(tls={"ca_bundle": "ca.pem", "insecure": True}), "vcenters.vc-a.tls",
     "choose one TLS mode, not ca_bundle and insecure"),
    ("three-tls-modes", with_vc(tls={"ca_bundle": "ca.pem", "thumbprint_sha256": "ab" * 32, "insecure": True}),
     "vcenters.vc-a.tls", "not ca_bundle and thumbprint_sha256 and insecure"),
    ("malformed-thumbprint", with_vc(tls={"thumbprint_sha256": "AB:CD:EF"}), "vcenters.vc-a.tls.thumbprint_sha256",
     "must be a SHA-256 fingerprint"),
    ("sha1-thumbprint", with_vc(tls={"thumbprint_sha256": ":".join(["AB"] * 20)}),
     "vcenters.vc-a.tls.thumbprint_sha256", "SHA-256"),
    ("unknown-tls-key", with_vc(tls={"verify": False}), "vcenters.vc-a.tls.verify", "unknown key"),
    ("duplicate-vcenter-names", valid(vcenters=[real_vc("vc-a"), real_vc("vc-a")]), "vcenters",
     "duplicate vCenter name 'vc-a'"),
    ("unknown-feature", valid(features={"events": True, "teleport": True}), "features",
     "unknown capability 'teleport'; known: alarms"),
    ("feature-not-bool", valid(features={"snapshots": "maybe"}), "features.snapshots", "valid boolean"),
    ("negative-timeout", valid(timeouts={"task": -5}), "timeouts.task", "greater than 0"),
    ("zero-timeout", valid(timeouts={"connect": 0}), "timeouts.connect", "greater than 0"),
    ("nan-timeout", "vcenters: [{name: vc-a, target: fake}]\ntimeouts: {task: .nan}\n", "timeouts.task",
     "finite number"),
    ("unknown-timeout", valid(timeouts={"forever": 5}), "timeouts.forever", "unknown key"),
    ("destructive-without-mutations", valid(safety={"allow_destructive": True}), "safety",
     "allow_destructive needs allow_mutations: true"),
    ("bad-name-prefix", valid(safety={"name_prefix": "-oops"}), "safety.name_prefix", "should match pattern"),
    ("fake-options-on-vcsim", valid(vcenters=[{"name": "vc-a", "target": "vcsim", "fake": {"defects": ["op-state-ignored"]}}]),
     "vcenters.vc-a", "'fake' options \\(including defects\\) are only allowed on target: fake"),
    ("fake-options-on-real", with_vc(fake={"vms": 2}), "vcenters.vc-a", "only allowed on target: fake"),
    ("vcsim-options-on-fake", valid(vcenters=[{"name": "vc-a", "target": "fake", "vcsim": {"hosts": 2}}]),
     "vcenters.vc-a", "'vcsim' options are only allowed on target: vcsim"),
    ("vcsim-host-not-loopback", valid(vcenters=[{"name": "vc-a", "target": "vcsim", "host": "vcsa.lab.example"}]),
     "vcenters.vc-a", "vcsim host must be a loopback address, not 'vcsa.lab.example'"),
    ("vcsim-hosts-out-of-range", valid(vcenters=[{"name": "vc-a", "target": "vcsim", "vcsim": {"hosts": 0}}]),
     "vcenters.vc-a.vcsim.hosts", "greater than or equal to 1"),
    ("embedded-kms-with-shared", valid(kms={"embedded": True, "shared": EXTERNAL_KMS}), "kms",
     "embedded: true cannot be combined with shared/dedicated KMS entries"),
    ("external-kms-without-shared", valid(kms={"embedded": False, "dedicated": EXTERNAL_KMS}), "kms",
     "a 'shared' KMS entry is required"),
    ("external-kms-missing-client-key", valid(kms={"embedded": False, "shared": _KMS_SHARED_NO_KEY}),
     "kms.shared.client_key", "required key is missing"),
    ("external-kms-bad-port", valid(kms={"embedded": False, "shared": {**EXTERNAL_KMS, "port": -1}}),
     "kms.shared.port", "greater than or equal to 1"),
    ("version-not-dotted", with_vc(version="seven"), "vcenters.vc-a.version", "must look like 7.0.3 or 6.7"),
    ("version-with-suffix", with_vc(version="7.0.3u3"), "vcenters.vc-a.version", "must look like 7.0.3"),
    ("version-bare-int", "vcenters: [{name: vc-a, target: fake, version: 7}]\n", "vcenters.vc-a.version",
     "must look like 7.0.3"),
    ("decrypt-allow-list-not-list", valid(audit={"decrypt_allow_list": {"Admin": True}}),
     "audit.decrypt_allow_list", "valid list"),
    ("yaml-syntax", "vcenters:\n  - name: vc-a\n    target: [fake\n", "line 4", "not valid YAML"),
    ("yaml-tab-indent", "vcenters:\n\t- name: vc-a\n", "line 2", "not valid YAML: found character '\\\\t'"),
    ("yaml-duplicate-key", "vcenters: [{name: vc-a, target: fake}]\nvcenters: []\n", "line 2",
     "not valid YAML: duplicate key 'vcenters'"),
    ("yaml-python-tag", "!!python/object/apply:os.system [echo hi]\n", "line 1", "not valid YAML"),
    ("yaml-impossible-date", "vcenters: [{name: vc-a, target: fake, version: 2024-13-45}]\n", "line 1",
     "cannot read this timestamp value"),
    ("yaml-nested-too-deeply", "vcenters: " + "[" * 3000 + "]" * 3000 + "\n", "(syntax)", "nested too deeply"),
    ("non-string-top-key", "vcenters: [{name: vc-a, target: fake}]\nyes: 1\n", "True", "Keys should be strings"),
]


@pytest.mark.parametrize(("content", "key_path", "problem"), [c[1:] for c in MALFORMED],
                         ids=[c[0] for c in MALFORMED])
def test_malformed_inventory_names_file_key_and_problem(tmp_path: Path, content: object, key_path: str,
                                                        problem: str) -> None:
    expect_error(write(tmp_path, copy.deepcopy(content)), key_path, problem)


def test_at_least_twenty_malformed_cases() -> None:
    assert len(MALFORMED) >= 20


def test_missing_file(tmp_path: Path) -> None:
    expect_error(tmp_path / "nope.yaml", "(file)", "not found")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    expect_error(tmp_path, "(file)", "cannot be read")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_bytes(b"vcenters: \xff\xfe\n")
    expect_error(path, "(file)", "cannot be read")


def test_parse_inventory_refuses_non_mapping_without_a_file() -> None:
    with pytest.raises(InventoryError, match=r"^inventory x\.yaml: \(top level\): must be a mapping"):
        parse_inventory(["vc-a"], Path("x.yaml"))


def test_valid_base_case_loads(tmp_path: Path) -> None:
    """The cases above break a valid inventory, so it must be valid to begin with."""
    inv = load_inventory(write(tmp_path, valid()))
    assert [vc.name for vc in inv.vcenters] == ["vc-a", "vc-b"]


# ---- the shipped inventories -------------------------------------------------------------------

def test_fake_inventory_is_the_default() -> None:
    inv = load_inventory(None)
    assert inv.path == DEFAULT_INVENTORY
    assert inv.target == "fake" and [vc.name for vc in inv.vcenters] == ["vc-a", "vc-b"]
    assert inv.kms.embedded
    assert set(inv.features) == set(KNOWN_CAPABILITIES) and all(inv.features.values())


def test_fake_67_differs_from_fake_only_in_version() -> None:
    fake, old = load_inventory(INVENTORIES / "fake.yaml"), load_inventory(INVENTORIES / "fake-67.yaml")
    assert [vc.version for vc in old.vcenters] == ["6.7", "6.7"]
    for a, b in zip(fake.vcenters, old.vcenters, strict=True):
        assert a.model_dump(exclude={"version"}) == b.model_dump(exclude={"version"})
    assert fake.model_dump(exclude={"path", "vcenters"}) == old.model_dump(exclude={"path", "vcenters"})


def test_vcsim_inventory_declares_what_the_pinned_vcsim_can_do() -> None:
    inv = load_inventory(INVENTORIES / "vcsim.yaml")
    assert inv.target == "vcsim" and all(vc.vcsim and vc.vcsim.source == "auto" and vc.version == "7.0.3"
                                         for vc in inv.vcenters)
    assert inv.features["vm_encryption"] and inv.features["key_providers"] and not inv.features["kms_trust"]
    assert set(inv.features) == set(KNOWN_CAPABILITIES), "declare every capability, true or false"


def test_vcsim_debian_inventory_declares_what_debian_vcsim_can_do() -> None:
    inv = load_inventory(INVENTORIES / "vcsim-debian.yaml")
    assert all(vc.vcsim and vc.vcsim.source == "debian" for vc in inv.vcenters)
    assert inv.target == "vcsim" and [vc.name for vc in inv.vcenters] == ["vc-a", "vc-b"]
    for vc in inv.vcenters:
        assert vc.url is None, "no url: the harness starts the vcsim"
        assert vc.vcsim is not None and vc.vcsim.api_version == "7.0.3.0"
        assert (vc.vcsim.hosts, vc.vcsim.vms) == (3, 2)
        assert vc.tls.insecure
    assert inv.kms.embedded
    can = {name for name, on in inv.features.items() if on}
    assert can == {"snapshots", "events"}
    assert set(inv.features) == set(KNOWN_CAPABILITIES), "declare every capability, true or false"
    assert inv.safety.allow_mutations and inv.safety.allow_destructive  # throwaway simulators the run starts


def test_lab_example_validates_and_is_honest() -> None:
    inv = load_inventory(INVENTORIES / "lab.example.yaml")
    assert inv.target == "real" and [vc.name for vc in inv.vcenters] == ["vc-a", "vc-b"]
    for vc in inv.vcenters:
        assert vc.host and vc.host.endswith(".lab.example")
        assert vc.password_env or vc.password_file
        assert vc.tls.ca_bundle is not None and not vc.tls.insecure
        assert vc.datacenter and vc.cluster and vc.version == "7.0.3"
    assert not inv.kms.embedded
    assert inv.kms.shared is not None and inv.kms.dedicated is not None
    assert inv.kms.shared.provider_id != inv.kms.dedicated.provider_id
    assert inv.kms.shared.client_key.is_absolute(), "resolved against the inventory's folder"
    assert inv.features["disk_bytes"] is False and inv.features["fault_injection"] is False
    assert inv.features["vm_encryption"] and inv.features["key_providers"]
    assert inv.safety.allow_mutations and not inv.safety.allow_destructive
    assert inv.audit.decrypt_allow_list


def test_lab_example_pinned_thumbprint_alternative_validates(tmp_path: Path) -> None:
    """The commented alternative must work when a user swaps it in."""
    text = (INVENTORIES / "lab.example.yaml").read_text()
    lines = text.splitlines()
    first_ca = next(i for i, line in enumerate(lines) if "ca_bundle:" in line)
    pin = next(i for i, line in enumerate(lines) if line.strip().startswith("# thumbprint_sha256:"))
    lines[pin] = lines[pin].replace("# thumbprint_sha256:", "thumbprint_sha256:")
    del lines[first_ca]
    inv = load_inventory(write(tmp_path, "\n".join(lines) + "\n"))
    assert inv.vcenters[0].tls.mode == "pinned SHA-256 thumbprint"


# ---- behaviour of a valid inventory ------------------------------------------------------------

def test_relative_paths_resolve_against_the_files_folder(tmp_path: Path) -> None:
    folder = tmp_path / "lab"
    folder.mkdir()
    data = valid()
    data["vcenters"][0] = real_vc("vc-a", password_env=None, password_file="secrets/a.pw",
                                  tls={"ca_bundle": "certs/ca.pem"})
    data["vcenters"][1] = real_vc("vc-b", tls={"ca_bundle": "/etc/ssl/ca.pem"})
    data["kms"] = {"embedded": False, "shared": EXTERNAL_KMS, "dedicated": {**EXTERNAL_KMS, "provider_id": "d"}}
    inv = load_inventory(write(folder, data))
    a, b = inv.vcenters
    assert a.password_file == folder / "secrets/a.pw"
    assert a.tls.ca_bundle == folder / "certs/ca.pem"
    assert b.tls.ca_bundle == Path("/etc/ssl/ca.pem"), "absolute paths stay as they are"
    for ext in (inv.kms.shared, inv.kms.dedicated):
        assert ext is not None
        assert (ext.ca, ext.client_cert, ext.client_key) == (folder / "ca.pem", folder / "client.pem",
                                                             folder / "client.key")


def test_vcsim_binary_resolves_relative_to_the_file(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, {"vcenters": [{"name": "s", "target": "vcsim",
                                                        "vcsim": {"binary": "bin/vcsim"}}]}))
    assert inv.vcenters[0].vcsim is not None and inv.vcenters[0].vcsim.binary == tmp_path / "bin/vcsim"


def test_password_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VC_PASSWORD", "from-env")
    inv = load_inventory(write(tmp_path, valid()))
    assert inv.vcenter("vc-a").password() == "from-env"


def test_password_from_file_strips_the_newline(tmp_path: Path) -> None:
    (tmp_path / "a.pw").write_text("from-file\n")
    inv = load_inventory(write(tmp_path, with_vc(drop=("password_env",), password_file="a.pw")))
    assert inv.vcenter("vc-a").password() == "from-file"


def test_missing_environment_variable_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VC_PASSWORD", raising=False)
    inv = load_inventory(write(tmp_path, valid()))
    with pytest.raises(InventoryError, match=r"^vcenters\.vc-a: environment variable VC_PASSWORD is not set$"):
        inv.vcenter("vc-a").password()


def test_missing_password_file_is_a_clear_error(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, with_vc(drop=("password_env",), password_file="gone.pw")))
    with pytest.raises(InventoryError, match=r"^vcenters\.vc-a: password_file: No such file or directory$"):
        inv.vcenter("vc-a").password()


def test_fake_and_vcsim_accept_any_password(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, {"vcenters": [{"name": "f", "target": "fake"},
                                                       {"name": "s", "target": "vcsim"}]}))
    assert all(vc.password() for vc in inv.vcenters)


def test_unknown_vcenter_name(tmp_path: Path) -> None:
    path = write(tmp_path, valid())
    inv = load_inventory(path)
    assert inv.vcenter() is inv.vcenters[0]
    with pytest.raises(InventoryError, match=rf"^inventory {re.escape(str(path))}: vcenters: no vCenter named 'vc-z'$"):
        inv.vcenter("vc-z")


@pytest.mark.parametrize(("entry", "url"), [
    ({"url": "https://vc.lab.example:8443/sdk"}, "https://vc.lab.example:8443/sdk"),
    ({"host": "vc.lab.example"}, "https://vc.lab.example/sdk"),
    ({"host": "vc.lab.example", "port": 8443}, "https://vc.lab.example:8443/sdk"),
    ({}, "https://127.0.0.1/sdk"),
])
def test_service_url(tmp_path: Path, entry: dict[str, Any], url: str) -> None:
    inv = load_inventory(write(tmp_path, {"vcenters": [{"name": "f", "target": "fake", **entry}]}))
    assert inv.vcenters[0].service_url == url


@pytest.mark.parametrize("written", ["6.7", "'6.7'", "7.0.3", "'7.0'", "7.0"])
def test_version_may_be_written_unquoted(tmp_path: Path, written: str) -> None:
    """YAML reads `6.7` as a float; the inventory keeps it as the text the user meant."""
    inv = load_inventory(write(tmp_path, f"vcenters: [{{name: f, target: fake, version: {written}}}]\n"))
    assert inv.vcenters[0].version == written.strip("'")


def test_inventory_is_immutable(tmp_path: Path) -> None:
    """Later layers trust the validated inventory; nothing may change it after validation."""
    inv = load_inventory(write(tmp_path, valid()))
    with pytest.raises(Exception, match="frozen"):
        inv.vcenters[0].host = "elsewhere"  # type: ignore[misc]


# ---- a real lab's needs (issue 12, item 9) ---------------------------------------------------------
LAB_CASES = [
    ("unreachable-loopback-on-real", valid(kms={"embedded": False, "shared": EXTERNAL_KMS,
                                                "unreachable": {"address": "127.0.0.1"}}),
     "kms.unreachable.address", "is the vCenter appliance itself"),
    ("unreachable-localhost-on-real", valid(kms={"embedded": False, "shared": EXTERNAL_KMS,
                                                 "unreachable": {"address": "localhost", "port": 5696}}),
     "kms.unreachable.address", "appliance itself"),
    ("unreachable-ipv6-loopback", valid(kms={"embedded": False, "shared": EXTERNAL_KMS,
                                             "unreachable": {"address": "::1"}}),
     "kms.unreachable.address", "appliance itself"),
    ("unreachable-bad-port", valid(kms={"embedded": False, "shared": EXTERNAL_KMS,
                                        "unreachable": {"address": "192.0.2.1", "port": 0}}),
     "kms.unreachable.port", "greater than or equal to 1"),
    ("test-user-inline-password", with_vc(test_user={"user": "u2@vsphere.local", "password": "hunter2"}),
     "vcenters.vc-a.test_user", "inline password is not allowed"),
    ("test-user-no-source", with_vc(test_user={"user": "u2@vsphere.local"}),
     "vcenters.vc-a.test_user", "exactly one of password_env or password_file"),
    ("test-user-env-value", with_vc(test_user={"user": "u2", "password_env": "s3cr3t pass"}),
     "vcenters.vc-a.test_user.password_env", "environment variable name"),
    ("hosts-not-a-list", with_vc(hosts="esx-1"), "vcenters.vc-a.hosts", "valid list"),
    ("datastore-empty", with_vc(datastore=""), "vcenters.vc-a.datastore", "at least 1 character"),
    ("server-name-empty", valid(kms={"embedded": False, "shared": {**EXTERNAL_KMS, "server_name": ""}}),
     "kms.shared.server_name", "at least 1 character"),
    ("provider-id-with-space", valid(kms={"embedded": False, "shared": {**EXTERNAL_KMS, "provider_id": "lab kms"}}),
     "kms.shared.provider_id", "should match pattern"),
    ("lab-provider-on-real", with_vc(fake={"lab_provider": {"id": "lab", "server_name": "s"}}),
     "vcenters.vc-a", "only allowed on target: fake"),
]


@pytest.mark.parametrize("content,key_path,problem", [c[1:] for c in LAB_CASES], ids=[c[0] for c in LAB_CASES])
def test_lab_keys_are_validated_with_the_key_named(tmp_path: Path, content: object, key_path: str,
                                                   problem: str) -> None:
    expect_error(write(tmp_path, content), key_path, problem)


def test_lab_provider_must_agree_across_fake_vcenters(tmp_path: Path) -> None:
    data = yaml.safe_load((INVENTORIES / "fake.yaml").read_text())
    data["vcenters"][0]["fake"] = {"lab_provider": {"id": "lab-kms", "server_name": "node-1"}}
    expect_error(write(tmp_path, data), "vcenters.vc-b.fake.lab_provider", "same on every fake vCenter")


def test_a_closed_loopback_port_is_fine_on_a_fake(tmp_path: Path) -> None:
    data = yaml.safe_load((INVENTORIES / "fake.yaml").read_text())
    data["kms"]["unreachable"] = {"address": "127.0.0.1", "port": 9}
    assert load_inventory(write(tmp_path, data)).kms.unreachable.address == "127.0.0.1"


def test_lab_example_shows_every_real_lab_key() -> None:
    inv = load_inventory(INVENTORIES / "lab.example.yaml")
    vc_a = inv.vcenter("vc-a")
    assert vc_a.datastore and vc_a.vm_folder and vc_a.resource_pool and vc_a.hosts
    assert vc_a.test_user is not None and vc_a.test_user.password_env
    assert inv.vcenter("vc-b").test_user.password_file.is_absolute()
    assert inv.kms.shared.server_name and inv.kms.shared.registered
    assert inv.kms.unreachable is not None and inv.kms.unreachable.address == "192.0.2.10"


def test_passwords_are_secrets_that_never_print(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyVmomi import vim

    from harness.inventory.secret import Secret
    monkeypatch.setenv("VC_PASSWORD", "hunter2-vc")
    monkeypatch.setenv("USER2_PASSWORD", "hunter2-user")
    inv = load_inventory(write(tmp_path, with_vc(test_user={"user": "u2", "password_env": "USER2_PASSWORD"})))
    vc = inv.vcenter("vc-a")
    for secret, plain in ((vc.password(), "hunter2-vc"), (vc.test_user.password(), "hunter2-user")):
        assert isinstance(secret, Secret) and secret == plain and secret.reveal() == plain
        credential = vim.ServiceLocatorNamePassword(username="u", password=secret)
        shown = [repr(secret), repr(credential), str(credential), repr({"password": secret}), repr(inv), repr(vc)]
        assert not [text for text in shown if plain in text], "a password printed"
        try:
            assert not {"credential": credential, "password": secret}, "a failing check that shows both"
        except AssertionError as err:
            assert plain not in str(err)
