"""Import a benchmark script of bench/ (not a package) as a module, for the tests of its logic."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"


def import_bench_module(name: str) -> ModuleType:
    """bench/<name>.py as a module; bench/ is on the import path only while it is imported (its
    scripts import each other by name)."""
    sys.path.insert(0, str(BENCH_DIR))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH_DIR))
