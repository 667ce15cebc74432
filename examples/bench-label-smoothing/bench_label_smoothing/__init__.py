"""An example third-party plugin for encodenet-bench: cross-entropy with label smoothing (``plugin.py``).

The package's entry point is this module: its hook registers the method *by reference*, so that ``bench list``
and ``bench --help`` do not import torch or the method's module; the harness imports ``plugin.py`` when the
method is used (and checks then that it is a ``Method``).
"""

from __future__ import annotations

from harness.api import Register, hookimpl


@hookimpl
def bench_register_methods(register: Register) -> None:
    register(
        "label-smoothing",
        "bench_label_smoothing.plugin:LabelSmoothing",
        description="cross-entropy with label smoothing (example third-party plugin)",
    )
