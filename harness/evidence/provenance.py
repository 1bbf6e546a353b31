"""Who ran what, from where: the provenance block of run.json, and the redacted inventory copy.

An auditor must be able to tell from the run folder alone which harness code (version, git
commit, uncommitted changes), which libraries, which inventory (SHA-256 and a redacted copy),
which operator on which machine, and which targets (vCenter and ESXi builds, KMS product)
produced the verdicts, and whether the fake had seeded defects switched on (such a run proves
nothing about a product and must say so loudly).
"""

from __future__ import annotations

import getpass
import hashlib
import importlib.metadata
import json
import platform
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

import harness

REDACTED_INVENTORY = "inventory.redacted.yaml"
REDACTED = "***redacted***"
_PACKAGES = {"pyvmomi": "pyVmomi", "pykmip": "PyKMIP", "pytest": "pytest", "cryptography": "cryptography"}
# Keys whose values are secrets; `*_env` / `*_file` keys only name where a secret is, and stay.
_SECRET_KEY = re.compile(r"pass|secret|token|credential|private|api[_-]?key|client_key|pwd", re.IGNORECASE)
_REFERENCE_KEY = re.compile(r"_(env|file)$")
# Values that look like secrets whatever their key: PEM private keys, long opaque tokens.
_SECRET_VALUE = re.compile(r"PRIVATE KEY|^[A-Za-z0-9+/=_-]{40,}$")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def source_info() -> dict[str, Any]:
    """Git commit of the harness code and whether its tree had uncommitted changes."""
    root = Path(harness.__file__).resolve().parents[1]
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": "", "git_dirty": None, "source": "not a git checkout (installed package)"}
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(status), "source": str(root)}


def _redact_value(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(key, v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    if _SECRET_KEY.search(key) and not _REFERENCE_KEY.search(key):
        return REDACTED
    if key == "signing_key_file":   # the private key's location is withheld like the key (issue 21)
        return KEY_PATH_WITHHELD
    if isinstance(value, str):
        from harness.evidence.recorder import redact
        if _SECRET_VALUE.search(value.strip()):
            return REDACTED
        cleaned = redact(value)
        return REDACTED if cleaned != value else value
    return value


def redacted_inventory(text: str) -> str:
    """The inventory as YAML with every secret-looking value replaced (comments are dropped)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return "# the inventory could not be parsed for redaction; not copied\n"
    header = ("# Redacted copy of the run's inventory (vcrypt-harness): secret-looking values are replaced\n"
              f"# by {REDACTED}; passwords are only ever referenced (password_env / password_file).\n")
    return header + yaml.safe_dump(_redact_value("", data), sort_keys=False, allow_unicode=True)


def inventory_info(path: Path, run_dir: Path) -> dict[str, Any]:
    """SHA-256 of the inventory file as read, and its redacted copy written into the run folder."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        return {"path": str(path), "sha256": "", "error": str(err)}
    (Path(run_dir) / REDACTED_INVENTORY).write_text(redacted_inventory(data.decode("utf-8", "replace")),
                                                     encoding="utf-8")
    return {"path": str(path), "sha256": hashlib.sha256(data).hexdigest(), "redacted_copy": REDACTED_INVENTORY}


KEY_PATH_WITHHELD = "<file>"   # where a signing key is says which file an attacker should read: never in evidence


def _command_line(argv: list[str]) -> list[str]:
    """The command line, secrets redacted and the signing key's path replaced by "<file>"."""
    return shown_arguments(argv)


def shown_arguments(argv: list[str] | tuple[str, ...]) -> list[str]:
    """Arguments as evidence may show them: secrets redacted, the signing key's path withheld."""
    from harness.evidence.recorder import redact
    shown: list[str] = []
    for arg in argv:
        if shown and shown[-1] == "--signing-key":
            shown.append(KEY_PATH_WITHHELD)
        elif arg.startswith("--signing-key="):
            shown.append(f"--signing-key={KEY_PATH_WITHHELD}")
        else:
            shown.append(redact(str(arg)))
    return shown


def fake_defects(inventory: Any, environment: Any = None) -> list[str]:
    """Seeded defects switched on in the fake (the environment's own list wins, as in open_environment)."""
    if environment is not None and getattr(environment, "defects", None) is not None:
        return sorted(environment.defects)
    return sorted({d for vc in inventory.vcenters for d in (vc.fake.defects if vc.fake else [])})


def kms_product(inventory: Any, started: dict[str, Any] | None = None) -> dict[str, str]:
    """What KMS answered: the embedded PyKMIP server or the strict KMS (`kms.strict`; `started` is the
    environment's description from targets.json, written by whichever process ran the tests), or an
    external one (its product is not queried)."""
    if started and started.get("product"):
        product = str(started["product"])
        return {"product": f"{product}, embedded, modes {started.get('modes', '?')}",
                "version": product.rsplit(" ", 1)[-1].rstrip(")")}
    if inventory.kms.embedded:
        return {"product": "PyKMIP server (embedded, started by the harness)", "version": _version("pykmip")}
    return {"product": "external KMIP server (from the inventory; product not queried)", "version": "unknown"}


def esxi_hosts(service_instance: Any) -> list[dict[str, str]]:
    """Each ESXi host of a vCenter with its product version and build (config.product).

    A vCenter whose hosts cannot be listed gets one entry saying why, not a failed run.
    """
    from pyVmomi import vim

    from harness.vsphere.props import retrieve_all
    try:  # retrieve_all needs only `.content`, which a ServiceInstance has: one round trip for all hosts
        found = retrieve_all(service_instance, vim.HostSystem, ["name", "config.product.version",
                                                                "config.product.build"])
        out = [{"name": props.get("name", ""), "version": props.get("config.product.version", "") or "",
                "build": props.get("config.product.build", "") or ""} for _, props in found.values()]
        return sorted(out, key=lambda h: h["name"])
    except Exception as err:  # noqa: BLE001 - provenance describes what it can
        return [{"name": f"(hosts not readable: {type(err).__name__})", "version": "", "build": ""}]


def _started_kms(state: Any) -> dict[str, Any] | None:
    """The KMS part of targets.json (what the environment started), if the run got that far."""
    try:
        return json.loads((state.run_dir / "targets.json").read_text(encoding="utf-8")).get("kms")
    except (OSError, ValueError, AttributeError):
        return None


def provenance(state: Any) -> dict[str, Any]:
    """The provenance block of run.json."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {
        "operator": {"user": user, "host": socket.gethostname()},
        "command_line": _command_line(sys.argv),
        "harness": {"version": harness.__version__, **source_info()},
        "python": platform.python_version(),
        "packages": {label: _version(name) for name, label in _PACKAGES.items()},
        "inventory": inventory_info(state.inventory.path, state.run_dir),
        "fake_defects": fake_defects(state.inventory, state.environment),
        "kms_product": kms_product(state.inventory, _started_kms(state)),
    }


def provenance_view(raw: Any) -> dict[str, Any]:
    """run.json's provenance with every field the writers show present (older runs lack some)."""
    raw = raw if isinstance(raw, dict) else {}

    def part(name: str, *keys: str) -> dict[str, Any]:
        value = raw.get(name) if isinstance(raw.get(name), dict) else {}
        return {k: value.get(k, "") for k in keys} | {k: v for k, v in value.items() if k not in keys}

    return {
        "recorded": bool(raw),
        "operator": part("operator", "user", "host"),
        "command_line": [str(a) for a in raw.get("command_line") or []],
        "harness": part("harness", "version", "git_commit", "git_dirty", "source"),
        "python": str(raw.get("python") or ""),
        "packages": dict(raw.get("packages") or {}),
        "inventory": part("inventory", "path", "sha256", "redacted_copy"),
        "fake_defects": [str(d) for d in raw.get("fake_defects") or []],
        "kms_product": part("kms_product", "product", "version"),
        "signing": part("signing", "signed", "algorithm", "public_key_sha256", "signature_file", "statement"),
    }
