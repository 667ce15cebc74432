"""The low-frequency part of a one-level 2-D discrete wavelet transform, as a downsampling layer.

``WaveletLowpass`` computes the LL sub-band of an orthogonal (or biorthogonal) DWT with periodic
extension ("periodization": an N-sample signal gives ceil(N/2) coefficients), channel by channel: a
depthwise convolution with the outer product of the wavelet's decomposition low-pass filter, stride 2. The
three high-frequency sub-bands are not computed (WaveCNet drops them). It equals PyWavelets'
``pywt.dwt2(x, wavelet, mode="periodization")[0]`` (tested).

Filters: Haar is built in (no dependency). Every other discrete wavelet (Daubechies ``dbN``, symlets,
Cohen-Daubechies-Feauveau biorthogonal ``biorX.Y``, also accepted as WaveCNet's ``chX.Y``) comes from
PyWavelets, the optional ``wavelets`` extra (``pip install 'encodenet-bench[wavelets]'``). Why PyWavelets and
not ``ptwt`` or ``pytorch_wavelets``: both take their filters from PyWavelets anyway, both compute all four
sub-bands (four times the work of the one kept), ``ptwt``'s convolution transform has no
periodization mode (its output is (N+L-1)/2 samples for filter length L, so not a drop-in for a stride-2
layer beyond Haar), and ``pytorch_wavelets`` has had no release since 1.3.0.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from harness.api import import_extra, unknown_name

HAAR_LOWPASS = (1 / math.sqrt(2), 1 / math.sqrt(2))


def lowpass_filter(wavelet: str) -> tuple[float, ...]:
    """The decomposition low-pass filter of ``wavelet`` (Haar built in, others from PyWavelets)."""
    if wavelet == "haar":
        return HAAR_LOWPASS
    pywt = import_extra("pywt", "wavelets", f"wavelet '{wavelet}'", package="PyWavelets", hint="; haar needs nothing")
    name = "bior" + wavelet[2:] if wavelet.startswith("ch") else wavelet  # WaveCNet's Cohen "chX.Y"
    known = pywt.wavelist(kind="discrete")
    if name not in known:
        raise unknown_name("wavelet", wavelet, known)
    return tuple(pywt.Wavelet(name).dec_lo)


class WaveletLowpass(nn.Module):
    """LL sub-band of a one-level 2-D DWT (periodization): (B, C, H, W) -> (B, C, ceil(H/2), ceil(W/2))."""

    kernel: torch.Tensor  # a buffer

    def __init__(self, wavelet: str = "haar") -> None:
        super().__init__()
        self.wavelet = wavelet
        lo = torch.tensor(lowpass_filter(wavelet), dtype=torch.float32).flip(0)  # convolution, not correlation
        self.register_buffer("kernel", torch.outer(lo, lo)[None, None], persistent=False)
        self.pad = len(lo) // 2 - 1

    def extra_repr(self) -> str:
        return f"wavelet={self.wavelet}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = x.reshape(b * c, 1, h, w)
        if h % 2 or w % 2:  # periodization of an odd length repeats the last sample first
            y = F.pad(y, (0, w % 2, 0, h % 2), mode="replicate")
        if self.pad:
            y = F.pad(y, (self.pad,) * 4, mode="circular")
        y = F.conv2d(y, self.kernel.to(y.dtype), stride=2)
        return y.reshape(b, c, y.shape[-2], y.shape[-1])
