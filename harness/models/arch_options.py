"""Options of a prefix architecture: ``name:key=value,key=value`` (e.g. ``msdnet:blocks=5,step=1``).

An architecture registered under a prefix (a name ending in ``:``) receives the rest of its name as
``spec.arg``; :func:`parse_arch_options` reads it as comma-separated ``key=value`` pairs against the
architecture's defaults (their types decide how a value is parsed) and refuses unknown keys and bad values
with one line, before any training.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.core.constraints import FINITE, POSITIVE
from harness.core.errors import UsageError


def _parse_value(raw: str, default: Any, where: str) -> Any:
    kind = type(default)
    try:
        if kind is bool:
            lowered = raw.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return lowered in ("true", "1", "yes")
        value = kind(raw)
    except ValueError:
        article = "an" if kind.__name__[0] in "aeiou" else "a"
        raise UsageError(f"architecture option {where}: expected {article} {kind.__name__}, got {raw!r}") from None
    if kind is float:
        FINITE.check(value, f"architecture option {where}")  # NaN and infinities are never an option's value
    return value


def parse_arch_options(
    arch: str, arg: str | None, defaults: Mapping[str, Any], choices: Mapping[str, tuple[Any, ...]] | None = None
) -> dict[str, Any]:
    """``defaults`` updated with the ``key=value`` pairs of ``arg`` (None or empty: the defaults)."""
    options = dict(defaults)
    for item in filter(None, (arg or "").split(",")):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in defaults:
            valid = ", ".join(f"{k}={v}" for k, v in defaults.items())
            raise UsageError(f"architecture '{arch}': cannot read '{item}'; options are KEY=VALUE among {valid}")
        value = _parse_value(raw.strip(), defaults[key], f"{arch}.{key}")
        allowed = (choices or {}).get(key)
        if allowed is not None and value not in allowed:
            raise UsageError(f"architecture option {arch}.{key}: {raw!r} is not one of {', '.join(map(str, allowed))}")
        options[key] = value
    return options


def positive(arch: str, options: Mapping[str, Any], *keys: str) -> None:
    """Refuse a zero or negative value of any of ``keys``."""
    for key in keys:
        POSITIVE.check(options[key], f"architecture option {arch}.{key}")
