"""Model cost: parameters, FLOPs (torch's flop counter) and inference latency."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@torch.no_grad()
def count_flops(model: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> int:
    """FLOPs of one forward pass at batch 1, as counted by ``torch.utils.flop_counter`` (a multiply-add
    counts as 2 FLOPs; convolutions and matrix products only, as in the FLOP columns of papers)."""
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros(1, *input_shape, device=device))
    model.train(was_training)
    return int(counter.get_total_flops())


@torch.no_grad()
def latency_ms(model: nn.Module, input_shape: tuple[int, ...], batch: int, device: torch.device, *,
               warmup: int = 2, repeats: int = 5, channels_last: bool = False) -> float:
    """Median wall time of one inference forward pass, in milliseconds, after warm-up."""
    was_training = model.training
    model.eval()
    x = torch.randn(batch, *input_shape, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    model.train(was_training)
    return statistics.median(times)
