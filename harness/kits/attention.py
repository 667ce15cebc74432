"""Kit for attention-module methods: a module factory is all a method gives.

Where modules go is the architecture's business (timm's ``create_attn`` model): ``block`` placement uses
the sites the architecture declares (inside every residual block after its last BatchNorm and before the
residual add; after each conv level of a plain network such as the CIFAR VGGs); ``level`` placement puts a
module after every level but the last (BAM). An architecture that declares no block sites is refused for
``block`` placement with a clear error, whatever its classes are called.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from harness.methods.contract import ArchitectureMethod, Option
from harness.models.levels import LevelClassifier, count_params, require_levels

PLACEMENTS = ("auto", "block", "level")
#: ``official``: the initialisation of the module's official code (the method's ``init_official``);
#: ``pytorch``: PyTorch's defaults (modules are inserted after timm's init pass, which never sees them)
INIT_OPTION = Option(
    "official", "module init: official (the official code's) or pytorch (PyTorch defaults)", ("official", "pytorch")
)


def kaiming_conv_zero_bias(module: nn.Module, convs: list[nn.Conv2d] | None = None) -> None:
    """The official BAM/CBAM code's init (Jongchan/attention-module, MODELS/model_resnet.py): weights of
    convolutions (``convs``, default all of them) kaiming normal with fan_out, every bias zero (convolutions,
    linear layers, BatchNorm); linear weights and BatchNorm gammas keep PyTorch's defaults."""
    for conv in convs if convs is not None else [m for m in module.modules() if isinstance(m, nn.Conv2d)]:
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    for m in module.modules():
        bias = getattr(m, "bias", None)
        if isinstance(bias, torch.Tensor):
            nn.init.zeros_(bias)


def insert_attention(model: LevelClassifier, make_module: Callable[[int], nn.Module], placement: str) -> dict[str, Any]:
    """Insert ``make_module(channels)`` at every site of ``placement``; returns what the record says of it."""
    before = count_params(model)
    sites = model.attention_sites(placement)
    for site in sites:
        model.insert(site, make_module(site.channels))
    return {
        "placement": placement,
        "modules": len(sites),
        "sites": [s.path for s in sites],
        "module_params": count_params(model) - before,
    }


class AttentionMethod(ArchitectureMethod, ABC):
    """An architecture-modifying method: ``make_module(channels)`` at every site of the method's placement,
    then plain cross-entropy training like the baseline (its role: ``architecture``, on the attention sites
    of its placement, so ``kd+se`` distils into an SE-equipped student)."""

    default_placement: ClassVar[str] = "block"
    options = {"placement": Option("auto", "where modules go: auto (the method's own), block, level", PLACEMENTS)}

    @abstractmethod
    def make_module(self, channels: int) -> nn.Module:
        """The module inserted at one site with ``channels`` channels (shape-preserving)."""

    def init_official(self, module: nn.Module) -> None:
        """The official code's initialisation of a new module, for methods with an ``init`` option."""

    def build_module(self, channels: int) -> nn.Module:
        module = self.make_module(channels)
        if self.opts.get("init") == "official":
            self.init_official(module)
        return module

    def placement(self) -> str:
        chosen = self.opts.get("placement", "auto")
        return self.default_placement if chosen == "auto" else chosen

    def rewrite_sites(self) -> frozenset[str]:
        """The attention sites of this instance's placement (``block`` or ``level``)."""
        return frozenset({f"{self.placement()} attention sites"})

    def rewrite(self, model: nn.Module) -> dict[str, Any]:
        """The modules inserted into ``model``; where they went and how many parameters they add is what the
        record says (the objective's ``info``)."""
        return insert_attention(require_levels(model, self.name), self.build_module, self.placement())
