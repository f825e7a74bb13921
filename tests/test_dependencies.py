"""The declared dependencies are what the code uses: every third-party import of the package is
declared (at run time or in the extra that enables it), and every run-time dependency is imported."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "oncorwe"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
#: Imported only to enable an engine the user chose; each must come with the named extra.
OPTIONAL_IMPORTS = {"pyspark": "spark", "cryptography": "secure"}
#: Imported only by a module that runs in an environment of its own (its pins clash with the main
#: one's): module -> (extra, the distribution that provides it). tests_vantage6 runs there.
SEPARATE_ENVIRONMENT = {"vantage6": ("vantage6", "vantage6-algorithm-tools")}


def _imports() -> set[str]:
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in {"oncorwe", "__future__"}}


def _distributions(requirements: list[str]) -> set[str]:
    """The distributions these requirements name, with those their extras pull in."""
    found: set[str] = set()
    for text in requirements:
        requirement = Requirement(text)
        found.add(canonicalize_name(requirement.name))
        for line in metadata.requires(requirement.name) or []:
            dependency = Requirement(line)
            if dependency.marker and any(dependency.marker.evaluate({"extra": e}) for e in requirement.extras):
                found.add(canonicalize_name(dependency.name))
    return found


def _providers(module: str) -> set[str]:
    return {canonicalize_name(d) for d in metadata.packages_distributions().get(module, [])}


def test_every_import_is_declared() -> None:
    runtime = _distributions(PROJECT["dependencies"])
    extras = PROJECT["optional-dependencies"]
    for module in sorted(_imports()):
        if module in SEPARATE_ENVIRONMENT:
            extra, distribution = SEPARATE_ENVIRONMENT[module]
            names = {canonicalize_name(Requirement(r).name) for r in extras[extra]}
            assert canonicalize_name(distribution) in names, f"{module}: extra [{extra}] does not declare {distribution}"
            continue
        providers = _providers(module)
        assert providers, f"{module} is imported but no installed distribution provides it"
        declared = runtime if module not in OPTIONAL_IMPORTS else _distributions(extras[OPTIONAL_IMPORTS[module]])
        assert providers & declared, f"{module} (from {sorted(providers)}) is imported but not declared"


def test_every_runtime_dependency_is_imported() -> None:
    imported = set().union(*(_providers(m) for m in _imports()))
    for text in PROJECT["dependencies"]:
        name = canonicalize_name(Requirement(text).name)
        assert name in imported, f"{name} is a run-time dependency but src/oncorwe never imports it"


def test_postgres_without_its_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from oncorwe.errors import SourceError
    from oncorwe.model import store

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a))
    with pytest.raises(SourceError, match=r"pip install 'oncorwe\[postgres\]'"):
        store.connect("postgres://u:secret@127.0.0.1:1/db")
