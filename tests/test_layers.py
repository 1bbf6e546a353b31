"""The layering of the harness, checked from the import graph of the source (issues 16 and 20).

harness/ is a stack of folders (HARNESS_LAYERS: shared pieces, inventory, kms/vcsim/vsphere,
fakevc/evidence, targets, checks, run, commands, cli): each imports only what lies below it, and no
module of harness/ takes part in an import cycle.

Every import counts: at module level, inside a function, and under `if TYPE_CHECKING:`. The
rules: suites never import the fake (they reach fault injection through `env.control(vc)`);
harness/vsphere never imports the fake; inside the fake imports flow one way,

    wire/disks/defects/certificate/kmip -> model (and server, build) -> behaviours
        -> dispatch (and catalogue, request_log) -> adapter (and world, control)

so the model imports no behaviour, and the fake has no import cycle. harness/vsphere imports no
evidence writer (it reports each call through harness/calls.py, which evidence subscribes to).

Only harness/vsphere (the operations layer) and the fake speak pyVmomi: nowhere else is a
managed-object method called (`si.CurrentTime()`, `client.invoke(vm, "Destroy_Task")`) or
pyVmomi's private `_stub` touched; the method names come from pyVmomi's own type info. A
violation names the file and line. The checks are proved able to fail on a synthetic source tree.
"""
from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAKE = "harness.fakevc"
VSPHERE = "harness.vsphere"
EVIDENCE = "harness.evidence"

# The one evidence module harness/vsphere may import: the in-memory record of the running test
# (call records, observations, redaction of secrets). It writes no report; the writers (Allure
# steps and attachments, JSON, HTML, JUnit, bundles) sit above and subscribe to harness/calls.py.
VSPHERE_MAY_IMPORT_FROM_EVIDENCE = {"harness.evidence.recorder"}

# The layers that speak pyVmomi: the operations layer and the fake vCenter.
PYVMOMI_SPEAKERS = (VSPHERE, FAKE)

# Modules outside the speakers that may still use these pyVmomi names, each with its reason.
# Keep it short: a new entry needs a reason why the call cannot live in harness/vsphere.
PYVMOMI_ALLOWED: dict[str, tuple[frozenset[str], str]] = {
    "harness.targets.connect": (frozenset({"RetrieveContent", "Login", "_stub"}),
                        "logging in: it makes the ServiceInstance (and the PBM one from the vim session's stub) "
                        "that every VCenterClient is built on, so it runs before the operations layer exists"),
}

# The units of harness/ (its folders and its shared top-level modules), lowest first: a unit imports
# only units of a lower rank (and itself). The listing of harness/ is the architecture (issue 20).
HARNESS_LAYERS: list[tuple[str, ...]] = [
    ("calls", "principals", "safety", "rules", "workdirs", "tls", "printable", "gobuild"),   # shared pieces: import nothing of the harness
    ("inventory",),                                            # what the user points the harness at
    ("kms", "vcsim", "vsphere"),                               # a KMIP server/client; vcsim; the operations layer
    ("fakevc", "evidence"),                                    # the fake vCenter; evidence writers
    ("targets",),                                              # start what the inventory needs, log in, outages
    ("checks", "unconfirmed"),                                 # what a suite asserts with
    ("run",),                                                  # `vcrypt run`: launcher and pytest plugin
    ("commands",),                                             # the other CLI commands' bodies
    ("cli",),                                                  # parses and dispatches
]

# Imports against HARNESS_LAYERS, each with its reason (a unit importing a higher one).
HARNESS_UPWARD_ALLOWED: dict[tuple[str, str], str] = {
    (VSPHERE, "harness.evidence.recorder"):
        "the in-memory record of the running test (calls, observations, secrets to redact); it writes no report",
}

# Layer of each part of the fake, lowest first: a module may import its own layer or lower ones.
FAKE_LAYERS: list[tuple[str, ...]] = [
    ("wire", "disks", "defects", "certificate", "kmip"),
    ("model", "server", "build"),
    ("behaviours",),
    ("dispatch", "catalogue", "request_log"),
    ("adapter", "world", "control"),
]


@dataclass(frozen=True)
class Import:
    source: str     # importing module
    target: str     # imported module (the most specific one of the source tree, else as written)
    path: Path
    line: int

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}"


def source_modules(root: Path, packages: tuple[str, ...] = ("harness", "suites")) -> dict[str, Path]:
    """Module name -> file, for every .py under the given top-level folders of `root`."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The longest prefix of a dotted name that is a module of the tree (else the name itself)."""
    candidate = name
    while candidate and candidate not in modules:
        candidate = candidate.rpartition(".")[0]
    return candidate or name


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import statement of one file, wherever it is (ast.walk reaches function bodies and
    TYPE_CHECKING blocks alike); `from pkg import sub` resolves to the submodule `pkg.sub`."""
    found = []
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name, modules)
            if target != module:
                found.append(Import(module, target, path, node.lineno))
    return found


def import_graph(root: Path) -> list[Import]:
    modules = source_modules(root)
    return [imp for module, path in modules.items() for imp in imports_of(module, path, modules)]


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def forbidden_imports(graph: list[Import], importer: str, imported: str) -> list[Import]:
    return [imp for imp in graph if _inside(imp.source, importer) and _inside(imp.target, imported)]


def fake_layer(module: str) -> int | None:
    """The layer of a fake module (FAKE_LAYERS), None outside the fake or for the package itself."""
    if not module.startswith(FAKE + "."):
        return None
    part = module[len(FAKE) + 1:].split(".")[0]
    for level, parts in enumerate(FAKE_LAYERS):
        if part in parts:
            return level
    raise AssertionError(f"{module} has no layer in tests/test_layers.py FAKE_LAYERS: place it")


def harness_unit(module: str) -> str | None:
    """The unit of harness/ a module belongs to (its folder, or itself at the top level); None for the
    package root (`harness`: __version__ and the lazy open_environment re-export) and outside harness/."""
    parts = module.split(".")
    return parts[1] if parts[0] == "harness" and len(parts) > 1 else None


def harness_rank(unit: str) -> int:
    for level, units in enumerate(HARNESS_LAYERS):
        if unit in units:
            return level
    raise AssertionError(f"harness/{unit} has no place in tests/test_layers.py HARNESS_LAYERS: place it")


def upward_harness_imports(graph: list[Import], allowed: dict[tuple[str, str], str] | None = None) -> list[Import]:
    """Imports from one unit of harness/ to another of the same or a higher rank, less the allowed ones."""
    allowed = HARNESS_UPWARD_ALLOWED if allowed is None else allowed
    found = []
    for imp in graph:
        source, target = harness_unit(imp.source), harness_unit(imp.target)
        if source is None or target is None or source == target or harness_rank(target) < harness_rank(source):
            continue
        if any(_inside(imp.source, a) and _inside(imp.target, b) for a, b in allowed):
            continue
        found.append(imp)
    return found


def upward_imports(graph: list[Import]) -> list[Import]:
    """Fake modules importing a higher layer than their own."""
    return [imp for imp in graph if fake_layer(imp.source) is not None and fake_layer(imp.target) is not None
            and fake_layer(imp.target) > fake_layer(imp.source)]


def import_cycles(graph: list[Import], package: str) -> list[list[Import]]:
    """The import cycles among the modules of a package: one cycle (its edges) per strongly
    connected component of more than one module."""
    edges: dict[str, dict[str, Import]] = {}
    for imp in graph:
        if _inside(imp.source, package) and _inside(imp.target, package):
            edges.setdefault(imp.source, {}).setdefault(imp.target, imp)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:   # Tarjan
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [_cycle_path(component, edges) for component in components]


def _cycle_path(component: list[str], edges: dict[str, dict[str, Import]]) -> list[Import]:
    """One closed path through a strongly connected component, as the imports that make it."""
    members = set(component)
    start, path, seen = component[0], [], {component[0]}
    node = start
    while True:
        nexts = sorted(t for t in edges.get(node, {}) if t in members)
        back = start if start in nexts and len(path) > 0 else None
        step = back or next((t for t in nexts if t not in seen), None) or nexts[0]
        path.append(edges[node][step])
        if step == start or step in seen:
            return path
        seen.add(step)
        node = step


def describe(imports: list[Import], root: Path, why: str) -> str:
    return "\n".join(f"{imp.where(root)} imports {imp.target} ({why})" for imp in imports)


def describe_cycles(cycles: list[list[Import]], root: Path) -> str:
    return "\n".join("import cycle: " + " -> ".join(f"{imp.source} ({imp.where(root)})" for imp in cycle)
                     + f" -> {cycle[-1].target}" for cycle in cycles)


def layering_problems(root: Path) -> list[str]:
    """Every layering violation of the source tree at `root`, one line each (empty: clean)."""
    graph = import_graph(root)
    named = forbidden_imports(graph, "harness.vsphere", FAKE) + evidence_writer_imports(graph)
    upward = [imp for imp in upward_harness_imports(graph) if imp not in named]   # each named once, by its own rule
    problems = [
        describe(forbidden_imports(graph, "suites", FAKE), root,
                 "suites must not touch the fake: fault injection goes through env.control(vc)"),
        describe(forbidden_imports(graph, "harness.vsphere", FAKE), root,
                 "harness/vsphere speaks to any vCenter through pyVmomi only"),
        describe(forbidden_imports(graph, f"{FAKE}.model", f"{FAKE}.behaviours"), root,
                 "the model holds state; behaviours are registered in dispatch.py HANDLERS"),
        describe(upward_imports(graph), root, "imports flow wire/disks/defects/kmip -> model -> behaviours -> "
                                              "dispatch -> adapter"),
        describe_cycles(import_cycles(graph, "harness"), root),
        describe(upward, root, "harness/ flows " + " -> ".join(
            "/".join(units) for units in reversed(HARNESS_LAYERS)) + ": move the shared name below both"),
        describe(evidence_writer_imports(graph), root,
                 "harness/vsphere imports no evidence writer: it reports calls through harness/calls.py"),
        "\n".join(use.describe(root) for use in pyvmomi_outside_speakers(root)),
    ]
    return [line for text in problems for line in text.splitlines() if line]


def evidence_writer_imports(graph: list[Import]) -> list[Import]:
    return [imp for imp in forbidden_imports(graph, VSPHERE, EVIDENCE)
            if imp.target not in VSPHERE_MAY_IMPORT_FROM_EVIDENCE]


# ---- who speaks pyVmomi -----------------------------------------------------------------------------
@functools.cache
def managed_method_names() -> frozenset[str]:
    """Every method of every managed type pyVmomi knows (vim, vmodl, pbm, eam, sms, vslm), by both
    its Python name and its wire name (`PowerOn` and `PowerOnVM_Task`): pyVmomi answers to both."""
    from pyVmomi import VmomiSupport
    names: set[str] = set()
    for type_name in VmomiSupport.ListManagedTypes():
        for info in VmomiSupport.GetVmodlType(type_name)._methodInfo.values():
            names.update((info.name, info.wsdlName))
    return frozenset(names)


@dataclass(frozen=True)
class PyVmomiUse:
    module: str
    name: str       # the managed method, or "_stub"
    how: str        # "calls", "invokes" (VCenterClient.invoke with the method's name) or "stub"
    path: Path
    line: int

    def describe(self, root: Path) -> str:
        where = f"{self.path.relative_to(root)}:{self.line}"
        why = "only harness/vsphere and the fake speak pyVmomi: add an operation to harness/vsphere"
        if self.how == "stub":
            return f"{where} uses pyVmomi's private _stub ({why})"
        if self.how == "invokes":
            return f"{where} invokes {self.name} through VCenterClient.invoke ({why})"
        return f"{where} calls {self.name}() ({why})"


def _invoked_method(call: ast.Call) -> str | None:
    """The method name a `<x>.invoke(obj, "Method", ...)` (or `method="Method"`) call names literally."""
    if not (isinstance(call.func, ast.Attribute) and call.func.attr == "invoke"):
        return None
    named = [kw.value for kw in call.keywords if kw.arg == "method"]
    arg = call.args[1] if len(call.args) > 1 else (named[0] if named else None)
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def pyvmomi_uses(module: str, path: Path) -> list[PyVmomiUse]:
    """Every managed-method call, `invoke` of a managed method by name, and `_stub` use in one file."""
    methods = managed_method_names()
    found: list[PyVmomiUse] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods:
            found.append(PyVmomiUse(module, node.func.attr, "calls", path, node.lineno))
        elif isinstance(node, ast.Call) and _invoked_method(node) in methods:
            found.append(PyVmomiUse(module, str(_invoked_method(node)), "invokes", path, node.lineno))
        elif isinstance(node, ast.Attribute) and node.attr == "_stub":
            found.append(PyVmomiUse(module, "_stub", "stub", path, node.lineno))
    return sorted(found, key=lambda use: use.line)


def pyvmomi_outside_speakers(root: Path, allowed: dict[str, tuple[frozenset[str], str]] | None = None
                             ) -> list[PyVmomiUse]:
    """pyVmomi spoken outside harness/vsphere and the fake, less the allow-list."""
    allowed = PYVMOMI_ALLOWED if allowed is None else allowed
    uses: list[PyVmomiUse] = []
    for module, path in source_modules(root).items():
        if any(_inside(module, speaker) for speaker in PYVMOMI_SPEAKERS):
            continue
        names = allowed.get(module, (frozenset(), ""))[0]
        uses.extend(use for use in pyvmomi_uses(module, path) if use.name not in names)
    return uses


# ---- the harness as it is --------------------------------------------------------------------------
def test_the_harness_keeps_its_layers():
    problems = layering_problems(ROOT)
    assert not problems, "layering violations:\n" + "\n".join(problems)


def test_pyvmomi_knows_the_managed_methods_the_check_looks_for():
    """The check is only as good as its name list: an empty or vim-only list would pass everything."""
    names = managed_method_names()
    assert {"PowerOnVM_Task", "PowerOn", "Destroy_Task", "CurrentTime", "RetrieveContent", "Logout",
            "RetrieveAllPermissions", "CreateContainerView", "PbmQueryProfile"} <= names
    assert len(names) > 1000, len(names)


def test_every_allow_list_entry_is_still_needed():
    """An entry whose module no longer uses the allowed names (or no longer exists) is removed."""
    modules = source_modules(ROOT)
    for module, (names, reason) in PYVMOMI_ALLOWED.items():
        assert reason, f"{module}: an allow-list entry needs its reason"
        used = {use.name for use in pyvmomi_uses(module, modules[module])} if module in modules else set()
        assert names <= used, f"PYVMOMI_ALLOWED[{module!r}] allows {sorted(names - used)}, which it no longer uses"


def test_every_module_that_registers_a_defect_is_in_the_catalogues_list():
    """catalogue.py imports defects from an explicit list: a module left off it would lose its defects."""
    from harness.fakevc import catalogue
    listed = {module.__name__ for module in catalogue.DEFECT_MODULES}
    registering = set()
    for module, path in source_modules(ROOT, ("harness",)).items():
        if not module.startswith(FAKE + "."):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "defect":
                registering.add(module)
    assert registering - listed == set(), "defects registered outside catalogue.DEFECT_MODULES"
    assert listed - registering == set(), "catalogue.DEFECT_MODULES lists a module that registers no defect"


# ---- the checks can fail -------------------------------------------------------------------------------
def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in {p.parent for p in root.rglob("*.py")}:
        if folder != root and not (folder / "__init__.py").exists():
            (folder / "__init__.py").write_text("")
    return root


CLEAN = {
    "harness/fakevc/wire.py": "import datetime\n",
    "harness/fakevc/model/vm.py": "from harness.fakevc import wire\n",
    "harness/fakevc/behaviours/power.py": "from harness.fakevc.model.vm import wire\nfrom harness.fakevc.model import vm\n",
    "harness/fakevc/dispatch.py": "from harness.fakevc.behaviours import power\n",
    "harness/fakevc/adapter.py": "from harness.fakevc import dispatch\n",
    "harness/vsphere/vms.py": "from pyVmomi import vim\n",
    "suites/test_power.py": "from harness.vsphere import vms\n",
}


def test_a_clean_synthetic_tree_has_no_problems(tmp_path):
    assert layering_problems(_tree(tmp_path, CLEAN)) == []


def test_a_suite_importing_the_fake_inside_a_function_is_named_with_file_and_line(tmp_path):
    files = dict(CLEAN)
    files["suites/test_power.py"] = "import pytest\n\n\ndef test_x():\n    from harness.fakevc.behaviours import power\n"
    problems = layering_problems(_tree(tmp_path, files))
    assert problems == ["suites/test_power.py:5 imports harness.fakevc.behaviours.power (suites must not touch "
                        "the fake: fault injection goes through env.control(vc))"]


def test_vsphere_importing_the_fake_is_named(tmp_path):
    files = dict(CLEAN)
    files["harness/vsphere/vms.py"] = "from pyVmomi import vim\nimport harness.fakevc.adapter as fake\n"
    problems = layering_problems(_tree(tmp_path, files))
    assert len(problems) == 1 and problems[0].startswith("harness/vsphere/vms.py:2 imports harness.fakevc.adapter")


def test_a_model_importing_a_behaviour_for_typing_only_is_named_and_makes_a_cycle(tmp_path):
    files = dict(CLEAN)
    files["harness/fakevc/model/vm.py"] = ("from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
                                           "    from harness.fakevc.behaviours.power import power_on\n")
    problems = layering_problems(_tree(tmp_path, files))
    assert "harness/fakevc/model/vm.py:4 imports harness.fakevc.behaviours.power (the model holds state; " \
           "behaviours are registered in dispatch.py HANDLERS)" in problems
    assert any(p.startswith("harness/fakevc/model/vm.py:4 imports harness.fakevc.behaviours.power (imports flow")
               for p in problems)
    cycles = [p for p in problems if p.startswith("import cycle:")]
    assert len(cycles) == 1
    assert "harness/fakevc/model/vm.py:4" in cycles[0] and "harness/fakevc/behaviours/power.py:1" in cycles[0]


def test_a_cycle_within_one_layer_is_named(tmp_path):
    files = dict(CLEAN)
    files["harness/fakevc/behaviours/clone.py"] = "def clone():\n    from harness.fakevc.behaviours import relocate\n"
    files["harness/fakevc/behaviours/relocate.py"] = "from harness.fakevc.behaviours import clone as cloning\n"
    problems = layering_problems(_tree(tmp_path, files))
    assert problems == ["import cycle: harness.fakevc.behaviours.clone (harness/fakevc/behaviours/clone.py:2) -> "
                        "harness.fakevc.behaviours.relocate (harness/fakevc/behaviours/relocate.py:1) -> "
                        "harness.fakevc.behaviours.clone"]


@pytest.mark.parametrize("relative, expected", [("from . import power", "harness.fakevc.behaviours.power"),
                                                ("from ..model import vm", "harness.fakevc.model.vm")])
def test_relative_imports_are_resolved(tmp_path, relative, expected):
    files = dict(CLEAN)
    files["harness/fakevc/behaviours/clone.py"] = relative + "\n"
    root = _tree(tmp_path, files)
    graph = import_graph(root)
    assert [imp.target for imp in graph if imp.source == "harness.fakevc.behaviours.clone"] == [expected]


def test_vsphere_importing_an_evidence_writer_is_named_but_the_recorder_is_allowed(tmp_path):
    files = dict(CLEAN)
    files["harness/evidence/recorder.py"] = "import json\n"
    files["harness/evidence/allure_evidence.py"] = "from harness.evidence import recorder\n"
    files["harness/vsphere/vms.py"] = ("from pyVmomi import vim\nfrom harness.evidence.recorder import json\n\n\n"
                                       "def power_on(client, vm):\n"
                                       "    from harness.evidence.allure_evidence import api_step\n")
    problems = layering_problems(_tree(tmp_path, files))
    assert problems == ["harness/vsphere/vms.py:6 imports harness.evidence.allure_evidence (harness/vsphere imports "
                        "no evidence writer: it reports calls through harness/calls.py)"]


MANAGED_CALLS = (
    "from pyVmomi import vim\n\n\n"
    "def sweep(client, si, vm, entry):\n"
    "    si.content.sessionManager.Logout()\n"                               # line 5: a managed method called
    "    client.invoke(vm, 'Destroy_Task')\n"                                 # line 6: invoked by name
    "    client.invoke(vm, method='PowerOnVM_Task')\n"                        # line 7: by keyword
    "    return vim.ClusterComputeResource(entry['cluster'], client.si._stub)\n"  # line 8: the private stub
)


def test_pyvmomi_spoken_outside_the_operations_layer_is_named_with_file_and_line(tmp_path):
    files = dict(CLEAN)
    files["harness/commands/sweep.py"] = MANAGED_CALLS
    files["suites/test_power.py"] = "def test_x(vc, vm):\n    vm.PowerOnVM_Task()\n"
    why = "(only harness/vsphere and the fake speak pyVmomi: add an operation to harness/vsphere)"
    problems = layering_problems(_tree(tmp_path, files))
    assert problems == [f"harness/commands/sweep.py:5 calls Logout() {why}",
                        f"harness/commands/sweep.py:6 invokes Destroy_Task through VCenterClient.invoke {why}",
                        f"harness/commands/sweep.py:7 invokes PowerOnVM_Task through VCenterClient.invoke {why}",
                        f"harness/commands/sweep.py:8 uses pyVmomi's private _stub {why}",
                        f"suites/test_power.py:2 calls PowerOnVM_Task() {why}"]


def test_the_same_calls_inside_the_operations_layer_and_the_fake_are_fine(tmp_path):
    files = dict(CLEAN)
    files["harness/vsphere/vms.py"] = MANAGED_CALLS
    files["harness/fakevc/model/vm.py"] = "from harness.fakevc import wire\n\n\ndef f(si):\n    si.CurrentTime()\n"
    files["harness/targets/health.py"] = ("def probe(client, vm):\n    client.invoke(vm, 'not_a_vim_method')\n"
                                  "    client.run()\n    return client.read(vm, ['name'])\n")
    assert layering_problems(_tree(tmp_path, files)) == []


def test_the_allow_list_allows_only_its_names_and_nothing_else(tmp_path):
    files = dict(CLEAN)
    files["harness/targets/connect.py"] = "def connect(si):\n    si.RetrieveContent()\n    si.PowerOnVM_Task()\n"
    files["harness/commands/audit.py"] = "def scan(client, m):\n    client.invoke(m, 'ListKmipServers')\n"
    root = _tree(tmp_path, files)
    allowed = {"harness.targets.connect": (frozenset({"RetrieveContent"}), "logging in")}
    uses = pyvmomi_outside_speakers(root, allowed=allowed)
    assert [use.describe(root).split(" (")[0] for use in uses] == [
        "harness/commands/audit.py:2 invokes ListKmipServers through VCenterClient.invoke",
        "harness/targets/connect.py:3 calls PowerOnVM_Task()"]


# ---- harness/ as folders (issue 20) -----------------------------------------------------------------
def test_a_cycle_between_two_folders_of_the_harness_is_named(tmp_path):
    files = dict(CLEAN)
    files["harness/inventory/schema.py"] = "def load():\n    from harness.inventory import checks\n"
    files["harness/inventory/checks.py"] = "from harness.inventory.schema import load\n"
    problems = layering_problems(_tree(tmp_path, files))
    assert problems == ["import cycle: harness.inventory.checks (harness/inventory/checks.py:1) -> "
                        "harness.inventory.schema (harness/inventory/schema.py:2) -> harness.inventory.checks"]


def test_a_lower_folder_importing_a_higher_one_is_named(tmp_path):
    files = dict(CLEAN)
    files["harness/run/plugin.py"] = "import pytest\n"
    files["harness/inventory/schema.py"] = "from harness.run.plugin import pytest\n"
    problems = layering_problems(_tree(tmp_path, files))
    assert len(problems) == 1
    assert problems[0].startswith("harness/inventory/schema.py:1 imports harness.run.plugin (harness/ flows cli -> ")


def test_every_unit_of_the_harness_has_its_place_in_the_layers():
    """A new folder or top-level module must be placed (harness_rank raises for an unplaced one)."""
    units = {path.stem if path.is_file() else path.name for path in (ROOT / "harness").iterdir()
             if (path.suffix == ".py" and path.name != "__init__.py") or (path / "__init__.py").is_file()}
    assert {unit: harness_rank(unit) for unit in units}


def test_the_top_level_of_the_harness_holds_at_most_a_dozen_modules():
    modules = sorted(p.name for p in (ROOT / "harness").glob("*.py") if p.name != "__init__.py")
    assert len(modules) <= 12, f"{len(modules)} modules at harness/'s top level: {modules}; group them in a folder"
