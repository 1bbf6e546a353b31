"""Which suite tests cover which rule, read from the suites' source (no import, no collection)."""
from __future__ import annotations

import ast
from pathlib import Path


def _marker_args(decorator: ast.expr, name: str) -> list[str]:
    """String arguments of `@pytest.mark.<name>(...)`."""
    if not isinstance(decorator, ast.Call):
        return []
    func = decorator.func
    if isinstance(func, ast.Attribute) and func.attr == name:
        return [a.value for a in decorator.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return []


def suite_tests(suites: Path) -> list[dict[str, object]]:
    """Every test function in suites/: module, name, rule ids, test id."""
    tests = []
    for path in sorted(suites.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                rules = [r for d in node.decorator_list for r in _marker_args(d, "rule")]
                ids = [i for d in node.decorator_list for i in _marker_args(d, "test_id")]
                tests.append({"module": path.name, "name": node.name, "rules": rules, "test_ids": ids})
    return tests


def rule_coverage(suites: Path) -> dict[str, list[str]]:
    """rule id -> ['module::test', ...]."""
    coverage: dict[str, list[str]] = {}
    for test in suite_tests(suites):
        for rule in test["rules"]:
            coverage.setdefault(rule, []).append(f"{test['module']}::{test['name']}")
    return coverage
