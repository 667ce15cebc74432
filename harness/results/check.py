"""`bench check`: a CI gate. Compares records with reference numbers and fails on a regression.

A reference is a CSV in the format of ``harness/results/reference_data`` (read by
:func:`harness.results.reference.resolve`): the papers' numbers, the bundled smoke reference, or a set of
earlier records saved with ``bench check --save-reference``. A row passes when the measured mean (over
seeds) is at least the reference minus the tolerance (regressions fail, improvements pass); a reference row with no record
fails too (the method did not run). Output: one line per row, optionally a JUnit XML file for CI systems.

``--metric`` selects which top-1 of the records is checked (``top1_last`` or ``top1_best``; by default the
reference rows' ``protocol``, else last); checking one protocol against reference rows measured with the
other (e.g. ``--metric last`` against Table 4's best-epoch numbers) is refused with one line.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

from harness.core.errors import UsageError
from harness.core.io import atomic_write_text
from harness.results.records import Record, versions
from harness.results.reference import COLUMNS, RefValue, load_file
from harness.results.tables import Row, aggregate


@dataclass
class CheckRow:
    ref: RefValue
    row: Row | None
    tolerance: float
    group: str = ""  # the group's title, when records of several non-comparable groups match the reference row

    @property
    def measured(self) -> float | None:
        return self.row.mean if self.row else None

    @property
    def passed(self) -> bool:
        return self.measured is not None and self.measured >= self.ref.value - self.tolerance

    @property
    def name(self) -> str:
        teacher = f" <- {self.ref.teacher}" if self.ref.teacher else ""
        variant = f" [{self.ref.variant}]" if self.ref.variant else ""
        where = f" ({self.group})" if self.group else ""
        return f"{self.ref.dataset}/{self.ref.arch}{teacher}/{self.ref.method}{variant}{where}"

    def line(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        if self.row is None:
            return f"{status}  {self.name}: no record (reference {self.ref.value:.2f})"
        return (f"{status}  {self.name}: {self.row.mean:.2f} ± {self.row.std:.2f} (n={len(self.row.values)}) vs "
                f"reference {self.ref.value:.2f} [{self.ref.where}], Δ {self.row.mean - self.ref.value:+.2f}, "
                f"tolerance {self.tolerance:.2f}")


def row_key(dataset: str, arch: str, teacher: str, method: str, variant: str) -> tuple:
    return dataset, arch, teacher or "", method, variant or ""


EPOCH_PROTOCOLS = ("last", "best")


def check_metric(reference: list[RefValue], metric: str | None) -> str:
    """The metric to check: ``metric``, or the top-1 rows' protocol when they share one (else ``last``). A
    last/best metric that contradicts a row's last/best protocol is a UsageError."""
    protocols = sorted({v.protocol for v in reference if v.metric == "top1" and v.protocol in EPOCH_PROTOCOLS})
    if metric is None:
        return protocols[0] if len(protocols) == 1 else "last"
    other = next((v for v in reference if v.metric == "top1" and v.protocol in EPOCH_PROTOCOLS
                  and metric in EPOCH_PROTOCOLS and v.protocol != metric), None)
    if other is not None:
        raise UsageError(f"--metric {metric} checks the {metric}-epoch top-1, but the reference row "
                         f"{other.where} ({other.method}) was measured at the {other.protocol} epoch "
                         f"(protocol '{other.protocol}'): pass --metric {other.protocol}, or leave --metric out")
    return metric


def compare(records: list[Record], reference: list[RefValue], *, tolerance: float, metric: str | None = "last",
            dataset_as: str | None = None) -> list[CheckRow]:
    """One check per reference row and comparable group: records that are not comparable (other data size,
    recipe, engine, selection; see :func:`~harness.results.tables.comparability_key`) are never averaged into
    one measurement, each group has to pass on its own. ``metric`` as :func:`check_metric` settles it."""
    metric = check_metric(reference, metric)
    by_key: dict[tuple, list[Row]] = {}
    for r in aggregate(records, metric):
        by_key.setdefault(_key(r, dataset_as), []).append(r)
    out = []
    for ref in reference:
        if ref.metric != "top1":
            continue
        rows = by_key.get(row_key(ref.dataset, ref.arch, ref.teacher, ref.method, ref.variant), [])
        if not rows:
            out.append(CheckRow(ref, None, tolerance))
        for r in rows:
            out.append(CheckRow(ref, r, tolerance, r.group.title if len(rows) > 1 else ""))
    return out


def _key(r: Row, dataset_as: str | None = None) -> tuple:
    return row_key(dataset_as or r.group.dataset, r.group.arch, r.teacher_arch or "", r.method, r.variant)


def junit(results: list[CheckRow], suite: str) -> str:
    failures = sum(not r.passed for r in results)
    root = ET.Element("testsuite", name=suite, tests=str(len(results)), failures=str(failures), errors="0")
    for r in results:
        case = ET.SubElement(root, "testcase", classname=suite, name=r.name)
        if not r.passed:
            ET.SubElement(case, "failure", message=r.line()).text = r.line()
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def save_reference(records: list[Record], path: Path, table: str, metric: str = "last") -> int:
    """Write the records' means as a reference CSV (one row per dataset/arch/teacher/method/variant)."""
    rows = aggregate(records, metric)
    if not rows:
        raise UsageError("no records to save as a reference")
    seen: dict[tuple, Row] = {}
    for r in rows:
        other = seen.setdefault(_key(r), r)
        if other is not r:
            raise UsageError(f"{r.method} on {r.group.dataset}/{r.group.arch} has records of non-comparable groups "
                             f"('{other.group.title}' and '{r.group.title}'); a reference row holds one: save "
                             f"each group's records separately")
    buf = io.StringIO()
    buf.write(f"# Saved by bench check --save-reference from {len(records)} record(s); metric: top-1 ({metric} epoch).\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    source = f"bench records, harness {versions()['harness']}, commit {versions()['git'] or 'unknown'}"
    for r in rows:
        writer.writerow([table, r.group.dataset, r.group.arch, r.teacher_arch or "", r.method, r.variant, "top1",
                         f"{r.mean:.2f}", "best" if metric == "best" else "last", len(r.values), source])
    atomic_write_text(path, buf.getvalue())
    load_file(path)  # what we write must load
    return len(rows)

