"""Declared limits of numbers: the one check behind every numeric option of the CLI, of recipes and of methods.

A :class:`Constraint` says which numbers an option takes: always a *finite* number (NaN and the infinities
are never an option's value), optionally an integer, optionally at least / above a minimum and at most /
below a maximum, plus a few sentinel values outside that range (``also``, e.g. ``-1`` for "all but the
last"). :meth:`Constraint.check` refuses anything else with one line that names the option and the allowed
range (a :class:`~harness.core.errors.UsageError`, exit 2), before anything is prepared:

* CLI options declare one through their argparse type (:class:`harness.cli.args.Number`);
* recipes through :data:`harness.core.recipes.RECIPE_LIMITS` (checked by ``Recipe.validate``, also for the
  recipes plugins register);
* method options through ``Option(..., constraint=...)`` or ``Option(..., minimum=..., maximum=...)``
  (:class:`harness.methods.contract.Option`); plugin authors import these names from :mod:`harness.api`.

This module imports nothing heavy: ``bench --help`` builds every parser from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harness.core.errors import UsageError


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


@dataclass(frozen=True)
class Constraint:
    """The numbers an option accepts: finite, within ``minimum``/``maximum`` (inclusive unless
    ``exclusive_minimum``/``exclusive_maximum``), integral when ``integer``; ``also`` lists values accepted
    outside that range (sentinels such as ``-1``)."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    integer: bool = False
    also: tuple[float, ...] = ()

    def allows(self, value: Any) -> bool:
        """Whether ``value`` (a number, not a bool) satisfies the constraint."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not math.isfinite(value):
            return False
        if value in self.also:
            return True
        if self.integer and not float(value).is_integer():
            return False
        if self.minimum is not None and (value <= self.minimum if self.exclusive_minimum else value < self.minimum):
            return False
        if self.maximum is not None and (value >= self.maximum if self.exclusive_maximum else value > self.maximum):
            return False
        return True

    def short(self) -> str:
        """The range alone: ``> 0``, ``in [0, 1)``, ``>= 1``, ``any`` (for listings)."""
        lo, hi = self.minimum, self.maximum
        if lo is not None and hi is not None:
            text = (
                f"in {'(' if self.exclusive_minimum else '['}{_number_text(lo)}, "
                f"{_number_text(hi)}{')' if self.exclusive_maximum else ']'}"
            )
        elif lo is not None:
            text = f"{'>' if self.exclusive_minimum else '>='} {_number_text(lo)}"
        elif hi is not None:
            text = f"{'<' if self.exclusive_maximum else '<='} {_number_text(hi)}"
        else:
            text = "any"
        if self.also:
            text += ", or " + " or ".join(_number_text(v) for v in self.also)
        return text

    def describe(self) -> str:
        """What a value must be, for error lines: ``a finite number > 0``, ``an integer >= 1``."""
        noun = "an integer" if self.integer else "a finite number"
        rng = self.short()
        return noun if rng == "any" else f"{noun} {rng}"

    def check(self, value: Any, name: str) -> Any:
        """``value`` when allowed, else a UsageError: ``<name> must be <range>, got <value>``."""
        if not self.allows(value):
            raise UsageError(f"{name} must be {self.describe()}, got {value!r}")
        return value


def at_least(minimum: float, *, integer: bool = False, also: tuple[float, ...] = ()) -> Constraint:
    """``>= minimum``."""
    return Constraint(minimum=minimum, integer=integer, also=also)


def above(minimum: float, *, integer: bool = False) -> Constraint:
    """``> minimum``."""
    return Constraint(minimum=minimum, exclusive_minimum=True, integer=integer)


def between(
    minimum: float,
    maximum: float,
    *,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    integer: bool = False,
) -> Constraint:
    """``minimum ..= maximum``, each end inclusive unless said otherwise."""
    return Constraint(
        minimum=minimum,
        maximum=maximum,
        exclusive_minimum=exclusive_minimum,
        exclusive_maximum=exclusive_maximum,
        integer=integer,
    )


#: any finite number (what a float option without a declared range still requires)
FINITE = Constraint()
#: any integer (what an int option without a declared range still requires)
INTEGER = Constraint(integer=True)
#: a finite number > 0 (learning rates, temperatures, throughputs)
POSITIVE = above(0)
#: a finite number >= 0 (weights of loss terms, weight decay, tolerances)
NON_NEGATIVE = at_least(0)
#: an integer >= 1 (epochs, counts, sizes)
COUNT = at_least(1, integer=True)
#: an integer >= 0 (counts where 0 means "none" or "automatic")
NON_NEGATIVE_INT = at_least(0, integer=True)
#: a fraction in (0, 1] (a share of something that must not be empty)
FRACTION = between(0, 1, exclusive_minimum=True)
#: a probability-like number in [0, 1)
UNIT_OPEN = between(0, 1, exclusive_maximum=True)
