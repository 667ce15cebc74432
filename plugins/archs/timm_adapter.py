"""Adapt a timm model to the level interface without rewriting it.

The timm model's own modules are reused: the children before its stage container (timm's name) form the stem, that
container's children (or ``layer1..layerN``) the levels, and what follows, run through the model's own
``forward_head``, the head. The split is verified at build time: the level-wise forward must reproduce the
model's forward exactly, otherwise the model is returned as an opaque classifier (methods that need levels
then refuse it with a clear error).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from harness.api import ArchSpec, LevelClassifier

STAGE_CONTAINERS = ("stages", "layers", "blocks", "features")
HEAD_CHILDREN = {"global_pool", "fc", "head", "classifier", "head_drop", "fc_norm", "pre_logits", "flatten"}


class TimmHead(nn.Module):
    """The part of a timm model after its levels: its feature tail (for example ``norm_pre``) and ``forward_head``."""

    _timm: Any  # the timm model, whose members differ from model to model

    def __init__(self, model: nn.Module, tail: list[tuple[str, nn.Module]], head: list[tuple[str, nn.Module]]):
        super().__init__()
        self.tail = nn.Sequential(*(m for _, m in tail))
        self.parts = nn.ModuleDict(dict(head))  # registered so parameters are counted and moved with the wrapper
        object.__setattr__(self, "_timm", model)  # not registered: its modules are the ones above

    @property
    def embed_dim(self) -> int:
        return int(getattr(self._timm, "head_hidden_size", None) or self._timm.num_features)

    @property
    def fc(self) -> nn.Module:
        return self._timm.get_classifier()

    def train(self, mode: bool = True) -> "TimmHead":
        super().train(mode)
        self._timm.training = mode
        return self

    def embed(self, feat: torch.Tensor) -> torch.Tensor:
        return self._timm.forward_head(self.tail(feat), pre_logits=True)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self._timm.forward_head(self.tail(feat))


def level_split(model: nn.Module) -> tuple[list, list, list, list] | None:
    """(stem, levels, tail, head) named children of a timm model, or None when no level layout is found."""
    children = list(model.named_children())
    names = [n for n, _ in children]
    container = next((n for n in STAGE_CONTAINERS if n in names and isinstance(getattr(model, n), nn.Sequential)), None)
    if container is not None:
        first = last = names.index(container)
        levels = list(getattr(model, container).named_children())
    else:
        layer_idx = [i for i, n in enumerate(names) if n.startswith("layer") and n[5:].isdigit()]
        if not layer_idx:
            return None
        first, last = layer_idx[0], layer_idx[-1]
        levels = children[first : last + 1]
    stem = children[:first]
    after = children[last + 1 :]
    tail = [(n, m) for n, m in after if n not in HEAD_CHILDREN]
    head = [(n, m) for n, m in after if n in HEAD_CHILDREN]
    return stem, levels, tail, head


def named(model: nn.Module, name: str) -> nn.Module:
    """``model`` with ``arch_name`` set (the name messages use; a LevelClassifier sets its own). A plain
    attribute: ``object.__setattr__``, as ``nn.Module.__setattr__`` is typed for tensors and modules only."""
    object.__setattr__(model, "arch_name", name)
    return model


def adapt_timm(model: nn.Module, spec: ArchSpec, family: str) -> nn.Module:
    """Wrap ``model`` as a LevelClassifier when its layout allows, else return it unchanged."""
    split = level_split(model)
    if split is None:
        warnings.warn(f"{spec.name}: no level layout found; methods that need levels cannot use it", stacklevel=2)
        return named(model, spec.name)
    stem, levels, tail, head = split
    # batch 1: the shapes of the level probe that LevelClassifier makes, so that their kernels are set up once
    x = torch.randn(1, spec.in_chans, spec.input_size, spec.input_size, generator=torch.Generator().manual_seed(0))
    try:
        leveled = LevelClassifier(
            nn.Sequential(*(m for _, m in stem)),
            [m for _, m in levels],
            TimmHead(model, tail, head),
            spec=spec,
            level_names=[n for n, _ in levels],
            family=family,
        )
        model.eval()
        leveled.eval()
        with torch.no_grad():
            same = torch.allclose(model(x), leveled(x), rtol=1e-4, atol=1e-5)
    except Exception:  # the children's order does not describe the forward pass
        same = False
    model.train()
    if not same:
        warnings.warn(
            f"{spec.name}: the model's children do not split into stem/levels/head; "
            "using it without the level interface",
            stacklevel=2,
        )
        return named(model, spec.name)
    leveled.train()
    return leveled
