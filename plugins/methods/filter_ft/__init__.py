"""Filter-level fine-tuning for distorted images (Bianchi et al. 2019). See ``method.py``."""

from __future__ import annotations

from harness.api import Register, hookimpl
from plugins.methods.filter_ft.method import FilterFinetune


@hookimpl
def bench_register_methods(register: Register) -> None:
    register("filter-ft", FilterFinetune, description=FilterFinetune.summary)
