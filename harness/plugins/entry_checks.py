"""Checks of a registered name with what was registered under it (beside the object's own kind check).

- A dataset's declaration (``register(name, loader, classes=10, in_chans=3, input_size=32, train_images=...,
  test_images=...)``) is what dry runs and ``bench cost`` use without loading the data: each value must be a
  whole number >= 1 (a string, a float or a list was ignored, and a dry run then had no shape to go by). That
  the loader agrees with it is checked when it loads (:func:`harness.data.validate.check_declared`).
- A recipe is registered under its own name: records, tables and ``bench reproduce`` carry ``Recipe.name``,
  so one registered as ``fast`` but named ``quick`` recorded runs that ``--recipe quick`` cannot repeat.

Nothing here imports torch: plugins are loaded (and checked) by every command, ``bench --help`` included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: ``check(name, obj, meta)``: None when fine, else what is wrong (``obj`` is None for one registered by
#: reference and not imported yet)
EntryCheck = Callable[[str, Any, Mapping[str, Any]], "str | None"]

#: what a dataset may declare at registration (all counts)
DATASET_DECLARATION = ("classes", "in_chans", "input_size", "train_images", "test_images")


def dataset_declaration(name: str, obj: Any, meta: Mapping[str, Any]) -> str | None:
    """Every declared number a whole number >= 1."""
    for key in DATASET_DECLARATION:
        value = meta.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            return f"its declaration {key}={value!r} is not a whole number >= 1"
    return None


def recipe_name(name: str, obj: Any, meta: Mapping[str, Any]) -> str | None:
    """The registered name is the recipe's own ``name``."""
    own = getattr(obj, "name", name)
    if obj is not None and own != name:
        return (
            f"the Recipe is named {own!r}: register it as {own!r} (records and tables carry the recipe's "
            f"own name, which --recipe must find)"
        )
    return None


#: the entry checks of each kind that has one
ENTRY_CHECKS: dict[str, EntryCheck] = {"datasets": dataset_declaration, "recipes": recipe_name}
