"""Dependencies point one way: domain imports nothing of ours but itself; adapters never import flows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "domain": {"prefect", "sqlalchemy", "httpx", "models", "integrations", "tasks", "flows", "deployments",
               "great_expectations", "slack_sdk", "pandas"},
    "models": {"prefect", "httpx", "integrations", "tasks", "flows", "deployments"},
    "integrations": {"tasks", "flows", "deployments", "prefect"},
    "tasks": {"flows", "deployments"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_imports_point_one_way(package: str) -> None:
    offenders = {}
    for path in (ROOT / package).rglob("*.py"):
        if package == "integrations" and path.name == "settings.py":
            allowed_extra = {"prefect"}  # Secret blocks, imported lazily
        else:
            allowed_extra = set()
        bad = (_imports(path) & FORBIDDEN[package]) - allowed_extra
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import sqlalchemy\nfrom prefect import flow\n")
    assert _imports(sample) == {"sqlalchemy", "prefect"}
