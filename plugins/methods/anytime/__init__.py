"""``anytime``: multi-exit training and anytime / budgeted-batch evaluation (MSDNet). See ``method.py``."""

from __future__ import annotations

from harness import hookimpl
from plugins.methods.anytime.method import Anytime


@hookimpl
def bench_register_methods(register):  # type: ignore[no-untyped-def]
    register("anytime", Anytime, description=Anytime.summary)
