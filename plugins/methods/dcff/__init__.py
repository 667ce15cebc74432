"""DCFF (Lin et al.): dynamic-coded filter fusion, a compact model trained from scratch. See ``method.py``."""

from __future__ import annotations

from harness.api import Register, hookimpl
from plugins.methods.dcff.method import DCFF


@hookimpl
def bench_register_methods(register: Register) -> None:
    register("dcff", DCFF, description=DCFF.summary)
