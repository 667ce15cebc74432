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
method      ``bench_register_methods``: a subclass of ``Method`` with ``Option`` s and its ``role``
            (``objective``, or ``architecture``: ``ArchitectureMethod`` with its ``sites``, ``ANY_SITE`` by
            default), so that it composes (``kd+se``); its ``plan(run:
            RunInfo) -> Plan`` of ``Stage`` s, whose factories get a ``StageContext`` and return an
            ``Objective`` (``forward -> StepOutput``), optionally with ``TrainData``; a report
            ``(TrainedStage, RunEnv) -> Report`` (``default_report``); ``Recipe`` (a stage's own budget);
            helpers ``count_params``, ``count_cost``, ``count_flops``, ``Normalizer``, ``EvalStream``,
            ``TrainStream``, distortions (``Distortion``, ``parse_distortion``, ``DistortedTrainStream``,
            ``to_unit``), multi-exit models (``require_multi_exit``, ``exit_costs``, ``MultiExitModel``), figures
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

import ast
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The public names, declared once: the imports below, which type checkers and IDEs read as they are. At run
# time they are not executed (they would import torch); :func:`_declared` reads them from this file instead,
# and :func:`__getattr__` imports a name's module when the name is first used.
if TYPE_CHECKING:
    # every kind
    from harness.core.constraints import (  # noqa: F401  (the public names: see above)
        COUNT,
        FINITE,
        FRACTION,
        INTEGER,
        NON_NEGATIVE,
        NON_NEGATIVE_INT,
        POSITIVE,
        UNIT_OPEN,
        Constraint,
        above,
        at_least,
        between,
    )
    from harness.core.errors import BenchError, DataUnavailableError, PluginError, UsageError, unknown_name  # noqa: F401
    from harness.core.extras import import_extra  # noqa: F401  (the public names: see above)
    from harness.plugins.declared import declared_plugin  # noqa: F401  (the public names: see above)
    from harness.plugins.hookspecs import Register, hookimpl  # noqa: F401  (the public names: see above)
    from harness.plugins.registry import lazy  # noqa: F401  (the public names: see above)

    # methods
    from harness.core.recipes import Recipe  # noqa: F401  (the public names: see above)
    from harness.data.distortions import DistortedTrainStream, Distortion, parse_distortion, to_unit  # noqa: F401
    from harness.data.pipeline import EvalStream, Normalizer, TrainStream  # noqa: F401
    from harness.methods.contract import (  # noqa: F401  (the public names: see above)
        ANY_SITE,
        ArchitectureMethod,
        Method,
        Option,
        Plan,
        Report,
        RunInfo,
        default_report,
    )
    from harness.models.cost import count_cost, count_flops  # noqa: F401  (the public names: see above)
    from harness.models.exits import MultiExitModel, exit_costs, require_multi_exit  # noqa: F401
    from harness.results.plots import anytime_axes, save_figure  # noqa: F401  (the public names: see above)
    from harness.train.env import RunEnv  # noqa: F401  (the public names: see above)
    from harness.train.objective import Objective, StepOutput  # noqa: F401  (the public names: see above)
    from harness.train.stage import Stage, StageContext, TrainData, TrainedStage  # noqa: F401

    # architectures
    from harness.models.arch_limits import parse_arch_options  # noqa: F401  (the public names: see above)
    from harness.models.arch_options import positive  # noqa: F401  (the public names: see above)
    from harness.models.levels import (  # noqa: F401  (the public names: see above)
        ArchSpec,
        AttentionSite,
        ClassifierHead,
        LevelClassifier,
        LevelInfo,
        count_params,
        require_levels,
    )

    # datasets
    from harness.data.datasets import DatasetRequest, ImageDataset, cached, load_imagefolder, path_stem  # noqa: F401

    # executors
    from harness.run.sweep.backend import (  # noqa: F401  (the public names: see above)
        Backend,
        ExecutorOptions,
        JobResult,
        JobSpec,
        job_threads,
        wants_cuda,
    )
    from harness.run.sweep.worker import run_job  # noqa: F401  (the public names: see above)

    # loggers
    from harness.run.loggers import EpochRow, Logger, RunContext, RunResult, metric_name, scalars  # noqa: F401


def _declared() -> dict[str, str]:
    """public name -> the module that defines it, read from this file's ``if TYPE_CHECKING:`` imports."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
    )
    return {
        alias.asname or alias.name: str(node.module)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


_EXPORTS: dict[str, str] = _declared()
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"harness.api has no {name!r}; the public API is: {', '.join(__all__)}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return __all__
