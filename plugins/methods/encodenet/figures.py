"""EncodeNet's figures (matplotlib, PNG), drawn beside the run's record.

fig2_clusters: each class's clusters, the representative first (framed) then members (paper Fig. 2);
fig3_elbow: the k-means inertia curves with the chosen k (Fig. 3); fig4_entropy: the baseline's entropy
over the training set with the representatives marked (Fig. 4); fig5_converted: test inputs and what the
converting autoencoder makes of them, beside their class representative (Fig. 5). matplotlib is imported when
a figure is drawn (:mod:`.libraries`), not when the plugin is planned.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from plugins.methods.encodenet.libraries import FIGURES, load

#: imported in the functions below; its version enters the code identity (harness.core.identity)
IMPORTED_WHEN_USED = FIGURES


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the Agg backend (files only, no display)."""
    load("matplotlib", "EncodeNet's figures").use("Agg")
    return load("matplotlib.pyplot", "EncodeNet's figures")


def to_image(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) uint8 or [0, 1] float -> (H, W, C) float in [0, 1] for imshow."""
    x = x.detach().float().cpu()
    if x.max() > 1.5:
        x = x / 255
    image = x.clamp(0, 1).permute(1, 2, 0).numpy()
    return image[:, :, 0] if image.shape[2] == 1 else image


def clusters(
    path: Path,
    images: torch.Tensor,
    labels: np.ndarray,
    groups,
    reps,
    classes: list[str],
    members_shown: int = 3,
    max_classes: int = 10,
) -> None:
    plt = pyplot()
    by_class: dict[int, list[dict]] = {}
    for g in reps.groups:
        by_class.setdefault(g["label"], []).append(g)
    shown = sorted(by_class)[:max_classes]
    cols = max(len(v) for v in by_class.values()) * (members_shown + 1)
    fig, axes = plt.subplots(len(shown), cols, figsize=(cols * 0.8, len(shown) * 0.9), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    target_of = reps.target_of
    for r, label in enumerate(shown):
        for c, g in enumerate(by_class[label]):
            members = np.flatnonzero(target_of == g["representative"])
            others = [m for m in members if m != g["representative"]][:members_shown]
            for j, idx in enumerate([g["representative"], *others]):
                ax = axes[r, c * (members_shown + 1) + j]
                ax.imshow(to_image(images[idx]), cmap="gray")
                if j == 0:
                    ax.axis("on")
                    ax.set_xticks([])
                    ax.set_yticks([])
                    for spine in ax.spines.values():
                        spine.set_edgecolor("red")
                        spine.set_linewidth(2)
                    ax.set_title(f"c{g['cluster']} n={g['size']}", fontsize=6)
        axes[r, 0].text(-4, 16, classes[label], fontsize=7, ha="right", va="center")
    fig.suptitle("Intraclass clusters: representative (red frame) and members", fontsize=9)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def elbow(path: Path, groups, classes: list[str]) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for cc in groups:
        if not cc.inertias:
            continue
        ks = np.arange(1, len(cc.inertias) + 1)
        inertia = np.asarray(cc.inertias) / cc.inertias[0]
        (line,) = ax.plot(ks, inertia, marker=".", label=classes[cc.label])
        ax.scatter([cc.k], [inertia[cc.k - 1]], color=line.get_color(), s=60, edgecolor="black", zorder=3)
    ax.set_xlabel("number of clusters k")
    ax.set_ylabel("inertia / inertia at k=1")
    ax.set_title("Elbow method per class (chosen k circled)")
    ax.legend(fontsize=6, ncol=2)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def entropy(path: Path, entropies: np.ndarray, reps) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(entropies, bins=60, color="0.6")
    for g in reps.groups:
        ax.axvline(g["entropy"], color="red", linewidth=0.6)
    ax.set_xlabel("entropy of the baseline's softmax (nats)")
    ax.set_ylabel("training images")
    ax.set_title("Baseline entropy; representatives in red")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def converted(path: Path, inputs: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor | None) -> None:
    plt = pyplot()
    rows = 3 if targets is not None else 2
    n = len(inputs)
    fig, axes = plt.subplots(rows, n, figsize=(n * 0.9, rows * 1.0), squeeze=False)
    names = ["input", "converted", "representative"]
    for j in range(n):
        for r, batch in enumerate([inputs, outputs] + ([targets] if targets is not None else [])):
            axes[r, j].imshow(to_image(batch[j]), cmap="gray")
            axes[r, j].axis("off")
    for r in range(rows):
        axes[r, 0].set_title(names[r], fontsize=7, loc="left")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
