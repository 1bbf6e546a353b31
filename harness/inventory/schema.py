"""The inventory: which vCenters and KMS a run targets, what they can do, and how careful to be.

Loaded from YAML into validated, typed models (pydantic), so every later layer can trust it.
Secrets never live in the file: passwords come from an environment variable or a file.
A malformed inventory raises `InventoryError` whose message is
``inventory <file>: <key path>: <problem>``; the CLI prints it and exits 2.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from collections.abc import Iterable
from typing import Annotated, Literal

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from harness.inventory.errors import InventoryError  # noqa: F401 - re-exported: the schema's callers catch it
from harness.inventory.secret import Secret

DEFAULT_INVENTORY = Path(__file__).resolve().parents[2] / "inventories" / "fake.yaml"

Seconds = Annotated[float, Field(gt=0, le=86400, allow_inf_nan=False)]
Port = Annotated[int, Field(ge=1, le=65535)]
_SHA256_PIN = re.compile(r"^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{64}$")
_SHA1_PIN = re.compile(r"^([0-9A-Fa-f]{2}:){19}[0-9A-Fa-f]{2}$")
_VERSION = re.compile(r"^\d+\.\d+(\.\d+){0,2}$")
_LOOPBACK = re.compile(r"^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|::1)$")


def _is_local(address: str) -> bool:
    """Loopback or unspecified: on a real target that is the vCenter appliance itself."""
    import ipaddress
    text = address.strip().strip("[]").rstrip(".").lower()
    if text == "localhost" or text.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def _version_text(value: object) -> object:
    """YAML reads an unquoted `6.7` as a float; accept it as the text the user wrote (quote `7.10`)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def _path_text(value: object) -> object:
    """Refuse paths the OS would reject later (an empty string means `.`, NUL raises ValueError on use)."""
    if isinstance(value, str) and (not value.strip() or "\x00" in value):
        raise ValueError("must be a non-empty file path without NUL characters")
    return value


VersionText = Annotated[str, BeforeValidator(_version_text)]
FilePath = Annotated[Path, BeforeValidator(_path_text)]
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _only_known(names: Iterable[str], known: Iterable[str], what: str) -> None:
    """One message for a name outside a fixed vocabulary (capabilities, behaviour ids), listing the known ones."""
    known = sorted(known)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} {unknown[0]!r}; known: {', '.join(known)}")


def _env_name(value: str) -> str:
    """A variable name only: a value here is probably the secret itself, pasted by mistake."""
    if not _ENV_NAME.match(value):
        raise ValueError("must be an environment variable name (letters, digits and _), not a value")
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tls(_Strict):
    """How the harness trusts a vCenter: exactly one of a CA bundle, a pinned thumbprint or insecure."""
    ca_bundle: FilePath | None = None
    thumbprint_sha256: str | None = None
    insecure: bool = False

    @field_validator("thumbprint_sha256")
    @classmethod
    def _pin_format(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256_PIN.match(value):
            raise ValueError("must be a SHA-256 fingerprint: 64 hex digits, optionally colon-separated")
        return value

    @model_validator(mode="after")
    def _one_mode(self) -> "Tls":
        chosen = [n for n, v in (("ca_bundle", self.ca_bundle), ("thumbprint_sha256", self.thumbprint_sha256),
                                 ("insecure", self.insecure)) if v]
        if len(chosen) > 1:
            raise ValueError(f"choose one TLS mode, not {' and '.join(chosen)}")
        return self

    @property
    def mode(self) -> str:
        """A short label for reports: how this vCenter's certificate is checked."""
        if self.insecure:
            return "insecure (verification off)"
        if self.thumbprint_sha256:
            return "pinned SHA-256 thumbprint"
        return f"verified against {self.ca_bundle}" if self.ca_bundle else "verified against system CAs"


class VcsimOptions(_Strict):
    """How to get a vcsim for this entry: a binary to start (or the launcher), or one already running."""
    binary: FilePath | None = None
    # auto: binary > `vcsim` on PATH > pinned current vcsim > Debian launcher (harness/vcsim/choice.py)
    source: Literal["auto", "pinned", "debian"] = "auto"
    api_version: VersionText | None = None
    hosts: int = Field(3, ge=1, le=64)
    clusters: int = Field(1, ge=1, le=8)
    vms: int = Field(2, ge=0, le=10000)
    extra_args: list[str] = []

    @field_validator("extra_args")
    @classmethod
    def _no_rebind(cls, value: list[str]) -> list[str]:
        from harness.inventory.checks import refuse_bind_flags
        return refuse_bind_flags(value)


def _safe_text(value: str) -> str:
    from harness.printable import refuse_unsafe
    return refuse_unsafe(value)


# Free text the harness prints (names of vSphere objects and users): no control or bidi characters.
SafeText = Annotated[str, AfterValidator(_safe_text)]
ObjectName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_safe_text)]
ProviderIdText = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class LabProvider(_Strict):
    """A key provider the lab already has: the harness uses it for keys and never changes it."""
    id: ProviderIdText
    server_name: ObjectName


class KeyProviderOption(_Strict):
    """A key provider this vCenter already has that is not a KMIP server (issue 25 family 5).

    `type: native`: a vSphere Native Key Provider (7.0 Update 2+) an admin created (or restored from another
    vCenter's backup) in the vSphere Client or the REST API; the SOAP API the harness speaks cannot create one.
    The suites then use it as the provider (`provider` fixture on this vCenter), and every KMS-side check is not
    observable (no KMIP server holds its keys). Declared with the same id on a second vCenter, it says the
    backup was restored there (NKP-XVC-RESTORED runs, NKP-XVC-MISSING cannot)."""
    id: ProviderIdText
    type: Literal["native"]


class TestUser(_Strict):
    """A second SSO user (no Cryptographer.* privileges needed) for PRIV-DECRYPT and PRIV-AUDIT."""
    __test__ = False  # not a pytest test class
    user: ObjectName
    password_env: EnvName | None = None
    password_file: FilePath | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: object) -> object:
        if isinstance(data, dict) and "password" in data:
            raise ValueError("an inline password is not allowed; use password_env or password_file")
        return data

    @model_validator(mode="after")
    def _one_source(self) -> "TestUser":
        if bool(self.password_env) == bool(self.password_file):
            raise ValueError("give exactly one of password_env or password_file")
        return self

    def password(self) -> Secret:
        found = read_password(self.password_env, self.password_file, f"test_user {self.user}")
        assert found is not None  # _one_source guarantees a source
        return found


class RealQuirks(_Strict):
    """A fake behaving as a real vCenter may where vSphere leaves the behaviour open (issue 22 point 4)."""
    ignores_unsupported: bool = False   # "not supported" changes are ignored, not refused (XVC decrypt, instant clone)
    hot_xvc_vmotion: bool = True        # False: the lab cannot migrate a running VM to the other vCenter at all
    host_state_lag_s: float = Field(0.0, ge=0.0, le=30.0)   # host crypto states settle this long after a change
    policy_only_encrypt: bool = True    # False: an encryption policy without a CryptoSpec never encrypts
    kms_alarm_watches_event: bool = True   # False: no alarm expression names com.vmware.vc.kms.crypto.Unreachable


class FakeOptions(_Strict):
    """Options only a fake vCenter understands (seeded defects are refused anywhere else)."""
    lab_provider: LabProvider | None = None   # start with the shared KMS registered as this lab-owned provider
    request_log: FilePath | None = None       # the fake logs every call it serves here (harness/fakevc/request_log.py)
    request_log_per_call: bool = True         # false: no world snapshot around each call (open/close only)
    vms: int = Field(4, ge=0, le=100000)
    hosts: int = Field(3, ge=1, le=64)
    host_versions: list[VersionText] = []
    datastore_capacity_mib: int = Field(4096, ge=16)
    defects: list[str] = []
    # A demanding lab (issue 12, inventories/fake-lab.yaml): knobs that make the fake behave like a strict real pair.
    trust_peers: bool = True          # False: cross-vCenter calls from here need the destination's sslThumbprint
    strict_policies: bool = False     # True: vSAN/VVol/PMem requirement policies do not fit the VMFS datastore
    maintenance_hosts: int = Field(0, ge=0, le=63)   # the last N hosts of the cluster are in maintenance mode
    models_unconfirmed: bool = True   # False: behaviours vSphere leaves UNCONFIRMED count as unconfirmed here too
    real_quirks: RealQuirks = RealQuirks()

    @field_validator("defects")
    @classmethod
    def _known_defects(cls, value: list[str]) -> list[str]:
        from harness.inventory.checks import refuse_unknown_defects
        return refuse_unknown_defects(value)


class VCenter(_Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    target: Literal["fake", "vcsim", "real"]
    host: str | None = None
    port: Port = 443
    url: str | None = None
    user: SafeText = "administrator@vsphere.local"
    password_env: EnvName | None = None
    password_file: FilePath | None = None
    tls: Tls = Tls()
    datacenter: SafeText | None = None
    cluster: SafeText | None = None
    resource_pool: ObjectName | None = None  # default: the cluster's root pool
    vm_folder: ObjectName | None = None      # default: the datacenter's VM folder
    datastore: ObjectName | None = None      # default: the cluster's datastore with most free space
    hosts: list[ObjectName] = []             # the hosts to use (default: all of the cluster's); maintenance mode skipped
    older_hosts: list[ObjectName] = []       # ESXi hosts older than 7.0 outside the cluster (in its datacenter) that the
                                             # host-version rules may place VMs on; no other host is ever chosen
    test_user: TestUser | None = None        # a second SSO user (PRIV-DECRYPT, PRIV-AUDIT)
    key_provider: KeyProviderOption | None = None   # a Native Key Provider this vCenter has (NKP-*)
    version: VersionText | None = None
    vcsim: VcsimOptions | None = None
    fake: FakeOptions | None = None
    # Fidelity (issue 12): what the harness may assert here, and what it sends to this vCenter.
    confirmed: list[str] = []                 # UNCONFIRMED behaviour ids seen on this target (harness/unconfirmed.py)
    locator_thumbprint: str | None = None     # SHA-1 pin for ServiceLocator.sslThumbprint (else read at connect time)
    plain_policy: SafeText | None = None           # a storage policy name for decrypts (else the empty profile)
    # Where a clone's CryptoSpec goes (harness/vsphere/clone_shapes.py has each shape's sources).
    clone_crypto_shape: Literal["disk-backing", "vm-level", "relocate"] = "disk-backing"

    @field_validator("confirmed")
    @classmethod
    def _known_behaviours(cls, value: list[str]) -> list[str]:
        from harness.inventory.behaviours import BEHAVIOURS
        _only_known(value, BEHAVIOURS, "behaviour")
        return value

    @field_validator("locator_thumbprint")
    @classmethod
    def _sha1_format(cls, value: str | None) -> str | None:
        if value is not None and not _SHA1_PIN.match(value):
            raise ValueError("must be a SHA-1 fingerprint: 20 colon-separated hex pairs")
        return value.lower() if value else value

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: object) -> object:
        if isinstance(data, dict) and "password" in data:
            raise ValueError("an inline password is not allowed; use password_env or password_file")
        return data

    @field_validator("host")
    @classmethod
    def _host_only(cls, value: str | None) -> str | None:
        from harness.inventory.checks import check_host
        return value if value is None else check_host(value)

    @field_validator("url")
    @classmethod
    def _https_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        from harness.inventory.checks import check_url
        return value if value is None else check_url(value, loopback_only=info.data.get("target") == "vcsim")

    @field_validator("version")
    @classmethod
    def _version_format(cls, value: str | None) -> str | None:
        if value is not None and not _VERSION.match(value):
            raise ValueError("must look like 7.0.3 or 6.7")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "VCenter":
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        if self.target == "real":
            if not (self.host or self.url):
                raise ValueError("a real vCenter needs host or url")
            if not (self.password_env or self.password_file):
                raise ValueError("a real vCenter needs password_env or password_file")
        if self.target != "fake" and self.fake is not None:
            raise ValueError("'fake' options (including defects) are only allowed on target: fake")
        if self.target != "vcsim" and self.vcsim is not None:
            raise ValueError("'vcsim' options are only allowed on target: vcsim")
        if self.target == "vcsim" and self.host and not _LOOPBACK.match(self.host):
            raise ValueError(f"vcsim host must be a loopback address, not {self.host!r}")
        return self

    @property
    def service_url(self) -> str:
        """The SDK URL other vCenters use in a ServiceLocator to reach this one."""
        if self.url:
            return self.url
        host = self.host or "127.0.0.1"
        return f"https://{host}:{self.port}/sdk" if self.port != 443 else f"https://{host}/sdk"

    def password(self) -> Secret:
        """Read the password by reference (a masked `Secret`); vcsim and the fake accept any password."""
        found = read_password(self.password_env, self.password_file, f"vcenters.{self.name}")
        if found is not None:
            return found
        if self.target == "real":
            raise InventoryError(f"vcenters.{self.name}: no password source")
        return Secret("vcrypt-fake-password")


def read_password(env: str | None, file: Path | None, where: str) -> Secret | None:
    """A password from an environment variable or a file, as a masked Secret (None: no source)."""
    if env:
        value = os.environ.get(env)
        if value is None:
            raise InventoryError(f"{where}: environment variable {env} is not set")
        return Secret(value)
    if file:
        from harness.inventory.checks import UnreadableFile, read_regular_bounded
        try:
            return Secret(read_regular_bounded(file).decode("utf-8").strip())
        except UnreadableFile as err:
            raise InventoryError(f"{where}: password_file: {err.reason}") from None
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
            raise InventoryError(f"{where}: password_file: {reason}") from None
    return None


KmipVersion = Annotated[Literal["1.0", "1.1", "1.2", "1.3", "1.4"], BeforeValidator(_version_text)]


class ReadIdentity(_Strict):
    """The client certificate the harness reads keys with, when it is not the one vCenter uses."""
    client_cert: FilePath
    client_key: FilePath


class KmsReplica(_Strict):
    """Another server of the same KMS cluster (it serves the same keys: replication is the KMS vendor's job).
    KMS-MULTI registers it with the shared server as one provider of its own and takes a server out of
    service by pointing it at `kms.unreachable` (UpdateKmipServer): the lab's KMS itself is never stopped."""
    address: str = Field(min_length=1, max_length=253)
    port: Port = 5696


class ExternalKms(_Strict):
    """A KMS the lab already runs. With `registered: true` (default) the lab's vCenters already have it
    as key provider `provider_id` (server `server_name`): the harness only uses it for keys and never
    changes it. With `registered: false` the harness registers it under its own id and removes it after.

    KMIP options (issue 22): `username` with `password_env` or `password_file` is the KMIP credential
    sent in every request (the one vCenter's key provider settings hold); `kmip_version` pins the
    protocol version instead of negotiating it; `read_identity` is how the harness reads vCenter's
    keys for evidence: `none` when the KMS lets nobody but vCenter read them (the KMS-side checks are
    then reported not observable), or another client certificate (default: `client_cert` above)."""
    provider_id: ProviderIdText
    server_name: ObjectName | None = None
    registered: bool = True
    address: str = Field(min_length=1)
    port: Port = 5696
    ca: FilePath
    client_cert: FilePath
    client_key: FilePath
    username: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    password_env: EnvName | None = None
    password_file: FilePath | None = None
    kmip_version: KmipVersion | None = None
    read_identity: Literal["none"] | ReadIdentity | None = None
    replicas: list[KmsReplica] = Field(default_factory=list, max_length=8)   # KMS-MULTI: the cluster's other servers

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: object) -> object:
        if isinstance(data, dict) and "password" in data:
            raise ValueError("an inline password is not allowed; use password_env or password_file")
        return data

    @field_validator("read_identity", mode="before")
    @classmethod
    def _reader(cls, value: object) -> object:
        if isinstance(value, str) and value != "none":
            raise ValueError("must be none or a mapping with client_cert and client_key")
        return value

    @model_validator(mode="after")
    def _credential(self) -> "ExternalKms":
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        if self.username and not (self.password_env or self.password_file):
            raise ValueError("username needs password_env or password_file (the KMIP credential's password)")
        if not self.username and (self.password_env or self.password_file):
            raise ValueError("a KMIP password needs a username")
        return self

    def password(self, where: str = "kms") -> Secret | None:
        """The KMIP credential's password (masked), None without a credential."""
        return read_password(self.password_env, self.password_file, where) if self.username else None


class UnreachableKms(_Strict):
    """Where a provider that can never answer points (KMS-STATUS red, EVT-KMS-UNREACHABLE)."""
    address: str = Field(min_length=1, max_length=253)
    port: Port = 5696


class Kms(_Strict):
    embedded: bool = True
    # With embedded: the embedded KMS is the strict second KMS (github.com/ovh/kmip-go) in these modes
    # when a Go >= 1.25 can build it; else PyKMIP, and run.json says why (harness/targets/strict_kms.py).
    strict: list[str] | None = None
    shared: ExternalKms | None = None
    dedicated: ExternalKms | None = None
    unreachable: UnreachableKms | None = None

    @field_validator("strict")
    @classmethod
    def _strict_modes(cls, value: list[str] | None) -> list[str] | None:
        from harness.inventory.kms_modes import STRICT_KMS_MODES
        _only_known(value or [], STRICT_KMS_MODES, "strict KMS mode")
        return value

    @model_validator(mode="after")
    def _source(self) -> "Kms":
        if self.strict is not None and not self.embedded:
            raise ValueError("strict: needs embedded: true (it chooses the KMS the harness starts)")
        if self.embedded and (self.shared or self.dedicated):
            raise ValueError("embedded: true cannot be combined with shared/dedicated KMS entries")
        if not self.embedded and not self.shared:
            raise ValueError("without embedded: true, a 'shared' KMS entry is required")
        return self


class Timeouts(_Strict):
    """Named waits, in seconds; an expired wait names which one it was."""
    task: Seconds = 120
    connect: Seconds = 30     # TCP connect and TLS handshake with a vCenter
    # Every later wait for a vCenter's answer. At least 75 s: a task wait asks vCenter to hold
    # WaitForUpdatesEx open for up to 60 s (harness/vsphere/tasks.py).
    read: Annotated[float, Field(ge=75, le=86400, allow_inf_nan=False)] = 120
    kms_ready: Seconds = 20
    vcsim_ready: Seconds = 60
    event: Seconds = 30
    key_push: Seconds = 60


class Safety(_Strict):
    allow_mutations: bool = False
    allow_destructive: bool = False
    name_prefix: str = Field("vcrypt-", min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

    @model_validator(mode="after")
    def _destructive_needs_mutations(self) -> "Safety":
        if self.allow_destructive and not self.allow_mutations:
            raise ValueError("allow_destructive needs allow_mutations: true")
        return self


class Audit(_Strict):
    decrypt_allow_list: list[str] = ["Admin"]


class EvidenceOptions(_Strict):
    """How run folders are signed: a private key file or an env variable holding the PEM (not both)."""
    signing_key_file: Path | None = None   # relative paths are relative to the inventory's folder
    signing_key_env: EnvName | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "EvidenceOptions":
        if self.signing_key_file and self.signing_key_env:
            raise ValueError("give signing_key_file or signing_key_env, not both")
        return self


class Inventory(_Strict):
    path: Path
    vcenters: Annotated[list[VCenter], Field(min_length=1)]
    kms: Kms = Kms()
    features: dict[str, bool] = {}
    timeouts: Timeouts = Timeouts()
    safety: Safety = Safety()
    audit: Audit = Audit()
    evidence: EvidenceOptions = EvidenceOptions()

    @field_validator("features")
    @classmethod
    def _feature_names(cls, value: dict[str, bool]) -> dict[str, bool]:
        from harness.inventory.capabilities import KNOWN_CAPABILITIES
        _only_known(value, KNOWN_CAPABILITIES, "capability")
        return value

    @field_validator("vcenters")
    @classmethod
    def _unique_names(cls, value: list[VCenter]) -> list[VCenter]:
        from collections import Counter
        dupes = sorted(n for n, k in Counter(vc.name for vc in value).items() if k > 1)  # linear, not names.count
        if dupes:
            raise ValueError(f"duplicate vCenter name {dupes[0]!r}")
        return value

    def vcenter(self, name: str | None = None) -> VCenter:
        """The named entry, or the first one (the primary `vc`)."""
        if name is None:
            return self.vcenters[0]
        for vc in self.vcenters:
            if vc.name == name:
                return vc
        raise InventoryError(f"inventory {self.path}: vcenters: no vCenter named {name!r}")

    @property
    def target(self) -> str:
        """The target kind of the primary vCenter: fake, vcsim or real."""
        return self.vcenters[0].target


_SYNTHETIC_LOC = re.compile(r"^(function-|literal\[|constrained-|is-instance\[|lax-or-strict\[|json-or-python\[|"
                            r"chain\[|union\[|nullable\[|tagged-union\[)|^\[key\]$")


def _key_path(loc: tuple, data: object) -> str:
    """Render a pydantic error location as a key path, naming list items by their `name`.

    Walks the user's data alongside the location so that a real key is never mistaken for one
    of pydantic's internal validator steps, and a list item is named only by a string `name`.
    """
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(node, list) and isinstance(item, int) and not isinstance(item, bool):
            entry = node[item] if 0 <= item < len(node) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            parts.append(_show(name) if isinstance(name, str) and name else f"[{item}]")
            node = entry
        elif isinstance(node, dict) and item in node:
            parts.append(_show(next((k for k in node if k == item), item)))  # `yes:` is True, not 1
            node = node[item]
        elif isinstance(item, str) and _SYNTHETIC_LOC.match(item):
            continue
        else:
            parts.append(f"[{item}]" if isinstance(item, int) and not isinstance(item, bool) else _show(item))
            node = None
    return ".".join(parts).replace(".[", "[") or "(top level)"


def _show(key: object) -> str:
    """A key as the user wrote it, quoted (control and bidi characters escaped) when it would not
    print on one clean line."""
    from harness.printable import printable
    text = str(key)
    return text if printable(text) == text and text.strip() == text and text else repr(printable(text))


def _problem(error: dict) -> str:
    msg = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    return msg


def parse_inventory(data: object, path: Path) -> Inventory:
    """Validate already-parsed YAML; relative paths inside resolve against the file's folder."""
    if not isinstance(data, dict):
        raise InventoryError(f"inventory {path}: (top level): must be a mapping with a 'vcenters' list")
    if "path" in data:  # set by the loader; a file must not be able to override it
        raise InventoryError(f"inventory {path}: path: unknown key")
    from harness.inventory.checks import check_entry_count
    check_entry_count(data, path)
    try:
        inventory = Inventory.model_validate({**data, "path": path})
    except ValidationError as err:
        first = err.errors()[0]
        raise InventoryError(f"inventory {path}: {_key_path(first['loc'], data)}: {_problem(first)}") from None
    except RecursionError:
        raise InventoryError(f"inventory {path}: (top level): nested too deeply") from None
    _check_lab_safety(inventory, path)
    return _resolve_paths(inventory)


def _check_lab_safety(inventory: Inventory, path: Path) -> None:
    """Cross-section rules, reported with the key they concern (pydantic would say `(top level)`)."""
    unreachable = inventory.kms.unreachable
    real = [vc.name for vc in inventory.vcenters if vc.target == "real"]
    if unreachable and real and _is_local(unreachable.address):
        raise InventoryError(f"inventory {path}: kms.unreachable.address: {unreachable.address} is the vCenter "
                             f"appliance itself on a real target ({real[0]}); name an address where no KMS listens")
    fakes = [vc for vc in inventory.vcenters if vc.target == "fake"]
    first = fakes[0].fake.lab_provider if fakes and fakes[0].fake else None
    for vc in fakes[1:]:
        if (vc.fake.lab_provider if vc.fake else None) != first:
            raise InventoryError(f"inventory {path}: vcenters.{vc.name}.fake.lab_provider: must be the same on every "
                                 "fake vCenter (one shared KMS, one provider id)")


def _resolve_paths(inventory: Inventory) -> Inventory:
    base = inventory.path.parent

    def fix(p: Path | None) -> Path | None:
        return p if p is None or p.is_absolute() else (base / p)

    vcenters = []
    for vc in inventory.vcenters:
        tls = vc.tls.model_copy(update={"ca_bundle": fix(vc.tls.ca_bundle)})
        update: dict = {"tls": tls, "password_file": fix(vc.password_file)}
        if vc.test_user and vc.test_user.password_file:
            update["test_user"] = vc.test_user.model_copy(update={"password_file": fix(vc.test_user.password_file)})
        if vc.fake and vc.fake.request_log:
            update["fake"] = vc.fake.model_copy(update={"request_log": fix(vc.fake.request_log)})
        if vc.vcsim and vc.vcsim.binary:
            update["vcsim"] = vc.vcsim.model_copy(update={"binary": fix(vc.vcsim.binary)})
        vcenters.append(vc.model_copy(update=update))
    kms = inventory.kms
    for role in ("shared", "dedicated"):
        ext = getattr(kms, role)
        if ext:
            reader = ext.read_identity
            if isinstance(reader, ReadIdentity):
                reader = reader.model_copy(update={"client_cert": fix(reader.client_cert),
                                                   "client_key": fix(reader.client_key)})
            kms = kms.model_copy(update={role: ext.model_copy(update={
                "ca": fix(ext.ca), "client_cert": fix(ext.client_cert), "client_key": fix(ext.client_key),
                "password_file": fix(ext.password_file), "read_identity": reader})})
    return inventory.model_copy(update={"vcenters": vcenters, "kms": kms})


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML would silently keep the last),
    and reports scalars PyYAML cannot build (`2020-13-45`, a 5000-digit int) with their line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> object:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError) as err:
            kind = str(node.tag).rsplit(":", 1)[-1]
            reason = (str(err).splitlines() or ["?"])[0][:160]
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this {kind} value: {reason}", node.start_mark) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key; the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load_inventory(path: str | Path | None = None) -> Inventory:
    """Read and validate an inventory file (the fake default when no path is given)."""
    path = Path(path) if path else DEFAULT_INVENTORY
    from harness.inventory.checks import read_bounded
    try:
        text = read_bounded(path)
    except FileNotFoundError:
        raise InventoryError(f"inventory {path}: (file): not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InventoryError(f"inventory {path}: (file): cannot be read: {err}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(syntax)"
        problem = (str(getattr(err, "problem", None) or err).splitlines() or ["?"])[0]
        raise InventoryError(f"inventory {path}: {where}: not valid YAML: {problem}") from None
    except RecursionError:
        raise InventoryError(f"inventory {path}: (syntax): not valid YAML: nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as err:  # a constructor PyYAML lets escape
        raise InventoryError(f"inventory {path}: (syntax): not valid YAML: {err}") from None
    return parse_inventory(data, path)
