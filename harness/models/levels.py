"""The one interface every architecture exposes: ``stem -> levels -> head``.

Vocabulary: an architecture is split into **levels** (the groups of blocks between resolution changes, a
ResNet's ``layer1..layer3``, a VGG's conv groups); a **stage** is always a training step of a method's plan
(:class:`harness.train.stage.Stage`), never a part of a network.

Methods tap named feature levels and split encoder from head through this interface, never through the
layout of a particular architecture:

* ``forward_levels(x)`` returns the stem output followed by every level's output (the layout of the CRD
  benchmark's ``is_feat`` features: index 2 is the 16x16 map of a CIFAR ResNet);
* ``forward_features(x, upto=k)`` runs the stem and the first ``k`` levels;
* ``forward_from(feat, start=k)`` runs levels ``k..`` and the head;
* ``forward_head(feat)`` pools and classifies; ``head.embed(feat)`` gives the pooled embedding;
* ``level_info`` gives each feature's name, channels and stride;
* ``attention_sites(placement)`` says where attention modules may go: ``block`` sites are declared by the
  architecture (``declare_block_sites``: in a residual block after its last BN, before the add, or after each
  conv level of a plain network), ``level`` sites (after every level but the last) follow from the levels;
  ``insert(site, module)`` puts a module there;
* ``whitening_layer`` (None unless declared, ``declare_whitening_layer``): the path of a first convolution
  that a recipe may set to a frozen patch-whitening of the training data (:mod:`harness.models.whitening`);
* ``downsampling_sites()`` says where the resolution is halved: the architecture declares the paths of its
  pooling layers and strided convolutions (``declare_downsampling_sites``), so that a method can replace
  them (wavelet downsampling) without knowing the architecture; ``replace(path, module)`` swaps one.

Until release 0.3 the old names (``StagedClassifier``, ``forward_stages``, ``stage_info``, ``num_stages``,
``.stages``, placement ``stage``) still work and warn (:class:`DeprecationWarning`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

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
class LevelInfo:
    """One feature of ``forward_levels``: its name, channel count, spatial size and stride."""

    name: str
    channels: int
    size: int
    reduction: int


class ClassifierHead(nn.Module):
    """Global average pooling, flatten, and a linear classifier (``fc``)."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.pool: nn.Module = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_features, num_classes)

    @property
    def embed_dim(self) -> int:
        return self.fc.in_features

    def embed(self, feat: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(feat), 1)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(feat))


if TYPE_CHECKING:

    class Head(nn.Module):
        """What type checkers know of a level classifier's head: :class:`ClassifierHead`'s members, which an
        adapter's head (timm's) has too (at run time: any ``nn.Module``)."""

        embed_dim: int

        def embed(self, feat: torch.Tensor) -> torch.Tensor: ...
else:
    Head = nn.Module


class LevelClassifier(nn.Module):
    """An image classifier split into a stem, an ordered list of levels and a head."""

    stem: nn.Module
    levels: nn.ModuleList
    head: Head

    def __init__(
        self,
        stem: nn.Module,
        levels: Sequence[nn.Module],
        head: nn.Module,
        *,
        spec: ArchSpec,
        level_names: Sequence[str] | None = None,
        family: str = "",
    ) -> None:
        super().__init__()
        self.stem = stem
        self.levels = nn.ModuleList(levels)
        self.head = cast(Head, head)  # ClassifierHead or an adapter's head with the same members
        self.arch_name = spec.name
        self.family = family
        names = list(level_names) if level_names else [f"level{i + 1}" for i in range(len(self.levels))]
        self.feature_names = ["stem", *names]
        self.level_info = self._probe(spec)
        self.block_sites: list[AttentionSite] = []
        self.downsampling_paths: list[str] = []
        self.whitening_layer: str | None = None

    def declare_block_sites(self, sites: Sequence[tuple[str, int]]) -> None:
        """The architecture's own places for per-block attention modules: (dotted path, channels)."""
        for path, _ in sites:
            self._parent_and_leaf(path)  # fails now for a path that does not exist
        self.block_sites = [AttentionSite(path, channels) for path, channels in sites]

    def declare_downsampling_sites(self, paths: Sequence[str]) -> None:
        """The architecture's pooling layers and strided convolutions that halve the resolution (dotted
        paths), in forward order."""
        for path in paths:
            self._parent_and_leaf(path)  # fails now for a path that does not exist
        self.downsampling_paths = list(paths)

    def declare_whitening_layer(self, path: str) -> None:
        """The dotted path of the first convolution, which a recipe's ``whiten`` sets to the patch-whitening of
        the training images and freezes (its output channels: twice its input patch size)."""
        parent, leaf = self._parent_and_leaf(path)
        if not isinstance(getattr(parent, leaf), nn.Conv2d):
            raise UsageError(f"architecture '{self.arch_name}': the whitening layer '{path}' is not a Conv2d")
        self.whitening_layer = path

    def downsampling_sites(self) -> list[str]:
        if not self.downsampling_paths:
            raise UsageError(f"architecture '{self.arch_name}' declares no downsampling sites")
        return list(self.downsampling_paths)

    def replace(self, path: str, module: nn.Module) -> None:
        """Put ``module`` in place of the module at ``path``."""
        parent, leaf = self._parent_and_leaf(path)
        setattr(parent, leaf, module)

    def attention_sites(self, placement: str) -> list[AttentionSite]:
        """``block``: the declared sites; ``level``: after every level but the last."""
        if placement == "block":
            if not self.block_sites:
                raise UsageError(
                    f"architecture '{self.arch_name}' declares no block sites for attention modules; "
                    f"use placement=level"
                )
            return list(self.block_sites)
        if placement == "level":
            return [AttentionSite(f"levels.{i}", self.level_info[i + 1].channels) for i in range(self.num_levels - 1)]
        raise UsageError(f"placement must be block or level, got '{placement}'")

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
        setattr(
            parent,
            leaf,
            module if current is None or isinstance(current, nn.Identity) else nn.Sequential(current, module),
        )

    @torch.no_grad()
    def _probe(self, spec: ArchSpec) -> list[LevelInfo]:
        was_training = self.training
        self.eval()
        x = torch.zeros(1, spec.in_chans, spec.input_size, spec.input_size)
        feats = self.forward_levels(x)
        self.train(was_training)
        return [
            LevelInfo(name, f.shape[1], f.shape[-1], max(1, spec.input_size // max(1, f.shape[-1])))
            for name, f in zip(self.feature_names, feats)
        ]

    @property
    def num_levels(self) -> int:
        return len(self.levels)

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The stem output, then every level's output."""
        feats = [self.stem(x)]
        for level in self.levels:
            feats.append(level(feats[-1]))
        return feats

    def forward_features(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """Run the stem and the first ``upto`` levels (all of them by default)."""
        x = self.stem(x)
        for level in self.levels[: self.num_levels if upto is None else upto]:
            x = level(x)
        return x

    def forward_from(self, feat: torch.Tensor, start: int) -> torch.Tensor:
        """Run levels ``start..`` on a feature map produced by ``forward_features(x, upto=start)``."""
        for level in self.levels[start:]:
            feat = level(feat)
        return self.head(feat)

    def forward_head(self, feat: torch.Tensor) -> torch.Tensor:
        return self.head(feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def require_levels(model: nn.Module, method: str) -> LevelClassifier:
    """Return ``model`` as a LevelClassifier or explain why a method cannot use it."""
    if isinstance(model, LevelClassifier):
        return model
    raise UsageError(
        f"method '{method}' needs the level interface (stem/levels/head), which architecture "
        f"'{getattr(model, 'arch_name', type(model).__name__)}' does not expose"
    )


def count_params(module: nn.Module) -> int:
    """Trainable and frozen parameters (weights, biases, BN affine); buffers such as running stats excluded."""
    return sum(p.numel() for p in module.parameters())
