"""The built-in training recipes (see docs/recipes in the README and the methods reference).

``crd``: the CRD benchmark's (RepDistiller) CIFAR-100 recipe, used for every KD table; teachers use it too.
``attention``: the common community recipe for ResNet-50 on CIFAR-100 (no author-published one exists).
``encodenet``: the EncodeNet paper's Sec. 4.1: lr 0.1, weight decay 1e-4, 300 baseline epochs, 500
autoencoder epochs. The paper states neither batch size nor schedule: we use batch 128 and a cosine
schedule (documented defaults; override with --batch-size/--schedule).
``smoke``: a CPU-sized budget for quick checks and CI; numbers from it are not comparable with papers.
``fast``: airbench94's recipe (Keller Jordan, github.com/KellerJordan/cifar10-airbench, legacy/airbench94.py;
arXiv:2404.00498) for the ``airbench94`` network, each piece a recipe field (docs/fast-track.md):

* whitening: the first layer set from the 2x2 patches of the first 5,000 training images, frozen;
* label smoothing 0.2;
* SGD with Nesterov momentum 0.85, batch 1,024; airbench's decoupled lr 11.5 and weight decay 0.0153 (per
  1,024 images) are, for the mean loss the engine uses, lr 11.5 / (1 + 1 / (1 - 0.85)) = 1.5 and weight
  decay 0.0153 / 11.5 (:func:`airbench_sgd`); BatchNorm parameters at 64 times the lr (weight decay / 64);
* Lookahead weight averaging every 5 steps (airbench's schedule);
* augmentation: alternating flip and translation by up to 2 pixels with reflection padding;
* schedule ``airbench``: per step, from 0.2 up to 1 over the first 23% of the steps, then down to 0.07;
* 10 epochs (airbench: 9.9; the engine trains whole epochs);
* bf16 autocast by default on a CPU with bf16 instructions (``prefer_bf16``; airbench94 trains in fp16,
  BatchNorm in fp32, on its GPU: legacy/airbench94.py): on such a CPU 2.06x as fast as fp32 at +0.05 points of
  top-1 over 3 seeds (p = 0.66, docs/fast-track.md); ``--no-amp`` for fp32, which other CPUs run anyway.

Test-time augmentation is not part of the recipe: it is the run's evaluation option ``--tta`` (airbench94
reports its 94% with ``mirror-translate``), recorded in the record's protocol.
"""

from __future__ import annotations

from harness.api import Recipe, declared_plugin


def airbench_sgd(lr: float = 11.5, weight_decay: float = 0.0153, momentum: float = 0.85) -> tuple[float, float]:
    """airbench's decoupled hyperparameters as the learning rate and weight decay of ``torch.optim.SGD`` on the
    batch's *mean* loss (airbench steps on its sum: ``lr / (1024 * (1 + 1 / (1 - momentum)))`` per image;
    the same steps on the mean take that times the batch, 1,024, and the weight decay ``weight_decay / lr``
    keeps airbench's decay per step). Exactly airbench's steps at batch 1,024; with another ``--batch-size``
    airbench would scale both with it, the recipe does not."""
    return round(lr / (1 + 1 / (1 - momentum)), 12), round(weight_decay / lr, 12)


FAST_LR, FAST_WD = airbench_sgd()
RECIPES = (
    Recipe(
        "crd",
        epochs=240,
        batch_size=64,
        lr=0.05,
        weight_decay=5e-4,
        milestones=(150, 180, 210),
        gamma=0.1,
        notes="CRD benchmark (RepDistiller) CIFAR recipe",
    ),
    Recipe(
        "attention",
        epochs=200,
        batch_size=128,
        lr=0.1,
        weight_decay=5e-4,
        milestones=(60, 120, 160),
        gamma=0.2,
        notes="common CIFAR-100 recipe for attention modules on ResNet-50",
    ),
    Recipe(
        "encodenet",
        epochs=300,
        batch_size=128,
        lr=0.1,
        weight_decay=1e-4,
        schedule="cosine",
        notes="EncodeNet paper Sec. 4.1; batch size and schedule not stated there (ours: 128, cosine)",
    ),
    Recipe(
        "smoke", epochs=3, batch_size=64, lr=0.05, weight_decay=5e-4, schedule="cosine", notes="CPU-sized smoke budget"
    ),
    Recipe(
        "fast",
        epochs=10,
        batch_size=1024,
        lr=FAST_LR,
        weight_decay=FAST_WD,
        momentum=0.85,
        nesterov=True,
        schedule="airbench",
        label_smoothing=0.2,
        norm_lr_scale=64.0,
        averaging="lookahead",
        translate=2,
        pad_mode="reflect",
        flip="alternating",
        whiten=5000,
        prefer_bf16=True,
        notes="airbench94 (Keller Jordan) for the airbench94 network: whitened first layer, label smoothing "
        "0.2, Nesterov SGD, Lookahead, alternating flip and 2-pixel translation; evaluate with --tta",
    ),
)


recipes = declared_plugin("recipes", [(recipe.name, recipe, recipe.notes) for recipe in RECIPES])
