"""The hooks a bench plugin can implement (the host's spec; pytest's ``hookspec.py`` is the model).

A plugin is a module (or object) with functions decorated by :data:`hookimpl`. Each hook receives a
``register`` callback (:class:`Register`); calling it adds one named entry to the matching registry, after a
check of what kind of object it is (a one-line error naming the plugin otherwise)::

    from harness.api import Register, hookimpl

    @hookimpl
    def bench_register_methods(register: Register) -> None:
        register("my-method", MyMethod, description="what it does")

Third-party plugins are found through the ``bench`` entry-point group
(``[project.entry-points.bench] my_plugin = "my_package.plugin"``). The built-in plugins in ``plugins/``
are registered through the same manager. A name ending in ``:`` is a prefix: it resolves every
``name<arg>`` and the object reads the argument (``spec.arg`` of an architecture, ``request.arg`` of a
dataset; for example ``timm:<model>``, ``imagefolder:<path>``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

import pluggy

if TYPE_CHECKING:
    from torch import nn

    from harness.core.recipes import Recipe
    from harness.data.datasets import DatasetRequest, ImageDataset
    from harness.methods.contract import Method
    from harness.models.levels import ArchSpec
    from harness.run.loggers import Logger
    from harness.run.sweep.backend import Backend

hookspec = pluggy.HookspecMarker("bench")
hookimpl = pluggy.HookimplMarker("bench")

T_contra = TypeVar("T_contra", contravariant=True)


class Register(Protocol[T_contra]):
    """The ``register`` callback of a registration hook: ``register(name, obj, description="...")``."""

    def __call__(self, name: str, obj: T_contra, /, description: str = "", **meta: str) -> None: ...


ArchFactory = Callable[["ArchSpec"], "nn.Module"]
DatasetLoader = Callable[["DatasetRequest"], "ImageDataset"]


@hookspec
def bench_register_methods(register: Register[type[Method]]) -> None:
    """Register methods: ``register(name, method_class, description=...)``; ``method_class`` is a subclass
    of :class:`harness.api.Method`."""


@hookspec
def bench_register_archs(register: Register[ArchFactory]) -> None:
    """Register architectures: ``register(name, factory, description=..., default_teacher=..., teacher_source=...)``,
    ``factory(spec: ArchSpec) -> nn.Module`` (ideally a :class:`harness.api.LevelClassifier`).
    ``default_teacher`` (optional) names the architecture a distillation method of this student gets when no
    ``--teacher`` is given, ``teacher_source`` where the pair comes from (a paper, a benchmark)."""


@hookspec
def bench_register_datasets(register: Register[DatasetLoader]) -> None:
    """Register datasets: ``register(name, loader, description=..., classes=..., in_chans=..., input_size=...,
    train_images=..., test_images=...)``, ``loader(request: DatasetRequest) -> ImageDataset`` (uint8 images,
    int64 labels; see the dataset guide). The optional keywords say what the dataset is without loading it
    (dry runs without the data on disk estimate their work from them; ``bench cost`` its class count)."""


@hookspec
def bench_register_recipes(register: Register[Recipe]) -> None:
    """Register training recipes: ``register(name, recipe, description=...)`` with a :class:`harness.api.Recipe`."""


@hookspec
def bench_register_executors(register: Register[type[Backend]]) -> None:
    """Register executors (where the stage jobs of a sweep run): ``register(name, backend_class,
    description=...)``; ``backend_class(options: ExecutorOptions)`` is a subclass of
    :class:`harness.api.Backend` whose jobs call :func:`harness.api.run_job` (which applies the job's thread
    count). A missing optional dependency
    is a :class:`harness.api.UsageError` naming what to install (:func:`harness.api.import_extra`)."""


@hookspec
def bench_register_loggers(register: Register[type[Logger]]) -> None:
    """Register metrics loggers (``--log NAME``): ``register(name, logger_class, description=...)``;
    ``logger_class()`` is a subclass of :class:`harness.api.Logger`, built once per (method, seed) of a run,
    that receives ``start_run(RunContext)``, ``log_epoch(EpochRow)`` for every epoch of every stage and
    ``finish_run(RunResult)``. ``requires = (module, extra)`` names an optional dependency (checked before
    training: a one-line error naming the extra to install)."""
