"""Optional dependencies (the package's extras): import one, or fail with one line that says how to install it."""

from __future__ import annotations

import importlib
from types import ModuleType

from harness.core.errors import UsageError


def import_extra(module: str, extra: str, needed_by: str, package: str | None = None, hint: str = "") -> ModuleType:
    """``module``, imported; if it is not installed, a one-line UsageError naming the extra that provides it,
    installed from PyPI or from a checkout. ``hint`` is appended (e.g. what works without it)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(
            f'{needed_by} needs {package or module}: pip install "encodenet-bench[{extra}]" '
            f'(from a checkout: pip install -e ".[{extra}]"){hint}'
        ) from None
