"""`bench run`: resolve and validate everything first, then train every (seed, method) and write records.

All validation (names, options, combinations, data, model construction, each method's own check) happens in
:func:`prepare`, before any training starts, and raises :class:`~harness.core.errors.UsageError` (exit 2).
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness.train.artifacts import ArtifactStore, config_key
from harness.train.context import SELECTIONS, RunContext, RunSettings
from harness.data.datasets import DatasetRequest, ImageDataset, prepare as prepare_dataset
from harness.core.errors import BenchError, UsageError
from harness.methods.contract import Method, MethodResult
from harness.models.cost import count_flops, latency_ms
from harness.models.staged import count_params
from harness.plugins.manager import PluginSet
from harness.core.progress import Reporter
from harness.core.recipes import Recipe
from harness.run.preflight import check_run_dirs  # faults branch
from harness.results.records import SCHEMA, device_info, now_iso, record_path, versions, write_record


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


@dataclass
class PreparedRun:
    request: RunRequest
    plugins: PluginSet
    methods: list[Method]
    dataset: ImageDataset
    recipe: Recipe
    device: torch.device
    amp: bool
    channels_last: bool


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


def prepare(req: RunRequest, plugins: PluginSet, reporter: Reporter) -> PreparedRun:
    """Resolve and validate the whole run; raise UsageError before any training."""
    check_run_dirs(req)  # faults branch: --out / --cache-dir writable, before anything else
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
    dataset = load_dataset(req, plugins)
    prepared = PreparedRun(req, plugins, methods, dataset, recipe, device, amp, channels_last)
    ctx = make_context(prepared, req.seeds[0], methods[0].name, reporter)
    for arch in filter(None, (req.arch, req.teacher)):
        try:
            ctx.build_arch(arch)
        except BenchError:
            raise
        except Exception as exc:
            raise UsageError(f"architecture '{arch}' cannot be built for {dataset.name} "
                             f"({dataset.in_chans}x{dataset.input_size}x{dataset.input_size}, "
                             f"{dataset.num_classes} classes): {exc}") from None
    if req.teacher_checkpoint is not None:
        stage = make_context(prepared, req.seeds[0], "teacher", reporter).teacher()  # refuse a bad file now
        req.teacher = stage.model.arch_name if stage.model is not None else req.teacher
    for method in methods:
        method.check(make_context(prepared, req.seeds[0], method.name, reporter))
    return prepared


def make_context(run: PreparedRun, seed: int, method_name: str, reporter: Reporter) -> RunContext:
    req = run.request
    settings = RunSettings(
        arch=req.arch, dataset=run.dataset, recipe=run.recipe, seed=seed, device=run.device,
        store=ArtifactStore(req.cache_dir / "artifacts"), reporter=reporter, teacher_arch=req.teacher,
        teacher_checkpoint=req.teacher_checkpoint,
        amp=run.amp, channels_last=run.channels_last, resume=req.resume, retrain=req.retrain, select=req.select,
    )
    return RunContext(settings, run.plugins, method_name)


def measure(ctx: RunContext, result: MethodResult, run: PreparedRun) -> dict:
    """Accuracy protocols and the deployed model's cost."""
    model = result.model.eval()
    history = result.history
    accs = [row["test_acc"] for row in history if "test_acc" in row]
    final = ctx.evaluate(model)
    metrics: dict = {
        "top1_last": accs[-1] if accs else None,
        "top1_best": max(accs) if accs else None,
        "best_epoch": (accs.index(max(accs)) + 1) if accs else None,
        "top1_selected": final["test_acc"],
        "val_acc_selected": final.get("val_acc"),
        "params_deployed": count_params(model),
        "params_extra": result.extra_params,
    }
    ds = run.dataset
    shape = (ds.in_chans, ds.input_size, ds.input_size)
    metrics["flops"] = count_flops(model, shape, run.device)
    if run.request.latency:
        big = run.request.latency_batch or (512 if run.device.type == "cuda" else 64)
        metrics["latency_ms"] = {
            "batch1": latency_ms(model, shape, 1, run.device, channels_last=run.channels_last),
            f"batch{big}": latency_ms(model, shape, big, run.device, warmup=1, repeats=3,
                                      channels_last=run.channels_last),
        }
    return metrics


def request_key(run: PreparedRun, method: Method, seed: int) -> str:
    """What a (method, seed) of this run is, known before it runs: its record is reused when it matches."""
    req = run.request
    return config_key({
        "method": method.config(), "arch": req.arch, "teacher": req.teacher if method.uses_teacher else None,
        "teacher_checkpoint": str(req.teacher_checkpoint) if method.uses_teacher and req.teacher_checkpoint else None,
        "dataset": {"name": run.dataset.name, "fingerprint": run.dataset.fingerprint, **run.dataset.notes},
        "recipe": run.recipe.as_dict(), "seed": seed, "select": req.select,
        "engine": {"device": run.device.type, "amp": run.amp, "channels_last": run.channels_last},
    })


def existing_records(out: Path) -> dict[str, tuple[Path, dict]]:
    found = {}
    for path in sorted(out.glob("*.json")) if out.exists() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(record, dict) and record.get("request_key"):
            found[record["request_key"]] = (path, record)
    return found


def build_record(run: PreparedRun, method: Method, ctx: RunContext, result: MethodResult, wall: float) -> dict:
    req = run.request
    request = request_key(run, method, ctx.seed)
    # the run's identity: what was asked for, plus the teacher actually used
    run_key = config_key({"request": request, "teacher": ctx.teacher_stage.digest if ctx.teacher_stage else None})
    teacher = None
    if method.uses_teacher and ctx.teacher_stage is not None:
        t = ctx.teacher_stage
        teacher = {"arch": req.teacher, "artifact": t.key, "weights_digest": t.digest, "test_acc": t.final("test_acc"),
                   "params": count_params(t.model) if t.model is not None else None,
                   "checkpoint": t.info.get("checkpoint"), "trained_in_this_run": not t.reused}
    return {
        "schema": SCHEMA,
        "run_key": run_key,
        "request_key": request,
        "created": now_iso(),
        "method": {**method.config(), "plugin": run.plugins.methods.resolve(method.name).entry.plugin,
                   "defaults": {k: o.default for k, o in method.options.items()}},
        "arch": req.arch,
        "teacher": teacher,
        "dataset": run.dataset.describe(),
        "seed": ctx.seed,
        "recipe": run.recipe.as_dict(),
        "config": {"select": req.select, "amp": run.amp, "channels_last": run.channels_last,
                   "seeds_in_run": req.seeds, "methods_in_run": req.methods},
        "versions": versions(),
        "device": device_info(run.device),
        "metrics": measure(ctx, result, run),
        "curves": result.history,
        "stages": ctx.stage_log,
        "info": result.info,
        "wall_seconds": wall,
    }


def save_figures(result: MethodResult, record_file: Path, reporter: Reporter) -> dict[str, str]:
    """Draw a method's figures as PNG files in a folder beside its record; returns name -> path."""
    folder = record_file.with_name(record_file.stem + ".figures")
    folder.mkdir(parents=True, exist_ok=True)
    saved = {}
    for name, draw in result.figures.items():
        path = folder / f"{name}.png"
        try:
            draw(path)
            saved[name] = str(path)
        except Exception as exc:  # a figure must never cost the run its record
            reporter.note(f"figure {name} could not be drawn: {type(exc).__name__}: {exc}")
    return saved


def execute(run: PreparedRun, reporter: Reporter) -> RunOutcome:
    """Train every (seed, method) of the run; a failing method is reported and the others go on."""
    records, paths, failures = [], [], []
    done = existing_records(run.request.out) if run.request.reuse_records or run.request.resume else {}
    for seed in run.request.seeds:
        for method in run.methods:
            key = request_key(run, method, seed)
            if key in done:
                reporter.note(f"{method.name} (seed {seed}): reusing record {done[key][0].name}")
                paths.append(done[key][0])
                records.append(done[key][1])
                continue
            ctx = make_context(run, seed, method.name, reporter)
            reporter.note(f"== {method.name} | {run.request.arch} | {run.dataset.name} | seed {seed} ==")
            t0 = time.perf_counter()
            try:
                result = method.run(ctx)
                record = build_record(run, method, ctx, result, time.perf_counter() - t0)
            except KeyboardInterrupt:
                raise
            except BenchError as exc:  # faults branch: every BenchError (e.g. TrainingDiverged) is one line
                failures.append(f"{method.name} (seed {seed}): {exc}")
                continue
            except Exception as exc:
                detail = traceback.format_exc(limit=-3)
                failures.append(f"{method.name} (seed {seed}) failed: {type(exc).__name__}: {exc}\n{detail}")
                continue
            if result.figures:
                record["figures"] = save_figures(result, record_path(run.request.out, record), reporter)
            paths.append(write_record(run.request.out, record))
            records.append(record)
    return RunOutcome(records, paths, failures)
