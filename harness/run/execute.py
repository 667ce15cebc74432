"""Train every (seed, method) of a prepared run and write its records: :func:`execute`.

A failing method is reported and the others go on: its record goes to ``<out>/failed/``. With ``--resume``
(or ``reuse_records``) an entry whose record is already in ``--out`` is not run again. Every (method, seed)
that runs is logged (:mod:`harness.run.runlog`): its epochs and its record reach the run's loggers (``--log``;
``jsonl`` always), on the main rank only.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.core.environ import debugging
from harness.core.errors import BenchError, PluginFailed, StorageError, plugin_code
from harness.core.progress import Reporter
from harness.results.records import Record, record_path, write_record
from harness.run.loggers import LoggerSet
from harness.run.prepare import PreparedRun
from harness.run.restarts import RestartWarningRunner
from harness.run.recording import (
    FinishedRecords,
    build_record,
    earlier_failure,
    failed_record,
    record_name,
    save_figures,
)
from harness.run.runlog import RunLogs, run_context
from harness.train.env import RunEnv
from harness.train.executor import StageRunner
from harness.train.stage import TrainedStage


@dataclass
class RunOutcome:
    records: list[Record]
    paths: list[Path]
    failures: list[str]


def execute(
    run: PreparedRun,
    reporter: Reporter,
    *,
    runner: Callable[[RunEnv], StageRunner] | None = None,
    execution: dict | None = None,
) -> RunOutcome:
    """Train every entry of the run's plan, seed by seed; a failing method is reported and the others go on.

    ``runner`` makes the stage runner of each seed (after a sweep: one that loads every stage from the store);
    ``execution`` is what records say of where the stages were trained."""
    records: list[Record] = []
    paths: list[Path] = []
    failures: list[str] = []
    reuse = run.request.reuse_records or run.request.resume
    done = FinishedRecords(run.request.out) if reuse else None
    main = run.world is None or run.world.is_main  # the other ranks train along and write nothing
    execution = execution or (
        {"executor": "in-process", "workers": 1}
        if run.world is None
        else {"executor": "torchrun", **run.world.describe()}
    )
    outcome = RunOutcome(records, paths, failures)
    logs = RunLogs(reporter, run.loggers if main else LoggerSet())
    try:
        _execute(run, logs, runner, execution, done, main, outcome)
    except BaseException:
        logs.close(wait=5.0)  # interrupted (or a bug): do not hold the exit up for the loggers
        raise
    logs.close()
    return outcome


def _execute(
    run: PreparedRun,
    logs: RunLogs,
    runner: Callable[[RunEnv], StageRunner] | None,
    execution: dict,
    done: FinishedRecords | None,
    main: bool,
    outcome: RunOutcome,
) -> None:
    records, paths, failures = outcome.records, outcome.paths, outcome.failures
    reporter: Reporter = logs  # every event reaches the caller's reporter, and the epochs the loggers
    for seed in run.plan.seeds:
        run.release_planning()  # the dry resolutions' models (and the previous seed's): not held while training
        env = run.env(seed, reporter)
        stages = (
            runner(env)
            if runner
            else RestartWarningRunner(env, run.store, resume=run.request.resume, retrain=run.request.retrain)
        )
        dry = run.dry_runner(seed) if done is not None else None
        for entry in run.plan.of_seed(seed):
            method, plan = entry.method, entry.plan
            if done is not None and dry is not None:
                found = done.reusable(dry.resolve(plan.deploy, method.name).key, run)
                if found is not None:
                    reporter.note(f"{entry.label}: reusing record {found[0].name}")
                    paths.append(found[0])
                    records.append(found[1])
                    continue
            reporter.note(f"== {method.name} | {run.request.arch} | {env.dataset.name} | seed {seed} ==")
            logs.begin(
                run_context(
                    name=record_name(run, method, env),
                    method=method.config(),
                    arch=run.request.arch,
                    dataset=env.dataset.name,
                    seed=seed,
                    recipe=run.recipe.as_dict(),
                    teacher=run.request.teacher,
                    out=run.request.out,
                )
            )
            t0 = time.perf_counter()
            first = len(stages.resolved)
            try:
                deployed = stages.resolve(plan.deploy, method.name)
                if not main:
                    continue
                with plugin_code(f"method '{method.name}'.report()"):
                    report = plan.report(deployed, env)
                record = build_record(run, method, env, deployed, report, time.perf_counter() - t0)
            except (KeyboardInterrupt, StorageError):  # a full disk fails every run alike: stop, one line
                raise
            except Exception as exc:
                if isinstance(exc, PluginFailed):  # the method's plugin, or the architecture's
                    run.plugins.claim(exc, method.name)
                if isinstance(exc, BenchError):  # faults branch: every BenchError (e.g. TrainingDiverged) is one line
                    error, failure = str(exc), f"{entry.label}: {exc}"
                else:
                    error = f"{type(exc).__name__}: {exc}"
                    failure = f"{entry.label} failed: {error}" + (
                        "" if debugging() else " (rerun with --debug for the traceback)"
                    )
                if debugging():
                    failure += "\n" + traceback.format_exc()
                failures.append(failure)
                if not main:
                    continue
                failed = failed_record(run, method, env, error, stages.resolved[first:], time.perf_counter() - t0)
                failed_path = write_record(run.request.out, failed | {"execution": execution})
                logs.end(failed, failed_path, trained_histories(stages.resolved[first:], method.name))
                continue
            earlier_failure(run, method, env).unlink(missing_ok=True)  # this very run failed before: history
            record["execution"] = execution
            if report.figures:
                record["figures"] = save_figures(report, record_path(run.request.out, record), reporter)
            paths.append(write_record(run.request.out, record))
            records.append(record)
            logs.end(record, paths[-1], trained_histories(deployed.walk(), method.name))


def trained_histories(nodes: Iterable[TrainedStage], owner: str) -> list[tuple[str, list[dict]]]:
    """(label, epochs) of the stages trained for ``owner``'s run (in this process or by a sweep's jobs), for its
    loggers; labelled as the engine's progress lines name them (``baseline[resnet8]``, ``kd/train``)."""
    return [
        (node.label if node.stage.arch else f"{owner}/{node.stage.name}", node.history)
        for node in nodes
        if node.origin == "trained"
    ]
