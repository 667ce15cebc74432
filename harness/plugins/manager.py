"""The plugin manager: loads the built-in plugins and third-party ones through the ``bench`` entry points.

Third-party plugins that fail to import or to register (raising anything, even ``SystemExit``), or that
implement an unknown hook, are reported as one line each, naming them, and skipped, so the rest of the
harness keeps working; a built-in plugin that fails is a bug and raises. Two plugins registering one name
are a conflict: a warning at load, shown by ``bench plugins``, and an error only where that name is used.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import inspect
import pkgutil
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pluggy

from harness.plugins import hookspecs
from harness.core.errors import BenchError, PluginError, PluginFailed, UsageError, one_line
from harness.core.environ import names
from harness.plugins.declared import DeclaredPlugin
from harness.plugins.entry_checks import DATASET_DECLARATION, ENTRY_CHECKS
from harness.plugins.options import complete_options
from harness.plugins.methods import MethodRegistry
from harness.plugins.registry import Registry

ENTRY_POINT_GROUP = "bench"
DISABLE_ENV = "BENCH_DISABLE_PLUGINS"

#: The package of the built-in plugins: each ``plugins/<folder>/builtin.py`` declares some (:func:`builtin_plugins`).
BUILTIN_PACKAGE = "plugins"
BUILTIN_MODULE = "builtin"


@dataclass(frozen=True)
class Builtin:
    """A built-in plugin found by :func:`builtin_plugins`: its name, the plugin object and where it is declared."""

    name: str
    plugin: Any
    module: str  # "plugins.methods.builtin:kd"


@lru_cache(maxsize=1)
def builtin_plugins() -> tuple[Builtin, ...]:
    """The built-in plugins, discovered from their own declarations: every :class:`DeclaredPlugin` bound in a
    ``plugins/<folder>/builtin.py`` module (folders in name order, plugins in file order), named by its
    ``name`` or else by its variable. Only those modules are imported: they declare by reference, so loading
    the built-in plugins imports no torch (a plugin's module is imported when one of its names is used)."""
    package = importlib.import_module(BUILTIN_PACKAGE)
    found: list[Builtin] = []
    for folder in sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.ispkg):
        spec = importlib.util.find_spec(f"{BUILTIN_PACKAGE}.{folder}")
        locations = list(spec.submodule_search_locations or []) if spec else []
        if not any(m.name == BUILTIN_MODULE for m in pkgutil.iter_modules(locations)):
            continue
        module = importlib.import_module(f"{BUILTIN_PACKAGE}.{folder}.{BUILTIN_MODULE}")
        found += [
            Builtin(plugin.name or attribute, plugin, f"{module.__name__}:{attribute}")
            for attribute, plugin in vars(module).items()
            if isinstance(plugin, DeclaredPlugin)
        ]
    names = [b.name for b in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise PluginError(f"built-in plugin name(s) declared twice: {', '.join(twice)}")
    return tuple(found)


KINDS = ("methods", "archs", "datasets", "recipes", "executors", "loggers")
KIND_NAMES = {
    "methods": "method",
    "archs": "architecture",
    "datasets": "dataset",
    "recipes": "recipe",
    "executors": "executor",
    "loggers": "logger",
}


def _subclass_of(module: str, name: str) -> Callable[[Any], str | None]:
    """A check that an object is a subclass of ``module.name``. The module is looked up among the loaded ones:
    a class that subclasses it was defined after importing it, so checking never imports anything."""

    def check(obj: Any) -> str | None:
        base = getattr(sys.modules.get(module), name, None)
        if base is not None and inspect.isclass(obj) and issubclass(obj, base):
            return None
        return f"not a subclass of harness.api.{name}"

    return check


def _callable(expected: str) -> Callable[[Any], str | None]:
    return lambda obj: None if callable(obj) else f"not callable: expected {expected}"


def _recipe(obj: Any) -> str | None:
    """A Recipe whose numbers are within their limits (``Recipe.validate``)."""
    from harness.core.recipes import Recipe

    if not isinstance(obj, Recipe):
        return "not a harness.api.Recipe"
    try:
        obj.validate()
    except UsageError as exc:
        return f"an invalid recipe: {exc}"
    return None


def _method(obj: Any) -> str | None:
    """A Method subclass whose options' defaults are within their own declared constraints; its options are
    completed with the ones it inherits (:func:`~harness.plugins.options.complete_options`), and one it
    redeclares as something else is refused."""
    problem = _subclass_of("harness.methods.contract", "Method")(obj) or complete_options(obj)
    if problem:
        return problem
    for name, option in getattr(obj, "options", {}).items():
        try:
            option.check(option.default, name)
        except UsageError as exc:
            return f"its default is refused by its own constraint ({exc})"
        except AttributeError:
            return f"option '{name}' is not a harness.api.Option"
    return None


#: what each kind's registry accepts
CHECKS: dict[str, Callable[[Any], str | None]] = {
    "methods": _method,
    "archs": _callable("factory(spec: ArchSpec) -> nn.Module"),
    "datasets": _callable("loader(request: DatasetRequest) -> ImageDataset"),
    "recipes": _recipe,
    "executors": _subclass_of("harness.run.sweep.backend", "Backend"),
    "loggers": _subclass_of("harness.run.loggers", "Logger"),
}
#: keywords a plugin may pass to ``register`` beside ``description``, by kind: an architecture's
#: ``default_teacher`` (the teacher a distillation method gets when none is given) and where that pair comes
#: from (``teacher_source``)
META_KEYS: dict[str, tuple[str, ...]] = {
    "archs": ("default_teacher", "teacher_source"),
    # what a dataset is without loading it (for dry runs without the data, and bench cost): class count,
    # input shape (channels, size) and split sizes; ``downloads``: a real run fetches it when it is not on disk
    # (a dry run without it then plans on the declared shape; any other dataset a dry run cannot load is an error)
    "datasets": (*DATASET_DECLARATION, "downloads"),
}


@dataclass
class PluginInfo:
    """What `bench plugins` shows about one plugin."""

    name: str
    source: str  # "builtin" or the distribution (package) name
    module: str
    registered: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    conflicts: list[str] = field(default_factory=list)  # e.g. "method 'x' also registered by plugin 'y'"

    @property
    def status(self) -> str:
        """What `bench plugins` shows: the error, the conflicts, or "ok"."""
        if self.error:
            return self.error
        return "conflict: " + "; ".join(self.conflicts) if self.conflicts else "ok"


@dataclass
class PluginSet:
    """Everything the loaded plugins registered."""

    methods: Registry
    archs: Registry
    datasets: Registry
    recipes: Registry
    executors: Registry
    loggers: Registry
    plugins: list[PluginInfo]

    @property
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def registry(self, kind: str) -> Registry:
        return getattr(self, kind)

    def claim(self, exc: PluginFailed, method: str) -> PluginFailed:
        """``exc`` naming the plugin whose code raised: the architecture's when its factory did, else the
        method's (its stages' factories and objectives are its code)."""
        registry, name = (self.archs, exc.arch) if exc.arch else (self.methods, method)
        try:
            return exc.owned_by(registry.resolve(name).entry.plugin)
        except BenchError:
            return exc

    def resolve_arch(self, name: str) -> tuple[Any, str | None]:
        """(factory, argument after a prefix) of architecture ``name``."""
        resolved = self.archs.resolve(name)
        return resolved.obj, resolved.arg


def disabled_plugins(env: dict[str, str] | None = None) -> set[str]:
    """The plugin names of ``BENCH_DISABLE_PLUGINS`` (comma-separated)."""
    return set(names(DISABLE_ENV, env))


def unknown_disabled(disable: set[str], known: set[str]) -> str | None:
    """The warning for names of ``BENCH_DISABLE_PLUGINS`` that are no plugin's name (a typo disables nothing),
    with the closest plugin name; None when every name is a plugin's."""
    unknown = sorted(disable - known)
    if not unknown:
        return None
    hints = [
        f"'{name}'"
        + (
            f" (did you mean '{close[0]}'?)"
            if (close := difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6))
            else ""
        )
        for name in unknown
    ]
    return (
        f"{DISABLE_ENV} names {len(unknown)} plugin(s) that do not exist, so nothing was disabled for them: "
        f"{', '.join(hints)} (bench plugins lists the plugins)"
    )


def entry_points_of() -> list[importlib.metadata.EntryPoint]:
    """The installed ``bench`` entry points (third-party plugins)."""
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _one_line(exc: BaseException) -> str:
    line = one_line(exc, limit=None)
    return line + " (the plugin exits the process)" if isinstance(exc, SystemExit) else line


def load_plugins(
    *,
    entry_points: bool = True,
    extra: list[tuple[str, Any]] | None = None,
    disable: set[str] | None = None,
    warn: bool = True,
) -> PluginSet:
    """Load the built-in plugins, the third-party entry points and ``extra`` (name, plugin) pairs."""
    from_env = disable is None
    disable = disabled_plugins() if disable is None else disable
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}

    for builtin in builtin_plugins():
        if builtin.name in disable:
            continue
        pm.register(builtin.plugin, name=builtin.name)
        infos[builtin.name] = PluginInfo(name=builtin.name, source="builtin", module=builtin.module)

    if entry_points:
        for ep in entry_points_of():
            if ep.name in disable or ep.name in infos:
                if ep.name in infos and ep.name not in disable:
                    dist = ep.dist.name if ep.dist else "?"
                    _warn(
                        warn,
                        f"plugin '{ep.name}' from package '{dist}' is skipped: its name is taken "
                        f"by plugin from {infos[ep.name].source}",
                    )
                continue
            dist = ep.dist.name if ep.dist else "unknown package"
            info = PluginInfo(name=ep.name, source=dist, module=ep.value)
            infos[ep.name] = info
            try:
                pm.register(ep.load(), name=ep.name)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a broken third-party plugin (even sys.exit()) must not take bench down
                _skip(info, f"failed to load: {_one_line(exc)}", warn)

    if from_env:
        seen = (
            {b.name for b in builtin_plugins()}
            | {ep.name for ep in entry_points_of()}
            | {name for name, _ in extra or []}
        )  # installed plugins count even where entry points are not loaded
        message = unknown_disabled(disable, seen)
        if message:
            _warn(warn, message)

    for name, plugin in extra or []:
        info = infos[name] = PluginInfo(name=name, source="extra", module=getattr(plugin, "__name__", repr(plugin)))
        try:
            pm.register(plugin, name=name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            _skip(info, f"failed to load: {_one_line(exc)}", warn)

    while True:  # every plugin with an unknown hook, one at a time (pluggy reports the first)
        try:
            pm.check_pending()
            break
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin) or "?"
            hook = re.search(r"unknown hook '([^']+)'", str(exc))
            error = (
                f"implements an unknown hook '{hook.group(1) if hook else exc}'; hooks are "
                f"bench_register_{{{','.join(KINDS)}}}"
            )
            if name not in infos or infos[name].source == "builtin":
                raise PluginError(f"plugin '{name}' {error}") from None
            pm.unregister(exc.plugin)
            _skip(infos[name], error, warn)

    registries = {
        kind: (MethodRegistry if kind == "methods" else Registry)(
            KIND_NAMES[kind], CHECKS[kind], META_KEYS.get(kind, ()), ENTRY_CHECKS.get(kind)
        )
        for kind in KINDS
    }
    for kind in KINDS:
        caller = getattr(pm.hook, f"bench_register_{kind}")
        for impl in caller.get_hookimpls():  # registration order: built-ins first
            info = infos[impl.plugin_name]
            if info.error:
                continue
            registry = registries[kind]
            before = set(registry.by_plugin(impl.plugin_name))
            try:
                impl.function(**{arg: registry.callback(impl.plugin_name) for arg in impl.argnames})
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                if info.source == "builtin":
                    raise
                for other in registries.values():  # what it registered in earlier hooks goes too
                    other.drop_plugin(impl.plugin_name)
                info.registered.clear()
                _skip(info, f"failed in bench_register_{kind}: {_one_line(exc)}", warn)
                continue
            info.registered[kind] = sorted(set(registry.by_plugin(impl.plugin_name)) - before)

    for kind, registry in registries.items():
        for name, owners in registry.conflicts().items():
            for owner in owners:
                others = ", ".join(f"'{o}'" for o in owners if o != owner)
                infos[owner].conflicts.append(f"{KIND_NAMES[kind]} '{name}' also registered by plugin {others}")
            _warn(warn, f"{registry.conflict_error(name)} (until then '{name}' cannot be used)")
    return PluginSet(plugins=list(infos.values()), **registries)


def _skip(info: PluginInfo, error: str, warn: bool) -> None:
    """Mark a third-party plugin as failed and say so on one line."""
    info.error = error
    origin = f"from package '{info.source}'" if info.source != "extra" else f"({info.module})"
    _warn(warn, f"plugin '{info.name}' {origin} {error} (skipped; set {DISABLE_ENV}={info.name} to silence)")


def _warn(enabled: bool, message: str) -> None:
    if enabled:
        print(f"bench: warning: {message}", file=sys.stderr)


_CACHE: PluginSet | None = None


def get_plugins() -> PluginSet:
    """The process-wide plugin set (loaded once)."""
    global _CACHE
    if _CACHE is None:
        _CACHE = load_plugins()
    return _CACHE
