"""Shared by the tests of scripts under benchmarks/: import one as a module."""

import importlib.util
from functools import cache
from pathlib import Path


@cache
def load_benchmark(name: str):
    """benchmarks/<name>.py as a module (loaded once per test session)."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
