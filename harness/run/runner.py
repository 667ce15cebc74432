"""`bench run`: resolve and validate everything first, then train every (seed, method) and write records.

All validation (names, options, combinations, data, model construction, each method's own check) happens in
:func:`prepare`, before any training starts, and raises :class:`~harness.core.errors.UsageError` (exit 2).
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness.core.errors import BenchError, DataUnavailableError, UsageError
from harness.core.identity import config_key
from harness.core.progress import Reporter
from harness.core.recipes import Recipe
from harness.data.datasets import DatasetRequest, ImageDataset, prepare as prepare_dataset
from harness.data.distortions import Distortion, distorted_metrics, parse_distortion, unique
from harness.methods.contract import Method, Plan, Report, RunInfo
from harness.methods.shared import baseline_stage, checkpoint_stage
from harness.models.cost import count_cost, latency_ms
from harness.models.staged import count_params
from harness.plugins.manager import PluginSet
from harness.run.preflight import check_run_dirs
from harness.results.records import SCHEMA, device_info, now_iso, record_path, versions, write_record
from harness.train.artifacts import ArtifactStore
from harness.train.context import SELECTIONS, RunEnv
from harness.train.distributed import World
from harness.train.stages import Stage, StageRunner, TrainedStage


@dataclass
class RunRequest:
    """A `bench run` invocation, as parsed from the command line."""

    methods: list[str]
    arch: str
    dataset: str = "cifar10"
    teacher: str | None = None
    teacher_checkpoint: Path | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    recipe: str = "crd"
    overrides: dict = field(default_factory=dict)
    options: list[str] = field(default_factory=list)  # raw "method.key=value"
    device: str = "auto"
    data_dir: Path | None = None
    download: bool = True
    cache_dir: Path = Path(".cache")
    out: Path = Path("results/runs")
    resume: bool = False
    retrain: bool = False
    select: str = "last"
    val_split: float = 0.0
    train_subset: int | None = None
    test_subset: int | None = None
    latency: bool = True
    latency_batch: int | None = None
    reuse_records: bool = False  # skip (seed, method) pairs whose record is already in ``out``
    amp: bool | None = None
    channels_last: bool | None = None
    threads: int | None = None
    eval_distortions: list[Distortion] = field(default_factory=list)  # --eval-noise / --eval-distort


@dataclass
class PreparedRun:
    request: RunRequest
    plugins: PluginSet
    methods: list[Method]
    dataset: ImageDataset | None  # None only for dry runs whose data is not on disk
    recipe: Recipe
    device: torch.device
    amp: bool
    channels_last: bool
    store: ArtifactStore
    teacher: Stage | None
    world: World | None = None  # ranks training this run together (torchrun); None: one process

    def info(self, seed: int) -> RunInfo:
        return RunInfo(arch=self.request.arch, recipe=self.recipe, seed=seed, teacher_stage=self.teacher)

    def env(self, seed: int, reporter: Reporter) -> RunEnv:
        assert self.dataset is not None
        return RunEnv(arch=self.request.arch, dataset=self.dataset, recipe=self.recipe, seed=seed, device=self.device,
                      reporter=reporter, resolve_arch=self.plugins.resolve_arch, amp=self.amp,
                      channels_last=self.channels_last, select=self.request.select, world=self.world)


@dataclass
class RunOutcome:
    records: list[dict]
    paths: list[Path]
    failures: list[str]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise UsageError(f"--device must be cpu, cuda or auto, got '{name}'")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    return torch.device(name)


def parse_method_options(raw: list[str], methods: list[str]) -> dict[str, dict[str, str]]:
    """``["kd.temperature=2"]`` -> ``{"kd": {"temperature": "2"}}``; the method must be in the run."""
    parsed: dict[str, dict[str, str]] = {}
    for item in raw:
        target, sep, value = item.partition("=")
        method, dot, key = target.partition(".")
        if not sep or not dot or not method or not key:
            raise UsageError(f"--opt expects METHOD.NAME=VALUE (for example kd.temperature=2), got '{item}'")
        if method not in methods:
            raise UsageError(f"--opt {item}: method '{method}' is not in --methods ({', '.join(methods)})")
        parsed.setdefault(method, {})[key] = value
    return parsed


def build_methods(plugins: PluginSet, names: list[str], raw_options: list[str]) -> list[Method]:
    """Method instances with their validated ``--opt`` values."""
    if len(set(names)) != len(names):
        raise UsageError(f"--methods lists a method twice: {','.join(names)}")
    classes = {name: plugins.methods.resolve(name).obj for name in names}
    options = parse_method_options(raw_options, names)
    return [cls(name, cls.parse_options(name, options.get(name, {}))) for name, cls in classes.items()]


def load_dataset(req: RunRequest, plugins: PluginSet) -> ImageDataset:
    resolved = plugins.datasets.resolve(req.dataset)
    request = DatasetRequest(name=req.dataset, arg=resolved.arg, data_dir=req.data_dir, cache_dir=req.cache_dir,
                             download=req.download)
    ds = resolved.obj(request)
    return prepare_dataset(ds, train_subset=req.train_subset, test_subset=req.test_subset, val_split=req.val_split)


def teacher_stage(req: RunRequest, store: ArtifactStore) -> Stage | None:
    if req.teacher_checkpoint is not None:
        return checkpoint_stage(req.teacher_checkpoint, req.teacher, store)
    return baseline_stage(req.teacher) if req.teacher else None


def prepare(req: RunRequest, plugins: PluginSet, reporter: Reporter, *, need_data: bool = True) -> PreparedRun:
    """Resolve and validate the whole run; raise UsageError before any training.

    ``need_data=False`` (dry runs): a dataset that is not on disk leaves ``dataset`` None instead of failing.
    """
    check_run_dirs(req)  # --out and --cache-dir usable, before anything else
    if not req.methods:
        raise UsageError("--methods needs at least one method")
    if not req.seeds:
        raise UsageError("--seeds needs at least one seed")
    if req.select not in SELECTIONS:
        raise UsageError(f"--select must be one of {', '.join(SELECTIONS)}")
    if req.select == "val" and not req.val_split:
        raise UsageError("--select val needs a validation split: add --val-split FRACTION (e.g. 0.1)")
    methods = build_methods(plugins, req.methods, req.options)
    plugins.archs.resolve(req.arch)
    if req.teacher is not None:
        plugins.archs.resolve(req.teacher)
    if (req.teacher or req.teacher_checkpoint) and not any(m.uses_teacher for m in methods):
        given = f"--teacher {req.teacher}" if req.teacher else f"--teacher-checkpoint {req.teacher_checkpoint}"
        raise UsageError(f"{given} was given but none of the methods ({','.join(req.methods)}) uses a teacher")
    recipe = plugins.recipes.resolve(req.recipe).obj.with_overrides(**req.overrides)
    device = resolve_device(req.device)
    if req.threads:
        torch.set_num_threads(req.threads)
    amp = device.type == "cuda" if req.amp is None else req.amp
    if amp and device.type != "cuda":
        raise UsageError("--amp (bf16 autocast) is only supported on CUDA; drop it or use --device cuda")
    channels_last = True if req.channels_last is None else req.channels_last  # faster on CUDA and on CPU
    store = ArtifactStore(req.cache_dir / "artifacts")
    run = PreparedRun(req, plugins, methods, None, recipe, device, amp, channels_last, store,
                      teacher_stage(req, store))
    plans = [m.plan(run.info(req.seeds[0])) for m in methods]  # a missing teacher etc. is refused here
    try:
        run.dataset = load_dataset(req, plugins)
    except DataUnavailableError:
        if need_data:
            raise
        return run
    validate(run, plans, reporter)
    return run


def validate(run: PreparedRun, plans: list[Plan], reporter: Reporter) -> None:
    """Build every plan's objectives on untrained networks (nothing trained or loaded but checkpoints):
    an architecture, a pair or an option that cannot work is refused now, with one line."""
    dry = StageRunner(run.env(run.request.seeds[0], Reporter()), run.store, dry=True)
    for method, plan in zip(run.methods, plans):
        try:
            dry.resolve(plan.deploy, method.name)
        except BenchError:
            raise
        except Exception as exc:
            ds = run.dataset
            assert ds is not None
            raise UsageError(f"method '{method.name}' cannot be set up on {run.request.arch} for {ds.name} "
                             f"({ds.in_chans}x{ds.input_size}x{ds.input_size}, {ds.num_classes} classes): "
                             f"{type(exc).__name__}: {exc}") from None


def requested_distortions(run: PreparedRun, report: Report | None = None) -> list[Distortion]:
    """The distortions the deployed model is evaluated under: ``--eval-noise`` / ``--eval-distort``, plus any
    the method's report asks for (``info["eval_distortions"]``, e.g. the distortion a method fine-tunes for)."""
    asked = (report.info.get("eval_distortions") if report is not None else None) or []
    return unique([*run.request.eval_distortions, *(parse_distortion(name) for name in asked)])


def measure(env: RunEnv, deployed: TrainedStage, report: Report, run: PreparedRun) -> dict:
    """Accuracy protocols (clean, and under the requested distortions) and the deployed model's cost."""
    model = deployed.model.eval()
    accs = [row["test_acc"] for row in deployed.history if "test_acc" in row]
    final = env.evaluate(model)
    metrics: dict = {
        "top1_last": accs[-1] if accs else None,
        "top1_best": max(accs) if accs else None,
        "best_epoch": (accs.index(max(accs)) + 1) if accs else None,
        "top1_selected": final["test_acc"],
        "val_acc_selected": final.get("val_acc"),
        "params_deployed": count_params(model),
        "params_extra": report.extra_params,
    }
    distortions = requested_distortions(run, report)
    if distortions:
        metrics["top1_distorted"] = distorted_metrics(env, model, distortions)
    ds = env.dataset
    shape = (ds.in_chans, ds.input_size, ds.input_size)
    cost = count_cost(model, shape, run.device)
    metrics["macs"], metrics["flops"] = cost.macs, cost.flops
    if run.request.latency:
        big = run.request.latency_batch or (512 if run.device.type == "cuda" else 64)
        metrics["latency_ms"] = {
            "batch1": latency_ms(model, shape, 1, run.device, channels_last=run.channels_last),
            f"batch{big}": latency_ms(model, shape, big, run.device, warmup=1, repeats=3,
                                      channels_last=run.channels_last),
        }
    return metrics


def existing_records(out: Path) -> dict[str, tuple[Path, dict]]:
    """Records in ``out`` by their identity (the key of their deployed stage)."""
    found = {}
    for path in sorted(out.glob("*.json")) if out.exists() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(record, dict) and record.get("run_key") and record.get("status", "ok") == "ok":
            found[record["run_key"]] = (path, record)
    return found


def has_distortions(record: dict, run: PreparedRun) -> bool:
    """Whether a finished record already holds every ``--eval-noise``/``--eval-distort`` accuracy asked for
    (a record without them is measured again: its stages come from the artifact cache)."""
    measured = (record.get("metrics") or {}).get("top1_distorted") or {}
    return all(d.name in measured for d in run.request.eval_distortions)


def teacher_of(deployed: TrainedStage) -> TrainedStage | None:
    """The stage a plan consumed under the name ``teacher``, if any."""
    for node in deployed.walk():
        if "teacher" in node.inputs:
            return node.inputs["teacher"]
    return None


def record_base(run: PreparedRun, method: Method, env: RunEnv, status: str) -> dict:
    """What every record of a (method, seed) says, whether the run succeeded or failed."""
    req = run.request
    return {
        "schema": SCHEMA,
        "status": status,
        "created": now_iso(),
        "method": {**method.config(), "plugin": run.plugins.methods.resolve(method.name).entry.plugin,
                   "defaults": {k: o.default for k, o in method.options.items()}},
        "arch": req.arch,
        "dataset": env.dataset.describe(),
        "seed": env.seed,
        "recipe": run.recipe.as_dict(),
        "engine": env.engine(),
        "config": {"select": req.select, "amp": run.amp, "channels_last": run.channels_last,
                   "seeds_in_run": req.seeds, "methods_in_run": req.methods},
        "versions": versions(),
        "device": device_info(run.device),
    }


def build_record(run: PreparedRun, method: Method, env: RunEnv, deployed: TrainedStage, report: Report,
                 wall: float) -> dict:
    req = run.request
    teacher = None
    t = teacher_of(deployed)
    if t is not None:
        teacher = {"arch": t.stage.arch, "artifact": t.key, "weights_digest": t.digest, "test_acc": t.final("test_acc"),
                   "params": count_params(t.model), "stage": t.stage.name,
                   "checkpoint": str(req.teacher_checkpoint) if req.teacher_checkpoint else None,
                   "trained_in_this_run": t.origin == "trained"}
    return {
        **record_base(run, method, env, "ok"),
        "run_key": deployed.key,
        "teacher": teacher,
        "metrics": measure(env, deployed, report, run),
        "curves": deployed.history,
        "stages": {node.label: node.entry() for node in deployed.walk()},
        "info": report.info,
        "wall_seconds": wall,
    }


def failed_record(run: PreparedRun, method: Method, env: RunEnv, error: str, finished: list[TrainedStage],
                  wall: float) -> dict:
    """The record of a (method, seed) that failed: its error line and the stages that did finish, no metrics.
    It is written under ``<out>/failed/`` (never read as a result) and keyed by what was run
    (:func:`failure_key`), so that a later success of the same run removes it."""
    record = record_base(run, method, env, "failed")
    req = run.request
    record.update(
        teacher={"arch": req.teacher, "checkpoint": str(req.teacher_checkpoint) if req.teacher_checkpoint else None},
        error=error, stages={node.label: node.entry() for node in finished}, wall_seconds=wall,
    )
    record["failure_key"] = failure_key(record)
    return record


def failure_key(record: dict) -> str:
    """What a run is, for its failed record's name: everything the record says but when, where and with whom."""
    config = {k: v for k, v in record["config"].items() if k not in ("seeds_in_run", "methods_in_run")}
    return config_key({k: record[k] for k in ("method", "arch", "teacher", "dataset", "seed", "recipe", "engine")} |
                      {"config": config})


def save_figures(report: Report, record_file: Path, reporter: Reporter) -> dict[str, str]:
    """Draw a method's figures as PNG files in a folder beside its record; returns name -> path."""
    folder = record_file.with_name(record_file.stem + ".figures")
    folder.mkdir(parents=True, exist_ok=True)
    saved = {}
    for name, draw in report.figures.items():
        path = folder / f"{name}.png"
        try:
            draw(path)
            saved[name] = str(path)
        except Exception as exc:  # a figure must never cost the run its record
            reporter.note(f"figure {name} could not be drawn: {type(exc).__name__}: {exc}")
    return saved


def with_shared_baseline(run: PreparedRun, seed: int) -> list[Method]:
    """The run's methods, plus ``baseline`` when a plan uses the run architecture's baseline stage and
    ``baseline`` was not asked for: the table then has the row every Δ is measured against."""
    methods = list(run.methods)
    if "baseline" in run.request.methods or "baseline" not in run.plugins.methods:
        return methods
    for method in run.methods:
        if any(s.name == "baseline" and s.arch == run.request.arch for s in method.plan(run.info(seed)).stages()):
            cls = run.plugins.methods.resolve("baseline").obj
            return methods + [cls("baseline")]
    return methods


def execute(run: PreparedRun, reporter: Reporter, *, runner: Callable[[RunEnv], StageRunner] | None = None,
            execution: dict | None = None) -> RunOutcome:
    """Train every (seed, method) of the run; a failing method is reported and the others go on.

    ``runner`` makes the stage runner of each seed (after a sweep: one that loads every stage from the store);
    ``execution`` is what records say of where the stages were trained."""
    records, paths, failures = [], [], []
    reuse = run.request.reuse_records or run.request.resume
    done = existing_records(run.request.out) if reuse else {}
    main = run.world is None or run.world.is_main  # the other ranks train along and write nothing
    execution = execution or ({"executor": "in-process", "workers": 1} if run.world is None else
                              {"executor": "torchrun", **run.world.describe()})
    for seed in run.request.seeds:
        env = run.env(seed, reporter)
        stages = runner(env) if runner else StageRunner(env, run.store, resume=run.request.resume,
                                                        retrain=run.request.retrain)
        for method in with_shared_baseline(run, seed):
            plan = method.plan(run.info(seed))
            if reuse:
                key = StageRunner(env, run.store, dry=True).resolve(plan.deploy, method.name).key
                if key in done and has_distortions(done[key][1], run):
                    reporter.note(f"{method.name} (seed {seed}): reusing record {done[key][0].name}")
                    paths.append(done[key][0])
                    records.append(done[key][1])
                    continue
            reporter.note(f"== {method.name} | {run.request.arch} | {env.dataset.name} | seed {seed} ==")
            t0 = time.perf_counter()
            first = len(stages.resolved)
            try:
                deployed = stages.resolve(plan.deploy, method.name)
                if not main:
                    continue
                report = plan.report(deployed, env)
                record = build_record(run, method, env, deployed, report, time.perf_counter() - t0)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                if isinstance(exc, BenchError):  # faults branch: every BenchError (e.g. TrainingDiverged) is one line
                    error, failure = str(exc), f"{method.name} (seed {seed}): {exc}"
                else:
                    error = f"{type(exc).__name__}: {exc}"
                    failure = f"{method.name} (seed {seed}) failed: {error}\n{traceback.format_exc(limit=-3)}"
                failures.append(failure)
                if not main:
                    continue
                failed = failed_record(run, method, env, error, stages.resolved[first:], time.perf_counter() - t0)
                write_record(run.request.out, failed | {"execution": execution})
                continue
            earlier_failure = record_path(run.request.out, failed_record(run, method, env, "", [], 0))
            earlier_failure.unlink(missing_ok=True)  # this very run failed before: its failed record is history
            record["execution"] = execution
            if report.figures:
                record["figures"] = save_figures(report, record_path(run.request.out, record), reporter)
            paths.append(write_record(run.request.out, record))
            records.append(record)
    return RunOutcome(records, paths, failures)
