"""The built-in training recipes (see docs/recipes in the README and the methods reference).

``crd``: the CRD benchmark's (RepDistiller) CIFAR-100 recipe, used for every KD table; teachers use it too.
``attention``: the common community recipe for ResNet-50 on CIFAR-100 (no author-published one exists).
``encodenet``: the EncodeNet paper's Sec. 4.1: lr 0.1, weight decay 1e-4, 300 baseline epochs, 500
autoencoder epochs. The paper states neither batch size nor schedule: we use batch 128 and a cosine
schedule (documented defaults; override with --batch-size/--schedule).
``smoke``: a CPU-sized budget for quick checks and CI; numbers from it are not comparable with papers.
"""

from __future__ import annotations

from harness.api import Recipe, declared_plugin

RECIPES = (
    Recipe("crd", epochs=240, batch_size=64, lr=0.05, weight_decay=5e-4, milestones=(150, 180, 210), gamma=0.1,
           notes="CRD benchmark (RepDistiller) CIFAR recipe"),
    Recipe("attention", epochs=200, batch_size=128, lr=0.1, weight_decay=5e-4, milestones=(60, 120, 160),
           gamma=0.2, notes="common CIFAR-100 recipe for attention modules on ResNet-50"),
    Recipe("encodenet", epochs=300, batch_size=128, lr=0.1, weight_decay=1e-4, schedule="cosine",
           notes="EncodeNet paper Sec. 4.1; batch size and schedule not "
           "stated there (ours: 128, cosine)"),
    Recipe("smoke", epochs=3, batch_size=64, lr=0.05, weight_decay=5e-4, schedule="cosine",
           notes="CPU-sized smoke budget"),
)


recipes = declared_plugin("recipes", [(recipe.name, recipe, recipe.notes) for recipe in RECIPES])
