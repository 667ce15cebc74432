"""Golden values of DKD (Zhao et al., CVPR 2022) from mdistiller's own ``DKD`` distiller.

Runs ``mdistiller/distillers/DKD.py`` of a megvii-research/mdistiller checkout (given on the command line)
with its configuration system (``mdistiller/engine/cfg.py`` defaults, then the CIFAR-100 yaml of a
teacher-student pair, as ``tools/train.py`` merges them), on fixed seeded logits: ``forward_train`` with the
trainer's 1-based ``epoch``, so the CE weight, alpha, the pair's beta, T and the warm-up factor are the
reference's. Writes the CE and DKD terms and the gradient of their sum w.r.t. the student logits. Needs
``yacs`` (mdistiller's config library) importable, e.g. ``pip install --target DIR yacs`` and PYTHONPATH=DIR.
This script never imports the harness.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import torch
from torch import nn

from _reference import Reference

#: what a command needs before ``python``: yacs, mdistiller's (and logit-standardization-KD's) config library
YACS = "PYTHONPATH=<dir with yacs> "

#: (case name, config yaml under configs/cifar100/dkd, 1-based epoch of mdistiller's trainer)
CASES = [
    ("res32x4_res8x4_epoch1", "res32x4_res8x4.yaml", 1),
    ("res32x4_res8x4_epoch10", "res32x4_res8x4.yaml", 10),
    ("res32x4_res8x4_epoch20", "res32x4_res8x4.yaml", 20),
    ("res32x4_res8x4_epoch240", "res32x4_res8x4.yaml", 240),
    ("res56_res20_epoch25", "res56_res20.yaml", 25),
    ("vgg13_vgg8_epoch5", "vgg13_vgg8.yaml", 5),
]


def load_module(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def reference_cfg(repo: Path):
    """mdistiller's CFG, loaded without ``mdistiller.engine``'s ``__init__`` (which imports the trainer and
    its logging dependencies, not needed for the configuration)."""
    package = types.ModuleType("mdistiller.engine")
    package.__path__ = [str(repo / "mdistiller" / "engine")]
    sys.modules["mdistiller.engine"] = package
    return load_module("mdistiller.engine.cfg", repo / "mdistiller" / "engine" / "cfg.py").CFG


class Fixed(nn.Module):
    """A stand-in network: returns the given logits (the student's: the 'image' itself, a leaf tensor)."""

    def __init__(self, logits: torch.Tensor | None = None) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, image: torch.Tensor):
        return (image if self.logits is None else self.logits), {}


def inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(31)
    return {
        "student_logits": 2.0 * torch.randn(8, 100, generator=g),
        "teacher_logits": 4.0 * torch.randn(8, 100, generator=g),
        "labels": torch.randint(0, 100, (8,), generator=g),
    }


def reference_step(distiller: nn.Module, data: dict[str, torch.Tensor], epoch: int) -> dict[str, torch.Tensor]:
    """The reference distiller's training step on the fixed logits: its CE and distillation terms and the
    gradient of their sum w.r.t. the student logits."""
    student = data["student_logits"].clone().requires_grad_(True)
    _, losses = distiller.forward_train(image=student, target=data["labels"], epoch=epoch)
    (losses["loss_ce"] + losses["loss_kd"]).backward()
    return {
        "loss_ce": losses["loss_ce"].detach(),
        "loss_kd": losses["loss_kd"].detach(),
        "grad.student_logits": student.grad,
    }


def dkd_params(cfg, config: str, epoch: int) -> dict:
    """The settings a DKD case ran with, as the reference's configuration resolved them (the fixture's params)."""
    return {
        "config": f"configs/cifar100/dkd/{config}",
        "epoch": epoch,
        "ce_weight": cfg.DKD.CE_WEIGHT,
        "alpha": cfg.DKD.ALPHA,
        "beta": cfg.DKD.BETA,
        "temperature": cfg.DKD.T,
        "warmup": cfg.DKD.WARMUP,
    }


def main() -> None:
    ref = Reference(
        "dkd",
        "mdistiller/distillers/DKD.py (DKD.forward_train), mdistiller/engine/cfg.py, configs/cifar100/dkd/*.yaml",
        "megvii-research/mdistiller",
        env=YACS,
    )
    repo = ref.checkout
    from mdistiller.distillers.DKD import DKD  # the reference

    base = reference_cfg(repo)
    data = inputs()
    expected, params = {}, {}
    for case, config, epoch in CASES:
        cfg = base.clone()
        cfg.merge_from_file(str(repo / "configs" / "cifar100" / "dkd" / config))
        expected[case] = reference_step(DKD(Fixed(), Fixed(data["teacher_logits"]), cfg), data, epoch)
        params[case] = dkd_params(cfg, config, epoch)
    ref.write(data, expected, params)


if __name__ == "__main__":
    main()
