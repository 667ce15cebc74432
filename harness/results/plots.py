"""Plots from records (matplotlib, PNG and SVG): the efficiency picture and training curves.

``efficiency``: top-1 against deployed parameters and against MACs (the headline cost), one point per method
(mean over seeds, std as error bars), one figure per comparable group (``grouping.comparability_key``), the
baseline marked with guides through it, so that a method that is better at the same size and one that is as
good at a smaller size (a compact model such as DCFF's) both show. ``robustness``: top-1 against distortion
level where records hold distorted evaluations. ``curves``: test accuracy and training loss per epoch of
every run.
``anytime``: for every multi-exit run (a record with ``info.anytime``, e.g. MSDNet trained by the
``anytime`` method), accuracy against MACs of each exit and of the budgeted-batch curve, beside the
single-exit runs of the same data, recipe and engine (one point per architecture and method).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402

from harness.results.labels import separate  # noqa: E402
from harness.results.records import Record, slug  # noqa: E402
from harness.data.datasets import display_name  # noqa: E402
from harness.data.distortions import KINDS  # noqa: E402
from harness.results.aggregation import Row, collect, distortion_names  # noqa: E402
from harness.results.grouping import comparability_key, group_id, variant  # noqa: E402


def _save(fig: Figure, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for p in paths:
        fig.savefig(p, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return paths


PANELS = (("params", 1e6, "deployed parameters (M)"), ("macs", 1e6, "MACs (M, multiply-accumulates)"))


def _is_baseline(row: Row) -> bool:
    return row.method == "baseline" and not row.variant and not row.teacher_arch


def _panel(ax: Axes, rows: list[Row], attr: str, scale: float, label: str, metric: str) -> list[Annotation]:
    """Top-1 against one cost; the baseline as a star with dashed guides through it: points above the
    horizontal guide are better at their size, points left of the vertical one are smaller. Returns the
    points' labels (:func:`harness.results.labels.separate` moves them apart once the layout is final)."""
    xs = [getattr(r, attr) / scale for r in rows]
    names = []
    for r, x in zip(rows, xs):
        base = _is_baseline(r)
        ax.errorbar(
            x,
            r.mean,
            yerr=r.std,
            fmt="*" if base else "o",
            markersize=11 if base else 6,
            color="black" if base else None,
            capsize=3,
            zorder=3 if base else 2,
        )
        names.append(
            ax.annotate(
                r.name, (x, r.mean), fontsize=7, xytext=(4, 3), textcoords="offset points", annotation_clip=False
            )
        )
        if base:
            ax.axhline(r.mean, color="black", linestyle="--", linewidth=0.8, alpha=0.5)
            ax.axvline(x, color="black", linestyle="--", linewidth=0.8, alpha=0.5)
    if min(xs) > 0 and max(xs) / min(xs) > 10:  # a compact model beside its baseline: log scale shows both
        ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel(f"top-1 (%), {metric} epoch")
    ax.grid(alpha=0.3)
    return names


def efficiency(records: list[Record], out: Path, metric: str = "last") -> list[Path]:
    """One figure per comparable group: top-1 against deployed parameters and against MACs."""
    agg = collect(records, metric)
    written: list[Path] = []
    for g in agg.groups:
        group = [r for r in agg.rows if r.group is g and r.params and r.macs]
        if not group:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        names = [_panel(ax, group, attr, scale, label, metric) for ax, (attr, scale, label) in zip(axes, PANELS)]
        note = "baseline = star; dashed lines through it: above = more accurate, left = smaller"
        fig.suptitle(f"{g.title}\n{g.data_text()}\n{note}", fontsize=9)
        fig.tight_layout(rect=(0, 0, 1, 0.85))
        for panel in names:
            separate(fig, panel)
        written += _save(fig, out / f"efficiency__{slug(g.dataset)}__{slug(g.arch)}__{slug(g.budget)}__{g.id}")
    return written


def robustness(records: list[Record], out: Path, metric: str = "last") -> list[Path]:
    """Per comparable group with distorted evaluations (``--eval-noise``): top-1 against the distortion level,
    one line per method and distortion kind, the clean accuracy at level 0."""
    agg = collect(records, metric)
    written: list[Path] = []
    for g in agg.groups:
        rows = [r for r in agg.rows if r.group is g and r.distorted]
        if not rows:
            continue
        kinds = sorted({n.partition(":")[0] for n in distortion_names(rows)})
        fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 4), squeeze=False)
        for ax, kind in zip(axes[0], kinds):
            for r in rows:
                points = sorted(
                    (float(n.partition(":")[2]), statistics.fmean(v))
                    for n, v in r.distorted.items()
                    if n.partition(":")[0] == kind
                )
                xs, ys = [0.0] + [p[0] for p in points], [r.mean] + [p[1] for p in points]
                ax.plot(
                    xs, ys, "*-" if _is_baseline(r) else "o-", color="black" if _is_baseline(r) else None, label=r.name
                )
            ax.set_xlabel(f"{kind} level ({KINDS.get(kind, '')})", fontsize=8)
            ax.set_ylabel("top-1 (%), deployed weights")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(f"{g.title}\n{g.data_text()}", fontsize=9)
        fig.tight_layout(rect=(0, 0, 1, 0.88))
        written += _save(fig, out / f"robustness__{slug(g.dataset)}__{slug(g.arch)}__{slug(g.budget)}__{g.id}")
    return written


def curves(records: list[Record], out: Path) -> list[Path]:
    written: list[Path] = []
    for rec in records:
        rows = rec.get("curves") or []
        if not rows:
            continue
        epochs = [r["epoch"] for r in rows]
        fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(9, 3.2))
        for key, style in (("test_acc", "-"), ("val_acc", "--"), ("train_acc", ":")):
            if key in rows[0]:
                ax_acc.plot(epochs, [r.get(key) for r in rows], style, label=key)
        ax_loss.plot(epochs, [r.get("train_loss") for r in rows], label="train_loss")
        ax_acc.set_xlabel("epoch")
        ax_acc.set_ylabel("accuracy (%)")
        ax_acc.legend(fontsize=7)
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("training loss")
        dataset = display_name(rec["dataset"]["name"])
        name = f"{rec['method']['name']} | {rec['arch']} | {dataset} | seed {rec['seed']}"
        fig.suptitle(name, fontsize=9)
        stem = (
            out / "curves" / f"{slug(dataset)}__{slug(rec['arch'])}__{slug(rec['method']['name'])}"
            f"__seed{rec['seed']}__{rec['run_key'][:8]}"
        )
        written += _save(fig, stem)
    return written


def save_figure(fig: Figure, path: Path) -> None:
    """One PNG (a method's own figure beside its record)."""
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def anytime_axes(ax: Axes, infos: list[dict[str, Any]], label: str) -> None:
    """Draw the ``info.anytime`` of one or more seeds of a run (averaged): test accuracy against MACs (M) of
    every exit, and the budgeted-batch curve (average MACs actually spent on the test set)."""
    exits = [[e["test_acc"] for e in info["exits"]] for info in infos]
    macs = [e["macs"] / 1e6 for e in infos[0]["exits"]]
    ax.plot(
        macs,
        [_mean(list(col)) for col in zip(*exits)],
        "o-",
        label=f"{label}: exits (anytime)" if label else "exits (anytime)",
    )
    curves = [info.get("budgeted") or [] for info in infos]
    points = min(len(c) for c in curves)
    if points:
        ax.plot(
            [_mean([c[i]["test_macs"] for c in curves]) / 1e6 for i in range(points)],
            [_mean([c[i]["test_acc"] for c in curves]) for i in range(points)],
            "s--",
            label=(f"{label}: " if label else "") + f"budgeted batch (thresholds on {infos[0]['thresholds_on']})",
        )
    ax.set_xlabel("MACs per image (M)")
    ax.set_ylabel("test top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


POINT_MARKERS = ("^", "s", "D", "v", "P", "X", "<", ">", "h")


def anytime(records: list[Record], out: Path, metric: str = "last") -> list[Path]:
    """One figure per setting (data, recipe, engine, protocol) that has multi-exit runs: their anytime and
    budgeted curves, and every other run of the setting as a point (mean over seeds)."""
    multi: dict[tuple, list[Record]] = {}
    for rec in records:
        if rec.get("status", "ok") == "ok" and (rec.get("info") or {}).get("anytime"):
            key = comparability_key(rec)
            multi.setdefault((key[1:], key[0], rec["method"]["name"], variant(rec)), []).append(rec)
    agg = collect(records, metric)
    written: list[Path] = []
    for setting in sorted({k[0] for k in multi}):
        runs = {k: recs for k, recs in multi.items() if k[0] == setting}
        fig, ax = plt.subplots(figsize=(10, 5))
        for (_, arch, method, var), recs in sorted(runs.items()):
            anytime_axes(ax, [r["info"]["anytime"] for r in recs], f"{arch} {method}" + (f" [{var}]" if var else ""))
        with_curves = {(k[1], k[2], k[3]) for k in runs}
        points = [
            row
            for row in agg.rows
            if row.group.key[1:] == setting
            and row.macs
            and (row.group.arch, row.method, row.variant) not in with_curves
        ]
        archs = sorted({row.group.arch for row in points})
        for row in sorted(points, key=lambda r: (r.group.arch, not _is_baseline(r), r.name)):
            # one marker per architecture, labels in the legend: many runs share a few MACs values
            ax.errorbar(
                (row.macs or 0) / 1e6,
                row.mean,
                yerr=row.std,
                fmt=POINT_MARKERS[archs.index(row.group.arch) % len(POINT_MARKERS)],
                markersize=7 if _is_baseline(row) else 5,
                capsize=3,
                mfc="black" if _is_baseline(row) else None,
                label=f"{row.group.arch} {row.name}",
            )
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        first = next(iter(runs.values()))[0]
        dataset = display_name(first["dataset"]["name"])
        ax.set_title(
            f"anytime prediction | {dataset} | {first['recipe']['name']} {first['recipe']['epochs']}ep "
            f"(points: other architectures, {metric} epoch)",
            fontsize=9,
        )
        written += _save(fig, out / f"anytime__{slug(dataset)}__{slug(first['recipe']['name'])}__{group_id(setting)}")
    return written
