"""Shared machinery of attention-module methods: where modules go, and how they are inserted.

Placements, through the stage interface (never per-architecture copies of a module):

* ``block``: inside every residual block, after its last BatchNorm and before the residual add (SE, CBAM,
  GAM as in their papers). Blocks expose a slot for this: ``attn`` in the CIFAR ResNets, ``se`` in timm's
  ResNets. Architectures without residual blocks (the CIFAR VGGs) get the module after each conv stage
  (stem and every stage) instead; the record says so.
* ``stage``: between stages, after every stage but the last (BAM: after stages 1-3 of a ResNet-50).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from torch import nn

from harness.core.errors import UsageError
from harness.methods.contract import Method, MethodResult, Option
from harness.models.staged import StagedClassifier, count_params, require_staged

if TYPE_CHECKING:
    from harness.train.context import RunContext

SLOTS = ("attn", "se")  # the attribute a block applies after its last BN, before the residual add
PLACEMENTS = ("auto", "block", "stage")


@dataclass(frozen=True)
class Site:
    """One place a module goes: its channel count and a description for the record."""

    where: str
    channels: int


def block_slot(block: nn.Module) -> str | None:
    return next((name for name in SLOTS if hasattr(block, name)), None)


def block_channels(block: nn.Module) -> int:
    """Output channels of a residual block: its last BatchNorm outside the shortcut."""
    bns = [m for name, m in block.named_modules() if isinstance(m, nn.BatchNorm2d) and "downsample" not in name]
    if not bns:
        raise UsageError(f"block {type(block).__name__} has no BatchNorm after which a module could go")
    return bns[-1].num_features


def slotted_blocks(model: StagedClassifier) -> list[tuple[int, int, nn.Module]]:
    """(stage index, block index, block) of every block with an attention slot."""
    found = []
    for s, stage in enumerate(model.stages):
        if isinstance(stage, nn.Sequential):
            for b, block in enumerate(stage.children()):
                if block_slot(block) is not None:
                    found.append((s, b, block))
    return found


def insert_modules(model: StagedClassifier, make: "callable", placement: str) -> tuple[str, list[Site]]:
    """Insert ``make(channels)`` modules into ``model`` at ``placement``; returns the placement used."""
    sites: list[Site] = []
    blocks = slotted_blocks(model)
    if placement == "block" and blocks:
        for s, b, block in blocks:
            channels = block_channels(block)
            setattr(block, block_slot(block), make(channels))
            sites.append(Site(f"{model.feature_names[s + 1]}.{b}", channels))
        return "block", sites
    if placement == "block":
        if any(isinstance(m, nn.Module) and "Block" in type(m).__name__ for m in model.modules()):
            raise UsageError(f"architecture '{model.arch_name}' has blocks without an attention slot "
                             f"(after the last BN, before the residual add); use placement=stage")
        # plain (VGG-like) networks: after every conv stage, the stem included
        info = {i.name: i.channels for i in model.stage_info}
        model.stem = nn.Sequential(model.stem, make(info["stem"]))
        sites.append(Site("stem", info["stem"]))
        for i in range(model.num_stages):
            channels = model.stage_info[i + 1].channels
            model.stages[i] = nn.Sequential(model.stages[i], make(channels))
            sites.append(Site(model.feature_names[i + 1], channels))
        return "after-each-conv-stage", sites
    if placement == "stage":
        for i in range(model.num_stages - 1):
            channels = model.stage_info[i + 1].channels
            model.stages[i] = nn.Sequential(model.stages[i], make(channels))
            sites.append(Site(f"after {model.feature_names[i + 1]}", channels))
        return "stage", sites
    raise UsageError(f"placement must be one of {', '.join(PLACEMENTS)}, got '{placement}'")


class AttentionMethod(Method, ABC):
    """An architecture-modifying method: insert ``make_module(channels)`` at the method's placement, then
    train with plain cross-entropy like the baseline. Subclasses define ``make_module``."""

    default_placement: ClassVar[str] = "block"
    options = {"placement": Option("auto", "where modules go: auto (the method's own), block, stage", PLACEMENTS)}

    @abstractmethod
    def make_module(self, channels: int) -> nn.Module:
        """The module inserted at one site with ``channels`` channels (shape-preserving)."""

    def placement(self) -> str:
        chosen = self.opts.get("placement", "auto")
        return self.default_placement if chosen == "auto" else chosen

    def build_model(self, ctx: "RunContext") -> nn.Module:
        model = require_staged(ctx.build_arch(), self.name)
        before = count_params(model)
        used, sites = insert_modules(model, self.make_module, self.placement())
        self._inserted = {"placement": used, "modules": len(sites), "sites": [s.where for s in sites],
                          "module_params": count_params(model) - before}
        return ctx.place(model)

    def check(self, ctx: "RunContext") -> None:
        super().check(ctx)
        self.build_model(ctx)  # refuses an architecture the module cannot be applied to, before training

    def run(self, ctx: "RunContext") -> MethodResult:
        result = super().run(ctx)
        result.info.update(self._inserted)
        return result
