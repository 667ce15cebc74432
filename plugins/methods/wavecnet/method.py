"""``wavecnet``: every downsampling of the architecture replaced by the low-frequency part of a DWT.

Source: Li, Shen, Guo, Lai, "Wavelet Integrated CNNs for Noise-Robust Image Classification" (CVPR 2020):
max-pooling, strided convolution and average pooling are replaced by a discrete wavelet transform whose
low-frequency component is kept and passed on, the high-frequency components (most of the noise) dropped. Per
site, as in the paper: a stride-2 pooling becomes ``DWT_LL``; a stride-2 kxk convolution becomes the same
convolution at stride 1 followed by ``DWT_LL``. A stride-2 1x1 convolution (a projection shortcut) becomes
``DWT_LL`` followed by the 1x1 convolution at stride 1: the same function (both are linear and act on
different axes) at a quarter of the cost.

Where downsampling happens is the architecture's business: it declares its sites
(``LevelClassifier.declare_downsampling_sites``: CIFAR ResNets and timm ResNets their strided convolutions
and projection shortcuts, CIFAR VGGs their max-pools); an architecture that declares none is refused. The
deployed parameters are unchanged (the DWT has fixed filters); the MACs grow by the strided convolutions
now run at full resolution plus the DWT's depthwise convolutions, both counted in the record.

Deviations: only the LL sub-band is computed (the paper's DWT layer computes all four and drops three);
boundary handling is periodization (ceil(N/2) outputs), the paper's DWT matrices are truncated at the
border; the authors' code (LiQiufu/WaveCNet, ``models_dwt``) differs from the paper's rule in two places
that are not followed here: its VGGs put a BatchNorm after every DWT that replaces a max-pool, and its
ResNet blocks run the first convolution at stride 1 and apply the DWT after that convolution's BatchNorm
and ReLU, just before the next convolution (here the DWT directly follows the convolution, before its BN);
the noise-robustness evaluation is a separate, general option of the harness, not part of this method.
"""

from __future__ import annotations

from torch import nn

from harness.api import Option, UsageError, require_levels
from harness.kits.transform import ArchTransformMethod
from plugins.methods.wavecnet.dwt import WaveletLowpass, lowpass_filter


def wavelet_downsampling(site: nn.Module, wavelet: str, path: str) -> nn.Module:
    """The replacement of one downsampling module (a stride-2 pool or convolution)."""
    if isinstance(site, (nn.MaxPool2d, nn.AvgPool2d)):
        return WaveletLowpass(wavelet)
    if isinstance(site, nn.Conv2d) and site.stride == (2, 2):
        site.stride = (1, 1)
        if site.kernel_size == (1, 1):
            return nn.Sequential(WaveletLowpass(wavelet), site)
        return nn.Sequential(site, WaveletLowpass(wavelet))
    raise UsageError(
        f"wavecnet: the downsampling site '{path}' is a {type(site).__name__} that wavelet "
        f"downsampling cannot replace (a stride-2 pooling or convolution is needed)"
    )


class WaveCNet(ArchTransformMethod):
    sites = ("downsampling layers",)
    options = {
        "wavelet": Option(
            "haar", "wavelet: haar, or any PyWavelets discrete wavelet (db2, sym4, bior2.2 = Cohen ch2.2, ...)"
        )
    }

    def transform(self, model: nn.Module) -> dict:
        leveled = require_levels(model, self.name)
        lowpass_filter(self.opts["wavelet"])  # an unknown wavelet or a missing PyWavelets fails here, in one line
        sites = leveled.downsampling_sites()
        kinds = []
        for path in sites:
            site = leveled.get_submodule(path)
            kinds.append(type(site).__name__)
            leveled.replace(path, wavelet_downsampling(site, self.opts["wavelet"], path))
        return {"wavelet": self.opts["wavelet"], "sites": sites, "replaced": kinds}
