"""Aggregation over seeds: within a group (:mod:`harness.results.grouping`) a :class:`Row` is one method (with
its non-default options and its teacher's architecture) over seeds, with its Δ and Welch's p against the
group's baseline (or another method's row: ``bench table --against kd``); a second record of the same row and seed is a
:class:`Duplicate`: the newest (by ``created``) is kept and the others are reported. Records whose ``status`` is not
``"ok"`` (failed runs, see :func:`~harness.results.records.load_records`) are never aggregated, only counted; an ok
record without the top-1 read is left out and named (:attr:`Aggregation.left_out`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from harness.core.errors import UsageError
from harness.results.grouping import (
    Group,
    budget,
    canonical,
    comparability_key,
    data_settings,
    engine_settings,
    protocol_settings,
    qualify,
    recipe_settings,
    variant,
)
from harness.results.records import MEASURES, TOP1, Record, migrate
from harness.results.stats import ALPHA, summarize, welch_p

METRICS = TOP1  # --metric -> the top-1 it reads


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
    p_value: float | None = None  # Welch's t-test against the reference row of the same group (collect's against)
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
    left_out: list[str] = field(default_factory=list)  # "<file> (no top1_best)": ok records without the top-1


def record_file(record: Record) -> str:
    path = record.get("_path")
    return PurePath(path).name if path else f"run {str(record.get('run_key', '?'))[:8]}"


def reference_row(r: Row, candidates: list[Row]) -> Row | None:
    """The row ``r`` is compared with among ``candidates`` (the reference method's rows without options in
    r's group): the one with r's teacher, else the one without a teacher, else the only one; None where
    several teachers' rows are candidates and none is r's (no guess)."""
    by_teacher = {c.teacher_arch: c for c in candidates}
    if r.teacher_arch in by_teacher:
        return by_teacher[r.teacher_arch]
    if None in by_teacher:
        return by_teacher[None]
    return candidates[0] if len(candidates) == 1 else None


def check_against(rows: list[Row], against: str | None) -> None:
    """A UsageError naming the methods present when ``against`` (a method named on purpose, as ``--against``)
    has no row without options in any group; None (the baseline where there is one) never fails."""
    if against is None or not rows or any(r.method == against and not r.variant for r in rows):
        return
    methods = ", ".join(sorted({r.method for r in rows if not r.variant}))
    raise UsageError(f"--against {against}: no table has a {against} row (without options); methods: {methods}")


def collect(records: Iterable[Record], metric: str = "last", against: str | None = None) -> Aggregation:
    """Group records by :func:`comparability_key`, drop duplicates, aggregate each method over seeds, and give
    each row its Δ and Welch's p against the row of method ``against`` in its group (:func:`reference_row`;
    None: the baseline, where there is one; a named method that no group has is a UsageError)."""
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
        devices = sorted(
            {
                f"{d.get('name') or '?'} ({d.get('type', '?')}, {d.get('threads', '?')} thread(s))"
                for r in recs
                if (r["metrics"].get("latency_ms") or {}).get("batch1") is not None
                for d in [r.get("device") or {}]
            }
        )
        groups[gkey] = Group(
            key=gkey,
            arch=first["arch"],
            budget=budget(first),
            data=data_settings(first),
            recipe=recipe_settings(first),
            engine=engine_settings(first),
            protocol=protocol_settings(first),
            sources=tuple(sorted({r["dataset"].get("source") or "" for r in recs} - {""})),
            devices=tuple(devices),
        )
    groups = qualify(groups)
    rows: dict[tuple, Row] = {}
    duplicates: list[Duplicate] = []
    left_out: list[str] = []
    for gkey, by_seed in buckets.items():
        group = groups[gkey]
        for (method, var, teacher, seed), recs in sorted(by_seed.items(), key=lambda kv: canonical(kv[0])):
            recs = sorted(recs, key=lambda r: (str(r.get("created") or ""), record_file(r)))
            rec = recs[-1]  # the newest
            row = rows.setdefault(
                (gkey, method, var, teacher), Row(group=group, method=method, variant=var, teacher_arch=teacher)
            )
            if len(recs) > 1:
                ignored = [record_file(r) for r in recs[:-1]]
                dup = Duplicate(group, method, var, teacher, seed, record_file(rec), ignored)
                duplicates.append(dup)
                row.duplicates.append(dup)
            metrics: Mapping[str, Any] = rec["metrics"]
            value = metrics.get(key_name)
            if value is None:
                left_out.append(f"{record_file(rec)} (no {key_name})")
                continue
            row.add(seed, value, rec)
    out = [r for r in rows.values() if r.values]
    check_against(out, against)
    reference = against or "baseline"
    base = {r.group.key: r for r in out if r.method == "baseline" and not r.variant and not r.teacher_arch}
    candidates: dict[tuple, list[Row]] = {}
    for r in out:
        if r.method == reference and not r.variant:
            candidates.setdefault(r.group.key, []).append(r)
    for r in out:
        ref = reference_row(r, candidates.get(r.group.key, []))
        if ref is not None and r is not ref:
            r.delta = r.mean - ref.mean
            r.p_value = welch_p(r.values, ref.values)
        b = base.get(r.group.key)  # sizes stay relative to the baseline: they are about the deployed model
        if b is not None:
            r.params_x_baseline = _ratio(r.params, b.params)
            r.macs_x_baseline = _ratio(r.macs, b.macs)
    ordered_groups = sorted(
        {r.group.key: r.group for r in out}.values(), key=lambda g: (g.dataset, g.arch, g.budget, g.qualifier, g.id)
    )
    position = {g.key: i for i, g in enumerate(ordered_groups)}
    order = {reference: 0}  # the reference rows first
    out.sort(key=lambda r: (position[r.group.key], order.get(r.method, 1), r.method, r.variant, r.teacher_arch or ""))
    return Aggregation(ordered_groups, out, duplicates, not_ok, left_out)


def aggregate(records: Iterable[Record], metric: str = "last") -> list[Row]:
    """The rows of :func:`collect`: one per (group, method, variant, teacher), aggregated over seeds."""
    return collect(records, metric).rows
