"""The layout docs/architecture.md describes: layers that import only downwards, Dagster only in its
layer, the packages installed under one namespace, and the documented import graph the real one."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"

#: Top to bottom: a package may import the ones below it, never one above.
LAYERS = [
    "pipelines",
    "pipelines.sample_export",
    "assets",
    "assets.transforms",
    "connectors.ingest",
    "connectors",
    "warehouse",
]
#: Modules that may import dagster: the assets and the pipelines, not what they call.
DAGSTER_LAYER = ("assets", "pipelines")
PURE = ("assets.transforms", "pipelines.sample_export", "connectors", "connectors.ingest", "warehouse")


def package_of(module: str) -> str | None:
    """The layer a `retrostride.…` module belongs to (its deepest listed package)."""
    if not module.startswith("retrostride."):
        return None
    name = module.removeprefix("retrostride.")
    return max((layer for layer in LAYERS if name == layer or name.startswith(layer + ".")), key=len, default=None)


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def modules() -> dict[str, set[str]]:
    """Every product module (`retrostride.…`) and what it imports."""
    found = {}
    for top in ("assets", "connectors", "pipelines", "warehouse"):
        for path in sorted((ROOT / top).rglob("*.py")):
            found["retrostride." + ".".join(path.relative_to(ROOT).with_suffix("").parts)] = imports_of(path)
    return found


def import_graph() -> set[tuple[str, str]]:
    """(package, package it imports) across layers."""
    edges = set()
    for module, imported in modules().items():
        source = package_of(module)
        for target in filter(None, map(package_of, imported)):
            if target != source:
                edges.add((source, target))
    return edges


def test_no_package_imports_one_above_it():
    upward = [(a, b) for a, b in import_graph() if LAYERS.index(b) < LAYERS.index(a)]
    assert not upward


def test_only_the_dagster_layer_imports_dagster():
    offenders = [
        module
        for module, imported in modules().items()
        if any(name == "dagster" or name.startswith("dagster.") for name in imported) and package_of(module) in PURE
    ]
    assert not offenders
    assert all(package_of(m) in DAGSTER_LAYER for m, i in modules().items() if "dagster" in i)


def test_the_documented_import_graph_is_the_real_one():
    documented = set(re.findall(r"^\s*(\S+)\s+-->\s+(\S+)\s*$", ARCHITECTURE.read_text(encoding="utf-8"), re.M))
    assert documented == import_graph()


def test_the_product_is_installed_under_one_namespace_only(tmp_path):
    probe = (
        "import importlib.util as u; "
        "print([n for n in ('assets', 'connectors', 'pipelines', 'warehouse') if u.find_spec(n)]); "
        "import retrostride.pipelines.definitions"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
