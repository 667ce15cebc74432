"""Plots from records (matplotlib, PNG and SVG): the efficiency picture and training curves.

``efficiency``: top-1 against deployed parameters and against FLOPs, one point per method (mean over
seeds, std as error bars), one figure per comparable group (``tables.comparability_key``). ``curves``: test accuracy and
training loss per epoch of every run. ``anytime``: for every multi-exit run (a record with
``info.anytime``, e.g. MSDNet trained by the ``anytime`` method), accuracy against MACs of each exit and of
the budgeted-batch curve, beside the single-exit runs of the same data, recipe and engine (one point per
architecture and method).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from harness.results.records import slug  # noqa: E402
from harness.data.datasets import display_name  # noqa: E402
from harness.results.tables import collect, comparability_key, group_id, variant  # noqa: E402


def _save(fig, stem: Path) -> list[Path]:  # type: ignore[no-untyped-def]
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for p in paths:
        fig.savefig(p, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return paths


def efficiency(records: list[dict], out: Path, metric: str = "last") -> list[Path]:
    agg = collect(records, metric)
    written: list[Path] = []
    for g in agg.groups:
        group = [r for r in agg.rows if r.group is g and r.params and r.flops]
        if not group:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, attr, label in ((axes[0], "params", "deployed parameters (M)"), (axes[1], "flops", "FLOPs (G)")):
            scale = 1e6 if attr == "params" else 1e9
            for r in group:
                x = getattr(r, attr) / scale
                ax.errorbar(x, r.mean, yerr=r.std, fmt="o", capsize=3)
                ax.annotate(r.method + (f" [{r.variant}]" if r.variant else ""), (x, r.mean), fontsize=7,
                            xytext=(4, 3), textcoords="offset points")
            ax.set_xlabel(label)
            ax.set_ylabel(f"top-1 (%), {metric} epoch")
            ax.grid(alpha=0.3)
        fig.suptitle(f"{g.title}\n{g.data_text()}", fontsize=9)
        written += _save(fig, out / f"efficiency__{slug(g.dataset)}__{slug(g.arch)}__{slug(g.budget)}__{g.id}")
    return written


def curves(records: list[dict], out: Path) -> list[Path]:
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
        stem = out / "curves" / f"{slug(dataset)}__{slug(rec['arch'])}__{slug(rec['method']['name'])}" \
                                f"__seed{rec['seed']}__{rec['run_key'][:8]}"
        written += _save(fig, stem)
    return written


def save_figure(fig, path: Path) -> None:  # type: ignore[no-untyped-def]
    """One PNG (a method's own figure beside its record)."""
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def anytime_axes(ax, infos: list[dict], label: str) -> None:  # type: ignore[no-untyped-def]
    """Draw the ``info.anytime`` of one or more seeds of a run (averaged): test accuracy against MACs (M) of
    every exit, and the budgeted-batch curve (average MACs actually spent on the test set)."""
    exits = [[e["test_acc"] for e in info["exits"]] for info in infos]
    macs = [e["macs"] / 1e6 for e in infos[0]["exits"]]
    ax.plot(macs, [_mean(list(col)) for col in zip(*exits)], "o-", label=f"{label}: exits (anytime)" if label else "exits (anytime)")
    curves = [info.get("budgeted") or [] for info in infos]
    points = min(len(c) for c in curves)
    if points:
        ax.plot([_mean([c[i]["test_macs"] for c in curves]) / 1e6 for i in range(points)],
                [_mean([c[i]["test_acc"] for c in curves]) for i in range(points)], "s--",
                label=(f"{label}: " if label else "") + f"budgeted batch (thresholds on {infos[0]['thresholds_on']})")
    ax.set_xlabel("MACs per image (M)")
    ax.set_ylabel("test top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def anytime(records: list[dict], out: Path, metric: str = "last") -> list[Path]:
    """One figure per setting (data, recipe, engine, protocol) that has multi-exit runs: their anytime and
    budgeted curves, and every other run of the setting as a point (mean over seeds)."""
    multi: dict[tuple, list[dict]] = {}
    for rec in records:
        if rec.get("status", "ok") == "ok" and (rec.get("info") or {}).get("anytime"):
            key = comparability_key(rec)
            multi.setdefault((key[1:], key[0], rec["method"]["name"], variant(rec)), []).append(rec)
    agg = collect(records, metric)
    written: list[Path] = []
    for setting in sorted({k[0] for k in multi}):
        runs = {k: recs for k, recs in multi.items() if k[0] == setting}
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for (_, arch, method, var), recs in sorted(runs.items()):
            anytime_axes(ax, [r["info"]["anytime"] for r in recs], f"{arch} {method}" + (f" [{var}]" if var else ""))
        for row in agg.rows:
            if row.group.key[1:] == setting and row.macs and (row.group.arch, row.method, row.variant) not in \
                    {(k[1], k[2], k[3]) for k in runs}:
                ax.errorbar(row.macs / 1e6, row.mean, yerr=row.std, fmt="^", capsize=3)
                ax.annotate(f"{row.group.arch} {row.method}" + (f" [{row.variant}]" if row.variant else ""),
                            (row.macs / 1e6, row.mean), fontsize=7, xytext=(4, 3), textcoords="offset points")
        first = next(iter(runs.values()))[0]
        dataset = display_name(first["dataset"]["name"])
        ax.set_title(f"anytime prediction | {dataset} | {first['recipe']['name']} {first['recipe']['epochs']}ep "
                     f"(points: other architectures, {metric} epoch)", fontsize=9)
        written += _save(fig, out / f"anytime__{slug(dataset)}__{slug(first['recipe']['name'])}__{group_id(setting)}")
    return written
