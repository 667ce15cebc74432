"""Published numbers as data: loading and validation. The one loader of every reference table.

The papers' tables and the CI smoke reference ship inside the package (``harness/results/reference_data/``,
package data read with ``importlib.resources``), so a checkout, an editable install and an installed wheel
all find them; a user's own CSV in the same format is read from its path. A missing reference is an error
naming what is missing; a malformed file is reported with its file and line, e.g.
``encodenet_table5.csv:7: value 'x' is not a number``. See ``reference_data/README.md`` for the columns.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Union

from harness.core.constraints import POSITIVE, between
from harness.core.errors import UsageError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    Source = Union[Path, Traversable]

DATA_PACKAGE = "harness.results.reference_data"
COLUMNS = ("table", "dataset", "arch", "teacher", "method", "variant", "metric", "value", "protocol", "runs", "source")
METRICS = ("top1", "params_millions", "params", "teacher_top1", "macs_millions")
PROTOCOLS = ("last", "best", "unspecified", "")


@dataclass(frozen=True)
class RefValue:
    table: str
    dataset: str
    arch: str
    teacher: str
    method: str
    variant: str
    metric: str
    value: float
    protocol: str
    runs: str
    source: str
    where: str  # file:line


#: the values each metric of a reference row takes (a NaN or infinite reference would pass or fail every check)
VALUE_LIMITS = {"top1": between(0, 100), "teacher_top1": between(0, 100), "params_millions": POSITIVE,
                "params": POSITIVE, "macs_millions": POSITIVE}


def load_file(path: Source) -> list[RefValue]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read this reference CSV ({type(exc).__name__}: "
                         f"{getattr(exc, 'strerror', None) or exc})") from None
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise UsageError(f"{path.name}: no header line")
    header_line, header = numbered[0]
    if tuple(c.strip() for c in header.split(",")) != COLUMNS:
        raise UsageError(f"{path.name}:{header_line}: header must be {','.join(COLUMNS)}")
    values = []
    for lineno, line in numbered[1:]:
        where = f"{path.name}:{lineno}"
        (row,) = list(csv.reader([line]))
        if len(row) != len(COLUMNS):
            raise UsageError(f"{where}: expected {len(COLUMNS)} fields, found {len(row)}")
        rec = dict(zip(COLUMNS, (c.strip() for c in row)))
        try:
            value = float(rec["value"])
        except ValueError:
            raise UsageError(f"{where}: value {rec['value']!r} is not a number") from None
        if rec["metric"] not in METRICS:
            raise UsageError(f"{where}: metric {rec['metric']!r} is not one of {', '.join(METRICS)}")
        VALUE_LIMITS[rec["metric"]].check(value, f"{where}: the {rec['metric']} value")
        if rec["protocol"] not in PROTOCOLS:
            raise UsageError(f"{where}: protocol {rec['protocol']!r} is not one of last, best, unspecified")
        for required in ("table", "dataset", "arch", "method", "source"):
            if not rec[required]:
                raise UsageError(f"{where}: '{required}' is empty")
        values.append(RefValue(**{**rec, "value": value}, where=where))
    return values


def bundled_files() -> list[Traversable]:
    """The reference CSVs shipped in the package; an installation without them is an error, not an empty list."""
    folder = resources.files(DATA_PACKAGE)
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".csv")), key=lambda f: f.name)
    if not files:
        raise UsageError(f"the reference tables are missing from this installation: no *.csv in {folder} "
                         f"(package data of {DATA_PACKAGE}); reinstall encodenet-bench")
    return files


def load_reference(directory: Path | None = None) -> list[RefValue]:
    """Every reference value of the bundled tables (or of the CSVs in ``directory``); raises UsageError naming
    the file and line of a bad row."""
    files = bundled_files() if directory is None else sorted(directory.glob("*.csv"))
    return [v for f in files for v in load_file(f)]


def table_values(table: str, directory: Path | None = None) -> list[RefValue]:
    values = load_reference(directory)
    selected = [v for v in values if v.table == table]
    if not selected:
        where = "the bundled reference data" if directory is None else str(directory)
        raise UsageError(f"no reference table '{table}' in {where}; known: {', '.join(sorted({v.table for v in values}))}")
    return selected


def resolve(spec: str | Path, table: str | None = None) -> list[RefValue]:
    """What ``--reference SPEC`` names: a CSV file of the user's own, else a bundled reference by file name
    (``smoke``, ``encodenet_table4.csv``) or by table id (``table5``, ``crd``); ``table`` keeps only that
    table's rows. Anything that names nothing is an error saying what exists."""
    path = Path(spec)
    if path.is_file():
        values, origin = load_file(path), str(path)
    else:
        bundled = {f.name: f for f in bundled_files()}
        name = path.name if path.name in bundled else f"{path.name}.csv"
        if name in bundled and len(path.parts) == 1:
            values, origin = load_file(bundled[name]), f"bundled {name}"
        elif name in bundled:  # an old path such as results/reference/smoke.csv
            raise UsageError(f"--reference {spec}: no such file; the bundled reference is named '{path.name}' "
                             f"(the reference tables ship inside the package)")
        elif path.suffix or len(path.parts) > 1:
            raise UsageError(f"--reference {spec}: no such file, and no bundled reference of that name "
                             f"(bundled: {', '.join(bundled)})")
        else:
            values, origin = table_values(str(spec)), f"bundled table '{spec}'"
    if table:
        values = [v for v in values if v.table == table]
        if not values:
            raise UsageError(f"--reference {spec} ({origin}) has no rows of table '{table}'")
    return values
