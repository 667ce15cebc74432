"""Comparison tables from records: mean ± std over seeds, Δ vs the baseline, parameters, FLOPs, latency.

Records are first split into groups by :func:`comparability_key`: the architecture, the data (fingerprint,
display name, image counts, subset and validation-split settings), the recipe with all its fields, the engine
settings and the selection protocol. Records that differ in any of these are never averaged together: each
group is its own table, with a caption that states its real data size. Within a group a row is one method
(with its non-default options and its teacher's architecture) over seeds; a second record of the same row and
seed is a duplicate: the newest (by ``created``) is kept and the others are reported under the table.
Records whose ``status`` is present and not ``"ok"`` (failed runs, see
:func:`~harness.results.records.load_records`) are never aggregated, only counted under the tables.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import statistics
from collections.abc import Iterable
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import PurePath

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from tabulate import tabulate

from harness.core.errors import UsageError
from harness.data.datasets import display_name
from harness.results.layout import fit
from harness.results.records import MEASURES, Measure, Record, migrate
from harness.results.stats import ALPHA, summarize, welch_p

FORMATS = ("rich", "markdown", "csv", "json")
METRICS = {"last": "top1_last", "best": "top1_best", "selected": "top1_selected"}
SUBSET_NOTES = ("train_subset", "test_subset", "val_split", "split_seed")
RECIPE_TEXT_FIELDS = ("notes",)  # descriptions: they do not change training, so they do not split groups


# ---- what makes records comparable -------------------------------------------------------------------


def engine_settings(record: Record) -> dict:
    """The record's ``engine``, all of its fields (records of schema 1 get theirs from
    :func:`~harness.results.records.migrate`, with ``version`` None)."""
    return dict(record["engine"])


def protocol_settings(record: Record) -> dict:
    """How the reported model was chosen (``protocol``: the ``--select`` of the run)."""
    return dict(record["protocol"])


def data_settings(record: Record) -> dict:
    ds = record["dataset"]
    return {"name": display_name(ds["name"]), "fingerprint": ds.get("fingerprint") or None,
            "num_classes": ds.get("num_classes"), "input": ds.get("input"), "train": ds.get("train"),
            "test": ds.get("test"), "val": ds.get("val") or 0, **{k: ds.get(k) for k in SUBSET_NOTES}}


def recipe_settings(record: Record) -> dict:
    return {k: v for k, v in record["recipe"].items() if k not in RECIPE_TEXT_FIELDS}


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def comparability_key(record: Record) -> tuple[str, ...]:
    """Records with equal keys may be averaged and compared with each other; all others may not.

    The key holds the architecture, the data (fingerprint, display name, image counts, subset and split
    settings), every recipe field but its description, the engine settings and the selection protocol. The
    method (and its options, teacher and seed) is not part of it: methods of one key are the rows of a table.
    """
    return (record["arch"], _canonical(data_settings(record)), _canonical(recipe_settings(record)),
            _canonical(engine_settings(record)), _canonical(protocol_settings(record)))


def group_id(key: tuple[str, ...]) -> str:
    return hashlib.blake2b(_canonical(list(key)).encode(), digest_size=4).hexdigest()


def budget(record: Record) -> str:
    r = record["recipe"]
    return f"{r['name']} {r['epochs']}ep bs{r['batch_size']}"


def variant(record: Record) -> str:
    opts = record["method"].get("options") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(opts.items()) if v != record["method"].get("defaults", {}).get(k))


_PATH = re.compile(r"(?<![\w.])(?:~|\.{1,2}|[A-Za-z]:)?(?:[/\\][^\s/\\;,()]+)+[/\\]?")


def strip_paths(text: str) -> str:
    """``image folder /work/data/x.tar.gz`` -> ``image folder x.tar.gz``: captions never show paths."""
    return _PATH.sub(lambda m: PurePath(m.group(0).replace("\\", "/").rstrip("/")).name or m.group(0), text)


def _on_off(flag: object) -> str:
    return "on" if flag else "off"


@dataclass(frozen=True)
class Group:
    """Records that may be compared: one table."""

    key: tuple[str, ...]
    arch: str
    budget: str
    data: dict
    recipe: dict
    engine: dict
    protocol: dict
    sources: tuple[str, ...]
    devices: tuple[str, ...]  # where latency was measured
    qualifier: str = ""  # what tells this group from others with the same title (set by collect)

    @property
    def id(self) -> str:
        return group_id(self.key)

    @property
    def dataset(self) -> str:
        return self.data["name"]

    @property
    def title(self) -> str:
        base = f"{self.arch} on {self.dataset} ({self.budget})"
        return f"{base} [{self.qualifier}]" if self.qualifier else base

    def counts_text(self) -> str:
        """``300 train / 200 test``: the images the records were trained and tested on."""
        d = self.data
        counts = [f"{d['train']:,} train" if d["train"] is not None else "? train"]
        if d["val"]:
            counts.append(f"{d['val']:,} val")
        counts.append(f"{d['test']:,} test" if d["test"] is not None else "? test")
        return " / ".join(counts)

    def data_text(self) -> str:
        d = self.data
        picked = []
        if d.get("train_subset"):
            picked.append(f"train subset {d['train_subset']:,}")
        if d.get("test_subset"):
            picked.append(f"test subset {d['test_subset']:,}")
        if d.get("val_split"):
            picked.append(f"val split {d['val_split']:g} of train")
        if picked:
            picked.append(f"split seed {d.get('split_seed', 0)}")
        shape = "x".join(map(str, d["input"])) if d.get("input") else "?"
        return (self.counts_text() + " images" + (f" ({', '.join(picked)}, stratified)" if picked else "") +
                f", {d.get('num_classes') or '?'} classes, {shape}")

    def caption(self) -> str:
        r, e = self.recipe, self.engine
        schedule = r.get("schedule", "?") + (f" {r['milestones']}" if r.get("milestones") else "")
        engine = (f"{e.get('device') or '?'}, amp {_on_off(e.get('amp'))}, "
                  f"channels_last {_on_off(e.get('channels_last'))}")
        if e.get("version") is not None:
            engine += f", engine v{e['version']}"
        extra = {k: v for k, v in e.items() if k not in ("version", "device", "amp", "channels_last")}
        engine += "".join(f", {k} {v.get('profile', v) if isinstance(v, dict) else v}" for k, v in sorted(extra.items()))
        protocol = ", ".join(f"{k}={v}" for k, v in sorted(self.protocol.items()))
        source = "; ".join(strip_paths(s) for s in self.sources) or "unknown"
        text = (f"Data: {self.data_text()}; source: {source}; fingerprint {(self.data['fingerprint'] or '?')[:12]}. "
                f"Recipe {r.get('name')}: {r.get('epochs')} epoch(s), batch {r.get('batch_size')}, lr {r.get('lr')}, "
                f"weight decay {r.get('weight_decay')}, {schedule}. Engine: {engine}. Selection: {protocol}.")
        if self.devices:
            text += f" Latency measured on {'; '.join(self.devices)}."
        return text + f" Group {self.id}."


@dataclass
class Duplicate:
    """Records of one (method, variant, teacher, seed) in one group: one kept, the others ignored."""

    group: Group
    method: str
    variant: str
    teacher: str | None
    seed: int
    kept: str
    ignored: list[str]

    def text(self) -> str:
        name = self.method + (f" [{self.variant}]" if self.variant else "")
        name += f" <- {self.teacher}" if self.teacher else ""
        return f"{name} seed {self.seed} (kept {self.kept}; ignored {', '.join(self.ignored)})"


@dataclass
class Row:
    """One method in one group, aggregated over seeds (one record per seed)."""

    group: Group
    method: str
    variant: str
    teacher_arch: str | None = None
    values: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    per_seed: dict[str, list[float]] = field(default_factory=dict)  # MEASURES' values, one per seed that has one
    noisy_timing: bool = False  # a seed's batch-1 timings spread more than their median
    delta: float | None = None
    p_value: float | None = None  # Welch's t-test against the baseline of the same group
    params_x_baseline: float | None = None  # deployed size relative to the baseline of the same group
    macs_x_baseline: float | None = None
    distorted: dict[str, list[float]] = field(default_factory=dict)  # distortion -> top-1 per seed (--eval-noise)
    duplicates: list[Duplicate] = field(default_factory=list)
    records: list[Record] = field(default_factory=list, repr=False)  # the kept record of each seed, as ``seeds``

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return summarize(self.values).std

    @property
    def ci95(self) -> float | None:
        return summarize(self.values).ci95

    def measured(self, name: str) -> float | None:
        """The mean over seeds of measure ``name`` (:data:`~harness.results.records.MEASURES`), None when no
        seed has it."""
        return _mean(self.per_seed.get(name, []))

    def measured_std(self, name: str) -> float | None:
        values = self.per_seed.get(name, [])
        return summarize(values).std if values else None

    @property
    def params(self) -> float | None:
        return self.measured("params")

    @property
    def macs(self) -> float | None:
        return self.measured("macs")

    @property
    def latency_noisy(self) -> bool:
        """Batch-1 latencies that mean little: their std over seeds exceeds their mean, or a seed's own
        timings spread (IQR) more than their median."""
        values = self.per_seed.get("latency", [])
        spread = len(values) > 1 and (self.measured_std("latency") or 0) > statistics.fmean(values)
        return spread or self.noisy_timing

    def add(self, seed: int, value: float, record: Record) -> None:
        self.values.append(value)
        self.seeds.append(seed)
        timing = (record.get("metrics") or {}).get("latency_ms") or {}
        if timing.get("batch1_spread") is not None and timing["batch1_spread"] > timing.get("batch1", 0):
            self.noisy_timing = True
        self.records.append(record)
        for m in MEASURES:
            v = m.get(record)
            if v is not None:
                self.per_seed.setdefault(m.name, []).append(v)
        for name, acc in (record["metrics"].get("top1_distorted") or {}).items():
            self.distorted.setdefault(name, []).append(acc)

    def distorted_text(self, name: str) -> str:
        values = self.distorted.get(name)
        if not values:
            return "-"
        return f"{statistics.fmean(values):.2f}" + (f" ± {summarize(values).std:.2f}" if len(values) > 1 else "")

    def size_text(self) -> str:
        """``0.07x / 0.23x``: deployed parameters and MACs relative to the baseline of the same table."""
        if self.params_x_baseline is None:
            return "-"
        macs = f"{self.macs_x_baseline:.2f}x" if self.macs_x_baseline is not None else "-"
        return f"{self.params_x_baseline:.2f}x / {macs}"

    @property
    def teacher(self) -> str | None:
        if not self.teacher_arch:
            return None
        acc = self.measured("teacher_acc")
        return f"{self.teacher_arch} ({acc:.2f})" if acc is not None else self.teacher_arch

    @property
    def name(self) -> str:
        return self.method + (f" [{self.variant}]" if self.variant else "")

    def delta_text(self) -> str:
        if self.delta is None:
            return ""
        if self.p_value is None:
            return f"{self.delta:+.2f}"
        return f"{self.delta:+.2f}" + ("*" if self.p_value < ALPHA else " (n.s.)")


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def distortion_names(rows: Iterable[Row]) -> list[str]:
    """Every distortion any row was measured under, by kind and then level (``noise:0.05`` before ``noise:0.1``)."""
    def order(name: str) -> tuple[str, float]:
        kind, _, level = name.partition(":")
        try:
            return kind, float(level)
        except ValueError:
            return kind, math.inf
    return sorted({name for r in rows for name in r.distorted}, key=order)


@dataclass
class Aggregation:
    groups: list[Group]
    rows: list[Row]
    duplicates: list[Duplicate]
    not_ok: list[Record]  # records with a status other than "ok": never aggregated


def _file(record: Record) -> str:
    path = record.get("_path")
    return PurePath(path).name if path else f"run {str(record.get('run_key', '?'))[:8]}"


COUNT_FIELDS = tuple(("data", k) for k in ("train", "val", "test", "train_subset", "test_subset", "val_split"))


def _sections(g: Group) -> dict[tuple[str, str], object]:
    return {(section, k): v for section, values in (("data", g.data), ("recipe", g.recipe), ("engine", g.engine),
                                                    ("protocol", g.protocol)) for k, v in values.items()}


def _qualify(groups: dict[tuple, Group]) -> dict[tuple, Group]:
    """Groups sharing a title get the settings that tell them apart appended (``train 300, test 200``)."""
    by_title: dict[str, list[tuple]] = {}
    for key, g in groups.items():
        by_title.setdefault(g.title, []).append(key)
    out = dict(groups)
    for keys in by_title.values():
        if len(keys) < 2:
            continue
        flat = {k: _sections(groups[k]) for k in keys}
        names = sorted({n for f in flat.values() for n in f})
        differ = [n for n in names if len({_canonical(f.get(n)) for f in flat.values()}) > 1]
        counts = any(n in differ for n in COUNT_FIELDS)
        shown = [n for n in differ if n != ("data", "fingerprint") and not (counts and n in COUNT_FIELDS)]
        for k in keys:
            parts = [groups[k].counts_text()] if counts else []
            parts += [f"{n[1]} {flat[k].get(n)}" for n in shown]
            if not parts:  # only the data differ (same sizes, other images)
                parts = [f"data {str(groups[k].data['fingerprint'])[:8]}"]
            out[k] = replace(groups[k], qualifier=", ".join(parts))
    return out


def collect(records: Iterable[Record], metric: str = "last") -> Aggregation:
    """Group records by :func:`comparability_key`, drop duplicates, aggregate each method over seeds."""
    key_name = METRICS[metric]
    not_ok: list[Record] = []
    buckets: dict[tuple, dict[tuple, list[Record]]] = {}  # group key -> (method, variant, teacher, seed) -> records
    members: dict[tuple, list[Record]] = {}
    for rec in map(migrate, records):  # records of any known schema (a no-op copy for current ones)
        if rec.get("status", "ok") != "ok":
            not_ok.append(rec)
            continue
        gkey = comparability_key(rec)
        teacher = (rec.get("teacher") or {}).get("arch")
        row_seed = (rec["method"]["name"], variant(rec), teacher, rec["seed"])
        buckets.setdefault(gkey, {}).setdefault(row_seed, []).append(rec)
        members.setdefault(gkey, []).append(rec)
    groups: dict[tuple, Group] = {}
    for gkey, recs in members.items():
        first = recs[0]
        devices = sorted({f"{d.get('name') or '?'} ({d.get('type', '?')}, {d.get('threads', '?')} thread(s))"
                          for r in recs if (r["metrics"].get("latency_ms") or {}).get("batch1") is not None
                          for d in [r.get("device") or {}]})
        groups[gkey] = Group(key=gkey, arch=first["arch"], budget=budget(first), data=data_settings(first),
                             recipe=recipe_settings(first), engine=engine_settings(first),
                             protocol=protocol_settings(first),
                             sources=tuple(sorted({r["dataset"].get("source") or "" for r in recs} - {""})),
                             devices=tuple(devices))
    groups = _qualify(groups)
    rows: dict[tuple, Row] = {}
    duplicates: list[Duplicate] = []
    for gkey, by_seed in buckets.items():
        group = groups[gkey]
        for (method, var, teacher, seed), recs in sorted(by_seed.items(), key=lambda kv: _canonical(kv[0])):
            recs = sorted(recs, key=lambda r: (str(r.get("created") or ""), _file(r)))
            rec = recs[-1]  # the newest
            row = rows.setdefault((gkey, method, var, teacher), Row(group=group, method=method, variant=var,
                                                                    teacher_arch=teacher))
            if len(recs) > 1:
                dup = Duplicate(group, method, var, teacher, seed, _file(rec), [_file(r) for r in recs[:-1]])
                duplicates.append(dup)
                row.duplicates.append(dup)
            value = rec["metrics"].get(key_name)
            if value is None:
                continue
            row.add(seed, value, rec)
    out = [r for r in rows.values() if r.values]
    base = {r.group.key: r for r in out if r.method == "baseline" and not r.variant and not r.teacher_arch}
    for r in out:
        b = base.get(r.group.key)
        if b is not None and r is not b:
            r.delta = r.mean - b.mean
            r.p_value = welch_p(r.values, b.values)
        if b is not None:
            r.params_x_baseline = _ratio(r.params, b.params)
            r.macs_x_baseline = _ratio(r.macs, b.macs)
    order = {"baseline": 0}
    ordered_groups = sorted({r.group.key: r.group for r in out}.values(),
                            key=lambda g: (g.dataset, g.arch, g.budget, g.qualifier, g.id))
    position = {g.key: i for i, g in enumerate(ordered_groups)}
    out.sort(key=lambda r: (position[r.group.key], order.get(r.method, 1), r.method, r.variant, r.teacher_arch or ""))
    return Aggregation(ordered_groups, out, duplicates, not_ok)


def aggregate(records: Iterable[Record], metric: str = "last") -> list[Row]:
    """The rows of :func:`collect`: one per (group, method, variant, teacher), aggregated over seeds."""
    return collect(records, metric).rows


# ---- rendering ---------------------------------------------------------------------------------------


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
    Column("dataset", "dataset", lambda r: r.group.dataset), Column("arch", "arch", lambda r: r.group.arch),
    Column("budget", "budget", lambda r: r.group.budget), Column("method", "method", lambda r: r.name, True),
    Column("top1", "top-1 (%)", lambda r: f"{r.mean:.2f} ± {r.std:.2f}", True),
    Column("ci95", "95% CI", lambda r: f"±{r.ci95:.2f}" if r.ci95 is not None else "-"),
    Column("delta", "Δ vs baseline", lambda r: r.delta_text(), True),
    Column("p", "p (Welch)", lambda r: f"{r.p_value:.3f}" if r.p_value is not None else "-", True),
    Column("seeds", "seeds", lambda r: str(len(r.values))),
    "params", "extra_params", "macs", "flops",
    Column("size", "params / MACs (x baseline)", lambda r: r.size_text()),
    "latency", "train_compute",
)
TEACHER = Column("teacher", "teacher", lambda r: r.teacher or "")


def columns() -> list[Column]:
    """Every column in order: the layout, then any measure it does not place, then the teacher."""
    placed = {c for c in _LAYOUT if isinstance(c, str)} | {"teacher_acc"}  # teacher_acc is in the teacher cell
    layout = [_measure_column(_BY_NAME[c], c in COMPACT_MEASURES) if isinstance(c, str) else c for c in _LAYOUT]
    return layout + [_measure_column(m) for m in MEASURES if m.name not in placed] + [TEACHER]


GROUP_COLUMNS = ("dataset", "arch", "budget")  # the group's title says them
DISTORTED_AFTER = "seeds"  # the top-1-under-distortion columns go after this one, when there are any


def distorted_header(name: str) -> str:
    return f"top-1 {name} (%)"


def table_columns(rows: list[Row]) -> list[Column]:
    """The columns of these rows: every column, with one ``top-1 noise:0.1 (%)`` column (key ``noise:0.1``) for
    each distortion some row was measured under."""
    cols = columns()
    at = [c.key for c in cols].index(DISTORTED_AFTER) + 1
    cols[at:at] = [Column(name, distorted_header(name), lambda r, name=name: r.distorted_text(name))
                   for name in distortion_names(rows)]
    return cols


def column_keys(rows: list[Row]) -> list[str]:
    return [c.key for c in table_columns(rows) if c.key not in GROUP_COLUMNS]


def select_columns(rows: list[Row], keys: list[str] | None = None, *, compact: bool = False) -> list[Column]:
    """The columns a table of ``rows`` shows: ``keys`` (in that order; an unknown key is a UsageError naming
    the known ones), else the compact set (``compact``), else all; the teacher only where a row has one."""
    cols = [c for c in table_columns(rows) if c.key not in GROUP_COLUMNS]
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


def caption(metric: str) -> str:
    protocol = {"last": "last epoch", "best": "best epoch (max test accuracy over epochs)",
                "selected": "epoch chosen by --select"}[metric]
    return (f"top-1 = {protocol}, mean ± std over seeds (one record per method and seed); 95% CI = t-interval "
            f"half-width; Δ marked * when Welch's t-test against the baseline of the same table gives p < {ALPHA}, "
            f"(n.s.) when not (needs 2+ seeds each). Params, MACs (multiply-accumulates, as papers quote "
            f"cost), FLOPs (2 per multiply-add) and latency are means over seeds (latency ± std). Train compute = "
            f"training FLOPs of every stage the method trains, baseline included, relative to the baseline's "
            f"(info.compute; - where a method does not count it). Params / MACs (x baseline): the deployed "
            f"model's size relative to the baseline's in the same table (below 1 for a method that deploys a "
            f"smaller model). Top-1 under a distortion (noise:SIGMA, blur:SIGMA; --eval-noise/--eval-distort): the "
            f"deployed weights on the test set with that distortion, mean ± std over seeds. Records that "
            f"differ in data, subset or split, recipe, engine or selection are never "
            f"merged: each such group is its own table.")


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
        parts.append(f"{len(failed)} failed run{'s' if len(failed) > 1 else ''}" +
                     (f" (see {', '.join(folders)})" if folders else ""))
    if other:
        parts.append(f"{len(other)} record(s) not aggregated (status not ok): " +
                     ", ".join(f"{_file(r)} ({r.get('status')})" for r in other))
    return "; ".join(parts)


def _group_json(g: Group) -> dict:
    return {"id": g.id, "title": g.title, "dataset": g.dataset, "arch": g.arch, "budget": g.budget,
            "data": g.data, "data_text": g.data_text(), "sources": [strip_paths(s) for s in g.sources],
            "recipe": g.recipe, "engine": g.engine, "protocol": g.protocol, "caption": g.caption()}


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


def export_row(r: Row, metric: str) -> dict[str, object]:
    """One row of the CSV and JSON exports: numbers, one per column (top-1 mean, std and n apart; parameter
    counts as integers; MACs and FLOPs as plain numbers); JSON adds the per-seed lists."""
    row: dict[str, object] = {
        "group": r.group.id, "dataset": r.group.dataset, "source": "; ".join(strip_paths(s) for s in r.group.sources),
        "arch": r.group.arch, "budget": r.group.budget, "method": r.method, "variant": r.variant,
        "teacher_arch": r.teacher_arch, "metric": METRICS[metric], "mean": r.mean, "std": r.std, "ci95": r.ci95,
        "n": len(r.values), "delta_vs_baseline": r.delta, "p_welch": r.p_value,
    }
    row.update({k: _number(v) if isinstance(v, (int, float)) else v for k, v in measures_json(r).items()
                if not k.endswith("_values")})
    row.update({"params_x_baseline": r.params_x_baseline, "macs_x_baseline": r.macs_x_baseline})
    for name, values in sorted(r.distorted.items()):
        row[f"top1_{name}_mean"] = statistics.fmean(values)
        row[f"top1_{name}_std"] = summarize(values).std
    row["data"] = r.group.data_text()
    row["duplicates_ignored"] = "; ".join(d.text() for d in r.duplicates)
    return row


def render(records: list[Record], fmt: str = "rich", metric: str = "last", console: Console | None = None, *,
           columns: list[str] | None = None, wide: bool = False) -> str:
    """Render records as one table per comparable group; ``rich`` prints to ``console`` and returns '', others
    return text. The rich table shows the compact column set unless ``wide`` or ``columns`` (keys of
    :func:`column_keys`) say otherwise; markdown shows every column (or ``columns``); CSV and JSON export
    every number, one column each."""
    agg = collect(records, metric)
    rows = agg.rows
    if fmt == "json":
        return json.dumps([{
            **export_row(r, metric), "setting": _group_json(r.group), "values": r.values, "seeds": r.seeds,
            "top1_distorted": {name: {"mean": statistics.fmean(v), "std": summarize(v).std, "values": v}
                               for name, v in r.distorted.items()},
            "latency_ms_batch1_values": r.per_seed.get("latency", []),
            "teacher": r.teacher, "duplicates_ignored": [d.text() for d in r.duplicates],
        } for r in rows], indent=2)
    if fmt == "csv":
        exported = [export_row(r, metric) for r in rows]
        header = list(dict.fromkeys(k for row in exported for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in exported)
        return buf.getvalue()
    cols = select_columns(rows, columns, compact=fmt == "rich" and not wide)
    headers, body = table_rows(rows, cols)
    footer = [t for t in (caption(metric), not_ok_text(agg.not_ok)) if t]
    if fmt == "markdown":
        parts = []
        for g in agg.groups:
            lines = [line for r, line in zip(rows, body) if r.group is g]
            dups = duplicates_text([d for d in agg.duplicates if d.group.key == g.key])
            parts.append(f"### {g.title}\n\n" + tabulate(lines, headers, tablefmt="github") +
                         f"\n\n{g.caption()}\n" + (f"\n{dups}\n" if dups else ""))
        return "\n".join(parts) + "\n" + "\n\n".join(footer) + "\n"
    console = console or Console()
    for g in agg.groups:
        lines = [line for r, line in zip(rows, body) if r.group is g]
        for table in terminal_tables(g, headers, lines, cols, console.width):
            console.print(table)
        dups = duplicates_text([d for d in agg.duplicates if d.group.key == g.key])
        if dups:
            console.print(f"[yellow]{escape(dups)}[/yellow]")
    if fmt == "rich" and not wide and not columns:
        footer[0] = compact_caption(metric)
    for text in footer:
        console.print(f"[dim]{escape(text)}[/dim]", highlight=False)
    return ""


def terminal_tables(g: Group, headers: list[str], lines: list[list[str]], cols: list[Column],
                    width: int) -> list[Table]:
    """A group's rich table, as one or more tables that each fit ``width`` (:mod:`harness.results.layout`):
    the method column in each (folded, never shrunk to nothing: every row keeps its name), the other columns at
    their widest cell's width (never wrapped, never cut), as many beside it as fit."""
    key = next((i for i, c in enumerate(cols) if c.key == "method"), None)
    others = [i for i in range(len(headers)) if i != key]
    widest = {i: max([len(headers[i]), *(len(line[i]) for line in lines)]) for i in range(len(headers))}
    kept, parts = fit(widest[key] if key is not None else 0, [widest[i] for i in others], width)
    tables = []
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        title = g.title if n == 0 else f"{g.title} (continued: part {n + 1} of {len(parts)})"
        table = Table(title=escape(title), caption=escape(g.caption()) if last else None, title_justify="left",
                      caption_justify="left")
        shown = ([key] if key is not None else []) + [others[j] for j in part]
        for i in shown:
            if i == key:
                table.add_column(headers[i], justify="left", overflow="fold", min_width=kept)
            elif cols[i].key == "teacher":  # may wrap, never loses a character
                table.add_column(headers[i], justify="left", overflow="fold")
            else:  # numbers keep their width: never wrapped, never cut
                table.add_column(headers[i], justify="right", no_wrap=True, min_width=widest[i])
        for line in lines:
            table.add_row(*(escape(line[i]) for i in shown))
        tables.append(table)
    return tables


def compact_caption(metric: str) -> str:
    """The compact table's caption: what its columns mean, and where the others are."""
    protocol = {"last": "last epoch", "best": "best epoch", "selected": "epoch chosen by --select"}[metric]
    return (f"top-1 = {protocol}, mean ± std over seeds; Δ against the baseline of the same table, * when Welch's "
            f"t-test gives p < {ALPHA}, (n.s.) when not; MACs = multiply-accumulates of one forward pass. --wide shows "
            f"every column (95% CI, seeds, extra params, FLOPs, size and latency, train compute, distortions, "
            f"teacher), --columns KEY,... chooses them; markdown and CSV keep them all.")
