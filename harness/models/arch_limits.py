"""The checks of a prefix architecture's options (``mynet:width=64,depth=3``), before its factory builds anything.

:func:`parse_arch_options` (what :mod:`harness.api` exports) reads the options with
:func:`harness.models.arch_options.parse_arch_options` (types, choices), and first refuses what would pass it
silently: a mistyped key (one line with the closest one), and a number outside its limit. A number's limit
is the one the architecture declares (``limits={"width": COUNT}``), else the one its default implies, since an
option of an architecture is almost always a size, a count or a ratio: a positive default takes positive
values only, a zero default non-negative ones, a negative default any finite number. It checks and passes the
parsed values through unchanged: what a stage computes is decided by the parser and the factory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.core.constraints import Constraint, above, at_least
from harness.core.errors import UsageError, did_you_mean
from harness.models.arch_options import parse_arch_options as parse_values


def implied_limit(default: Any) -> Constraint | None:
    """The values a numeric option takes when its architecture declares none: those of its default's sign
    (> 0 for a positive default, >= 0 for zero, any finite number for a negative one); None for others."""
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        return None
    integer = isinstance(default, int)
    if default > 0:
        return above(0, integer=integer)
    return at_least(0, integer=integer) if default == 0 else Constraint(integer=integer)


def parse_arch_options(
    arch: str,
    arg: str | None,
    defaults: Mapping[str, Any],
    choices: Mapping[str, tuple[Any, ...]] | None = None,
    limits: Mapping[str, Constraint] | None = None,
) -> dict[str, Any]:
    """``defaults`` updated with the ``key=value`` pairs of ``arg``, each checked: its key is one of
    ``defaults`` (else one line with the closest), its value of the default's type, one of ``choices[key]``
    if given, and a number within ``limits[key]``, else within :func:`implied_limit` of its default."""
    short = arch.split(":", 1)[0]
    unknown = sorted(set(limits or {}) - set(defaults))
    if unknown:
        raise TypeError(f"parse_arch_options({short!r}): limits for {', '.join(unknown)}, which defaults does not have")
    for item in filter(None, (arg or "").split(",")):
        key, sep, _ = item.partition("=")
        if sep and key.strip() not in defaults:
            valid = ", ".join(f"{k}={v}" for k, v in defaults.items())
            raise UsageError(
                f"architecture '{arch}' has no option '{key.strip()}';"
                f"{did_you_mean(key.strip(), defaults)} its options: {valid}"
            )
    options = parse_values(short, arg, defaults, choices)
    for key, value in options.items():
        limit = (limits or {}).get(key) or implied_limit(defaults[key])
        if limit is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            limit.check(value, f"architecture option {short}.{key}")
    return options
