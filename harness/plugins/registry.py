"""Name-keyed registries that remember which plugin registered what."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.core.errors import PluginError, unknown_name


@dataclass(frozen=True)
class Entry:
    """One registered name. ``prefix`` entries (names ending in ':') resolve ``name<arg>``."""

    name: str
    obj: Any
    plugin: str
    description: str = ""

    @property
    def prefix(self) -> bool:
        return self.name.endswith(":")


@dataclass(frozen=True)
class Resolved:
    """A name looked up in a registry: the entry and, for prefix entries, the argument after the prefix."""

    entry: Entry
    arg: str | None

    @property
    def obj(self) -> Any:
        return self.entry.obj


class Registry:
    """The entries of one kind (methods, archs, datasets or recipes)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def callback(self, plugin: str) -> Callable[..., None]:
        """The ``register`` function handed to one plugin's hook."""

        def register(name: str, obj: Any, description: str = "") -> None:
            self.add(Entry(name=name, obj=obj, plugin=plugin, description=description))

        return register

    def add(self, entry: Entry) -> None:
        if not entry.name or any(c.isspace() for c in entry.name) or "," in entry.name:
            raise PluginError(f"plugin '{entry.plugin}' registered an invalid {self.kind} name {entry.name!r}")
        old = self._entries.get(entry.name)
        if old is not None:
            raise PluginError(
                f"{self.kind} '{entry.name}' is registered by both plugin '{old.plugin}' and plugin "
                f"'{entry.plugin}'; disable one with BENCH_DISABLE_PLUGINS={entry.plugin}"
            )
        self._entries[entry.name] = entry

    def resolve(self, name: str) -> Resolved:
        """Look a name up; raise a UsageError with the closest match when it is unknown."""
        if name in self._entries and not self._entries[name].prefix:
            return Resolved(self._entries[name], None)
        for entry in self._entries.values():
            if entry.prefix and name.startswith(entry.name):
                arg = name[len(entry.name):]
                if not arg:
                    raise unknown_name(self.kind, name, self.display_names())
                return Resolved(entry, arg)
        raise unknown_name(self.kind, name, self.display_names())

    def __contains__(self, name: str) -> bool:
        try:
            self.resolve(name)
        except Exception:
            return False
        return True

    def display_names(self) -> list[str]:
        return [e.name + "<name>" if e.prefix else e.name for e in self._entries.values()]

    def entries(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def drop_plugin(self, plugin: str) -> None:
        self._entries = {k: e for k, e in self._entries.items() if e.plugin != plugin}

    def by_plugin(self, plugin: str) -> list[str]:
        return [e.name for e in self._entries.values() if e.plugin == plugin]
