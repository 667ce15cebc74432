"""The hooks a bench plugin can implement.

A plugin is a module (or object) with functions decorated by :data:`harness.hookimpl`. Each hook receives
a ``register`` callback; calling it adds one named entry to the matching registry::

    from harness import hookimpl

    @hookimpl
    def bench_register_methods(register):
        register("my-method", MyMethod, description="what it does")

Third-party plugins are found through the ``bench`` entry-point group
(``[project.entry-points.bench] my_plugin = "my_package.plugin"``). The built-in plugins in ``plugins/``
are registered through the same manager.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("bench")
hookimpl = pluggy.HookimplMarker("bench")


@hookspec
def bench_register_methods(register):  # type: ignore[no-untyped-def]
    """Register methods: ``register(name, method_class, description=...)``.

    ``method_class`` is a subclass of :class:`harness.methods.contract.Method`.
    """


@hookspec
def bench_register_archs(register):  # type: ignore[no-untyped-def]
    """Register architectures: ``register(name, factory, description=...)``.

    ``factory(spec: harness.models.staged.ArchSpec) -> torch.nn.Module``. A name ending in ``:`` is a prefix: it
    resolves every ``name<arg>`` and the factory reads ``spec.arg`` (for example ``timm:<model>``).
    """


@hookspec
def bench_register_datasets(register):  # type: ignore[no-untyped-def]
    """Register datasets: ``register(name, loader, description=...)``.

    ``loader(request: harness.data.datasets.DatasetRequest) -> harness.data.datasets.ImageDataset``. A name ending in ``:`` is
    a prefix, as for architectures (for example ``imagefolder:<path>``).
    """


@hookspec
def bench_register_recipes(register):  # type: ignore[no-untyped-def]
    """Register training recipes: ``register(name, recipe, description=...)`` with a
    :class:`harness.core.recipes.Recipe`."""


@hookspec
def bench_register_executors(register):  # type: ignore[no-untyped-def]
    """Register executors (where the stage jobs of a sweep run): ``register(name, backend_class, description=...)``.

    ``backend_class(options: harness.run.sweep.schedule.ExecutorOptions)`` is a
    :class:`harness.run.sweep.schedule.Backend`: ``submit(spec)`` starts a job that calls
    :func:`harness.run.sweep.jobs.run_job` on ``spec``, ``wait(handles)`` reports how some ended. A missing
    optional dependency is a :class:`harness.core.errors.UsageError` naming what to install.
    """
