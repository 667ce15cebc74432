"""``wavecnet``: wavelet downsampling (WaveCNet, Li et al.). See ``method.py``."""

from __future__ import annotations

from harness.api import Register, hookimpl
from plugins.methods.wavecnet.method import WaveCNet


@hookimpl
def bench_register_methods(register: Register) -> None:
    register("wavecnet", WaveCNet, description=WaveCNet.summary)
