"""DCFF: dynamic-coded filter fusion (Lin, Ji, Chen, Zhang, Wu, Ji: "Training Compact CNNs for Image
Classification using Dynamic-coded Filter Fusion", TPAMI 2023; arXiv 2107.06916; code github.com/lmbxmu/DCFF).

One training stage, from scratch (no pre-trained model, no sparsity loss). The deployed model is the compact
architecture (each fused layer at its kept width, ``channels.py``); the full-width filters it is fused from are
training-time parameters (``FilterBank``, reported as ``params_extra``). During training every compact
convolution uses the fused filters ``P W`` of its layer's full filter bank ``W`` (``fusion.py``): at the start
of every epoch, from the current bank and that epoch's temperature, each layer's inter-similarity
distributions, KL importance and kept filters are recomputed; ``P`` stays fixed for the epoch while the bank,
the compact BatchNorms and the classifier are trained with cross-entropy through it. Before every
evaluation the compact model's convolutions are set to ``P W``: the model evaluated and deployed is exactly
the compact network, and its parameters and MACs in the record are those of the compact network.

Options: ``keep`` (kept fraction of filters per fused layer; ``paper`` = the VGG-16 CIFAR-10 setting of the
authors' README, 0.5,0.5,0.6,0.6,0.65x3,0.15x6: 1,071,248 parameters (paper: 1.06M), and exactly the paper's
72.77M "FLOPs" as its counter, thop, counts them on its VGG-16 layout; see the deviations for our MACs);
``t_start``/``t_end``/``t_slope`` (the temperature schedule).

Deviations from the paper and the authors' code:

* the recipe is the run's (the paper: 300 epochs, batch 256, lr 0.1 x0.1 at 150/225, wd 5e-4);
* the KL importance is computed in the log domain and recomputed every epoch. The authors' code takes
  ``log(p / (q + 1e-7))``, which becomes NaN as soon as the distributions underflow to one-hot (after an epoch
  or two at their schedule), and then keeps the last finite scores for the rest of training; here the scores
  stay finite (in the one-hot limit filter ``k`` scores ``T * sum_j ||W_k - W_j||``) and keep following the
  filters, as the paper describes. Their KL is a mean over the distribution (``1/n`` times ours: same order);
* kept filters are taken in ascending index order (the code: unsorted ``topk``);
* the bank is initialised from the run architecture's own initialisation (the full layer's weights, input
  channels cut to the compact width), the same for every method of the seed; the code uses PyTorch defaults;
* on CIFAR ResNets only the first convolution of each block is fused (the paper also prunes the residual
  channels with a per-level rate); our CIFAR VGG is the CRD benchmark's: the same layers and parameter count
  as the paper's VGG-16, but no max-pool before the last block on 32x32 inputs (its last three convolutions
  run at 4x4, not 2x2), so the compact vgg16 costs 74.22M MACs here against 72.35M conv multiply-adds on the
  paper's layout (72.77M with thop's bias and BatchNorm counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from harness.api import (
    POSITIVE,
    Method,
    Objective,
    Option,
    Plan,
    Report,
    RunEnv,
    RunInfo,
    Stage,
    StageContext,
    StepOutput,
    TrainedStage,
    count_cost,
    count_params,
    require_levels,
)
from plugins.methods.dcff.channels import FusedLayer, fused_layers, keep_ratios, kept_widths, narrowed
from plugins.methods.dcff.fusion import TemperatureSchedule, fusion_matrix


class FilterBank(nn.Module):
    """The full-width filters of one fused layer (input channels at the compact width of the layer before),
    and the fusion of the current epoch: ``fusion`` (kept x full) and the kept filters' indices."""

    fusion: torch.Tensor  # buffers
    kept: torch.Tensor

    def __init__(self, conv: nn.Conv2d, in_channels: int, keep: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(conv.weight.detach()[:, :in_channels].clone())
        self.bias = nn.Parameter(conv.bias.detach().clone()) if conv.bias is not None else None
        n, device = conv.out_channels, conv.weight.device
        self.register_buffer("fusion", torch.eye(n, device=device)[:keep].clone())
        self.register_buffer("kept", torch.arange(keep, device=device))

    @torch.no_grad()
    def refresh(self, temperature: float) -> None:
        fusion, kept = fusion_matrix(self.weight, self.fusion.shape[0], temperature)
        self.fusion.copy_(fusion)
        self.kept.copy_(kept)

    def fused(self) -> dict[str, torch.Tensor]:
        """The compact convolution's ``weight`` (and ``bias``): ``P W``, differentiable in ``W``."""
        n = self.weight.shape[0]
        out = {"weight": (self.fusion @ self.weight.reshape(n, -1)).reshape(-1, *self.weight.shape[1:])}
        if self.bias is not None:
            out["bias"] = self.fusion @ self.bias
        return out


def _conv(model: nn.Module, path: str) -> nn.Conv2d:
    conv = model.get_submodule(path)
    assert isinstance(conv, nn.Conv2d)
    return conv


class FusionObjective(Objective):
    """Cross-entropy of the compact model run with its fused filters (see the module docstring)."""

    step: torch.Tensor  # a buffer

    def __init__(
        self,
        model: nn.Module,
        full: nn.Module,
        layers: list[FusedLayer],
        widths: list[int],
        schedule: TemperatureSchedule,
        batches_per_epoch: int,
    ) -> None:
        super().__init__(model)
        self.layers = layers
        self.schedule = schedule
        self.batches_per_epoch = max(1, batches_per_epoch)
        self.banks = nn.ModuleList(
            FilterBank(_conv(full, layer.conv), _conv(model, layer.conv).in_channels, w)
            for layer, w in zip(layers, widths)
        )
        self.register_buffer("step", torch.zeros((), dtype=torch.long))  # training batches done
        self._step: int | None = None  # its value, read once (no device sync per batch)
        for layer in layers:  # the compact convs hold a copy of the fused filters, never trained directly
            for p in model.get_submodule(layer.conv).parameters():
                p.requires_grad_(False)
        self.refresh(0)
        self.sync()

    def filter_banks(self) -> list[FilterBank]:
        """The banks, typed (an ``nn.ModuleList`` holds modules of any class)."""
        return [bank for bank in self.banks if isinstance(bank, FilterBank)]

    def refresh(self, epoch: int) -> None:
        temperature = self.schedule.at(epoch)
        for bank in self.filter_banks():
            bank.refresh(temperature)

    def fused_parameters(self) -> dict[str, torch.Tensor]:
        return {
            f"{layer.conv}.{name}": value
            for layer, bank in zip(self.layers, self.filter_banks())
            for name, value in bank.fused().items()
        }

    @torch.no_grad()
    def sync(self) -> None:
        """Set the compact model's convolutions to the fused filters."""
        for name, value in self.fused_parameters().items():
            self.model.get_parameter(name).copy_(value)

    def train(self, mode: bool = True) -> "FusionObjective":
        super().train(mode)
        if not mode:  # the engine evaluates (and saves) the model after eval(): it must hold the fused filters
            self.sync()
        return self

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        self._step = None
        return super().load_state_dict(state_dict, strict, assign)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        if self.training:
            if self._step is None:
                self._step = int(self.step)
            if self._step % self.batches_per_epoch == 0:  # first batch of an epoch: this epoch's fusion
                self.refresh(self._step // self.batches_per_epoch)
            self._step += 1
            self.step.fill_(self._step)
        logits = functional_call(self.model, self.fused_parameters(), (images,))
        return StepOutput(losses={"ce": F.cross_entropy(logits, labels)}, logits=logits)


class DCFF(Method):
    options = {
        "keep": Option(
            "paper",
            "kept fraction of filters per fused layer: R (all layers), R1,R2,... or R*N; "
            "'paper' = the paper's VGG-16 CIFAR-10 setting (vgg16 only)",
        ),
        "t_start": Option(1.0, "temperature at the first epoch", constraint=POSITIVE),
        "t_end": Option(10000.0, "temperature at the last epoch", constraint=POSITIVE),
        "t_slope": Option(1.0, "slope (per epoch) of the sigmoid temperature schedule", constraint=POSITIVE),
    }

    def plan(self, run: RunInfo) -> Plan:
        return Plan(Stage("train", self.objective, config=self.config()), report=self.report)

    def objective(self, ctx: StageContext) -> FusionObjective:
        full = require_levels(ctx.build_arch(), self.name)
        layers = fused_layers(full, self.name)
        widths = kept_widths(layers, keep_ratios(self.opts["keep"], layers, ctx.env.arch, self.name))
        schedule = TemperatureSchedule(
            self.opts["t_start"], self.opts["t_end"], self.opts["t_slope"], ctx.recipe.epochs
        )
        compact = ctx.place(narrowed(full, layers, widths))
        objective = FusionObjective(compact, full, layers, widths, schedule, len(ctx.train_stream()))
        ds = ctx.dataset
        full_cost = count_cost(full, (ds.in_chans, ds.input_size, ds.input_size), ctx.device)
        objective.info["full_model"] = {"params": count_params(full), "macs": full_cost.macs, "flops": full_cost.flops}
        return objective

    def report(self, deployed: TrainedStage, env: RunEnv) -> Report:
        objective = deployed.objective
        assert isinstance(objective, FusionObjective)
        layers = [
            {
                "conv": layer.conv,
                "full": layer.width,
                "kept": int(bank.kept.numel()),
                "kept_filters": bank.kept.tolist(),
            }
            for layer, bank in zip(objective.layers, objective.filter_banks())
        ]
        info = {
            **deployed.info,
            "fused_layers": layers,
            "temperature_last_epoch": objective.schedule.at(max(0, len(deployed.history) - 1)),
        }
        return Report(info=info, extra_params=objective.extra_params())
