"""Data-parallel training of one run over several processes (``torchrun ... -m harness run ...``).

Every rank builds the same model (same seed) and walks the same global batch plan (the pipeline's batches
are a function of (seed, epoch) alone); each trains on its contiguous shard of every global batch. Per batch
the engine backpropagates the rank's loss scaled by its shard's share of the global batch, then one
all-reduce sums the gradients and the step's loss and accuracy totals (:meth:`World.reduce_step`), so every
rank steps with the gradient of the global batch's mean loss and sees the global batch's numbers.

BatchNorm: the batch statistics are those of the *global* batch (:class:`GlobalBatchNorm2d`: moments gathered
from every rank and combined exactly, the backward pass all-reduces its two per-channel sums), as
``torch.nn.SyncBatchNorm`` does on GPUs; ``SyncBatchNorm`` itself refuses CPU tensors. With per-rank
statistics, world size 2 would train a different network than world size 1; with global ones, world size N
matches world size 1 for the same global batch up to float rounding (tested on CPU with gloo). Deviations:
losses that relate the samples of a batch to each other (RKD's distances and angles) are computed per shard,
as under any data-parallel trainer; BatchNorm subclasses other than torch's own ``BatchNorm1d/2d`` (e.g.
timm's ``BatchNormAct2d``) keep per-rank statistics; a trailing batch smaller than the world size is
not supported.

Rank 0 evaluates (the others receive its numbers), writes checkpoints, artifacts and records; the other
ranks hold the same weights and follow its decisions (train or load a stage).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the ranks training one run."""

    rank: int
    size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, cuda: bool) -> "World | None":
        """The world torchrun set up (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``), joined; None for one process."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size <= 1:
            return None
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        backend = "nccl" if cuda else "gloo"
        if cuda:
            torch.cuda.set_device(local_rank)
        if not dist.is_initialized():
            dist.init_process_group(backend)
        return cls(dist.get_rank(), dist.get_world_size(), local_rank, backend)

    def describe(self) -> dict[str, Any]:
        return {"world_size": self.size, "backend": self.backend}

    def shard(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """This rank's contiguous part of a global batch: of each tensor (images, labels, sample indices)."""
        return tuple(t.tensor_split(self.size)[self.rank] for t in tensors)

    def reduce_step(
        self, params: list[nn.Parameter], losses: dict[str, torch.Tensor], n: int, correct: torch.Tensor | None
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None, int]:
        """Sum the gradients of ``params`` over the ranks, with the step's loss totals (each loss times the
        shard size ``n``), its correct predictions and its image count, in one all-reduce. Returns the global
        batch's mean losses, its correct count and its size."""
        grads = [p.grad for p in params if p.grad is not None]
        device = grads[0].device if grads else next(iter(losses.values())).device
        dtype = torch.float64 if any(g.dtype == torch.float64 for g in grads) else torch.float32
        totals = [v.detach().to(dtype).reshape(1) * n for v in losses.values()]
        extra = [
            torch.zeros(1, device=device, dtype=dtype) if correct is None else correct.detach().to(dtype).reshape(1),
            torch.full((1,), float(n), device=device, dtype=dtype),
        ]
        flat = torch.cat([g.detach().to(dtype).reshape(-1) for g in grads] + [t.to(device) for t in totals + extra])
        dist.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()
        tail = flat[offset:]
        size = int(tail[-1].item())
        means = {name: tail[i] / size for i, name in enumerate(losses)}
        return means, (None if correct is None else tail[-2]), size

    def from_main(self, compute: Callable[[], T]) -> T:
        """``compute()`` on rank 0, its (picklable) result on every rank."""
        box: list[Any] = [compute() if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]  # rank 0's result, on every rank

    @contextmanager
    def global_batch_norm(self, module: nn.Module) -> Iterator[None]:
        """BatchNorm layers of ``module`` use the global batch's statistics while in the block."""
        swapped = []
        for sub in module.modules():
            cls = GLOBAL_BN.get(type(sub))
            if cls is not None:
                swapped.append((sub, type(sub)))
                sub.__class__ = cls
        try:
            yield
        finally:
            for sub, cls in swapped:
                sub.__class__ = cls


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 for float32 and lower precisions (bf16 autocast), float64 for float64."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _global_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-channel mean and biased variance of ``x`` over every rank's batch (Chan et al.'s exact
    combination of each rank's count, mean and sum of squared deviations), and the global count."""
    dims = [0, *range(2, x.dim())]
    x = x.to(_compute_dtype(x))
    n = x.numel() // x.shape[1]
    mean = x.mean(dims)
    m2 = (x - mean.view(1, -1, *[1] * (x.dim() - 2))).square().sum(dims)
    local = torch.cat([torch.full((1,), float(n), device=x.device, dtype=x.dtype), mean, m2])
    gathered = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, local)
    table = torch.stack(gathered)
    c = x.shape[1]
    counts, means, m2s = table[:, :1], table[:, 1 : 1 + c], table[:, 1 + c :]
    total = counts.sum()
    global_mean = (counts * means).sum(0) / total
    global_m2 = (m2s + counts * (means - global_mean).square()).sum(0)
    return global_mean, global_m2 / total, int(total.item())


class _Normalize(torch.autograd.Function):
    """``(x - mean) * invstd * weight + bias`` with the global statistics; the backward pass treats them as
    functions of every rank's batch (two per-channel sums all-reduced)."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor | None,
        bias: torch.Tensor | None,
        mean: torch.Tensor,
        invstd: torch.Tensor,
        total: int,
    ) -> torch.Tensor:
        shape = (1, -1, *[1] * (x.dim() - 2))
        dtype = _compute_dtype(x)
        xhat = (x.to(dtype) - mean.view(shape)) * invstd.view(shape)
        y = xhat
        if weight is not None:
            y = y * weight.to(dtype).view(shape)
        if bias is not None:
            y = y + bias.to(dtype).view(shape)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.total, ctx.has_bias = total, bias is not None
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[Any, ...]:
        xhat, invstd, weight = ctx.saved_tensors
        dims = [0, *range(2, xhat.dim())]
        shape = (1, -1, *[1] * (xhat.dim() - 2))
        dy32 = dy.to(xhat.dtype)
        sum_dy, sum_dy_xhat = dy32.sum(dims), (dy32 * xhat).sum(dims)
        both = torch.cat([sum_dy, sum_dy_xhat])
        dist.all_reduce(both)
        g_dy, g_dy_xhat = both.chunk(2)
        scale = invstd if weight is None else invstd * weight.to(xhat.dtype)
        dx = scale.view(shape) * (dy32 - (g_dy / ctx.total).view(shape) - xhat * (g_dy_xhat / ctx.total).view(shape))
        dweight = sum_dy_xhat.to(weight.dtype) if weight is not None else None  # this rank's part; summed with
        dbias = sum_dy.to(weight.dtype if weight is not None else dy.dtype) if ctx.has_bias else None  # the grads
        return dx.to(dy.dtype), dweight, dbias, None, None, None


class _GlobalBatchNorm:
    """Mixin for torch's BatchNorm classes: training-mode statistics of the global batch (see module doc)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn: Any = self
        if not (bn.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)  # type: ignore[misc]  # a mixin: the BatchNorm class after it has forward
        bn._check_input_dim(x)
        with torch.no_grad():
            mean, var, total = _global_moments(x)
            if bn.track_running_stats and bn.running_mean is not None:
                bn.num_batches_tracked.add_(1)
                factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
                bn.running_mean.mul_(1 - factor).add_(mean.to(bn.running_mean.dtype), alpha=factor)
                unbiased = var * total / max(1, total - 1)
                bn.running_var.mul_(1 - factor).add_(unbiased.to(bn.running_var.dtype), alpha=factor)
            invstd = torch.rsqrt(var + bn.eps)
        with torch.autocast(x.device.type, enabled=False):
            return _Normalize.apply(x, bn.weight, bn.bias, mean, invstd, total)


class GlobalBatchNorm1d(_GlobalBatchNorm, nn.BatchNorm1d):
    pass


class GlobalBatchNorm2d(_GlobalBatchNorm, nn.BatchNorm2d):
    pass


GLOBAL_BN: dict[type, type] = {nn.BatchNorm1d: GlobalBatchNorm1d, nn.BatchNorm2d: GlobalBatchNorm2d}
