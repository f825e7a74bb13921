"""The statistics library's public surface: every public name of its modules is exported, results
are immutable, and the package ships its type marker."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from importlib import resources

import oncorwe.stats as stats


def test_every_public_name_of_every_module_is_exported() -> None:
    for module_info in pkgutil.iter_modules(stats.__path__):
        module = importlib.import_module(f"oncorwe.stats.{module_info.name}")
        for name in getattr(module, "__all__", ()):
            if module_info.name in {"_validate", "_cox_core", "_cox_input", "_cox_residuals",
                                    "_cox_concordance"}:
                continue  # internal kernels and input gates, not part of the surface
            assert name in stats.__all__, f"{module_info.name}.{name} is public but not exported"


def test_result_types_are_frozen() -> None:
    for name in stats.__all__:
        obj = getattr(stats, name)
        if dataclasses.is_dataclass(obj) and isinstance(obj, type):
            assert obj.__dataclass_params__.frozen, f"{name} is a mutable dataclass"  # type: ignore[attr-defined]


def test_one_name_per_concept() -> None:
    """No result field or argument spells a concept the library names otherwise."""
    import inspect

    other_spellings = {"chisq": "statistic", "std_err": "se", "duration": "time", "labels": "groups",
                       "pvalue": "p_value", "n_events_total": "n_events"}
    for name in stats.__all__:
        obj = getattr(stats, name)
        if isinstance(obj, type) and dataclasses.is_dataclass(obj):
            fields = {f.name for f in dataclasses.fields(obj)} | {
                n for n, v in vars(obj).items() if isinstance(v, property)}
        elif isinstance(obj, type) and hasattr(obj, "_fields"):
            fields = set(obj._fields)
        elif callable(obj) and not isinstance(obj, type):
            fields = set(inspect.signature(obj).parameters)
        else:
            continue
        clash = fields & other_spellings.keys()
        assert not clash, f"{name}: {sorted(clash)} should be {[other_spellings[c] for c in clash]}"


def test_package_is_typed() -> None:
    assert resources.files("oncorwe").joinpath("py.typed").is_file()
