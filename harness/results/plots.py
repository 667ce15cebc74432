"""Plots from records (matplotlib, PNG and SVG): the efficiency picture and training curves.

``efficiency``: top-1 against deployed parameters and against FLOPs, one point per method (mean over
seeds, std as error bars), one figure per comparable group (``tables.comparability_key``). ``curves``: test accuracy and
training loss per epoch of every run.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from harness.results.records import slug  # noqa: E402
from harness.data.datasets import display_name  # noqa: E402
from harness.results.tables import collect  # noqa: E402


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
