"""One base class for the project's own errors."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import ofa_latency_kedro
from ofa_latency_kedro.errors import OfaLatencyError


def project_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined in the package (every module imports on this machine)."""
    found = {}
    for module_info in pkgutil.walk_packages(ofa_latency_kedro.__path__, "ofa_latency_kedro."):
        module = importlib.import_module(module_info.name)
        for name, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__.startswith(
                "ofa_latency_kedro"
            ):
                found[f"{value.__module__}.{name}"] = value
    return found


def test_every_error_of_the_project_derives_from_the_one_base():
    errors = project_exceptions()
    assert len(errors) >= 8, sorted(errors)
    strays = sorted(
        name for name, error in errors.items() if not issubclass(error, OfaLatencyError)
    )
    assert not strays, f"errors outside OfaLatencyError: {strays}"


def test_each_keeps_the_builtin_type_it_always_had():
    errors = project_exceptions()
    for name, error in errors.items():
        if error is OfaLatencyError:
            continue
        assert issubclass(error, (ValueError, RuntimeError)), name
