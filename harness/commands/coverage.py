"""Which suite tests cover which rule, and which states/principals (`covers` cells) their instances
exercise, read from the suites' source (no import, no collection).

A test instance declares the cells it exercises in one of three ways, all visible in its source:
`@pytest.mark.covers(power="suspended")` (on the test, a `pytest.param`, or the module's
`pytestmark`); a `parametrize` over an argument named after a dimension (`power` with
`poweredOn` / `poweredOff` / `suspended`, vSphere's VirtualMachinePowerState values); or
`@pytest.mark.requires("cross_vcenter")`, which only a test across two vCenters needs.
"""
from __future__ import annotations

import ast
from pathlib import Path

from harness.rules import DIMENSIONS, load_rules

# vSphere's VirtualMachinePowerState names (a suite parametrizes with them) -> catalogue values.
VALUE_ALIASES: dict[str, dict[str, str]] = {"power": {"poweredOn": "on", "poweredOff": "off", "suspended": "suspended"}}
CAPABILITY_CELLS: dict[str, tuple[str, str]] = {"cross_vcenter": ("scope", "cross-vcenter")}


def _marker_args(decorator: ast.expr, name: str) -> list[str]:
    """String arguments of `@pytest.mark.<name>(...)`."""
    if not isinstance(decorator, ast.Call):
        return []
    func = decorator.func
    if isinstance(func, ast.Attribute) and func.attr == name:
        return [a.value for a in decorator.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return []


def _strings(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [s for element in node.elts for s in _strings(element)]
    return []


def _cell(dim: str, raw: str) -> tuple[str, str]:
    return dim, VALUE_ALIASES.get(dim, {}).get(raw, raw)


def _parametrized_cells(call: ast.Call) -> set[tuple[str, str]]:
    """Cells of `parametrize("power", [...])` (or "power,operation" with tuples / pytest.param)."""
    if len(call.args) < 2 or not _strings(call.args[0]):
        return set()
    names = [n.strip() for n in ",".join(_strings(call.args[0])).split(",")]
    if not isinstance(call.args[1], (ast.List, ast.Tuple)):
        return set()
    cells = set()
    for position, name in enumerate(names):
        if name not in DIMENSIONS:
            continue
        for element in call.args[1].elts:
            values = element.args if isinstance(element, ast.Call) else (
                element.elts if isinstance(element, ast.Tuple) and len(names) > 1 else [element])
            if position < len(values):
                cells.update(_cell(name, v) for v in _strings(values[position]))
    return cells


def declared_cells(expressions: list[ast.expr]) -> set[tuple[str, str]]:
    """Every (dimension, value) declared in these decorator / pytestmark expressions."""
    cells: set[tuple[str, str]] = set()
    for expression in expressions:
        for node in ast.walk(expression):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            if node.func.attr == "covers":
                cells.update(_cell(k.arg, v) for k in node.keywords if k.arg for v in _strings(k.value))
            elif node.func.attr == "parametrize":
                cells |= _parametrized_cells(node)
            elif node.func.attr == "requires":
                cells.update(CAPABILITY_CELLS[c] for c in _marker_args(node, "requires") if c in CAPABILITY_CELLS)
    return cells


def _module_marks(tree: ast.Module) -> list[ast.expr]:
    return [node.value for node in tree.body if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)]


def suite_tests(suites: Path) -> list[dict[str, object]]:
    """Every test function in suites/: module, name, rule ids, test id, the cells its instances exercise."""
    tests = []
    for path in sorted(suites.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_marks = _module_marks(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                rules = [r for d in node.decorator_list for r in _marker_args(d, "rule")]
                ids = [i for d in node.decorator_list for i in _marker_args(d, "test_id")]
                cells = sorted(declared_cells([*module_marks, *node.decorator_list]))
                tests.append({"module": path.name, "name": node.name, "rules": rules, "test_ids": ids,
                              "cells": cells})
    return tests


def rule_coverage(suites: Path) -> dict[str, list[str]]:
    """rule id -> ['module::test', ...]."""
    coverage: dict[str, list[str]] = {}
    for test in suite_tests(suites):
        for rule in test["rules"]:
            coverage.setdefault(rule, []).append(f"{test['module']}::{test['name']}")
    return coverage


def cell_coverage(suites: Path) -> dict[str, dict[tuple[str, str], list[str]]]:
    """rule id -> each cell its text names -> the tests (module::name) with an instance exercising it."""
    tests = suite_tests(suites)
    table: dict[str, dict[tuple[str, str], list[str]]] = {}
    for rule in load_rules().values():
        table[rule.id] = {cell: [f"{t['module']}::{t['name']}" for t in tests
                                 if rule.id in t["rules"] and cell in t["cells"]] for cell in rule.cells}
    return table


def uncovered_cells(suites: Path) -> dict[str, list[tuple[str, str]]]:
    """Rules whose text names a state or principal no test instance of the rule exercises."""
    return {rule: [cell for cell, tests in cells.items() if not tests]
            for rule, cells in cell_coverage(suites).items() if any(not t for t in cells.values())}
