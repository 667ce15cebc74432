"""What a `bench run` is asked for, before anything is resolved: :class:`RunRequest`.

A request is plain data (names, numbers, paths, distortions), picklable, so that sweep workers rebuild the
same run from it (:class:`harness.run.sweep.backend.JobSpec`). :func:`harness.run.prepare.prepare` resolves
and validates it. Its fields are generated from the run specification (:data:`harness.run.spec.options.
OPTIONS`): one field per option that goes into a request (``overrides`` holds every recipe override,
``eval_distortions`` the distortions of ``--eval-noise`` and ``--eval-distort``), plus :data:`EXTRA`.
"""

from __future__ import annotations

import os
from dataclasses import field, make_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.run.spec.options import OVERRIDES, RunOption, request_fields

CACHE_ENV = "BENCH_CACHE_DIR"


def default_cache() -> Path:
    """The cache folder when ``--cache-dir`` is not given: ``$BENCH_CACHE_DIR``, else ~/.cache/encodenet-bench
    (read when a request is made, so that a process may change the variable between commands)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "encodenet-bench")


#: request fields that are no option: (name, what it holds, its default)
EXTRA: tuple[tuple[str, str, Any], ...] = (
    ("reuse_records", "skip (seed, method) pairs whose record is already in ``out``", False),
    ("study", "the study file the run was declared in (name, file, digest, resolved copy), written into its "
              "records; presentation only: it never enters a stage key, a run key or a failed record's key", None),
)
#: fields a request cannot do without (a study file or the command line must give them)
REQUIRED = ("methods", "arch")
#: defaults of fields whose option has none that a request can use as is
FACTORIES = {"cache_dir": default_cache, OVERRIDES: dict, "eval_distortions": list}


def _default(name: str, options: list[RunOption]) -> Any:
    if name in FACTORIES:
        return field(default_factory=FACTORIES[name])
    default = options[0].default
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default))
    return field(default=default)


def _fields() -> list[tuple[str, Any, Any]]:
    made = [(name, Any) for name in REQUIRED]
    made += [(name, Any, _default(name, options)) for name, options in request_fields().items()
             if name not in REQUIRED]
    made += [(name, Any, field(default=default)) for name, _, default in EXTRA]
    return made  # type: ignore[return-value]


if TYPE_CHECKING:  # a generated class: type checkers see its instances as Any
    RunRequest = Any
else:
    RunRequest = make_dataclass(
        "RunRequest", _fields(),
        namespace={"__doc__": "A run as asked for: one field per option of the run specification (see the module).",
                   "__module__": __name__},  # pickled by reference, as a class declared here would be
    )
