"""How aggregated rows read: the cells and columns of a comparison table, its captions and notes, and the
numbers of the CSV and JSON exports (:mod:`harness.results.aggregation` computes them, :func:`harness.results.
tables.render` lays them out).
"""

from __future__ import annotations

import operator
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import PurePath

from harness.core.errors import UsageError
from harness.results.aggregation import METRICS, Duplicate, Row, distortion_names, record_file
from harness.results.grouping import Group, strip_paths
from harness.results.records import MEASURES, Measure, Record
from harness.results.stats import ALPHA, summarize


def fmt_compute(x: float | None) -> str:
    return f"{x:.2f}x" if x is not None else "-"


#: how a measure of each kind is shown (harness.results.records.Measure.kind)
KIND_FORMATS: dict[str, Callable[[float], str]] = {
    "count": lambda n: f"{round(n):,}",
    "ops": lambda n: f"{n / 1e6:,.1f}M",
    "ms": lambda x: f"{x:.2f}",
    "ratio": lambda x: f"{x:.2f}x",
    "percent": lambda x: f"{x:.2f}",
}


def measure_text(r: Row, m: Measure) -> str:
    """A measure's mean over seeds; a latency (kind ``ms``) with its std over seeds, marked ``(noisy)`` where
    the std exceeds the mean or one seed's own timings spread more than their median (a busy machine)."""
    value = r.measured(m.name)
    if value is None:
        return "-"
    text = KIND_FORMATS[m.kind](value)
    if m.kind == "ms" and len(r.per_seed.get(m.name, [])) > 1:
        text += f" ± {r.measured_std(m.name):.2f}"
    if m.kind == "ms" and r.latency_noisy:
        text += " (noisy)"
    return text


@dataclass(frozen=True)
class Column:
    """A column of the comparison table: its key (``--columns``), header, the cell of a row, and whether the
    compact terminal table (the default of ``bench table`` in a terminal) shows it."""

    key: str
    header: str
    cell: Callable[[Row], str]
    compact: bool = False


def _measure_column(m: Measure, compact: bool = False) -> Column:
    return Column(m.name, m.header, lambda r: measure_text(r, m), compact)


_BY_NAME = {m.name: m for m in MEASURES}
COMPACT_MEASURES = ("params", "macs")
#: where the measures go among the other columns; a measure not named here goes after them (before teacher)
_LAYOUT: tuple[str | Column, ...] = (
    Column("dataset", "dataset", lambda r: r.group.dataset),
    Column("arch", "arch", lambda r: r.group.arch),
    Column("budget", "budget", lambda r: r.group.budget),
    Column("method", "method", lambda r: r.name, True),
    Column("top1", "top-1 (%)", lambda r: f"{r.mean:.2f} ± {r.std:.2f}", True),
    Column("ci95", "95% CI", lambda r: f"±{r.ci95:.2f}" if r.ci95 is not None else "-"),
    Column("delta", "Δ vs baseline", lambda r: r.delta_text(), True),
    Column("p", "p (Welch)", lambda r: f"{r.p_value:.3f}" if r.p_value is not None else "-", True),
    Column("seeds", "seeds", lambda r: str(len(r.values))),
    "params",
    "extra_params",
    "macs",
    "flops",
    Column("size", "params / MACs (x baseline)", lambda r: r.size_text()),
    "latency",
    "train_compute",
)
TEACHER = Column("teacher", "teacher", lambda r: r.teacher or "")


def columns(against: str = "baseline") -> list[Column]:
    """Every column in order: the layout, then any measure it does not place, then the teacher; the Δ column's
    header names the reference method ``against`` (``Δ vs kd``; its key stays ``delta``)."""
    placed = {c for c in _LAYOUT if isinstance(c, str)} | {"teacher_acc"}  # teacher_acc is in the teacher cell
    layout = [_measure_column(_BY_NAME[c], c in COMPACT_MEASURES) if isinstance(c, str) else c for c in _LAYOUT]
    layout = [replace(c, header=f"Δ vs {against}") if c.key == "delta" else c for c in layout]
    return layout + [_measure_column(m) for m in MEASURES if m.name not in placed] + [TEACHER]


GROUP_COLUMNS = ("dataset", "arch", "budget")  # the group's title says them
DISTORTED_AFTER = "seeds"  # the top-1-under-distortion columns go after this one, when there are any


def distorted_header(name: str) -> str:
    return f"top-1 {name} (%)"


def table_columns(rows: list[Row], against: str = "baseline") -> list[Column]:
    """The columns of these rows: every column, with one ``top-1 noise:0.1 (%)`` column (key ``noise:0.1``) for
    each distortion some row was measured under."""
    cols = columns(against)
    at = [c.key for c in cols].index(DISTORTED_AFTER) + 1
    cols[at:at] = [
        Column(name, distorted_header(name), operator.methodcaller("distorted_text", name))
        for name in distortion_names(rows)
    ]
    return cols


def column_keys(rows: list[Row]) -> list[str]:
    return [c.key for c in table_columns(rows) if c.key not in GROUP_COLUMNS]


def select_columns(
    rows: list[Row], keys: list[str] | None = None, *, compact: bool = False, against: str = "baseline"
) -> list[Column]:
    """The columns a table of ``rows`` shows: ``keys`` (in that order; an unknown key is a UsageError naming
    the known ones), else the compact set (``compact``), else all; the teacher only where a row has one."""
    cols = [c for c in table_columns(rows, against) if c.key not in GROUP_COLUMNS]
    if keys:
        by_key = {c.key: c for c in cols}
        unknown = [k for k in keys if k not in by_key]
        if unknown:
            raise UsageError(f"--columns: unknown column(s) {', '.join(unknown)}; columns: {', '.join(by_key)}")
        return [by_key[k] for k in keys]
    if compact:  # the teacher's architecture goes into the method cell: "kd <- resnet14"
        method = Column("method", "method", lambda r: r.name + (f" <- {r.teacher_arch}" if r.teacher_arch else ""))
        return [method if c.key == "method" else c for c in cols if c.compact]
    return [c for c in cols if c.key != "teacher" or any(r.teacher for r in rows)]


def table_rows(rows: list[Row], cols: list[Column] | None = None) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of ``cols`` (default: every column, the group columns included)."""
    cols = cols if cols is not None else table_columns(rows)
    return [c.header for c in cols], [[c.cell(r) for c in cols] for r in rows]


def reference_text(against: str) -> str:
    """How captions name the rows Δ is measured against: ``the baseline``, or the method (``kd``)."""
    return "the baseline" if against == "baseline" else against


def caption(metric: str, against: str = "baseline") -> str:
    protocol = {
        "last": "last epoch",
        "best": "best epoch (max test accuracy over epochs)",
        "selected": "epoch chosen by --select",
    }[metric]
    return (
        f"top-1 = {protocol}, mean ± std over seeds (one record per method and seed); 95% CI = t-interval "
        f"half-width; Δ marked * when Welch's t-test against {reference_text(against)} of the same table "
        f"{_teacher_rule(against)}gives p < {ALPHA}, "
        f"(n.s.) when not (needs 2+ seeds each). Params, MACs (multiply-accumulates, as papers quote "
        f"cost), FLOPs (2 per multiply-add) and latency are means over seeds (latency ± std). Train compute = "
        f"training FLOPs of every stage the method trains, baseline included, relative to the baseline's "
        f"(info.compute; - where a method does not count it). Params / MACs (x baseline): the deployed "
        f"model's size relative to the baseline's in the same table (below 1 for a method that deploys a "
        f"smaller model). Top-1 under a distortion (noise:SIGMA, blur:SIGMA; --eval-noise/--eval-distort): the "
        f"deployed weights on the test set with that distortion, mean ± std over seeds. Records that "
        f"differ in data, subset or split, recipe, engine or selection are never "
        f"merged: each such group is its own table."
    )


def duplicates_text(dups: list[Duplicate]) -> str:
    if not dups:
        return ""
    n = sum(len(d.ignored) for d in dups)
    return f"{n} duplicate record(s) ignored: " + "; ".join(d.text() for d in dups)


def not_ok_text(records: list[Record]) -> str:
    """``2 failed runs (see results/runs/failed/)``, and any other records whose status is not ok."""
    failed = [r for r in records if r.get("status") == "failed"]
    other = [r for r in records if r.get("status") != "failed"]
    parts = []
    if failed:
        folders = sorted({str(PurePath(r["_path"]).parent) + "/" for r in failed if r.get("_path")})
        parts.append(
            f"{len(failed)} failed run{'s' if len(failed) > 1 else ''}"
            + (f" (see {', '.join(folders)})" if folders else "")
        )
    if other:
        parts.append(
            f"{len(other)} record(s) not aggregated (status not ok): "
            + ", ".join(f"{record_file(r)} ({r.get('status')})" for r in other)
        )
    return "; ".join(parts)


def left_out_text(left_out: list[str]) -> str:
    """``1 record(s) left out (no top-1 to aggregate): x.json (no top1_best)``."""
    return f"{len(left_out)} record(s) left out (no top-1 to aggregate): {', '.join(left_out)}" if left_out else ""


def group_json(g: Group) -> dict:
    return {
        "id": g.id,
        "title": g.title,
        "dataset": g.dataset,
        "arch": g.arch,
        "budget": g.budget,
        "data": g.data,
        "data_text": g.data_text(),
        "sources": [strip_paths(s) for s in g.sources],
        "recipe": g.recipe,
        "engine": g.engine,
        "protocol": g.protocol,
        "caption": g.caption(),
    }


def measures_json(r: Row) -> dict[str, object]:
    """Every measure's mean over seeds under its export key; latencies also with their std and values."""
    out: dict[str, object] = {}
    for m in MEASURES:
        out[m.key] = r.measured(m.name)
        if m.kind == "ms":
            out[f"{m.key}_std"] = r.measured_std(m.name)
            out[f"{m.key}_values"] = r.per_seed.get(m.name, [])
            out[f"{m.key}_noisy"] = r.latency_noisy
    return out


def _number(x: float | None) -> float | int | None:
    """A mean that is a whole number (a parameter count) as an int, for exports."""
    return int(x) if x is not None and float(x).is_integer() else x


def comparison_keys(against: str) -> tuple[str, str]:
    """The export keys of Δ and Welch's p: ``delta_vs_baseline`` and ``p_welch`` against the baseline (as
    always), ``delta_vs_kd`` and ``p_welch_vs_kd`` against kd: a reader of the baseline keys never gets another
    reference's numbers under them."""
    return (
        ("delta_vs_baseline", "p_welch") if against == "baseline" else (f"delta_vs_{against}", f"p_welch_vs_{against}")
    )


def export_row(r: Row, metric: str, against: str = "baseline") -> dict[str, object]:
    """One row of the CSV and JSON exports: numbers, one per column (top-1 mean, std and n apart; parameter
    counts as integers; MACs and FLOPs as plain numbers); JSON adds the per-seed lists. Δ and p are under
    the keys of :func:`comparison_keys`."""
    delta_key, p_key = comparison_keys(against)
    row: dict[str, object] = {
        "group": r.group.id,
        "dataset": r.group.dataset,
        "source": "; ".join(strip_paths(s) for s in r.group.sources),
        "arch": r.group.arch,
        "budget": r.group.budget,
        "method": r.method,
        "variant": r.variant,
        "teacher_arch": r.teacher_arch,
        "metric": METRICS[metric],
        "mean": r.mean,
        "std": r.std,
        "ci95": r.ci95,
        "n": len(r.values),
        delta_key: r.delta,
        p_key: r.p_value,
    }
    row.update(
        {
            k: _number(v) if isinstance(v, (int, float)) else v
            for k, v in measures_json(r).items()
            if not k.endswith("_values")
        }
    )
    row.update({"params_x_baseline": r.params_x_baseline, "macs_x_baseline": r.macs_x_baseline})
    for name, values in sorted(r.distorted.items()):
        row[f"top1_{name}_mean"] = statistics.fmean(values)
        row[f"top1_{name}_std"] = summarize(values).std
    row["data"] = r.group.data_text()
    row["duplicates_ignored"] = "; ".join(d.text() for d in r.duplicates)
    return row


def _teacher_rule(against: str) -> str:
    """For a reference other than the baseline: which of its rows a row is compared with."""
    if against == "baseline":
        return ""
    return (
        f"(the {against} row without options and with the row's teacher, else the one without a teacher or "
        f"the only one; none where several teachers' rows leave it ambiguous) "
    )


def compact_caption(metric: str, against: str = "baseline") -> str:
    """The compact table's caption: what its columns mean, and where the others are."""
    protocol = {"last": "last epoch", "best": "best epoch", "selected": "epoch chosen by --select"}[metric]
    return (
        f"top-1 = {protocol}, mean ± std over seeds; Δ against {reference_text(against)} of the same table, "
        f"* when Welch's "
        f"t-test gives p < {ALPHA}, (n.s.) when not; MACs = multiply-accumulates of one forward pass. --wide shows "
        f"every column (95% CI, seeds, extra params, FLOPs, size and latency, train compute, distortions, "
        f"teacher), --columns KEY,... chooses them; markdown and CSV keep them all."
    )
