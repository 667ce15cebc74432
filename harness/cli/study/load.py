"""Read a study file into runs: check it against :data:`~harness.cli.study.schema.KEYS`, expand its matrix,
apply the command line's options, and turn each run into a :class:`~harness.run.request.RunRequest`.

Nothing here is prepared or trained: every problem of the file itself is one line naming the file, the table
and the key, before any run is prepared. A value is checked and converted by its key's kind of value
(:mod:`harness.run.spec.kinds`, the same declaration the command line's option parses its text with), so
that a study file and a command line mean the same; it reaches the run typed, never as text to be parsed
again. Unset keys get the option's default; the request is :func:`harness.cli.args.run_request`'s.

Deviations: paths written in a study file are relative to its folder (an unset one is the option's default,
relative to the working directory, as on the command line); a dataset name is passed on unchanged, so an
``imagefolder:PATH`` is relative to the working directory.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import sys
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli.args import default_cache, run_request
from harness.cli.study.schema import CLI_ONLY, KEYS, TABLES, Key, keys_of
from harness.core.errors import UsageError
from harness.plugins.methods import with_components
from harness.run.spec.kinds import SCALAR, Items, PathValue, Settings, show
from harness.run.spec.options import BY_NAME as OPTIONS_BY_NAME
from harness.run.spec.options import defaults as option_defaults

if TYPE_CHECKING:
    from harness.run.request import RunRequest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 reads TOML with tomli, the library tomllib was taken from
    import tomli as tomllib

Value = Any  # a key's value as the run holds it (typed: an int, a Path, a list of distortions, a table)


@lru_cache(maxsize=1)
def schema() -> dict[str, Key]:
    """:data:`KEYS` by name."""
    return {key.name: key for key in KEYS}


def dest(key: Key) -> str | None:
    """The parsed-arguments attribute of a key's option (its name); None for a ``[study]`` key."""
    return key.name if key.name in OPTIONS_BY_NAME else None


def default(key: Key) -> Value:
    """A key's default (a fresh copy of a list or table)."""
    return type(key.default)(key.default) if isinstance(key.default, (list, dict)) else key.default


def defaults() -> dict[str, Any]:
    """Every key's default as TOML (None: unset), for the docs and `bench study keys`."""
    return {name: key.kind.toml(default(key)) for name, key in schema().items()}


# ---- the file ------------------------------------------------------------------------------------------


@dataclass
class StudyRun:
    """One run of a study: where it was declared (``[runs.2] arch=resnet20``) and its keys' values, as the
    file gives them (``declared``) and with the command line's options applied (``values``)."""

    where: str
    declared: dict[str, Value]
    values: dict[str, Value] = field(default_factory=dict)


@dataclass
class Study:
    """A checked study: its ``[study]`` table (every key filled in), its execution keys and its runs."""

    label: str  # how messages name the file: the path as given, or "table2 (bundled study)"
    file: str  # the file's absolute path, or "bundled:<name>"
    meta: dict[str, Any]
    execution: dict[str, Value]
    runs: list[StudyRun]

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    def namespace(self, run: StudyRun | None = None, cli: argparse.Namespace | None = None) -> argparse.Namespace:
        """`bench run` arguments of ``run`` (of the execution keys alone without one): the options' defaults,
        then the study's values; ``cli``'s options that no key holds (``--dry-run``, ``--quiet``) as given."""
        ns = argparse.Namespace(**option_defaults())
        for name, value in {**self.execution, **(run.values if run else {})}.items():
            target = dest(schema()[name])
            if target is not None:
                setattr(ns, target, value)
        for name in CLI_ONLY:
            if cli is not None and hasattr(cli, name):
                setattr(ns, name, getattr(cli, name))
        if ns.cache_dir is None:  # as bench run without a study: $BENCH_CACHE_DIR, else the user cache
            ns.cache_dir = default_cache()
        return ns

    def requests(self, **fields: object) -> list[tuple[StudyRun, RunRequest]]:
        """Each run's :class:`~harness.run.request.RunRequest` (``fields`` set on every one), in the study's
        ``order``: ``seeds`` gives one request per (seed, run), seed by seed."""
        pairs = [(run, run_request(self.namespace(run), **fields)) for run in self.runs]
        if self.execution.get("order") != "seeds":
            return pairs
        seeds = list(dict.fromkeys(s for _, request in pairs for s in request.seeds))
        return [
            (run, replace(request, seeds=[seed])) for seed in seeds for run, request in pairs if seed in request.seeds
        ]


def read(path: Path, label: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{label}: no such study file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{label}: cannot read the study file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{label}: not valid TOML: {exc}") from None


class Checker:
    """Errors of one study file, each one line: ``<file>: [table] key: what is wrong``."""

    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, where: str, message: str) -> UsageError:
        return UsageError(f"{self.label}: {where} {message}" if where else f"{self.label}: {message}")

    def tables(self, doc: dict[str, Any]) -> None:
        for name, value in doc.items():
            if name not in TABLES:
                hint = home(name) or closest(name, TABLES, "table")
                raise self.fail("", f"unknown table or key '{name}' at the top level: {hint}")
            if name == "runs":
                if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
                    raise self.fail("[runs]", "must be an array of tables: write each run group as [[runs]]")
            elif not isinstance(value, dict):
                raise self.fail("", f"'{name}' must be a table: write [{name}]")
        if not doc.get("runs"):
            raise self.fail(
                "",
                "no [[runs]] table: a study declares at least one run (a [[runs]] table, whose "
                "unset keys come from [defaults])",
            )

    def table(self, values: dict[str, Any], table: str, where: str) -> None:
        keys = {name: schema()[name] for name in keys_of(table)}
        for name, value in values.items():
            key = keys.get(name)
            if key is None:
                raise self.fail(where, f"{name}: unknown key; {home(name) or closest(name, keys, 'key')}")
            if isinstance(key.kind, Settings):
                self.settings(key, value, where)
            elif not (key.kind.ok(value) or (key.matrix and is_matrix(key, value))):
                raise self.fail(where, f"{name}: {expected(key, value)}")

    def settings(self, key: Key, value: Any, where: str) -> None:
        """A ``[... .options]`` (per method) or ``[execution.slurm]`` table."""
        inner = f"{where[:-1]}.{key.name}]"
        if not isinstance(value, dict):
            raise self.fail(where, f"{key.name}: expected a table, e.g. [{inner[1:-1]}], got {show(value)}")
        entries: list[tuple[str, Any]] = []
        if isinstance(key.kind, Settings) and key.kind.depth == 2:
            for method, options in value.items():
                if not isinstance(options, dict):
                    raise self.fail(
                        inner,
                        f"{method}: expected a table of the method's options "
                        f"({method}.NAME = VALUE), got {show(options)}",
                    )
                entries += [(f"{method}.{name}", v) for name, v in options.items()]
        else:
            entries = list(value.items())
        for name, v in entries:
            matrix = key.matrix and isinstance(v, list) and v and all(isinstance(x, SCALAR) for x in v)
            if not (isinstance(v, SCALAR) or matrix):
                more = " (or a non-empty list of them: one run each)" if key.matrix else ""
                raise self.fail(inner, f"{name}: expected a string, number or boolean{more}, got {show(v)}")


def home(name: str) -> str:
    """Where key ``name`` belongs, when it is a key of another table."""
    key = schema().get(name)
    if key is None:
        return ""
    return f"'{name}' belongs in " + ("[defaults] or [[runs]]" if key.scope == "run" else f"[{key.scope}]")


def closest(name: str, names: Any, what: str) -> str:
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"the {what}s are {', '.join(sorted(names))}"


def is_matrix(key: Key, value: Any) -> bool:
    """A list of values of a run key, one run each (``arch = ["resnet8", "vgg8"]``)."""
    return isinstance(value, list) and bool(value) and not key.kind.ok(value) and all(key.kind.ok(v) for v in value)


def expected(key: Key, value: Any) -> str:
    if isinstance(key.kind, Items) and key.kind.distinct and isinstance(value, list):
        repeated = sorted({show(v) for v in value if value.count(v) > 1})
        if repeated:
            return (
                f"{key.kind.name[:-1]} {', '.join(repeated)} is listed twice in {show(value)}: each is one run, "
                f"give distinct {key.kind.name}"
            )
    if isinstance(value, list) and value and not isinstance(key.kind, Items):
        bad = next(v for v in value if not key.kind.ok(v))
        return f"expected {key.kind.what} (or a list of them: one run each), got {show(bad)} in {show(value)}"
    if isinstance(value, list) and not value and key.matrix and not isinstance(key.kind, Items):
        return f"expected {key.kind.what}, got an empty list (a list gives one run per item)"
    return f"expected {key.kind.what}, got {show(value)}"


# ---- expansion and conversion --------------------------------------------------------------------------

KeyPath = tuple[str, ...]  # a key (``("epochs",)``) or a method option (``("options", "kd", "temperature")``)


def flatten(table: dict[str, Any]) -> dict[KeyPath, Any]:
    flat: dict[KeyPath, Any] = {}
    for name, value in table.items():
        if name == "options":
            flat.update({("options", m, o): v for m, opts in value.items() for o, v in opts.items()})
        else:
            flat[(name,)] = value
    return flat


def varies(path: KeyPath, value: Any) -> bool:
    if path[0] == "options":
        return isinstance(value, list)
    return is_matrix(schema()[path[0]], value)


def expand(flat: dict[KeyPath, Any], where: str) -> list[tuple[str, dict[KeyPath, Any]]]:
    """Every combination of the list values (the first key written varies slowest), each with its label."""
    axes = [(path, value) for path, value in flat.items() if varies(path, value)]
    points = []
    for combo in itertools.product(*(values for _, values in axes)):
        point = dict(flat)
        point.update(zip((path for path, _ in axes), combo))
        label = " ".join(
            f"{'.'.join(path[1:]) if path[0] == 'options' else path[0]}={fmt(value)}"
            for (path, _), value in zip(axes, combo)
        )
        points.append((f"{where} {label}".rstrip(), point))
    return points


def fmt(value: Any) -> str:
    return (
        ",".join(map(fmt, value)) if isinstance(value, list) else show(value) if isinstance(value, bool) else str(value)
    )


def convert(key: Key, value: Any, base: Path, check: Checker, where: str) -> Value:
    """A file's value as the run holds it, by its key's kind: typed, never through text (paths under ``base``)."""
    try:
        converted = key.kind.convert(value)
    except UsageError as exc:  # e.g. a distortion of an unknown kind
        raise check.fail(where, f"{key.name}: {exc}") from None
    if isinstance(key.kind, PathValue) and isinstance(converted, Path):
        return base / converted
    return converted


def run_values(point: dict[KeyPath, Any], base: Path, check: Checker, where: str) -> dict[str, Value]:
    """One expanded run's values by key, converted; its method options as one table per method."""
    values: dict[str, Value] = {}
    options: dict[str, dict[str, Any]] = {}
    for path, value in point.items():
        if path[0] == "options":
            options.setdefault(path[1], {})[path[2]] = value
        else:
            values[path[0]] = convert(schema()[path[0]], value, base, check, where)
    if options:
        values["options"] = options
    return values


def for_methods(options: dict[str, Any], methods: list[str] | None) -> dict[str, Any]:
    """The method options of the methods a run trains (a [defaults] option applies where its method runs)."""
    applies = None if methods is None else with_components(methods)
    return {method: dict(values) for method, values in options.items() if applies is None or method in applies}


def check_options_used(check: Checker, where: str, table: dict[str, Any], runs: list[StudyRun]) -> None:
    trained = set(with_components([m for run in runs for m in run.declared.get("methods") or []]))
    for method in table.get("options") or {}:
        if method not in trained:
            raise check.fail(
                f"{where[:-1]}.options]",
                f"{method}: method '{method}' is in none of the runs it "
                "applies to (they train "
                f"{', '.join(sorted(trained)) or 'nothing'})",
            )


def load(source: str | Path, *, label: str | None = None, file_id: str | None = None) -> Study:
    """The study of file ``source``, checked and expanded (the command line's options are :func:`override`'s)."""
    path = Path(source)
    label = label or str(source)
    check = Checker(label)
    doc = read(path, label)
    check.tables(doc)
    for table in ("study", "defaults", "execution"):
        check.table(doc.get(table, {}), table, f"[{table}]")
    for i, table in enumerate(doc["runs"], 1):
        check.table(table, "runs", f"[runs.{i}]")
    base = path.parent.absolute()
    defaults_flat = flatten(doc.get("defaults", {}))
    runs: list[StudyRun] = []
    for i, table in enumerate(doc["runs"], 1):
        where = f"[runs.{i}]"
        group = []
        for label_, point in expand({**defaults_flat, **flatten(table)}, where):
            values = {
                **{k.name: default(k) for k in schema().values() if k.scope == "run"},
                **run_values(point, base, check, where),
            }
            group.append(StudyRun(label_, declared=values, values=dict(values)))
        check_options_used(check, where, table, group)
        runs += group
    check_options_used(check, "[defaults]", doc.get("defaults", {}), runs)
    execution = {
        **{k.name: default(k) for k in schema().values() if k.scope == "execution"},
        **{
            name: convert(schema()[name], value, base, check, "[execution]")
            for name, value in doc.get("execution", {}).items()
        },
    }
    meta = {k.name: default(k) for k in schema().values() if k.scope == "study"} | doc.get("study", {})
    meta["name"] = meta["name"] or path.stem
    meta["title"] = meta["title"] or meta["name"]
    return Study(label, file_id or str(path.absolute()), meta, execution, runs)


def override(study: Study, cli: argparse.Namespace | None) -> None:
    """Apply the options the command line gave (``cli.given``) to every run, then drop repeated runs and check
    that every run has its required keys. ``--opt`` and ``--slurm-opt`` add to the file's tables (a later
    setting wins); an ``--opt`` applies to the runs that train its method."""
    given: frozenset[str] = getattr(cli, "given", frozenset()) if cli is not None else frozenset()
    added: dict[str, dict[str, str]] = {}
    for key in schema().values():
        target = dest(key)
        if target is None or target not in given or key.scope == "study":
            continue
        value = getattr(cli, target)
        if key.name == "options":
            added = value
        elif key.name == "slurm":
            study.execution["slurm"] = {**study.execution["slurm"], **value}
        elif key.scope == "execution":
            study.execution[key.name] = value
        else:
            for run in study.runs:
                run.values[key.name] = value
    for run in study.runs:
        run.values["options"] = for_methods(run.values.get("options") or {}, run.values.get("methods"))
    for method, values in added.items():
        runs = [r for r in study.runs if method in with_components(r.values.get("methods") or [])]
        if not runs:
            first = next(iter(values))
            raise UsageError(
                f"--opt {method}.{first}={values[first]}: method '{method}' is in none of the runs of {study.label}"
            )
        for run in runs:
            run.values["options"] = {
                **run.values["options"],
                method: {**run.values["options"].get(method, {}), **values},
            }
    unique: list[StudyRun] = []
    for run in study.runs:
        if not any(run.values == other.values for other in unique):
            unique.append(run)
    study.runs = unique
    for run in study.runs:
        for name in ("arch", "methods"):
            if not run.values.get(name):
                raise UsageError(
                    f"{study.label}: {run.where}: no {name}: give {name} in this [[runs]] table or "
                    f"in [defaults] (or {schema()[name].flag} on the command line)"
                )
