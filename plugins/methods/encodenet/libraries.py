"""The libraries EncodeNet imports only where it uses them: scikit-learn and kneed to cluster (when the
autoencoder's targets are selected), matplotlib to draw the figures. Planning (a dry run) imports none of
them; :func:`require` checks at planning that they are installed (without importing them), so that a
missing one stops the run before any training, and :func:`load` imports one where it is used.

The modules that import them name them in ``IMPORTED_WHEN_USED`` (:mod:`harness.core.identity`): their
versions stay in the stages' code identity as when they were imported at the top.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from harness.api import UsageError

#: import name -> distribution (what ``pip install`` takes)
DISTRIBUTIONS = {"sklearn": "scikit-learn", "kneed": "kneed", "matplotlib": "matplotlib"}
CLUSTERING = ("sklearn", "kneed")
FIGURES = ("matplotlib",)


def _missing(needed_by: str, names: tuple[str, ...]) -> UsageError:
    wanted = " ".join(DISTRIBUTIONS.get(n, n) for n in names)
    return UsageError(
        f"{needed_by} needs {wanted}, which is not installed: pip install {wanted} (a dependency "
        f"of encodenet-bench; reinstalling it installs its dependencies)"
    )


def require(names: tuple[str, ...], needed_by: str) -> None:
    """A one-line UsageError unless every package of ``names`` is installed (found, not imported)."""
    missing = tuple(n for n in names if importlib.util.find_spec(n) is None)
    if missing:
        raise _missing(needed_by, missing)


def load(module: str, needed_by: str) -> ModuleType:
    """``module`` imported, or the one-line UsageError of :func:`require` if its package is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is None or exc.name.split(".")[0] != module.split(".")[0]:
            raise  # installed, but something it imports is not: not this message's case
        raise _missing(needed_by, (module.split(".")[0],)) from None
