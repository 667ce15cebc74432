"""Trying a plugin before it is installed: ``bench`` commands with extra plugin objects loaded.

A plugin's own tests (and the guides in ``docs/plugins/``) run the real command line with the plugin
registered beside the installed ones, without writing an entry point::

    from harness.testing import bench_with

    assert bench_with([my_plugin], ["run", "--methods", "my-method", "--arch", "resnet8",
                                    "--dataset", "cifar10-mini", "--recipe", "smoke", "--epochs", "1"]) == 0

``my_plugin`` is anything a plugin can be: a module, a class or an object with ``bench_register_*`` hook
implementations (``harness.api.hookimpl``), or a ``harness.api.declared_plugin``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from collections.abc import Iterator
from typing import Any

from harness.plugins import manager


@contextmanager
def plugins_loaded(extra: Sequence[Any]) -> Iterator[manager.PluginSet]:
    """The process-wide plugin set, with ``extra`` plugins (named ``extra0``, ``extra1``, ...) registered
    after the installed ones, for the duration of the block."""
    saved = manager._CACHE
    manager._CACHE = manager.load_plugins(extra=[(f"extra{i}", p) for i, p in enumerate(extra)])
    try:
        yield manager._CACHE
    finally:
        manager._CACHE = saved


def bench_with(extra: Sequence[Any], args: list[str]) -> int:
    """Run ``bench ARGS`` (in this process) with the ``extra`` plugins loaded; returns its exit code."""
    from harness.cli import main

    with plugins_loaded(extra):
        return main(args)
