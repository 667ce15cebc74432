"""Golden values of RepDistiller's CRD loss (crd/criterion.py CRDLoss, crd/memory.py ContrastMemory).

Runs the reference code from the checkout given on the command line, never this project's. Two steps of the
loss on fixed, seeded tensors with fixed positive and negative indices (the ``contrast_idx`` RepDistiller's
sampling data set would give) and fixed memory contents, so the value is deterministic: step 1 sets the
normalisation constants Z and updates the banks; step 2 uses both. Expected: each step's loss, the gradients of
both embedding heads and of the student feature at step 1, Z, and the banks after each step.

    python scripts/golden/crd.py /path/to/RepDistiller --out tests/golden/crd.json
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from _repdistiller import Reference

B, S_DIM, T_DIM, FEAT_DIM, N_DATA, K, CLASSES = 6, 10, 14, 8, 40, 12, 4
NCE_T, NCE_M = 0.07, 0.5
STDV = 1.0 / (FEAT_DIM / 3) ** 0.5


def contrast_indices(
    g: torch.Generator, labels: torch.Tensor, index: torch.Tensor, train_labels: torch.Tensor
) -> torch.Tensor:
    """Own index first, then K indices of other classes (as the reference's exact mode draws them)."""
    rows = []
    for y, i in zip(labels.tolist(), index.tolist()):
        pool = (train_labels != y).nonzero().flatten()
        rows.append(torch.cat([torch.tensor([i]), pool[torch.randperm(len(pool), generator=g)[:K]]]))
    return torch.stack(rows)


def main() -> None:
    ref = Reference("crd", "crd/criterion.py (CRDLoss, ContrastLoss, Embed), crd/memory.py (ContrastMemory)")
    import crd.memory as memory  # the reference
    from crd.criterion import CRDLoss

    memory.AliasMethod.cuda = lambda self: None  # its constructor moves the (unused) sampler to CUDA; stay on CPU

    g = torch.Generator().manual_seed(31)
    train_labels = torch.arange(N_DATA) % CLASSES
    inputs: dict[str, torch.Tensor] = {
        "train_labels": train_labels.float(),
        "embed_s.weight": torch.randn(FEAT_DIM, S_DIM, generator=g) * 0.3,
        "embed_s.bias": torch.randn(FEAT_DIM, generator=g) * 0.1,
        "embed_t.weight": torch.randn(FEAT_DIM, T_DIM, generator=g) * 0.3,
        "embed_t.bias": torch.randn(FEAT_DIM, generator=g) * 0.1,
        "memory_s": (torch.rand(N_DATA, FEAT_DIM, generator=g) * 2 - 1) * STDV,  # the reference's init range
        "memory_t": (torch.rand(N_DATA, FEAT_DIM, generator=g) * 2 - 1) * STDV,
    }
    for step in (1, 2):
        index = torch.randperm(N_DATA, generator=g)[:B]
        inputs[f"f_s{step}"] = torch.randn(B, S_DIM, generator=g)
        inputs[f"f_t{step}"] = torch.randn(B, T_DIM, generator=g)
        inputs[f"index{step}"] = index.float()
        inputs[f"contrast{step}"] = contrast_indices(g, train_labels[index], index, train_labels).float()

    opt = SimpleNamespace(s_dim=S_DIM, t_dim=T_DIM, feat_dim=FEAT_DIM, n_data=N_DATA, nce_k=K, nce_t=NCE_T, nce_m=NCE_M)
    crd = CRDLoss(opt)
    with torch.no_grad():
        for name in ("embed_s", "embed_t"):
            getattr(crd, name).linear.weight.copy_(inputs[f"{name}.weight"])
            getattr(crd, name).linear.bias.copy_(inputs[f"{name}.bias"])
        crd.contrast.memory_v1.copy_(inputs["memory_s"])  # v1: the student side
        crd.contrast.memory_v2.copy_(inputs["memory_t"])
    expected: dict[str, torch.Tensor] = {}
    for step in (1, 2):
        f_s = inputs[f"f_s{step}"].clone().requires_grad_(True)
        loss = crd(f_s, inputs[f"f_t{step}"], inputs[f"index{step}"].long(), inputs[f"contrast{step}"].long())
        expected[f"loss{step}"] = loss.detach().reshape(())
        if step == 1:
            crd.zero_grad()
            loss.sum().backward()
            expected["grad.f_s1"] = f_s.grad
            for name in ("embed_s", "embed_t"):
                expected[f"grad.{name}.weight"] = getattr(crd, name).linear.weight.grad.clone()
                expected[f"grad.{name}.bias"] = getattr(crd, name).linear.bias.grad.clone()
            expected["z"] = crd.contrast.params[2:4].clone()
        expected[f"memory_s{step}"] = crd.contrast.memory_v1.clone()
        expected[f"memory_t{step}"] = crd.contrast.memory_v2.clone()
    params = {"feat_dim": FEAT_DIM, "n_data": N_DATA, "nce_k": K, "nce_t": NCE_T, "nce_m": NCE_M}
    ref.write(inputs, expected, params)


if __name__ == "__main__":
    main()
