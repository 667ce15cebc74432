"""Name-keyed registries that remember which plugin registered what.

Two plugins registering one name is a conflict, not a load failure: the registry keeps both, everything
else keeps working, and only resolving that name fails (one line naming both plugins and how to disable one).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.core.errors import PluginError, unknown_name
from harness.plugins.entry_checks import EntryCheck


@dataclass(frozen=True)
class Ref:
    """A registered object by reference, ``"package.module:attribute"``, imported when first used (with
    ``kwargs``: ``functools.partial(attribute, **kwargs)``, e.g. one factory for several architectures). A
    plugin may also register a plain ``"module:attribute"`` string: listing names and descriptions then
    imports nothing of it."""

    target: str
    kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def load(self) -> Any:
        module, sep, attribute = self.target.partition(":")
        if not sep or not module or not attribute:
            raise ValueError(f"a reference is 'package.module:attribute', got {self.target!r}")
        obj = getattr(importlib.import_module(module), attribute)
        return functools.partial(obj, **self.kwargs) if self.kwargs else obj


def lazy(target: str, **kwargs: Any) -> Ref:
    """``register(name, lazy("pkg.module:factory", depth=20))``: registered now, imported when used."""
    return Ref(target, kwargs)


class Entry:
    """One registered name. ``prefix`` entries (names ending in ':') resolve ``name<arg>``. ``meta``: what the
    plugin declared beside the object (an architecture's ``default_teacher``). ``obj`` is the registered
    object; a reference (:class:`Ref`) is imported and checked on first access, and a failure there is a
    :class:`PluginError` naming the plugin and the name."""

    def __init__(
        self,
        name: str,
        obj: Any,
        plugin: str,
        description: str = "",
        meta: Mapping[str, Any] | None = None,
        check: Check | None = None,
        kind: str = "",
    ) -> None:
        self.name, self.plugin, self.description = name, plugin, description
        self.meta: Mapping[str, Any] = dict(meta or {})
        self._target = Ref(obj) if isinstance(obj, str) else obj
        self._check, self._kind = check, kind
        self._loaded = not isinstance(self._target, Ref)
        self._obj = None if not self._loaded else obj

    @property
    def lazy(self) -> bool:
        """Registered by reference and not imported yet."""
        return not self._loaded

    @property
    def obj(self) -> Any:
        if not self._loaded:
            ref = self._target
            try:
                obj = ref.load()
            except Exception as exc:  # the plugin's module is broken: one line, naming it
                raise PluginError(
                    f"plugin '{self.plugin}' registered {self._kind} '{self.name}' as "
                    f"'{ref.target}', which cannot be imported: {type(exc).__name__}: {exc}"
                ) from None
            problem = self._check(obj) if self._check is not None else None
            if problem:
                raise PluginError(
                    f"plugin '{self.plugin}' registered {self._kind} '{self.name}' as '{ref.target}', {problem}"
                )
            self._obj, self._loaded = obj, True
        return self._obj

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


#: ``check(obj)``: None when ``obj`` is what a registry of its kind holds, else what it should have been
Check = Callable[[Any], "str | None"]


class Registry:
    """The entries of one kind (methods, archs, datasets, recipes or executors).

    ``check`` validates what a plugin registers (a method class, a factory, ...): a wrong kind of object is a
    :class:`PluginError` naming the plugin, the name and what was expected, raised while the plugin registers
    (so a third-party plugin is skipped with one line, and a built-in one is a bug)."""

    def __init__(
        self,
        kind: str,
        check: Check | None = None,
        meta_keys: tuple[str, ...] = (),
        check_entry: EntryCheck | None = None,
    ) -> None:
        self.kind = kind
        self.check = check
        self.meta_keys = meta_keys  # keywords a plugin may pass beside description (e.g. default_teacher)
        self.check_entry = check_entry  # the name with the object and keywords (harness.plugins.entry_checks)
        self._entries: dict[str, list[Entry]] = {}  # more than one entry: a conflict

    def callback(self, plugin: str) -> Callable[..., None]:
        """The ``register`` function handed to one plugin's hook."""

        def register(name: str, obj: Any, description: str = "", **meta: Any) -> None:
            self.add(Entry(name, obj, plugin, description, meta, check=self.checker(name, meta), kind=self.kind))

        return register

    def checker(self, name: str, meta: Mapping[str, Any]) -> Check:
        """The check of an object registered as ``name`` with ``meta``: its kind's, then its entry check's."""

        def check(obj: Any) -> str | None:
            problem = self.check(obj) if self.check is not None else None
            if not problem and self.check_entry is not None:
                problem = self.check_entry(name, obj, meta)
            return problem

        return check

    def add(self, entry: Entry) -> None:
        if (
            not isinstance(entry.name, str)
            or not entry.name
            or any(c.isspace() for c in entry.name)
            or "," in entry.name
        ):
            raise PluginError(f"plugin '{entry.plugin}' registered an invalid {self.kind} name {entry.name!r}")
        unknown = sorted(set(entry.meta) - set(self.meta_keys))
        if unknown:
            known = ", ".join(self.meta_keys) or "none"
            raise PluginError(
                f"plugin '{entry.plugin}' registered {self.kind} '{entry.name}' with unknown "
                f"keyword(s) {', '.join(unknown)} (a {self.kind} takes: description, {known})"
            )
        if entry.lazy:  # the object is checked when first used; what was declared beside it, now
            problem = self.check_entry(entry.name, None, entry.meta) if self.check_entry is not None else None
        else:
            problem = self.checker(entry.name, entry.meta)(entry.obj)
        if problem:
            raise PluginError(
                f"plugin '{entry.plugin}' registered {self.kind} '{entry.name}' as {_describe(entry.obj)}, {problem}"
            )
        self._entries.setdefault(entry.name, []).append(entry)

    def conflicts(self) -> dict[str, list[str]]:
        """Names registered by more than one plugin -> those plugins, in registration order."""
        return {name: [e.plugin for e in found] for name, found in self._entries.items() if len(found) > 1}

    def conflict_error(self, name: str) -> PluginError:
        plugins = self.conflicts()[name]
        others = plugins[1:]
        who = (
            f"both plugin '{plugins[0]}' and plugin '{plugins[1]}'"
            if len(plugins) == 2
            else "plugins " + ", ".join(f"'{p}'" for p in plugins)
        )
        return PluginError(
            f"{self.kind} '{name}' is registered by {who}; disable "
            f"{'one' if len(plugins) == 2 else 'all but one'} with "
            f"BENCH_DISABLE_PLUGINS={','.join(others)}"
        )

    def _unique(self, name: str) -> Entry:
        found = self._entries[name]
        if len(found) > 1:
            raise self.conflict_error(name)
        return found[0]

    def resolve(self, name: str) -> Resolved:
        """Look a name up; raise a UsageError with the closest match when it is unknown, a PluginError
        naming the plugins when several registered it."""
        if name in self._entries and not self._entries[name][0].prefix:
            return Resolved(self._unique(name), None)
        for key, found in self._entries.items():
            if found[0].prefix and name.startswith(key):
                arg = name[len(key) :]
                if not arg:
                    raise unknown_name(self.kind, name, self.display_names())
                return Resolved(self._unique(key), arg)
        raise unknown_name(self.kind, name, self.display_names())

    def __contains__(self, name: str) -> bool:
        try:
            self.resolve(name)
        except PluginError:
            return True  # known, but claimed by several plugins
        except Exception:
            return False
        return True

    def display_names(self) -> list[str]:
        return [e.name + "<name>" if e.prefix else e.name for e in self.entries()]

    def entries(self) -> Iterator[Entry]:
        """One entry per name (the first registered, for conflicting names: see :meth:`conflicts`)."""
        return (found[0] for found in self._entries.values())

    def drop_plugin(self, plugin: str) -> None:
        kept = {k: [e for e in found if e.plugin != plugin] for k, found in self._entries.items()}
        self._entries = {k: found for k, found in kept.items() if found}

    def by_plugin(self, plugin: str) -> list[str]:
        return [name for name, found in self._entries.items() if any(e.plugin == plugin for e in found)]


def _describe(obj: Any) -> str:
    text = repr(obj)
    return (text if len(text) <= 60 else text[:57] + "...") + f" ({type(obj).__name__})"
