"""The kinds of values a run option takes, each read two ways: from command-line text (:meth:`Kind.parse`,
the option's argparse ``type``) and from a typed value, as a study file's TOML or code gives it
(:meth:`Kind.ok` and :meth:`Kind.convert`). A typed value is never rendered as text to be parsed again.

Importing this module is cheap (no torch): ``bench --help`` builds every parser from it.
"""

from __future__ import annotations

import argparse
import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.constraints import Constraint
from harness.core.errors import UsageError

SCALAR = (str, int, float, bool)


def show(value: Any) -> str:
    """A value as TOML spells it, for error messages: ``"ten"``, ``[1, 2]``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, str, int, float)):
        return json.dumps(value, default=str)
    return repr(value)


def csv_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [t.strip() for t in text.split(",") if t.strip()]


class Kind(ABC):
    """The values of an option: :meth:`ok` checks a typed value, :meth:`convert` makes it the run's value,
    :meth:`parse` reads the option's command-line text; ``what`` names them in messages and the docs;
    ``annotation`` is the type of the run's values, as Python source (the typed declaration of
    :class:`~harness.run.request.RunRequest` that type checkers read is generated from it)."""

    @property
    def what(self) -> str:
        return "a value"

    @property
    def annotation(self) -> str:
        return "Any"

    @abstractmethod
    def ok(self, value: Any) -> bool:
        """Whether ``value`` (as TOML or code gives it) is one of this kind's values."""

    def convert(self, value: Any) -> Any:
        """A value :meth:`ok` accepts, as the run holds it (a float for a number, a tuple of milestones)."""
        return value

    def parse(self, text: str) -> Any:
        """The option's command-line text as the run's value (an ``argparse.ArgumentTypeError`` or a
        ``ValueError`` for text that is not one: argparse reports it on one line)."""
        return text

    def toml(self, value: Any) -> Any:
        """The run's value as TOML (resolved copies, the docs' defaults); None: unset."""
        return value


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Integer(Kind):
    """An integer within ``constraint``."""

    constraint: Constraint

    @property
    def what(self) -> str:
        return self.constraint.describe()

    @property
    def annotation(self) -> str:
        return "int"

    def ok(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.constraint.allows(value)

    def parse(self, text: str) -> int:
        try:
            value = int(text)  # a ValueError: argparse's "invalid int value: 'two'"
        except ValueError:
            if _is_float(text):  # 'inf', '2.5': a number, but not an allowed one
                raise argparse.ArgumentTypeError(f"must be {self.what}, got '{text}'") from None
            raise
        if not self.constraint.allows(value):
            raise argparse.ArgumentTypeError(f"must be {self.what}, got '{text}'")
        return value

    @property
    def __name__(self) -> str:  # argparse names a type in "invalid int value: 'two'"
        return "int"


@dataclass(frozen=True)
class Number(Kind):
    """A finite number within ``constraint`` (an integer is taken as a float)."""

    constraint: Constraint

    @property
    def what(self) -> str:
        return self.constraint.describe()

    @property
    def annotation(self) -> str:
        return "float"

    def ok(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.constraint.allows(value)

    def convert(self, value: Any) -> float:
        return float(value)

    def parse(self, text: str) -> float:
        value = float(text)  # a ValueError: argparse's "invalid float value: 'x'"
        if not self.constraint.allows(value):
            raise argparse.ArgumentTypeError(f"must be {self.what}, got '{text}'")
        return value

    @property
    def __name__(self) -> str:
        return "float"


@dataclass(frozen=True)
class Text(Kind):
    """A string; with ``choices``, one of them."""

    choices: tuple[str, ...] = ()

    @property
    def what(self) -> str:
        return f"one of {', '.join(show(c) for c in self.choices)}" if self.choices else "a string"

    @property
    def annotation(self) -> str:
        return "str"

    def ok(self, value: Any) -> bool:
        return isinstance(value, str) and (not self.choices or value in self.choices)


class Switch(Kind):
    """On or off."""

    @property
    def what(self) -> str:
        return "true or false"

    @property
    def annotation(self) -> str:
        return "bool"

    def ok(self, value: Any) -> bool:
        return isinstance(value, bool)


@dataclass(frozen=True)
class PathValue(Kind):
    """A path (relative to a study file's folder when written in one); ``sources``: a URL or hub id
    (``https://...``, ``file://...``, ``hf-hub:...``) is taken as written."""

    sources: bool = False

    @property
    def what(self) -> str:
        return "a path (a string)"

    @property
    def annotation(self) -> str:
        return "Path | str" if self.sources else "Path"

    def ok(self, value: Any) -> bool:
        return isinstance(value, str) and bool(value)

    def remote(self, text: str) -> bool:
        return self.sources and (text.startswith("hf-hub:") or "://" in text)

    def convert(self, value: Any) -> Path | str:
        return value if self.remote(value) else Path(value).expanduser()

    def parse(self, text: str) -> Path | str:
        return text if self.sources else Path(text)

    def toml(self, value: Any) -> Any:
        return None if value is None else str(value)


@dataclass(frozen=True)
class Items(Kind):
    """A list of ``of`` values (comma-separated on the command line): ``plural`` names them; ``nonempty``,
    ``distinct`` (each item once) and ``as_tuple`` (the run holds a tuple) as declared."""

    of: Kind
    plural: str
    nonempty: bool = False
    distinct: bool = False
    as_tuple: bool = False
    name: str = "items"  # how a command-line error names the list ("seeds", "milestones")

    @property
    def what(self) -> str:
        return f"a {'non-empty ' if self.nonempty else ''}list of {self.plural}"

    @property
    def annotation(self) -> str:
        return f"tuple[{self.of.annotation}, ...]" if self.as_tuple else f"list[{self.of.annotation}]"

    def ok(self, value: Any) -> bool:
        return (
            isinstance(value, list)
            and (bool(value) or not self.nonempty)
            and all(self.of.ok(v) for v in value)
            and (not self.distinct or len(set(map(show, value))) == len(value))
        )

    def convert(self, value: Any) -> Any:
        items = [self.of.convert(v) for v in value]
        return tuple(items) if self.as_tuple else items

    def parse(self, text: str) -> Any:
        items = csv_list(text)
        if not isinstance(self.of, (Integer, Number)):
            values = [self.of.parse(item) for item in items]
        else:
            try:
                values = [int(item) if isinstance(self.of, Integer) else float(item) for item in items]
            except ValueError:
                noun = "integer" if isinstance(self.of, Integer) else "number"
                raise argparse.ArgumentTypeError(f"{self.name} must be comma-separated {noun}s, got '{text}'") from None
            for item, value in zip(items, values):
                if not self.of.constraint.allows(value):
                    raise argparse.ArgumentTypeError(
                        f"{self.name} must be {self.of.what} each, got '{item}' in '{text}'"
                    )
        if self.distinct:
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise argparse.ArgumentTypeError(
                    f"{self.name[:-1]} {', '.join(map(str, repeated))} is listed twice "
                    f"in '{text}': each is one run, give distinct {self.name}"
                )
        return tuple(values) if self.as_tuple else values

    def toml(self, value: Any) -> Any:
        return None if value is None else [self.of.toml(v) for v in value]


@dataclass(frozen=True)
class Distortions(Kind):
    """Distortions to evaluate under: noise levels (``prefix="noise"``: numbers >= 0) or ``KIND:LEVEL``
    strings; the run holds :class:`harness.data.distortions.Distortion` objects (imported when one is given)."""

    prefix: str = ""

    @property
    def what(self) -> str:
        return "a list of numbers >= 0" if self.prefix else "a list of KIND:LEVEL strings"

    @property
    def annotation(self) -> str:
        return "list[Distortion]"

    def ok(self, value: Any) -> bool:
        if not isinstance(value, list):
            return False
        if self.prefix:
            return all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in value
            )
        return all(isinstance(v, str) for v in value)

    def convert(self, value: Any) -> list[Any]:
        from harness.data import distortions

        made = [
            distortions.Distortion(self.prefix, float(v)) if self.prefix else distortions.parse_distortion(v)
            for v in value
        ]
        return distortions.unique(made)

    def parse(self, text: str) -> list[Any]:
        from harness.data import distortions

        try:
            return distortions.noise_levels(text) if self.prefix else distortions.parse_distortions(text)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    def toml(self, value: Any) -> Any:
        return None if value is None else [d.level if self.prefix else d.name for d in value]


@dataclass(frozen=True)
class Settings(Kind):
    """``NAME = VALUE`` settings (``depth=2``: a table of them per method, ``METHOD.NAME = VALUE``); each value
    a string, number or boolean. On the command line a repeatable ``NAME=VALUE`` option, whose values are
    text: a method option parses it by its own type (``Option.accept``), a typed value it checks."""

    depth: int = 1

    @property
    def what(self) -> str:
        return "a table"

    @property
    def annotation(self) -> str:
        return "dict[str, dict[str, Any]]" if self.depth == 2 else "dict[str, Any]"

    def ok(self, value: Any) -> bool:
        return isinstance(value, dict)

    def item(self, text: str, flag: str) -> tuple[tuple[str, ...], str]:
        """``"kd.temperature=2"`` -> ``(("kd", "temperature"), "2")``; a UsageError for text of another form."""
        name, sep, value = text.partition("=")
        path = tuple(name.split(".", self.depth - 1))
        if not sep or len(path) != self.depth or not all(path):
            example = "kd.temperature=2" if self.depth == 2 else "slurm_partition=gpu"
            form = "METHOD.NAME=VALUE" if self.depth == 2 else "NAME=VALUE"
            raise UsageError(f"{flag} expects {form} (for example {example}), got '{text}'")
        return path, value

    def merge(self, table: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
        """``table`` with ``value`` at ``path`` (a copy: a later setting wins)."""
        if len(path) == 1:
            return {**table, path[0]: value}
        return {**table, path[0]: self.merge(dict(table.get(path[0]) or {}), path[1:], value)}

    def toml(self, value: Any) -> Any:
        return dict(value or {})
