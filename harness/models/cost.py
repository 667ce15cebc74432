"""Model cost: parameters, MACs and FLOPs (torch's flop counter) and inference latency.

MACs (multiply-accumulates) are the headline cost, as the literature quotes it (ResNet-50 with the CIFAR
stem: 1.30 G): one per multiply-add of convolutions and matrix products, plus one per output element of the
element-wise multiplications and sigmoids that gate features in attention modules (SE, CBAM, BAM, GAM);
pooling, BatchNorm, activations other than sigmoid, and additions are not counted. FLOPs are torch's
count (``torch.utils.flop_counter``: a multiply-add = 2 FLOPs, convolutions and matrix products only).

Both come from one pass of torch's own counter with handlers added for the gating operations
(``custom_mapping``), rather than from fvcore or thop: the counter sees every aten operation, including
functional ones such as ``x * gate`` and ``torch.sigmoid`` inside a module's forward, which thop's
per-module hooks miss; fvcore traces with ``torch.jit.trace`` (deprecated in torch 2) and has had no release
since 2022; and no new dependency is needed beyond the pinned torch.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

aten = torch.ops.aten


def _elements(*args: object, out_shape: tuple[int, ...] = (), **kwargs: object) -> int:
    return math.prod(out_shape)


#: element-wise gating operations, counted as one MAC per output element (not FLOPs)
#: (operator packets: the counter looks operations up by ``func._overloadpacket``)
GATING_OPS = (aten.mul, aten.mul_, aten.sigmoid, aten.sigmoid_)


@dataclass(frozen=True)
class ModelCost:
    macs: int  # multiply-accumulates: conv/matmul multiply-adds + element-wise gating operations
    flops: int  # torch's flop counter: 2 per conv/matmul multiply-add, nothing else


@dataclass(frozen=True)
class Output:
    """What a model's forward pass returned: the type's name and, for a tensor, its shape."""

    kind: str
    shape: tuple[int, ...] | None

    @classmethod
    def of(cls, value: object) -> "Output":
        return cls(type(value).__name__, tuple(value.shape) if isinstance(value, torch.Tensor) else None)


@dataclass(frozen=True)
class ShapePass:
    """One counted forward pass at batch 1 in eval mode (:func:`shape_pass`): its cost and its output."""

    cost: ModelCost
    output: Output


def meta_copy(model: nn.Module) -> nn.Module | None:
    """A copy of ``model`` whose parameters and buffers are on the meta device (shapes and dtypes, no data:
    nothing is copied but the modules), or None when the model cannot be copied."""
    memo: dict[int, object] = {}
    for param in model.parameters():
        memo[id(param)] = nn.Parameter(torch.empty_like(param, device="meta"), requires_grad=param.requires_grad)
    for buffer in model.buffers():
        memo.setdefault(id(buffer), torch.empty_like(buffer, device="meta"))
    try:
        return copy.deepcopy(model, memo)
    except Exception:  # a module holding something that cannot be copied
        return None


def shape_pass(model: nn.Module, input_shape: tuple[int, ...]) -> ShapePass | None:
    """:func:`count_cost`'s pass on a meta-device copy of ``model`` (no arithmetic), with what the forward
    returned (its output's type and shape: what a real pass returns, as the meta device computes the shapes
    the real kernels would); None when the model cannot be copied or its forward needs values (data-dependent
    shapes or branches, tensors kept outside its parameters and buffers), which only a real pass answers."""
    shadow = meta_copy(model)
    if shadow is None:
        return None
    try:
        return counted_pass(shadow, input_shape, torch.device("meta"))
    except Exception:  # the forward needs values
        return None


def count_cost(model: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> ModelCost:
    """MACs and FLOPs of one forward pass at batch 1 in eval mode (see the module's docstring). The counts
    depend on shapes only, so the pass runs on a meta-device copy (:func:`shape_pass`; a ResNet-101 is counted
    in milliseconds); a model whose forward needs values is counted by a real pass on ``device``."""
    done = shape_pass(model, input_shape)
    return done.cost if done is not None else _count(model, input_shape, device)


def _count(model: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> ModelCost:
    """:func:`count_cost` by one pass of ``model`` on ``device``."""
    return counted_pass(model, input_shape, device).cost


@torch.no_grad()
def counted_pass(model: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> ShapePass:
    """One pass of ``model`` on ``device`` under torch's flop counter: its cost and its output."""
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False, custom_mapping={op: _elements for op in GATING_OPS})
    with counter:
        out = model(torch.zeros(1, *input_shape, device=device))
    model.train(was_training)
    by_op = counter.get_flop_counts()["Global"]
    gating = sum(int(n) for op, n in by_op.items() if op in GATING_OPS)
    flops = sum(int(n) for op, n in by_op.items() if op not in GATING_OPS)
    return ShapePass(ModelCost(macs=flops // 2 + gating, flops=flops), Output.of(out))


def count_flops(model: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> int:
    """FLOPs of one forward pass at batch 1, as counted by ``torch.utils.flop_counter`` (a multiply-add
    counts as 2 FLOPs; convolutions and matrix products only, as in the FLOP columns of papers)."""
    return count_cost(model, input_shape, device).flops


def count_macs(model: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> int:
    """Multiply-accumulates of one forward pass at batch 1 (see the module's docstring)."""
    return count_cost(model, input_shape, device).macs


@dataclass(frozen=True)
class Latency:
    """Inference wall time of one forward pass (ms): the median of ``repeats`` timings after warm-up and their
    spread (the interquartile range). ``noisy``: the spread exceeds the median, as when the machine was busy;
    such a value is shown marked, never averaged silently."""

    median: float
    spread: float
    repeats: int

    @property
    def noisy(self) -> bool:
        return self.spread > self.median


@torch.no_grad()
def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, ...],
    batch: int,
    device: torch.device,
    *,
    warmup: int = 3,
    repeats: int = 15,
    min_seconds: float = 0.2,
    channels_last: bool = False,
) -> Latency:
    """Time ``repeats`` inference passes (more, up to 100, until ``min_seconds`` have passed) after ``warmup``
    untimed ones; on CUDA each pass is synchronised."""
    was_training = model.training
    model.eval()
    x = torch.randn(batch, *input_shape, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    times: list[float] = []
    for i in range(warmup + 100):
        if i >= warmup + repeats and sum(times) >= min_seconds * 1000:
            break
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    model.train(was_training)
    q1, _, q3 = statistics.quantiles(times, n=4)
    return Latency(statistics.median(times), q3 - q1, len(times))


def latency_ms(
    model: nn.Module,
    input_shape: tuple[int, ...],
    batch: int,
    device: torch.device,
    *,
    warmup: int = 3,
    repeats: int = 15,
    channels_last: bool = False,
) -> float:
    """The median of :func:`measure_latency`, in milliseconds."""
    return measure_latency(
        model, input_shape, batch, device, warmup=warmup, repeats=repeats, channels_last=channels_last
    ).median
