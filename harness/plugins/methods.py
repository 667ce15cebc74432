"""The methods registry: registered names, prefix variants (``attn:eca``) and compositions (``kd+se``).

A name with ``+`` is a composition of registered methods (:mod:`harness.methods.compose` builds its class
from their declared roles); a prefix registration (``attn:``) resolves ``attn:<arg>`` to the class the
registered one's ``variant(arg)`` gives (its options may depend on the argument). Both resolve to an entry
like any other, so options, ``bench list methods``, plans, costs and records treat them alike. Nothing here
imports torch until such a name is resolved.
"""

from __future__ import annotations

from typing import Any

from harness.core.errors import PluginError, UsageError
from harness.methods.naming import SEPARATOR, parts_of
from harness.plugins.registry import Entry, Registry, Resolved


def with_components(names: list[str]) -> list[str]:
    """``names`` and the components of the composed ones (an option of ``kd`` applies inside ``kd+se``)."""
    return list(dict.fromkeys([*names, *(part for name in names for part in parts_of(name))]))


class MethodRegistry(Registry):
    """A :class:`Registry` of methods that also resolves prefix variants and compositions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._made: dict[str, Resolved] = {}

    def add(self, entry: Entry) -> None:
        if SEPARATOR in entry.name:
            raise PluginError(
                f"plugin '{entry.plugin}' registered method {entry.name!r}: '{SEPARATOR}' joins methods "
                f"(--methods kd+se) and cannot be part of a name"
            )
        super().add(entry)
        self._made.clear()

    def drop_plugin(self, plugin: str) -> None:
        super().drop_plugin(plugin)
        self._made.clear()

    def resolve(self, name: str) -> Resolved:
        """``name`` as an entry: a registered one, a prefix variant's or a composition's (built once)."""
        if name not in self._made:
            self._made[name] = self._compose(name) if SEPARATOR in name else self._variant(name)
        return self._made[name]

    def _variant(self, name: str) -> Resolved:
        resolved = super().resolve(name)
        if resolved.arg is None:
            return resolved
        entry = resolved.entry
        cls = entry.obj.variant(resolved.arg)
        if cls is entry.obj:
            return resolved
        problem = self.checker(name, entry.meta)(cls)
        if problem:
            raise PluginError(f"plugin '{entry.plugin}' gave method '{name}' a class that is {problem}")
        return Resolved(Entry(name, cls, entry.plugin, entry.description, entry.meta, kind=self.kind), None)

    def _compose(self, name: str) -> Resolved:
        from harness.methods.compose import compose

        if not all(parts_of(name)):
            raise UsageError(f"method '{name}': '{SEPARATOR}' joins two or more method names (e.g. kd+se)")
        entries = [self.resolve(part).entry for part in parts_of(name)]
        cls = compose(name, [(e.name, e.obj) for e in entries])
        plugin = SEPARATOR.join(dict.fromkeys(e.plugin for e in entries))
        description = " + ".join(e.name for e in entries) + ": " + "; ".join(e.description for e in entries)
        return Resolved(Entry(name, cls, plugin, description, kind=self.kind), None)
