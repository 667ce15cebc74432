"""The public plugin API: everything a plugin of each kind needs, and nothing else.

A plugin imports from here (and from the kits, :mod:`harness.kits.attention`, :mod:`harness.kits.distill`,
:mod:`harness.kits.transform`); every other ``harness`` module is private and may change between releases
(the built-in plugins in ``plugins/`` follow the same rule, checked by ``tests/test_api.py``). Names are
loaded when first used, so ``from harness.api import hookimpl`` costs nothing.

=========== =======================================================================================
kind        what it registers, and the names it is written against
=========== =======================================================================================
all         ``hookimpl``, ``Register`` (the hooks' callback type), ``declared_plugin`` and ``lazy`` (a plugin
            declared by reference, imported when used); errors: ``UsageError`` (bad input,
            exit 2), ``DataUnavailableError``, ``BenchError`` (a run failed, exit 1), ``unknown_name``;
            ``import_extra`` (an optional dependency, with a one-line error naming the extra to install);
            limits of numbers: ``Constraint``, ``at_least``, ``above``, ``between`` and the common ones
            (``POSITIVE``, ``NON_NEGATIVE``, ``COUNT``, ``NON_NEGATIVE_INT``, ``FRACTION``, ``UNIT_OPEN``,
            ``FINITE``, ``INTEGER``): ``Option(0.5, "...", constraint=FRACTION)`` or ``minimum=/maximum=``
method      ``bench_register_methods``: a subclass of ``Method`` with ``Option`` s; its ``plan(run:
            RunInfo) -> Plan`` of ``Stage`` s, whose factories get a ``StageContext`` and return an
            ``Objective`` (``forward -> StepOutput``), optionally with ``TrainData``; a report
            ``(TrainedStage, RunEnv) -> Report`` (``default_report``); ``Recipe`` (a stage's own budget);
            helpers ``count_params``, ``count_cost``, ``count_flops``, ``Normalizer``, ``EvalStream``,
            ``TrainStream``, distortions (``Distortion``, ``parse_distortion``, ``DistortedTrainStream``,
            ``to_unit``), multi-exit models (``require_multi_exit``, ``exit_costs``), figures
            (``save_figure``, ``anytime_axes``)
architecture ``bench_register_archs``: a factory ``(ArchSpec) -> nn.Module``, ideally a
            ``LevelClassifier`` (stem, levels, ``ClassifierHead``; ``LevelInfo``, ``AttentionSite``,
            ``require_levels``); ``parse_arch_options`` (``limits=`` of numbers, else the default's sign) /
            ``positive`` for ``name:key=value`` options
dataset     ``bench_register_datasets``: a loader ``(DatasetRequest) -> ImageDataset``;
            ``load_imagefolder`` (decode a train/ + test/ tree once, cached), ``cached`` (a dict of tensors
            cached on disk, keyed by the ``source`` it reads), ``path_stem``
recipe      ``bench_register_recipes``: a ``Recipe``
executor    ``bench_register_executors``: a subclass of ``Backend`` built from ``ExecutorOptions``; each job
            calls ``run_job(JobSpec) -> JobResult`` in its worker, which applies the job's thread count
            (``JobSpec.threads``, the driver's ``job_threads``); ``close()`` releases workers; ``wants_cuda``
logger      ``bench_register_loggers``: a subclass of ``Logger`` (``start_run(RunContext)``,
            ``log_epoch(EpochRow)``, ``finish_run(RunResult)``); helpers ``metric_name``, ``scalars``
=========== =======================================================================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # every kind
    "hookimpl": "harness.plugins.hookspecs",
    "Register": "harness.plugins.hookspecs",
    "declared_plugin": "harness.plugins.declared",
    "lazy": "harness.plugins.registry",
    "BenchError": "harness.core.errors",
    "UsageError": "harness.core.errors",
    "DataUnavailableError": "harness.core.errors",
    "PluginError": "harness.core.errors",
    "unknown_name": "harness.core.errors",
    "import_extra": "harness.core.extras",
    # declared limits of numeric options (Option(constraint=...), recipes)
    "Constraint": "harness.core.constraints",
    "at_least": "harness.core.constraints",
    "above": "harness.core.constraints",
    "between": "harness.core.constraints",
    "FINITE": "harness.core.constraints",
    "INTEGER": "harness.core.constraints",
    "POSITIVE": "harness.core.constraints",
    "NON_NEGATIVE": "harness.core.constraints",
    "COUNT": "harness.core.constraints",
    "NON_NEGATIVE_INT": "harness.core.constraints",
    "FRACTION": "harness.core.constraints",
    "UNIT_OPEN": "harness.core.constraints",
    # methods
    "Method": "harness.methods.contract",
    "Option": "harness.methods.contract",
    "Plan": "harness.methods.contract",
    "Report": "harness.methods.contract",
    "RunInfo": "harness.methods.contract",
    "default_report": "harness.methods.contract",
    "Stage": "harness.train.stage",
    "StageContext": "harness.train.stage",
    "TrainData": "harness.train.stage",
    "TrainedStage": "harness.train.stage",
    "RunEnv": "harness.train.env",
    "Objective": "harness.train.objective",
    "StepOutput": "harness.train.objective",
    "Recipe": "harness.core.recipes",
    "count_cost": "harness.models.cost",
    "count_flops": "harness.models.cost",
    "Normalizer": "harness.data.pipeline",
    "EvalStream": "harness.data.pipeline",
    "TrainStream": "harness.data.pipeline",
    "Distortion": "harness.data.distortions",
    "DistortedTrainStream": "harness.data.distortions",
    "parse_distortion": "harness.data.distortions",
    "to_unit": "harness.data.distortions",
    "exit_costs": "harness.models.exits",
    "require_multi_exit": "harness.models.exits",
    "save_figure": "harness.results.plots",
    "anytime_axes": "harness.results.plots",
    # architectures
    "ArchSpec": "harness.models.levels",
    "LevelClassifier": "harness.models.levels",
    "ClassifierHead": "harness.models.levels",
    "LevelInfo": "harness.models.levels",
    "AttentionSite": "harness.models.levels",
    "require_levels": "harness.models.levels",
    "count_params": "harness.models.levels",
    "parse_arch_options": "harness.models.arch_limits",
    "positive": "harness.models.arch_options",
    # datasets
    "DatasetRequest": "harness.data.datasets",
    "ImageDataset": "harness.data.datasets",
    "load_imagefolder": "harness.data.datasets",
    "cached": "harness.data.datasets",
    "path_stem": "harness.data.datasets",
    # executors
    "Backend": "harness.run.sweep.backend",
    "ExecutorOptions": "harness.run.sweep.backend",
    "JobSpec": "harness.run.sweep.backend",
    "JobResult": "harness.run.sweep.backend",
    "wants_cuda": "harness.run.sweep.backend",
    "run_job": "harness.run.sweep.worker",
    "job_threads": "harness.run.sweep.backend",
    # loggers
    "Logger": "harness.run.loggers",
    "RunContext": "harness.run.loggers",
    "EpochRow": "harness.run.loggers",
    "RunResult": "harness.run.loggers",
    "metric_name": "harness.run.loggers",
    "scalars": "harness.run.loggers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"harness.api has no {name!r}; the public API is: {', '.join(__all__)}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # what type checkers and IDEs see  # noqa: F401
    from harness.core.constraints import (  # noqa: F401
        COUNT, FINITE, FRACTION, INTEGER, NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, UNIT_OPEN, Constraint, above,
        at_least, between,
    )
    from harness.core.errors import BenchError, DataUnavailableError, PluginError, UsageError, unknown_name  # noqa: F401
    from harness.core.extras import import_extra  # noqa: F401
    from harness.core.recipes import Recipe  # noqa: F401
    from harness.data.datasets import DatasetRequest, ImageDataset, cached, load_imagefolder, path_stem  # noqa: F401
    from harness.data.distortions import DistortedTrainStream, Distortion, parse_distortion, to_unit  # noqa: F401
    from harness.data.pipeline import EvalStream, Normalizer, TrainStream  # noqa: F401
    from harness.methods.contract import Method, Option, Plan, Report, RunInfo, default_report  # noqa: F401
    from harness.models.arch_limits import parse_arch_options  # noqa: F401
    from harness.models.arch_options import positive  # noqa: F401
    from harness.models.cost import count_cost, count_flops  # noqa: F401
    from harness.models.exits import exit_costs, require_multi_exit  # noqa: F401
    from harness.models.levels import (  # noqa: F401
        ArchSpec, AttentionSite, ClassifierHead, LevelClassifier, LevelInfo, count_params, require_levels,
    )
    from harness.plugins.declared import declared_plugin  # noqa: F401
    from harness.plugins.hookspecs import Register, hookimpl  # noqa: F401
    from harness.plugins.registry import lazy  # noqa: F401
    from harness.results.plots import anytime_axes, save_figure  # noqa: F401
    from harness.run.loggers import EpochRow, Logger, RunContext, RunResult, metric_name, scalars  # noqa: F401
    from harness.run.sweep.backend import (  # noqa: F401
        Backend, ExecutorOptions, JobResult, JobSpec, job_threads, wants_cuda,
    )
    from harness.run.sweep.worker import run_job  # noqa: F401
    from harness.train.env import RunEnv  # noqa: F401
    from harness.train.objective import Objective, StepOutput  # noqa: F401
    from harness.train.stage import Stage, StageContext, TrainData, TrainedStage  # noqa: F401
