"""`bench check`: a CI gate. Compares records with a reference and fails on a regression, in one of two modes.

**Exact** (a JSON reference saved with ``bench check --save-reference FILE.json``, checked on the platform
it was saved on): every seed's replay trace (:mod:`harness.results.replay`: every stage's per-epoch losses
and accuracies, its weights digest, the deployed model's metrics) must equal the reference's bit for bit; a
row fails on any difference, in either direction, and says where the runs first diverged.

**Statistical** (another platform, a CSV reference of means, or ``--mode statistical``): per row, the
measured seeds against the reference's. Two-sided by default (a benchmark must reproduce, not improve):
Student's t-test with the seed spread pooled from both sides (under the null hypothesis that nothing
changed, both are draws of one distribution; with one measured seed it is the reference spread's prediction
interval), on the checked top-1 and, for a JSON reference, on the deployed stage's final test loss and
every stage's per-epoch training curves (train loss and accuracy, a method's own loss terms: one test per
epoch of each curve, or with ``--curves mean`` one per curve on its mean over the epochs; ``--curves off``
tests the deployed stage's final train and test losses instead); the family of tests of one check holds
``alpha`` together (Bonferroni). A measured seed that the reference also holds is compared with the reference's other
seeds (:func:`independent_seeds`: a run of the same seed is not an independent draw). Each stage's learning rate per
epoch, a function of the recipe alone, is compared like the model's size: any difference fails. ``--direction down``
fails only on a significant top-1 drop; ``--tolerance T`` replaces the top-1 test by a band of ±T points (or -T for
``down``). Each row says the smallest shift it detects with 80% probability at its seed counts (see
:meth:`harness.results.stats.ShiftTest.detectable`), so that a pass says how much it rules out. Without
any seed spread (one value on each side) a row falls back to a ±1 point band and says so.

Either mode fails a row whose records were run with another setup than the reference's (method options,
recipe, data, selection; :func:`harness.results.replay.setup`), and a reference row with no record.

``--metric`` selects which top-1 of the records is checked (``top1_last`` or ``top1_best``; by default the
reference rows' ``protocol``, else last); checking one protocol against reference rows measured with the
other (e.g. ``--metric last`` against Table 4's best-epoch numbers) is refused with one line; a reference that
mixes the two (the CRD table) is checked one protocol at a time (:func:`protocol_rows`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from harness.core.errors import UsageError
from harness.core.io import atomic_write_text
from harness.results import fingerprint, replay
from harness.results.records import Record, now_iso, versions
from harness.results.reference import (
    COLUMNS,
    FORMAT,
    FORMAT_VERSION,
    TOP1,
    RefValue,
    SeedRun,
    load_file,
)
from harness.results.stats import ALPHA, POWER, ShiftTest, shift_test, summarize
from harness.results.aggregation import METRICS, Row, aggregate

MODES = ("auto", "exact", "statistical")
#: How the statistical mode tests the per-epoch training curves: ``epochs`` (the default): one test per epoch
#: of every curve, against the reference seeds' spread at that epoch (the epochs of a curve are correlated from
#: seed to seed, so their mean is hardly less noisy than one epoch, and their spreads differ: the mean would
#: drown a shift at a quiet epoch in a loud one's noise; see docs/ci.md); ``mean``: one test per curve (a
#: stage's train loss, accuracies, ...) on its mean over the epochs; ``off``: none (the final top-1 and losses
#: only).
CURVE_TESTS = ("mean", "epochs", "off")
#: Curve columns that are not measurements: the epoch number, and the learning rate (a function of the recipe
#: compared exactly, see :func:`schedule_differences`).
NOT_MEASURED = ("epoch", "lr")
#: Curve columns measured on held-out images. Tested at the deployed stage's final epoch only: at the early
#: epochs of a short, high-learning-rate training they are heavy-tailed, not normal (a harmless change of
#: memory format moved KD's epoch-1 test loss to 2.50 against 2.01-2.14 over 8 reference seeds: a false
#: alarm of the t-test), while the training columns average thousands of samples per epoch.
EVALUATION_COLUMNS = ("test_", "val_")
#: The band a row falls back to when no seed spread is known and no --tolerance is given (the old default).
FALLBACK_TOLERANCE = 1.0
#: Numbers tested besides the top-1 in the two-sided statistical mode: the deployed stage's final epoch.
LOSSES = {"train_loss": "train loss", "test_loss": "test loss"}


@dataclass(frozen=True)
class Settings:
    """How ``bench check`` decides: its mode and the statistical mode's parameters."""

    mode: str = "auto"
    alpha: float = ALPHA
    direction: str = "both"
    tolerance: float | None = None
    dataset_as: str | None = None
    curves: str = "epochs"  # how the two-sided statistical mode tests every stage's curves: CURVE_TESTS
    #: The declared defaults of a method's options, by method name (``bench check`` gives the registry's):
    #: an option that a reference's setup lacks is taken as its setup when a record has it at its default
    #: (an option added since, whose default keeps the method as it was; the exact mode then replays it bit
    #: for bit). None: every option a reference lacks is a setup difference.
    option_defaults: Callable[[str], Mapping[str, Any]] | None = None


@dataclass
class CheckRow:
    ref: RefValue
    row: Row | None
    group: str = ""  # the group's title, when records of several non-comparable groups match the reference row
    passed: bool = False
    text: str = ""  # what was compared and how it came out (set by the check)
    mode: str = ""  # exact or statistical: how this row was decided

    @property
    def name(self) -> str:
        teacher = f" <- {self.ref.teacher}" if self.ref.teacher else ""
        variant = f" [{self.ref.variant}]" if self.ref.variant else ""
        where = f" ({self.group})" if self.group else ""
        return f"{self.ref.dataset}/{self.ref.arch}{teacher}/{self.ref.method}{variant}{where}"

    @property
    def measured(self) -> float | None:
        return self.row.mean if self.row else None

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.text}"


@dataclass
class Check:
    """The outcome of one ``bench check``: its rows, the mode it ran in and why (``notes``: one line each)."""

    rows: list[CheckRow]
    mode: str
    notes: list[str] = field(default_factory=list)
    tests: int = 0  # statistical tests sharing alpha
    alpha: float = ALPHA

    @property
    def failed(self) -> int:
        return sum(not r.passed for r in self.rows)

    def summary(self) -> str:
        if not self.tests:
            return ""
        return (
            f"statistical: alpha {self.alpha:g} over {self.tests} test(s) (Bonferroni: {self.alpha / self.tests:.2g} "
            f"each); 'detects' = the smallest true shift failed with {POWER:.0%} probability"
        )


def row_key(dataset: str, arch: str, teacher: str, method: str, variant: str) -> tuple:
    return dataset, arch, teacher or "", method, variant or ""


EPOCH_PROTOCOLS = ("last", "best")


def check_metric(reference: list[RefValue], metric: str | None) -> str:
    """The metric to check: ``metric``, or the top-1 rows' protocol when they share one (else ``last``). A
    last/best metric that contradicts a row's last/best protocol is a UsageError, unless the reference mixes
    the two protocols (:func:`protocol_rows` then keeps the rows of the checked one)."""
    protocols = sorted({v.protocol for v in reference if v.metric == "top1" and v.protocol in EPOCH_PROTOCOLS})
    if metric is None:
        return protocols[0] if len(protocols) == 1 else "last"
    other = (
        next(
            (
                v
                for v in reference
                if v.metric == "top1"
                and v.protocol in EPOCH_PROTOCOLS
                and metric in EPOCH_PROTOCOLS
                and v.protocol != metric
            ),
            None,
        )
        if len(protocols) < 2
        else None
    )
    if other is not None:
        raise UsageError(
            f"--metric {metric} checks the {metric}-epoch top-1, but the reference row "
            f"{other.where} ({other.method}) was measured at the {other.protocol} epoch "
            f"(protocol '{other.protocol}'): pass --metric {other.protocol}, or leave --metric out"
        )
    return metric


def seed_values(record: Record) -> dict[str, float]:
    """The numbers of one seed a reference keeps for the statistical mode: the top-1 of each protocol and the
    deployed stage's final train and test losses (full precision)."""
    metrics = record.get("metrics") or {}
    last = (record.get("curves") or [{}])[-1]
    values = {key: metrics.get(key) for key in (*TOP1.values(), METRICS["selected"])}
    values.update({key: last.get(key) for key in LOSSES})
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float))}


def protocol_rows(reference: list[RefValue], metric: str) -> tuple[list[RefValue], list[RefValue]]:
    """(the rows checked with ``metric``, the top-1 rows left out): a reference that mixes last- and best-epoch
    top-1 rows (the CRD table: RepDistiller's rows are last-epoch, mdistiller's DKD rows best-epoch) is checked
    one protocol at a time, so that no row is compared with the other protocol's top-1."""
    if metric not in EPOCH_PROTOCOLS:
        return reference, []
    other = [v for v in reference if v.metric == "top1" and v.protocol in EPOCH_PROTOCOLS and v.protocol != metric]
    return [v for v in reference if all(v is not o for o in other)], other


# ---- pairing records with reference rows ----------------------------------------------------------------


def pair(records: list[Record], reference: list[RefValue], metric: str, dataset_as: str | None) -> list[CheckRow]:
    """One check row per top-1 reference row and comparable group of records: records that are not
    comparable (other data size, recipe, engine, selection; see
    :func:`~harness.results.grouping.comparability_key`) are never averaged into one measurement."""
    by_key: dict[tuple, list[Row]] = {}
    for r in aggregate(records, metric):
        by_key.setdefault(_key(r, dataset_as), []).append(r)
    out = []
    for ref in reference:
        if ref.metric != "top1":
            continue
        rows = by_key.get(row_key(ref.dataset, ref.arch, ref.teacher, ref.method, ref.variant), [])
        if not rows:
            out.append(CheckRow(ref, None, text=f"no record (reference {ref.value:.2f})"))
        for r in rows:
            out.append(CheckRow(ref, r, r.group.title if len(rows) > 1 else ""))
    return out


def _key(r: Row, dataset_as: str | None = None) -> tuple:
    return row_key(dataset_as or r.group.dataset, r.group.arch, r.teacher_arch or "", r.method, r.variant)


# ---- the check --------------------------------------------------------------------------------------------


def compare(
    records: list[Record], reference: list[RefValue], *, metric: str | None = "last", settings: Settings = Settings()
) -> Check:
    """Check ``records`` against ``reference`` (see the module docstring); ``metric`` as :func:`check_metric`."""
    metric = check_metric(reference, metric)
    reference, _ = protocol_rows(reference, metric)
    rows = pair(records, reference, metric, settings.dataset_as)
    mode, notes = choose_mode(rows, settings)
    check = Check(rows, mode, notes, alpha=settings.alpha)
    pending: list[CheckRow] = []
    added: set[str] = set()
    for c in rows:
        c.mode = mode
        if c.row is None:
            continue
        differs = setup_differences(c, settings, added)
        if differs:
            c.text = (
                f"setup differs from the reference's: {differs[0]}"
                + (f" (and {len(differs) - 1} more)" if len(differs) > 1 else "")
                + ": these are not the reference's runs"
            )
            continue
        unknown = sorted(set(c.row.seeds) - {s.seed for s in c.ref.seeds})
        if mode == "exact" and not unknown:
            exact(c)
            continue
        c.mode = "statistical"
        if mode == "exact":
            c.text = f"seed(s) {','.join(map(str, unknown))} not in the reference, statistical check: "
        differs = structure_differences(c)
        schedule = [] if differs else schedule_differences(c)
        if differs or schedule:
            c.text += (
                f"model differs from the reference's: {differs[0]}"
                if differs
                else f"training schedule differs from the reference's: {schedule[0]}"
            )
        else:
            pending.append(c)
    if added:
        check.notes.append(
            f"options added since the reference, at their defaults, taken as its setup: {', '.join(sorted(added))}"
        )
    seen: set[tuple[float, ...]] = set()  # curve series tested already, shared by the rows
    planned = [(c, statistical_plan(c, metric, settings, seen)) for c in pending]
    check.tests = sum(1 for _, plan in planned for _, _, _, tol in plan if tol is None)
    left = sorted(
        {s.seed for c in pending for s in c.ref.seeds} - {s.seed for c in pending for s in independent_seeds(c)}
    )
    if left:
        check.notes.append(
            f"measured seed(s) {','.join(map(str, left))} left out of the reference seeds they are "
            f"compared with: a run of the same seed shares its initialisation and data order, it is "
            f"not an independent draw"
        )
    for c, plan in planned:
        statistical(c, plan, settings, settings.alpha / max(check.tests, 1))
    return check


def choose_mode(rows: list[CheckRow], settings: Settings) -> tuple[str, list[str]]:
    """``exact`` when asked or allowed (``auto``) and possible: a reference with per-seed traces and the
    platform of every record equal to the reference's; else ``statistical``, with one line saying why."""
    refs = [c.ref for c in rows]
    name = refs[0].where.split(":")[0] if refs else "the reference"
    if settings.mode == "statistical":
        return "statistical", []
    if not all(r.per_seed for r in refs):
        if settings.mode == "exact":
            raise UsageError(
                f"--mode exact needs a reference with every seed's values, saved with bench check "
                f"--save-reference FILE.json; {name} holds means only"
            )
        return "statistical", [f"{name} has no per-seed values (means only): statistical mode against its means"]
    platform = refs[0].platform or {}
    measured = [fingerprint.of_record(r) for c in rows for r in (c.row.records if c.row else [])]
    mixed = profile_mix(measured)
    if mixed:
        return "statistical", [f"{mixed}: statistical mode, not exact"]
    for now in measured:
        differs = fingerprint.differences(platform, now)
        if differs:
            ref_profile, now_profile = (sorted(fingerprint.profiles([p])) for p in (platform, now))
            why = (
                f"the reference was computed under numerics '{ref_profile[0]}' and the records under "
                f"'{now_profile[0]}' (rerun with --numerics {ref_profile[0]}, or save a reference under "
                f"'{now_profile[0]}')"
                if ref_profile != now_profile
                else f"platform differs from the reference's ({'; '.join(differs)})"
            )
            return "statistical", [f"{why}: statistical mode, not exact"]
    compared = (
        "both pinned: compared the numerics profile, the torch build and the thread count, not the CPU model"
        if measured and fingerprint.portable_pair(platform, measured[0])
        else "compared the CPU model and its numerical libraries' instruction sets"
    )
    return "exact", [f"platform matches the reference's ({describe_platform(platform)}; {compared}): exact mode"]


def profile_mix(measured: list[dict]) -> str | None:
    """``the records mix numerics profiles (native, portable)`` when they do, else None."""
    names = fingerprint.profiles(measured)
    if len(names) > 1:
        return f"the records mix numerics profiles ({', '.join(sorted(names))}); check each profile's apart"
    return None


describe_platform = fingerprint.describe


def added_options(reference: Mapping[str, Any], now: dict[str, Any], settings: Settings) -> list[str]:
    """The options of ``now``'s method (a record's setup) that ``reference`` (a reference row's setup) lacks and
    that are at their declared default (:attr:`Settings.option_defaults`): options added to the method since
    the reference was saved, which leave it as it was."""
    if settings.option_defaults is None or (reference.get("method") or {}).get("name") != now["method"]["name"]:
        return []
    before = (reference.get("method") or {}).get("options") or {}
    declared = settings.option_defaults(now["method"]["name"])
    return [
        k
        for k, v in now["method"]["options"].items()
        if k not in before and k in declared and replay.same(v, declared[k])
    ]


def setup_differences(c: CheckRow, settings: Settings, added: set[str] | None = None) -> list[str]:
    """Every setting of the row's records that differs from the reference row's; options added since the
    reference at their defaults (:func:`added_options`) are left out and named in ``added``."""
    if c.ref.setup is None or c.row is None:
        return []
    skip = ("data",) if settings.dataset_as else ()
    for record in c.row.records:
        now = replay.setup(record)
        new = added_options(c.ref.setup, now, settings)
        if new:
            now["method"] = {
                **now["method"],
                "options": {k: v for k, v in now["method"]["options"].items() if k not in new},
            }
            if added is not None:
                added.update(f"{now['method']['name']}.{k}" for k in new)
        differs = replay.setup_differences(dict(c.ref.setup), now, skip=skip)
        if differs:
            return differs
    return []


#: Numbers of the deployed model that no platform changes: compared exactly in the statistical mode too.
STRUCTURE = ("params_deployed", "params_extra", "macs", "flops")


def structure_differences(c: CheckRow) -> list[str]:
    """``["params_deployed 78042 vs 79114"]``: the deployed model's size and cost against the reference's
    (a JSON reference; they do not depend on the platform, so any difference is a changed model)."""
    if not c.ref.seeds or c.row is None:
        return []
    before = c.ref.seeds[0].trace.get("metrics") or {}
    for record in c.row.records:
        now = record.get("metrics") or {}
        differs = [
            f"{k} {before[k]!r} vs {now.get(k)!r}"
            for k in STRUCTURE
            if k in before and not replay.same(before[k], now.get(k))
        ]
        if differs:
            return differs
    return []


def schedule_differences(c: CheckRow) -> list[str]:
    """``["stage 'train': lr at epoch 3 0.0125 vs 0.0"]``: every stage's learning rate per epoch against the
    reference's, and its stages and epoch counts. The schedule is a function of the recipe alone, the same
    on every platform up to the last bits of ``math.cos`` (compared to a relative 1e-9), so any difference is
    a changed schedule or training plan, never noise."""
    if not c.ref.seeds or c.row is None:
        return []
    before = _stage_curves(c.ref.seeds[0].trace)
    for record in c.row.records:
        now = _stage_curves(replay.trace(record))
        if list(now) != list(before):
            return [f"stages {list(now)} vs the reference's {list(before)}"]
        for label, rows in before.items():
            if len(now[label]) != len(rows):
                return [f"stage '{label}': {len(now[label])} epoch(s) vs the reference's {len(rows)}"]
            for a, b in zip(rows, now[label]):
                lr_a, lr_b = a.get("lr"), b.get("lr")
                if isinstance(lr_a, (int, float)) and not (
                    isinstance(lr_b, (int, float)) and math.isclose(lr_a, lr_b, rel_tol=1e-9, abs_tol=1e-12)
                ):
                    return [f"stage '{label}': lr at epoch {a.get('epoch')} {lr_b!r} vs the reference's {lr_a!r}"]
    return []


def _stage_curves(trace: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {str(stage.get("label")): list(stage.get("curves") or []) for stage in trace.get("stages") or []}


def exact(c: CheckRow) -> None:
    """Every measured seed's trace against the reference's, bit for bit; the first divergence fails the row."""
    assert c.row is not None
    by_seed = {s.seed: s for s in c.ref.seeds}
    for seed, record in sorted(zip(c.row.seeds, c.row.records), key=lambda sr: sr[0]):
        now = replay.trace(record)
        found = replay.first_divergence(seed, dict(by_seed[seed].trace), now)
        if found is not None:
            c.passed, c.text = False, f"exact: first divergence at {found.text()}"
            return
    stages, epochs, numbers = replay.count(now)
    seeds = ",".join(map(str, sorted(c.row.seeds)))
    c.passed = True
    c.text = (
        f"exact: seed(s) {seeds} identical to the reference ({stages} stage(s), {epochs} epoch(s), "
        f"{numbers} numbers each); top-1 {c.row.mean:.2f}"
    )


Plan = list[tuple[str, list[float], list[float], float | None]]  # (label, reference values, now values, band)

#: The fewest reference seeds a row is compared with when its measured seeds are left out of them
#: (:func:`independent_seeds`): below it, the row keeps every reference seed (a spread needs 2).
FEWEST_INDEPENDENT = 2


def independent_seeds(c: CheckRow) -> tuple[SeedRun, ...]:
    """The reference seeds a row's measured seeds are compared with in the statistical mode: the reference's
    seeds other than the measured ones. A run with a seed the reference also holds shares that reference run's
    initialisation, data order and augmentation draws (they come from the seeded CPU generator, on any
    platform), so it is not an independent draw from the reference's distribution, which the t-test assumes:
    kept in, the twin pulls the reference towards the measured run and the test passes more than it should
    (a run compared partly with itself). Left out, the measured seed is an independent draw from the others,
    and the false-alarm rate is exactly what the test says, and measurable: treating each reference seed in turn
    as the CI run against the others (``benchmarks/gate_null.py``) is then the check as it runs. When fewer
    than :data:`FEWEST_INDEPENDENT` seeds would remain (a CI run of every reference seed), all are kept."""
    assert c.row is not None
    measured = set(c.row.seeds)
    others = tuple(s for s in c.ref.seeds if s.seed not in measured)
    return others if len(others) >= FEWEST_INDEPENDENT else tuple(c.ref.seeds)


def statistical_plan(c: CheckRow, metric: str, settings: Settings, seen: set[tuple[float, ...]] | None = None) -> Plan:
    """What the statistical mode tests of a row: the top-1, and for a two-sided check of a JSON reference
    (no --tolerance) the final losses; each as (label, reference values, measured values, band or None)."""
    assert c.row is not None
    ref, key = c.ref, METRICS[metric]
    seeds = independent_seeds(c)
    reference = [s.values[key] for s in seeds if key in s.values] if ref.per_seed else [ref.value]
    band = settings.tolerance
    spread = len(reference) > 1 and len(set(reference)) > 1 or len(set(c.row.values)) > 1
    if band is None and not spread:
        band = FALLBACK_TOLERANCE
    plan: Plan = [("top-1", reference, list(c.row.values), band)]
    if ref.per_seed and settings.direction == "both" and settings.tolerance is None:
        for name, label in LOSSES.items():
            if name == "train_loss" and settings.curves != "off":
                continue  # the deployed stage's train loss is one of the curves
            before = [s.values[name] for s in seeds if name in s.values]
            now = [v for r in c.row.records if (v := seed_values(r).get(name)) is not None]
            if len(before) > 1 and len(set(before)) > 1 and now:
                plan.append((label, before, now, None))
        if settings.curves != "off":
            plan += curve_plan(c, settings.curves, seen if seen is not None else set())
    return plan


def curve_plan(c: CheckRow, how: str, seen: set[tuple[float, ...]]) -> Plan:
    """The curves' tests of a row: for every stage and every training curve column (train loss, train
    accuracy, a method's own terms; not the held-out columns, see :data:`EVALUATION_COLUMNS`) with a spread
    over the reference seeds, one test of its mean over the epochs (``mean``) or one per epoch (``epochs``),
    measured seeds against reference seeds. A series whose reference values were tested already (``seen``:
    the train CE of a method whose loss is the CE; a stage shared by two rows, such as the baseline that
    EncodeNet starts from) is tested once."""
    assert c.row is not None
    before = [_series(_stage_curves(s.trace), how) for s in independent_seeds(c)]
    now = [_series(_stage_curves(replay.trace(r)), how) for r in c.row.records]
    plan: Plan = []
    for label in before[0]:
        reference = [series[label] for series in before if label in series]
        measured = [series[label] for series in now if label in series]
        if len(reference) < 2 or len(set(reference)) < 2 or not measured or tuple(reference) in seen:
            continue
        seen.add(tuple(reference))
        plan.append((label, reference, measured, None))
    return plan


def _series(stages: dict[str, list[dict]], how: str) -> dict[str, float]:
    """``{"baseline[resnet8] train_loss (mean of 3 epochs)": 1.97, ...}`` or, for ``epochs``,
    ``{"baseline[resnet8] train_loss at epoch 1": 2.13, ...}``: the numbers of one seed that the curve
    tests compare."""
    out: dict[str, float] = {}
    for label, rows in stages.items():
        columns = [
            k
            for k in dict.fromkeys(k for row in rows for k in row)
            if k not in NOT_MEASURED and not k.startswith(EVALUATION_COLUMNS)
        ]
        for column in columns:
            epochs = [row.get("epoch") for row in rows]
            values = [v for row in rows if isinstance(v := row.get(column), (int, float)) and math.isfinite(v)]
            if len(values) < len(rows):
                continue
            if how == "mean":
                out[f"{label} {column} (mean of {len(values)} epochs)"] = math.fsum(values) / len(values)
            else:
                out.update({f"{label} {column} at epoch {epoch}": float(v) for epoch, v in zip(epochs, values)})
    return out


def statistical(c: CheckRow, plan: Plan, settings: Settings, alpha: float) -> None:
    assert c.row is not None
    parts, failed = [], False
    runs = int(c.ref.runs) if c.ref.runs.isdigit() else None
    curves_within: list[float] = []  # the p of each curve test that passed: summarised in one part
    for label, reference, now, band in plan:
        direction = settings.direction if label == "top-1" else "both"
        test = shift_test(
            reference,
            now,
            reference_n=None if c.ref.per_seed else runs,
            alpha=alpha,
            direction=direction,
            tolerance=band,
        )
        failed |= test.failed
        if label in ("top-1", *LOSSES.values()) or test.failed:
            parts.append(describe_test(label, reference, now, test, settings, c.ref.per_seed))
        else:
            curves_within.append(test.p if test.p is not None else 1.0)
    if curves_within:
        parts.append(f"{len(curves_within)} curve test(s) within (smallest p {min(curves_within):.2g})")
    c.passed = not failed
    c.text += "; ".join(parts)


def describe_test(
    label: str, reference: list[float], now: list[float], test: ShiftTest, settings: Settings, per_seed: bool
) -> str:
    """``top-1 52.30 (n=1) vs 52.10 ± 0.80 (n=8): Δ +0.20, p 0.81, detects |Δ| ≥ 2.9``"""
    digits = 2 if label == "top-1" else 4
    ref = summarize(reference)
    ref_text = f"{ref.mean:.{digits}f}" + (f" ± {ref.std:.{digits}f} (n={ref.n})" if per_seed else "")
    head = f"{label} {summarize(now).mean:.{digits}f} (n={len(now)}) vs {ref_text}: Δ {test.delta:+.{digits}f}"
    sign = "|Δ|" if test.direction == "both" else "a drop"
    if test.tolerance is not None:
        band = f"±{test.tolerance:.2f}" if test.direction == "both" else f"-{test.tolerance:.2f}"
        why = (
            ""
            if settings.tolerance is not None
            else " (no seed spread on either side: the fallback band; pass --tolerance, or run 2+ seeds)"
        )
        head += f", {'outside the' if test.failed else 'within the'} band {band}{why}"
    else:
        head += f", p {test.p:.2g}" + (" (shifted)" if test.failed else "")
    mde = test.detectable()
    return head + (f", detects {sign} ≥ {mde:.{digits}f}" if mde is not None else ", power unknown (no seed spread)")


def junit(check: Check, suite: str) -> str:
    results = check.rows
    root = ET.Element("testsuite", name=suite, tests=str(len(results)), failures=str(check.failed), errors="0")
    props = ET.SubElement(root, "properties")
    ET.SubElement(props, "property", name="mode", value=check.mode)
    for r in results:
        case = ET.SubElement(root, "testcase", classname=suite, name=r.name)
        if not r.passed:
            ET.SubElement(case, "failure", message=r.line()).text = r.line()
        else:
            ET.SubElement(case, "system-out").text = r.line()
    if check.notes or check.summary():
        ET.SubElement(root, "system-out").text = "\n".join([*check.notes, check.summary()]).strip()
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# ---- saving a reference -------------------------------------------------------------------------------


def _rows_to_save(records: list[Record], metric: str) -> list[Row]:
    rows = aggregate(records, metric)
    if not rows:
        raise UsageError("no records to save as a reference")
    seen: dict[tuple, Row] = {}
    for r in rows:
        other = seen.setdefault(_key(r), r)
        if other is not r:
            raise UsageError(
                f"{r.method} on {r.group.dataset}/{r.group.arch} has records of non-comparable groups "
                f"('{other.group.title}' and '{r.group.title}'); a reference row holds one: save "
                f"each group's records separately"
            )
    return rows


def _source() -> str:
    return f"bench records, harness {versions()['harness']}, commit {versions()['git'] or 'unknown'}"


def save_reference(records: list[Record], path: Path, table: str, metric: str = "last") -> tuple[int, str]:
    """Write the records as a reference: ``FILE.json`` keeps every seed's values and replay trace, the setup
    and the platform (exact and statistical mode); ``FILE.csv`` only the means (statistical mode against
    means). Returns the number of rows and a line on what the file supports."""
    if metric not in TOP1:
        raise UsageError(f"a reference holds the top-1 of the last or best epoch; --metric {metric} is neither")
    if path.suffix == ".csv":
        return _save_csv(records, path, table, metric), "means only (CSV): statistical mode against the means"
    if path.suffix != ".json":
        raise UsageError(
            f"--save-reference {path}: name the file FILE.json (every seed, exact and statistical "
            f"mode) or FILE.csv (means only)"
        )
    rows = _rows_to_save(records, metric)
    platforms = {json.dumps(fingerprint.of_record(r), sort_keys=True) for row in rows for r in row.records}
    if len(platforms) > 1:
        a, b = (json.loads(p) for p in sorted(platforms)[:2])
        raise UsageError(
            f"the records were computed on more than one platform ({'; '.join(fingerprint.differences(a, b))}): "
            f"an exact reference is of one platform; save each platform's records separately"
        )
    platform = json.loads(platforms.pop())
    doc = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "table": table,
        "protocol": metric,
        "source": _source(),
        "created": now_iso(),
        "platform": platform,
        "rows": [_row_document(r) for r in rows],
    }
    atomic_write_text(path, json.dumps(doc, indent=1, allow_nan=True) + "\n")
    load_file(path)  # what we write must load
    if fingerprint.MIXED in platform:
        return len(rows), "the records' stages were computed on more than one platform: statistical mode only"
    unknown = [name for name, value in platform.items() if value == fingerprint.UNKNOWN]
    if unknown:
        return len(rows), (
            f"the records do not say their platform's {', '.join(unknown)} (written before bench "
            f"recorded it): statistical mode only"
        )
    return len(rows), f"every seed and its trace, platform {describe_platform(platform)}: exact mode there"


def _row_document(r: Row) -> dict:
    setups = [replay.setup(record) for record in r.records]
    if any(s != setups[0] for s in setups[1:]):
        raise UsageError(
            f"{r.method} on {r.group.dataset}/{r.group.arch}: its seeds were run with different "
            f"method options; save them separately"
        )
    seeds = [
        {"seed": seed, "values": seed_values(record), "trace": replay.trace(record)}
        for seed, record in sorted(zip(r.seeds, r.records), key=lambda sr: sr[0])
    ]
    return {
        "dataset": r.group.dataset,
        "arch": r.group.arch,
        "teacher": r.teacher_arch or "",
        "method": r.method,
        "variant": r.variant,
        "setup": setups[0],
        "seeds": seeds,
    }


def _save_csv(records: list[Record], path: Path, table: str, metric: str) -> int:
    """The records' means as a reference CSV (one row per dataset/arch/teacher/method/variant)."""
    rows = _rows_to_save(records, metric)
    buf = io.StringIO()
    buf.write(
        f"# Saved by bench check --save-reference from {len(records)} record(s); metric: top-1 ({metric} epoch).\n"
    )
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(
            [
                table,
                r.group.dataset,
                r.group.arch,
                r.teacher_arch or "",
                r.method,
                r.variant,
                "top1",
                f"{r.mean:.2f}",
                metric,
                len(r.values),
                _source(),
            ]
        )
    atomic_write_text(path, buf.getvalue())
    load_file(path)  # what we write must load
    return len(rows)
