"""``wavecnet``: wavelet downsampling (WaveCNet, Li et al.). See ``method.py``."""

from __future__ import annotations

from harness import hookimpl
from plugins.methods.wavecnet.method import WaveCNet


@hookimpl
def bench_register_methods(register):  # type: ignore[no-untyped-def]
    register("wavecnet", WaveCNet, description=WaveCNet.summary)
