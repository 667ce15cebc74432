"""bench's environment variables read with their values named: a value bench cannot read is never taken
for another (``BENCH_OFFLINE=on`` is not "online", ``BENCH_DEBUG=off`` is not "on").

Imports nothing heavy: error handling reads it (:func:`debugging`). It sits above :mod:`harness.core.errors`,
whose errors it raises, and below everything that reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from harness.core.errors import DEBUG_ENV, UsageError, warn

#: the spellings of a switch's two values (case and surrounding blanks ignored); unset is off
ON = ("1", "true", "yes", "on")
OFF = ("", "0", "false", "no", "off")


def switch(name: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether environment variable ``name`` is on; a UsageError (exit 2) naming it and the values it takes
    when it holds anything else."""
    raw = (os.environ if env is None else env).get(name, "")
    value = raw.strip().lower()
    if value in ON:
        return True
    if value in OFF:
        return False
    raise UsageError(
        f"{name}={raw!r}: not a value bench reads; on: {', '.join(ON)}; off: {', '.join(v for v in OFF if v)} or unset"
    )


def names(name: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The comma-separated names in environment variable ``name`` (blanks and empty items dropped), in order."""
    raw = (os.environ if env is None else env).get(name, "")
    return list(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))


def debugging() -> bool:
    """Whether tracebacks are shown (``bench --debug`` or ``BENCH_DEBUG=1``) beside the one-line errors; a
    value of ``BENCH_DEBUG`` that is neither on nor off is named in a warning and shows them."""
    try:
        return switch(DEBUG_ENV)
    except UsageError as exc:
        warn(f"{exc}; tracebacks are shown")
        return True
