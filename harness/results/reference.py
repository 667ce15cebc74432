"""Published numbers as data (``results/reference/*.csv``): loading and validation.

A malformed file is reported with its file and line, e.g. ``encodenet_table5.csv:7: value 'x' is not a
number``. See ``results/reference/README.md`` for the columns.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import UsageError

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "results" / "reference"
COLUMNS = ("table", "dataset", "arch", "teacher", "method", "variant", "metric", "value", "protocol", "runs", "source")
METRICS = ("top1", "params_millions", "params", "teacher_top1")
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


def load_file(path: Path) -> list[RefValue]:
    lines = path.read_text().splitlines()
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
        if rec["protocol"] not in PROTOCOLS:
            raise UsageError(f"{where}: protocol {rec['protocol']!r} is not one of last, best, unspecified")
        for required in ("table", "dataset", "arch", "method", "source"):
            if not rec[required]:
                raise UsageError(f"{where}: '{required}' is empty")
        values.append(RefValue(**{**rec, "value": value}, where=where))
    return values


def load_reference(directory: Path = REFERENCE_DIR) -> list[RefValue]:
    """Every reference value in ``directory``; raises UsageError naming the file and line of a bad row."""
    values: list[RefValue] = []
    for path in sorted(directory.glob("*.csv")):
        values.extend(load_file(path))
    return values


def table_values(table: str, directory: Path = REFERENCE_DIR) -> list[RefValue]:
    values = [v for v in load_reference(directory) if v.table == table]
    if not values:
        known = sorted({v.table for v in load_reference(directory)})
        raise UsageError(f"no reference table '{table}'; known: {', '.join(known)}")
    return values
