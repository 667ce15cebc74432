"""The bundled study files: the EncodeNet paper's tables and the CI smoke table, as ``bench reproduce`` runs
them (``bench reproduce table2``). Each is an ordinary study file (docs/studies.md): ``bench study copy
table2 my-table2.toml`` copies one to edit, ``bench run my-table2.toml`` or ``bench reproduce
my-table2.toml`` runs the copy. They are package data (pyproject.toml), found through :func:`find`."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable


def names() -> list[str]:
    """The bundled studies' names (their files' names without ``.toml``), sorted."""
    return sorted(f.name.removesuffix(".toml") for f in resources.files(__name__).iterdir() if f.name.endswith(".toml"))


def find(name: str) -> Traversable | None:
    """The bundled study ``name``'s file, or None."""
    found = resources.files(__name__) / f"{name}.toml"
    return found if name in names() else None
