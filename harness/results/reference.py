"""Reference numbers as data: loading and validation. The one loader of every reference table.

Two formats. A CSV (``reference_data/README.md`` has the columns) holds one number per row: the papers'
tables, and means saved by older ``bench check --save-reference``. A JSON reference (:data:`FORMAT`, written
by ``bench check --save-reference FILE.json``, see :func:`harness.results.check.save_reference`) holds per
row every seed's numbers at full precision and its replay trace (:mod:`harness.results.replay`), the setup
that was run and the platform it ran on (:mod:`harness.results.fingerprint`): enough for an exact check on
that platform and a statistical one anywhere. Both load as :class:`RefValue` rows (a JSON row's ``value``
is the mean of its seeds).

The papers' tables and the CI smoke reference ship inside the package (``harness/results/reference_data/``,
package data read with ``importlib.resources``), so a checkout, an editable install and an installed wheel
all find them; a user's own file is read from its path. A missing reference is an error naming what is
missing; a malformed file is reported with its file and line (CSV) or row (JSON), e.g.
``encodenet_table5.csv:7: value 'x' is not a number``.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from harness.core.constraints import POSITIVE, between
from harness.core.errors import UsageError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    Source = Union[Path, Traversable]

DATA_PACKAGE = "harness.results.reference_data"
COLUMNS = ("table", "dataset", "arch", "teacher", "method", "variant", "metric", "value", "protocol", "runs", "source")
METRICS = ("top1", "params_millions", "params", "teacher_top1", "macs_millions")
PROTOCOLS = ("last", "best", "unspecified", "")
SUFFIXES = (".csv", ".json")
FORMAT = "encodenet-bench reference"
FORMAT_VERSION = 1
#: The top-1 of each epoch protocol, as a seed's ``values`` (and records' metrics) name it.
TOP1 = {"last": "top1_last", "best": "top1_best"}


@dataclass(frozen=True)
class SeedRun:
    """One seed of a JSON reference row: its numbers (``values``: the top-1 of each protocol and the
    deployed stage's final losses, see :func:`harness.results.check.seed_values`) and its replay trace."""

    seed: int
    values: Mapping[str, float]
    trace: Mapping[str, Any]


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
    # JSON references only: every seed, what was run, where it ran (None / empty for a CSV row)
    seeds: tuple[SeedRun, ...] = field(default=(), hash=False)
    setup: Mapping[str, Any] | None = field(default=None, hash=False)
    platform: Mapping[str, Any] | None = field(default=None, hash=False)

    @property
    def per_seed(self) -> bool:
        """Whether the row keeps every seed's values (a JSON reference), not only a mean."""
        return bool(self.seeds)


#: the values each metric of a reference row takes (a NaN or infinite reference would pass or fail every check)
VALUE_LIMITS = {
    "top1": between(0, 100),
    "teacher_top1": between(0, 100),
    "params_millions": POSITIVE,
    "params": POSITIVE,
    "macs_millions": POSITIVE,
}


def load_file(path: Source) -> list[RefValue]:
    """The rows of one reference file, CSV or JSON (by its suffix)."""
    return load_json(path) if path.name.endswith(".json") else load_csv(path)


def load_csv(path: Source) -> list[RefValue]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"{path}: cannot read this reference CSV ({type(exc).__name__}: {getattr(exc, 'strerror', None) or exc})"
        ) from None
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
        rec: dict[str, Any] = dict(zip(COLUMNS, (c.strip() for c in row)))
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


def load_json(path: Source) -> list[RefValue]:
    """The rows of a JSON reference (:data:`FORMAT`); a UsageError naming the file and row of a problem."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path.name}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UsageError(f'{path.name}: not a bench reference (no "format": "{FORMAT}")')
    if not isinstance(doc.get("version"), int) or doc["version"] > FORMAT_VERSION:
        raise UsageError(
            f"{path.name}: reference format version {doc.get('version')!r} is not one this bench "
            f"reads (up to {FORMAT_VERSION}); upgrade encodenet-bench"
        )
    protocol = doc.get("protocol")
    if protocol not in TOP1:
        raise UsageError(f"{path.name}: protocol {protocol!r} is not one of {', '.join(TOP1)}")
    values = []
    for i, row in enumerate(doc.get("rows") or []):
        where = f"{path.name}: row {i + 1}"
        try:
            seeds = tuple(SeedRun(int(s["seed"]), dict(s["values"]), dict(s.get("trace") or {})) for s in row["seeds"])
            top1 = [float(s.values[TOP1[protocol]]) for s in seeds]
            text = {k: str(row.get(k) or "") for k in ("dataset", "arch", "teacher", "method", "variant")}
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{where}: malformed ({type(exc).__name__}: {exc})") from None
        if not top1:
            raise UsageError(f"{where}: no seeds")
        for required in ("dataset", "arch", "method"):
            if not text[required]:
                raise UsageError(f"{where}: '{required}' is empty")
        values.append(
            RefValue(
                table=str(doc.get("table") or "saved"),
                metric="top1",
                value=statistics.fmean(top1),
                protocol=protocol,
                runs=str(len(seeds)),
                source=str(doc.get("source") or ""),
                where=where,
                seeds=seeds,
                setup=row.get("setup"),
                platform=doc.get("platform"),
                **text,
            )
        )
    if not values:
        raise UsageError(f"{path.name}: no rows")
    return values


def bundled_files() -> list[Traversable]:
    """The reference files shipped in the package; an installation without them is an error, not an empty list."""
    folder = resources.files(DATA_PACKAGE)
    files = sorted((f for f in folder.iterdir() if f.name.endswith(SUFFIXES)), key=lambda f: f.name)
    if not files:
        raise UsageError(
            f"the reference tables are missing from this installation: no *.csv in {folder} "
            f"(package data of {DATA_PACKAGE}); reinstall encodenet-bench"
        )
    return files


def load_reference(directory: Path | None = None) -> list[RefValue]:
    """Every reference value of the bundled tables (or of the CSVs in ``directory``); raises UsageError naming
    the file and line of a bad row."""
    files = (
        bundled_files() if directory is None else sorted(f for f in directory.iterdir() if f.name.endswith(SUFFIXES))
    )
    return [v for f in files for v in load_file(f)]


def table_values(table: str, directory: Path | None = None) -> list[RefValue]:
    values = load_reference(directory)
    selected = [v for v in values if v.table == table]
    if not selected:
        where = "the bundled reference data" if directory is None else str(directory)
        raise UsageError(
            f"no reference table '{table}' in {where}; known: {', '.join(sorted({v.table for v in values}))}"
        )
    return selected


def resolve(spec: str | Path, table: str | None = None) -> list[RefValue]:
    """What ``--reference SPEC`` names: a reference file of the user's own, else a bundled reference by file
    name (``smoke``, ``encodenet_table4.csv``) or by table id (``table5``, ``crd``); ``table`` keeps only that
    table's rows. Anything that names nothing is an error saying what exists."""
    path = Path(spec)
    if path.is_file():
        values, origin = load_file(path), str(path)
    else:
        bundled = {f.name: f for f in bundled_files()}
        stem = path.name[: -len(path.suffix)] if path.suffix in SUFFIXES else path.name
        name = (
            path.name
            if path.name in bundled
            else next((stem + suffix for suffix in SUFFIXES if stem + suffix in bundled), f"{path.name}.csv")
        )
        if name in bundled and len(path.parts) == 1:
            values, origin = load_file(bundled[name]), f"bundled {name}"
        elif name in bundled:  # an old path such as results/reference/smoke.csv
            raise UsageError(
                f"--reference {spec}: no such file; the bundled reference is named '{stem}' "
                f"(the reference tables ship inside the package)"
            )
        elif path.suffix or len(path.parts) > 1:
            raise UsageError(
                f"--reference {spec}: no such file, and no bundled reference of that name "
                f"(bundled: {', '.join(bundled)})"
            )
        else:
            values, origin = table_values(str(spec)), f"bundled table '{spec}'"
    if table:
        values = [v for v in values if v.table == table]
        if not values:
            raise UsageError(f"--reference {spec} ({origin}) has no rows of table '{table}'")
    return values
