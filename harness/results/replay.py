"""Exact replay: what of a record must come out bit for bit the same on the same platform, and where two runs
first went apart.

A record's *trace* (:func:`trace`) holds, for every stage upstream first, the per-epoch numbers of its
history (losses, accuracies, learning rate; never timings) at full precision and the digest of its trained
weights, then the deployed model's metrics (top-1, parameters, MACs; never latencies). Its *setup*
(:func:`setup`) is what was run: architecture, teacher, method and options, data, recipe and selection.
:func:`first_divergence` walks two traces in the order the numbers were computed (stage by stage, epoch by
epoch, within an epoch the learning rate, the training numbers, then the evaluation) and returns the first
number that differs, so that a failure names its cause rather than its consequences.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from harness.results.records import Record
from harness.results.grouping import data_settings, protocol_settings, recipe_settings

#: History fields that measure time, not what was computed: never compared.
TIMING = re.compile(r"(seconds|_per_s|_ms)$")
#: Metrics that are measurements of the machine, not of the model: never compared.
UNREPLAYED_METRICS = ("latency_ms",)


def _rank(name: str) -> tuple[int, str]:
    """Within an epoch, the order numbers were computed: epoch, lr, the training loss and its parts,
    training accuracy, then validation and test (losses before accuracies), anything else last."""
    fixed = ("epoch", "lr", "train_loss")
    if name in fixed:
        return fixed.index(name), name
    for i, prefix in enumerate(("train_", "val_", "test_")):
        if name.startswith(prefix):
            return 3 + 2 * i + name.endswith("_acc"), name
    return 9, name


def numbers(row: dict[str, Any]) -> dict[str, Any]:
    """The computed numbers of one history row (no timings), in the order they were computed."""
    kept = {k: v for k, v in row.items() if not TIMING.search(k) and _comparable(v)}
    return {k: kept[k] for k in sorted(kept, key=_rank)}


def _comparable(value: Any) -> bool:
    return value is None or isinstance(value, (int, float, str))


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def trace(record: Record) -> dict[str, Any]:
    """The numbers of ``record`` an exact replay compares: ``{"stages": [{"label", "digest", "curves"}],
    "metrics": {...}}``. A record written before stages carried their curves gives its deployed stage the
    record's ``curves`` and the others none (an exact check of such records can still compare digests)."""
    stages = []
    for label, entry in (record.get("stages") or {}).items():
        curves = entry.get("curves")
        if curves is None:
            curves = record.get("curves") if entry.get("artifact") == record.get("run_key") else []
        stages.append({"label": label, "digest": entry.get("digest"), "curves": [numbers(row) for row in curves or []]})
    metrics = {k: v for k, v in (record.get("metrics") or {}).items() if k not in UNREPLAYED_METRICS}
    return {"stages": stages, "metrics": _flat(metrics)}


def setup(record: Record) -> dict[str, Any]:
    """What was run (not how fast, nor where): the same for two records of one reference row, or the two
    were not the same experiment."""
    method = record["method"]
    return {
        "arch": record["arch"],
        "teacher": (record.get("teacher") or {}).get("arch") or "",
        "method": {"name": method.get("name"), "options": method.get("options") or {}},
        "data": data_settings(record),
        "recipe": recipe_settings(record),
        "protocol": protocol_settings(record),
    }


def setup_differences(reference: dict[str, Any], now: dict[str, Any], *, skip: tuple[str, ...] = ()) -> list[str]:
    """``["recipe.weight_decay 0.0005 vs 0.0", ...]``: every setting that differs (sections in ``skip``
    left out, e.g. ``data`` under ``--dataset-as``)."""
    a, b = (
        _flat({k: v for k, v in reference.items() if k not in skip}),
        _flat({k: v for k, v in now.items() if k not in skip}),
    )
    return [f"{k} {a.get(k)!r} vs {b.get(k)!r}" for k in sorted(set(a) | set(b)) if not same(a.get(k), b.get(k))]


def same(a: Any, b: Any) -> bool:
    """Equal as computed values: numbers bit for bit (``1 == 1.0``; NaN equals NaN), others by type and value."""
    if _number(a) and _number(b):
        return a == b or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


MISSING = "(missing)"


@dataclass(frozen=True)
class Divergence:
    """Where two runs first went apart: ``stage`` and ``epoch`` are None for a metric of the deployed model
    (``stage`` alone for a stage's weights)."""

    seed: int
    stage: str | None
    epoch: int | None
    number: str
    reference: Any
    now: Any

    def text(self) -> str:
        where = [f"seed {self.seed}"]
        if self.stage is not None:
            where.append(f"stage {self.stage}")
        if self.epoch is not None:
            where.append(f"epoch {self.epoch}")
        return f"{', '.join(where)}, {self.number}: reference {_show(self.reference)} vs now {_show(self.now)}"


def _show(value: Any) -> str:
    return MISSING if value is MISSING else repr(value)


def first_divergence(seed: int, reference: dict[str, Any], now: dict[str, Any]) -> Divergence | None:
    """The first number of trace ``now`` that differs from ``reference``, in the order they were computed;
    None when the traces are equal."""
    ref_stages, now_stages = reference.get("stages") or [], now.get("stages") or []
    for i in range(max(len(ref_stages), len(now_stages))):
        a = ref_stages[i] if i < len(ref_stages) else None
        b = now_stages[i] if i < len(now_stages) else None
        if a is None or b is None or a["label"] != b["label"]:
            return Divergence(
                seed, None, None, f"stage {i + 1}", a["label"] if a else MISSING, b["label"] if b else MISSING
            )
        found = _curve_divergence(seed, a, b)
        if found is not None:
            return found
        if a.get("digest") != b.get("digest"):
            return Divergence(seed, a["label"], None, "weights digest", a.get("digest"), b.get("digest"))
    return _values_divergence(seed, None, None, reference.get("metrics") or {}, now.get("metrics") or {})


def _curve_divergence(seed: int, a: dict[str, Any], b: dict[str, Any]) -> Divergence | None:
    ca, cb = a.get("curves") or [], b.get("curves") or []
    for e in range(max(len(ca), len(cb))):
        ra = ca[e] if e < len(ca) else None
        rb = cb[e] if e < len(cb) else None
        if ra is None or rb is None:
            return Divergence(
                seed,
                a["label"],
                e + 1,
                "epoch",
                MISSING if ra is None else "recorded",
                MISSING if rb is None else "recorded",
            )
        found = _values_divergence(seed, a["label"], e + 1, ra, rb)
        if found is not None:
            return found
    return None


def _values_divergence(
    seed: int, stage: str | None, epoch: int | None, a: dict[str, Any], b: dict[str, Any]
) -> Divergence | None:
    names = list(a) + [k for k in b if k not in a]
    for name in sorted(names, key=_rank) if epoch is not None else names:
        va, vb = a.get(name, MISSING), b.get(name, MISSING)
        if va is MISSING or vb is MISSING or not same(va, vb):
            return Divergence(seed, stage, epoch, name, va, vb)
    return None


def count(trace_: dict[str, Any]) -> tuple[int, int, int]:
    """(stages, epochs, numbers) of a trace: what an exact pass compared."""
    stages = trace_.get("stages") or []
    epochs = sum(len(s.get("curves") or []) for s in stages)
    values = (
        sum(len(row) for s in stages for row in s.get("curves") or []) + len(stages) + len(trace_.get("metrics") or {})
    )
    return len(stages), epochs, values
