"""How a composed method is named: components joined by ``+`` (``kd+se``). Imports nothing heavy, so both the
methods registry (:mod:`harness.plugins.methods`) and the composition (:mod:`harness.methods.compose`) use
it without importing each other."""

from __future__ import annotations

SEPARATOR = "+"


def parts_of(name: str) -> list[str]:
    """The component names of a composed method name (``kd+se`` -> ``[kd, se]``); ``[name]`` for one method."""
    return name.split(SEPARATOR)
