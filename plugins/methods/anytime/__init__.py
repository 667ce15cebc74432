"""``anytime``: multi-exit training and anytime / budgeted-batch evaluation (MSDNet). See ``method.py``."""

from __future__ import annotations

from harness.api import Register, hookimpl
from plugins.methods.anytime.method import Anytime


@hookimpl
def bench_register_methods(register: Register) -> None:
    register("anytime", Anytime, description=Anytime.summary)
