"""The one interface every architecture exposes: ``stem -> stages -> head``.

Methods tap named feature stages and split encoder from head through this interface, never through the
layout of a particular architecture:

* ``forward_stages(x)`` returns the stem output followed by every stage's output (the layout of the CRD
  benchmark's ``is_feat`` features: index 2 is the 16x16 map of a CIFAR ResNet);
* ``forward_features(x, upto=k)`` runs the stem and the first ``k`` stages;
* ``forward_from(feat, start=k)`` runs stages ``k..`` and the head;
* ``forward_head(feat)`` pools and classifies; ``head.embed(feat)`` gives the pooled embedding;
* ``stage_info`` gives each feature's name, channels and stride;
* ``attention_sites(placement)`` says where attention modules may go: ``block`` sites are declared by the
  architecture (``declare_block_sites``: in a residual block after its last BN, before the add, or after each
  conv stage of a plain network), ``stage`` sites (after every stage but the last) follow from the stages;
  ``insert(site, module)`` puts a module there;
* ``downsampling_sites()`` says where the resolution is halved: the architecture declares the paths of its
  pooling layers and strided convolutions (``declare_downsampling_sites``), so that a method can replace
  them (wavelet downsampling) without knowing the architecture; ``replace(path, module)`` swaps one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from harness.core.errors import UsageError


@dataclass(frozen=True)
class ArchSpec:
    """What an architecture factory is asked to build."""

    name: str
    num_classes: int
    in_chans: int = 3
    input_size: int = 32
    arg: str | None = None  # the part after a prefix, e.g. the timm model name of ``timm:<name>``


@dataclass(frozen=True)
class AttentionSite:
    """A place where an attention module may go: the dotted path of the module it replaces (an identity or
    empty slot) or follows, and the channel count there."""

    path: str
    channels: int


@dataclass(frozen=True)
class StageInfo:
    """One feature of ``forward_stages``: its name, channel count, spatial size and stride."""

    name: str
    channels: int
    size: int
    reduction: int


class ClassifierHead(nn.Module):
    """Global average pooling, flatten, and a linear classifier (``fc``)."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_features, num_classes)

    @property
    def embed_dim(self) -> int:
        return self.fc.in_features

    def embed(self, feat: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(feat), 1)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(feat))


class StagedClassifier(nn.Module):
    """An image classifier split into a stem, an ordered list of stages and a head."""

    def __init__(
        self,
        stem: nn.Module,
        stages: Sequence[nn.Module],
        head: nn.Module,
        *,
        spec: ArchSpec,
        stage_names: Sequence[str] | None = None,
        family: str = "",
    ) -> None:
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.arch_name = spec.name
        self.family = family
        names = list(stage_names) if stage_names else [f"stage{i + 1}" for i in range(len(self.stages))]
        self.feature_names = ["stem", *names]
        self.stage_info = self._probe(spec)
        self.block_sites: list[AttentionSite] = []
        self.downsampling_paths: list[str] = []

    def declare_block_sites(self, sites: Sequence[tuple[str, int]]) -> None:
        """The architecture's own places for per-block attention modules: (dotted path, channels)."""
        for path, channels in sites:
            self._parent_and_leaf(path)  # fails now for a path that does not exist
        self.block_sites = [AttentionSite(path, channels) for path, channels in sites]

    def declare_downsampling_sites(self, paths: Sequence[str]) -> None:
        """The architecture's pooling layers and strided convolutions that halve the resolution (dotted
        paths), in forward order."""
        for path in paths:
            self._parent_and_leaf(path)  # fails now for a path that does not exist
        self.downsampling_paths = list(paths)

    def downsampling_sites(self) -> list[str]:
        if not self.downsampling_paths:
            raise UsageError(f"architecture '{self.arch_name}' declares no downsampling sites")
        return list(self.downsampling_paths)

    def replace(self, path: str, module: nn.Module) -> None:
        """Put ``module`` in place of the module at ``path``."""
        parent, leaf = self._parent_and_leaf(path)
        setattr(parent, leaf, module)

    def attention_sites(self, placement: str) -> list[AttentionSite]:
        """``block``: the declared sites; ``stage``: after every stage but the last."""
        if placement == "block":
            if not self.block_sites:
                raise UsageError(f"architecture '{self.arch_name}' declares no block sites for attention modules; "
                                 f"use placement=stage")
            return list(self.block_sites)
        if placement == "stage":
            return [AttentionSite(f"stages.{i}", self.stage_info[i + 1].channels) for i in range(self.num_stages - 1)]
        raise UsageError(f"placement must be block or stage, got '{placement}'")

    def _parent_and_leaf(self, path: str) -> tuple[nn.Module, str]:
        parent_path, _, leaf = path.rpartition(".")
        try:
            parent = self.get_submodule(parent_path) if parent_path else self
        except AttributeError:
            raise UsageError(f"architecture '{self.arch_name}' has no module '{parent_path}'") from None
        if not hasattr(parent, leaf):
            raise UsageError(f"architecture '{self.arch_name}' has no module '{path}'")
        return parent, leaf

    def insert(self, site: AttentionSite, module: nn.Module) -> None:
        """Put ``module`` at ``site``: in place of an identity or empty slot, else right after the module there."""
        parent, leaf = self._parent_and_leaf(site.path)
        current = getattr(parent, leaf)
        setattr(parent, leaf, module if current is None or isinstance(current, nn.Identity)
                else nn.Sequential(current, module))

    @torch.no_grad()
    def _probe(self, spec: ArchSpec) -> list[StageInfo]:
        was_training = self.training
        self.eval()
        x = torch.zeros(1, spec.in_chans, spec.input_size, spec.input_size)
        feats = self.forward_stages(x)
        self.train(was_training)
        return [
            StageInfo(name, f.shape[1], f.shape[-1], max(1, spec.input_size // max(1, f.shape[-1])))
            for name, f in zip(self.feature_names, feats)
        ]

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The stem output, then every stage's output."""
        feats = [self.stem(x)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        return feats

    def forward_features(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """Run the stem and the first ``upto`` stages (all of them by default)."""
        x = self.stem(x)
        for stage in self.stages[: self.num_stages if upto is None else upto]:
            x = stage(x)
        return x

    def forward_from(self, feat: torch.Tensor, start: int) -> torch.Tensor:
        """Run stages ``start..`` on a feature map produced by ``forward_features(x, upto=start)``."""
        for stage in self.stages[start:]:
            feat = stage(feat)
        return self.head(feat)

    def forward_head(self, feat: torch.Tensor) -> torch.Tensor:
        return self.head(feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def require_staged(model: nn.Module, method: str) -> StagedClassifier:
    """Return ``model`` as a StagedClassifier or explain why a method cannot use it."""
    if isinstance(model, StagedClassifier):
        return model
    raise UsageError(
        f"method '{method}' needs the stage interface (stem/stages/head), which architecture "
        f"'{getattr(model, 'arch_name', type(model).__name__)}' does not expose"
    )


def count_params(module: nn.Module) -> int:
    """Trainable and frozen parameters (weights, biases, BN affine); buffers such as running stats excluded."""
    return sum(p.numel() for p in module.parameters())
