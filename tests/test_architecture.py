"""Routes stay thin: the modules of the routes/api layer (as pyproject's import-linter layers
contract lists them) parse input, call a loader or a service, commit and render. Queries and the
rules around them live in the services, so no route module builds a statement, runs one, or
imports SQLAlchemy (except the Session type its dependencies are annotated with)."""

from __future__ import annotations

import ast
import importlib.util
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Session is only the type of the request's database dependency.
ALLOWED_SQLALCHEMY = {("sqlalchemy.orm", "Session")}
QUERY_METHODS = {"execute", "scalar", "scalars"}


def route_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(contract["layers"] for contract in contracts if contract["id"] == "layers")
    # Layer 0 is composition; layer 1 is the HTML and JSON routes.
    return [name.strip() for name in layers[1].split(":") if name.strip()]


def _source(module: str) -> tuple[Path, str]:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    path = Path(spec.origin)
    return path, path.read_text(encoding="utf-8")


def database_work(source: str) -> list[str]:
    """Each place in the source that touches SQLAlchemy beyond the Session type, as
    "line: what"."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                f"{node.lineno}: import {alias.name}"
                for alias in node.names
                if alias.name.split(".")[0] == "sqlalchemy"
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            found += [
                f"{node.lineno}: from {node.module} import {alias.name}"
                for alias in node.names
                if (node.module, alias.name) not in ALLOWED_SQLALCHEMY
            ]
        elif isinstance(node, ast.Call):
            function = node.func
            if isinstance(function, ast.Name) and function.id == "select":
                found.append(f"{node.lineno}: select(...)")
            elif isinstance(function, ast.Attribute) and function.attr in QUERY_METHODS:
                found.append(f"{node.lineno}: .{function.attr}(...)")
    # ast.walk goes breadth first: in line order, the report reads like the file.
    return sorted(found, key=lambda entry: int(entry.split(":", 1)[0]))


def test_the_routes_layer_is_read_from_pyproject() -> None:
    modules = route_modules()
    assert "moderation.routes" in modules
    assert "crowdservice.routes_agent" in modules
    assert "community.app" not in modules  # composition, the layer above


@pytest.mark.parametrize("module", route_modules())
def test_route_modules_leave_queries_to_services(module: str) -> None:
    path, source = _source(module)
    assert database_work(source) == [], f"{path.relative_to(ROOT)} queries the database itself"


def test_the_guard_sees_queries_and_sqlalchemy_imports() -> None:
    source = (
        "from sqlalchemy import func, select\n"
        "from sqlalchemy.orm import Session\n"
        "import sqlalchemy.exc\n"
        "rows = db.scalars(select(User))\n"
        "db.execute(statement)\n"
        "one = db.scalar(statement)\n"
    )
    assert database_work(source) == [
        "1: from sqlalchemy import func",
        "1: from sqlalchemy import select",
        "3: import sqlalchemy.exc",
        "4: .scalars(...)",
        "4: select(...)",
        "5: .execute(...)",
        "6: .scalar(...)",
    ]
