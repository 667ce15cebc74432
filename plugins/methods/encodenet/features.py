"""Clustering features for EncodeNet's intraclass clustering.

The paper clusters ImageNet-pretrained VGG16 conv features (512-d for 32x32 inputs: five max-pools leave
1x1x512). Pretrained weights are used only when they are available locally: torchvision's weight cache
(``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth``) or ``--opt encodenet.vgg16_weights=PATH``; nothing is
downloaded. Otherwise ``features=auto`` falls back to the baseline's own encoder features (its pooled
penultimate embedding), and says so; ``features=pixels`` clusters raw normalised pixels. The record states
which features were clustered. Extraction is batched on the run's device.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from harness.api import LevelClassifier, UsageError

#: imported in the functions below (VGG16, PCA); their versions enter the code identity (harness.core.identity)
IMPORTED_WHEN_USED = ("torchvision", "sklearn")
VGG16_FILE = "vgg16-397923af.pth"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def vgg16_weights_path(explicit: str) -> Path | None:
    if explicit:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise UsageError(f"encodenet.vgg16_weights: no file at {path}")
        return path
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    cached = torch_home / "hub" / "checkpoints" / VGG16_FILE
    return cached if cached.exists() else None


def require_vgg16_weights(explicit: str) -> Path:
    path = vgg16_weights_path(explicit)
    if path is None:
        raise UsageError(
            "encodenet.features=vgg16 needs ImageNet VGG16 weights: put vgg16-397923af.pth in "
            "torchvision's cache or pass --opt encodenet.vgg16_weights=PATH (or use features=auto)"
        )
    return path


def vgg16_extractor(weights: Path) -> nn.Module:
    from torchvision.models import vgg16

    model = vgg16(weights=None)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.features.eval()


@torch.no_grad()
def extract(images: torch.Tensor, fn, device: torch.device, batch: int = 1000) -> np.ndarray:
    out = []
    for i in range(0, len(images), batch):
        out.append(fn(images[i : i + batch].to(device)).float().cpu())
    return torch.cat(out).numpy()


def clustering_features(
    images: torch.Tensor,
    baseline: LevelClassifier,
    mean: tuple,
    std: tuple,
    *,
    choice: str,
    vgg16_weights: str,
    device: torch.device,
    note,
    encoder_features: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """(features, description) for uint8 ``images`` according to ``choice`` (auto, vgg16, encoder, pixels).
    ``encoder_features``: the baseline's pooled embeddings when the caller already computed them."""
    m = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=device).view(1, -1, 1, 1)
    if choice in ("auto", "vgg16"):
        weights = vgg16_weights_path(vgg16_weights)
        if weights is not None and images.shape[1] == 3:
            vgg = vgg16_extractor(weights).to(device)
            im = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
            istd = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
            fn = lambda x: torch.flatten(F.adaptive_avg_pool2d(vgg((x.float() / 255 - im) / istd), 1), 1)
            return extract(images, fn, device), f"ImageNet VGG16 conv features (512-d) from {weights}"
        if choice == "vgg16":
            require_vgg16_weights(vgg16_weights)
        note(
            "encodenet: no local ImageNet VGG16 weights (torchvision cache or encodenet.vgg16_weights); "
            "clustering the baseline's own encoder features instead"
        )
    if choice in ("auto", "encoder"):
        described = f"baseline encoder features ({baseline.head.embed_dim}-d pooled embedding)"
        if encoder_features is not None:
            return encoder_features, described
        baseline.eval()
        fn = lambda x: baseline.head.embed(baseline.forward_features((x.float() / 255 - m) / s))
        return extract(images, fn, device), described
    if choice == "pixels":
        fn = lambda x: torch.flatten((x.float() / 255 - m) / s, 1)
        return extract(images, fn, device), "raw normalised pixels"
    raise UsageError(f"encodenet.features must be auto, vgg16, encoder or pixels, got '{choice}'")


def pca(features: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """Optional PCA before clustering (scikit-learn; ``dims`` 0 keeps the features as they are)."""
    if not dims or dims >= features.shape[1]:
        return features
    from sklearn.decomposition import PCA

    return PCA(n_components=dims, random_state=seed).fit_transform(features)
