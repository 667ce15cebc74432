"""Shared by the RepDistiller golden scripts: the command line and header (``_reference.py``, bound to
RepDistiller), and seeded inputs. It imports nothing of the harness: the values are the reference's alone.

Usage of a script: ``python scripts/golden/NAME.py CHECKOUT --out tests/golden/NAME.json``, CHECKOUT a
git clone of github.com/HobbitLong/RepDistiller (its HEAD commit goes into the header).
"""

from __future__ import annotations

import torch

import _reference


class Reference(_reference.Reference):
    """A RepDistiller checkout made importable, and where the fixture goes."""

    def __init__(self, name: str, file: str) -> None:
        super().__init__(name, file, "HobbitLong/RepDistiller")


def features(seed: int, *shapes: tuple[int, ...]) -> list[torch.Tensor]:
    """Post-ReLU-like feature maps (about half zeros), seeded, as leaf tensors that collect gradients."""
    g = torch.Generator().manual_seed(seed)
    return [torch.relu(torch.randn(shape, generator=g)).requires_grad_() for shape in shapes]


def parameters(seed: int, module: torch.nn.Module, scale: float = 0.3) -> dict[str, torch.Tensor]:
    """Overwrite every parameter of ``module`` with seeded values (scale * N(0, 1)); returns them by name."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g))
    return {k: p.detach().clone() for k, p in module.named_parameters()}


def gradients(loss: torch.Tensor, named: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``grad.<name>`` of ``loss`` for every named leaf tensor or parameter."""
    grads = torch.autograd.grad(loss, list(named.values()))
    return {f"grad.{k}": g for k, g in zip(named, grads)}


#: (student shape, teacher shape) of the three level pairs fed to AT, NST and VID: equal sizes, a larger
#: student map (pooled to the teacher's), a larger teacher map (pooled to the student's); channels differ
LEVEL_PAIRS = [((2, 4, 8, 8), (2, 8, 8, 8)), ((2, 8, 8, 8), (2, 16, 4, 4)), ((2, 16, 2, 2), (2, 16, 4, 4))]


def level_inputs(seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    s = features(seed, *(pair[0] for pair in LEVEL_PAIRS))
    t = [f.detach() for f in features(seed + 1, *(pair[1] for pair in LEVEL_PAIRS))]
    return s, t
