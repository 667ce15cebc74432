"""bench's environment variables read with their values named: a value bench cannot read is never taken
for another (``BENCH_OFFLINE=on`` is not "online", ``BENCH_DEBUG=off`` is not "on").

Imports nothing heavy: error handling (:func:`harness.core.errors.debugging`) reads it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from harness.core.errors import UsageError

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
    raise UsageError(f"{name}={raw!r}: not a value bench reads; on: {', '.join(ON)}; off: "
                     f"{', '.join(v for v in OFF if v)} or unset")


def names(name: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The comma-separated names in environment variable ``name`` (blanks and empty items dropped), in order."""
    raw = (os.environ if env is None else env).get(name, "")
    return list(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))
