"""Golden values of RepDistiller's FSP loss (distiller_zoo/FSP.py), run from the checkout on the command line.

Four features per network with equal channels (as FSP requires), one pair where the bottom map is pooled to
the top's size and one where the top is pooled to the bottom's; expected: each pair's loss, their sum and the
gradient of the sum with respect to the student's features.

    python scripts/golden/fsp.py /path/to/RepDistiller --out tests/golden/fsp.json
"""

from __future__ import annotations

import torch

from _repdistiller import Reference

SHAPES = [(3, 4, 8, 8), (3, 4, 8, 8), (3, 6, 4, 4), (3, 5, 8, 8)]
T_SIZES = [16, 8, 4, 4]  # the teacher's maps: other sizes, same channels


def main() -> None:
    ref = Reference("fsp", "distiller_zoo/FSP.py (FSP)")
    from distiller_zoo.FSP import FSP  # the reference

    g = torch.Generator().manual_seed(31)
    inputs = {}
    for i, (b, c, h, w) in enumerate(SHAPES):
        inputs[f"s{i}"] = torch.randn(b, c, h, w, generator=g)
        inputs[f"t{i}"] = torch.randn(b, c, T_SIZES[i], T_SIZES[i], generator=g)
    g_s = [inputs[f"s{i}"].clone().requires_grad_(True) for i in range(len(SHAPES))]
    g_t = [inputs[f"t{i}"] for i in range(len(SHAPES))]
    fsp = FSP([s.shape for s in g_s], [t.shape for t in g_t])
    losses = fsp(g_s, g_t)
    total = sum(losses)
    total.backward()
    expected = {f"loss{i}": loss.detach() for i, loss in enumerate(losses)}
    expected["loss"] = total.detach()
    expected.update({f"grad.s{i}": s.grad for i, s in enumerate(g_s)})
    ref.write(inputs, expected)


if __name__ == "__main__":
    main()
