"""A frozen patch-whitening first layer, computed from training images (airbench94; Jordan 2024, "94% on
CIFAR-10 in 3.29 seconds on a single GPU", arXiv:2404.00498, Sec. 3.2; the idea goes back to Coates & Ng 2011).

The layer is a convolution with ``2 * c * k * k`` filters of size ``k x k`` and no padding. Its weights are the
eigenvectors of the (uncentred) covariance of every ``k x k`` patch of the given images, each scaled by
``1 / sqrt(eigenvalue + eps)``, in decreasing order of eigenvalue, followed by their negatives (so that a
following GELU passes both signs). The weights are frozen; the bias stays trainable.

Deviation from airbench94: its bias trains for the first 3 epochs only; here it trains throughout (the engine
keeps one set of trainable parameters per stage).
"""

from __future__ import annotations

import torch
from torch import nn

#: airbench94's ``init_whitening_conv``: eps added to the eigenvalues
EPS = 5e-4


def patches(images: torch.Tensor, kernel: tuple[int, int]) -> torch.Tensor:
    """Every ``kernel``-sized patch of ``images`` (N, C, H, W), flattened: (N * patches, C * kh * kw), fp32."""
    kh, kw = kernel
    c = images.shape[1]
    unfolded = images.float().unfold(2, kh, 1).unfold(3, kw, 1)  # N, C, H', W', kh, kw
    return unfolded.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * kh * kw)


def whitening_weights(images: torch.Tensor, kernel: tuple[int, int], eps: float = EPS) -> torch.Tensor:
    """The whitening filters of ``images`` (normalised, N x C x H x W): (2 * C * kh * kw, C, kh, kw)."""
    flat = patches(images, kernel).double()
    covariance = flat.T @ flat / flat.shape[0]
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    order = torch.arange(eigenvalues.numel() - 1, -1, -1)
    scaled = eigenvectors.T[order] / torch.sqrt(eigenvalues[order].clamp(min=0) + eps)[:, None]
    filters = scaled.reshape(-1, images.shape[1], *kernel).float()
    return torch.cat([filters, -filters])


@torch.no_grad()
def whiten(layer: nn.Conv2d, images: torch.Tensor, eps: float = EPS) -> None:
    """Set ``layer``'s weights to the whitening filters of ``images`` and freeze them."""
    weights = whitening_weights(images, (layer.kernel_size[0], layer.kernel_size[1]), eps)
    if weights.shape != layer.weight.shape:
        raise ValueError(
            f"a whitening layer of {tuple(images.shape[1:2])} channels and kernel "
            f"{tuple(layer.kernel_size)} has {weights.shape[0]} filters, not {layer.out_channels}"
        )
    layer.weight.copy_(weights.to(layer.weight.device, layer.weight.dtype))
    layer.weight.requires_grad_(False)
