"""Golden values of RepDistiller's AB loss (distiller_zoo/AB.py ABLoss) with its connectors (models/util.py
Connector: identity, or ConvReg without ReLU), run from the checkout on the command line.

Three levels of pre-activation features: equal shapes (no connector), more teacher channels at the same size
(1x1 conv + BN), and a student map twice the teacher's (3x3 stride-2 conv + BN); connector parameters set from
a seeded generator, BatchNorm in training mode (as in RepDistiller's init stage). Expected: each level's loss,
the sum, and the gradients of the sum with respect to the student's features and every connector parameter.

    python scripts/golden/ab.py /path/to/RepDistiller --out tests/golden/ab.json
"""

from __future__ import annotations

import torch

from _repdistiller import Reference

S_SHAPES = [(4, 4, 8, 8), (4, 6, 4, 4), (4, 8, 4, 4)]
T_SHAPES = [(4, 4, 8, 8), (4, 12, 4, 4), (4, 16, 2, 2)]
MARGIN = 1.0


def main() -> None:
    ref = Reference("ab", "distiller_zoo/AB.py (ABLoss), models/util.py (Connector, ConvReg)")
    from distiller_zoo.AB import ABLoss  # the reference
    from models.util import Connector

    g = torch.Generator().manual_seed(31)
    inputs = {}
    for i, (s, t) in enumerate(zip(S_SHAPES, T_SHAPES)):
        inputs[f"s{i}"] = torch.randn(*s, generator=g) * 1.5
        inputs[f"t{i}"] = torch.randn(*t, generator=g) * 1.5
    connector = Connector(S_SHAPES, T_SHAPES).train()
    with torch.no_grad():
        for name, p in connector.named_parameters():
            inputs[f"connectors.{name}"] = torch.randn(p.shape, generator=g) * 0.3 + (
                1.0 if name.endswith("bn.weight") else 0.0
            )
            p.copy_(inputs[f"connectors.{name}"])
    g_s = [inputs[f"s{i}"].clone().requires_grad_(True) for i in range(len(S_SHAPES))]
    g_t = [inputs[f"t{i}"] for i in range(len(T_SHAPES))]
    losses = ABLoss(len(g_s), margin=MARGIN)(connector(g_s), g_t)
    total = sum(losses)
    total.backward()
    expected = {f"loss{i}": loss.detach() for i, loss in enumerate(losses)}
    expected["loss"] = total.detach()
    expected.update({f"grad.s{i}": s.grad for i, s in enumerate(g_s)})
    expected.update({f"grad.connectors.{name}": p.grad for name, p in connector.named_parameters()})
    ref.write(inputs, expected, {"margin": MARGIN})


if __name__ == "__main__":
    main()
