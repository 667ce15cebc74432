"""Plugins declared by reference: what a plugin registers, written down without importing its code.

A plugin whose objects need heavy imports (torch, timm) can declare its registrations as data, pointing at
the objects by ``"package.module:attribute"`` (:func:`~harness.plugins.registry.lazy` for a factory with
arguments): the manager registers the names and descriptions at once, and a module is imported only when one
of its names is used. The built-in plugins are declared this way (``plugins/*/builtin.py``), so that
``bench list`` and ``bench --help`` answer without importing torch; they go through the same hooks, manager and
checks as any other plugin::

    from harness.api import declared_plugin, lazy

    my_plugin = declared_plugin("methods", [
        ("my-method", "my_package.method:MyMethod", "what it does"),
    ])
    # pyproject.toml: [project.entry-points.bench] my_plugin = "my_package.plugins:my_plugin"

(the object's name must not be the name of a submodule of its package: importing that submodule would
replace the package's attribute).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

from harness.plugins.hookspecs import Register, hookimpl

#: (name, object or reference, description[, keywords such as default_teacher])
Registration = tuple[str, Any, str] | tuple[str, Any, str, Mapping[str, Any]]


class DeclaredPlugin(SimpleNamespace):
    """A plugin declared as data (:func:`declared_plugin`): its hook, its ``registrations`` and, where it is
    not the name it is bound to, its plugin ``name`` (how built-in plugins are discovered and named)."""


def declared_plugin(kind: str, registrations: Iterable[Registration], *, name: str | None = None) -> DeclaredPlugin:
    """A plugin object implementing ``bench_register_<kind>`` that registers ``registrations`` in order.
    ``name``: the plugin's name where it differs from the variable it is assigned to (``baseline-matched``);
    a built-in plugin is found under that variable in ``plugins/<kind>/builtin.py``."""
    entries = [tuple(r) for r in registrations]

    def register_all(register: Register) -> None:
        for entry_name, obj, description, *meta in entries:
            register(entry_name, obj, description=description, **(meta[0] if meta else {}))

    hook = f"bench_register_{kind}"
    register_all.__name__ = register_all.__qualname__ = hook
    return DeclaredPlugin(**{hook: hookimpl(register_all)}, registrations=entries, name=name)
