"""Resolve and validate a :class:`~harness.run.request.RunRequest` before anything trains: :func:`prepare`.

Everything a run can get wrong (names, options, combinations, output folders, data, model construction, each
method's own check) is found here and raised as a :class:`~harness.core.errors.UsageError` (exit 2). The
result, a :class:`PreparedRun`, holds the run's :class:`~harness.run.plan.RunPlan`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from harness.core import numerics
from harness.core.errors import (
    BenchError,
    DataUnavailableError,
    PluginFailed,
    UsageError,
    did_you_mean,
    plugin_code,
)
from harness.core.progress import Reporter
from harness.core.recipes import Recipe
from harness.data.datasets import DatasetRequest, ImageDataset, prepare as prepare_dataset
from harness.data.validate import check_declared, check_loaded
from harness.methods.compose import component_options
from harness.methods.contract import Method, RunInfo
from harness.plugins.methods import with_components
from harness.methods.shared import baseline_stage, checkpoint_stage
from harness.plugins.manager import PluginSet
from harness.results.records import read_record_file
from harness.run.loggers import LoggerSet, resolve_loggers
from harness.run.outputs import check_architectures
from harness.run.cost import declared_stand_in
from harness.run.plan import RunPlan
from harness.run.limits import check_request, check_sizes
from harness.run.planning import Planning
from harness.run.preflight import check_run_dirs
from harness.run.request import RunRequest
from harness.run.spec.kinds import Settings
from harness.run.spec.options import BY_NAME
from harness.results.fingerprint import computing_platform
from harness.train.artifacts import ArtifactStore, meta_beside
from harness.train.sources import resolve_teacher
from harness.train.distributed import World
from harness.train.engine import COMPILE_MODES, cpu_has_bf16
from harness.train.env import SELECTIONS, RunEnv
from harness.train.executor import StageRunner
from harness.train.stage import Stage


def _settings(name: str) -> Settings:
    kind = BY_NAME[name].kind
    assert isinstance(kind, Settings)
    return kind


#: ``--opt`` / ``[runs.options]``: method options, a table per method
OPTIONS_KIND = _settings("options")


@dataclass(frozen=True)
class PreparedRun:
    """A validated run: its methods, data, recipe, engine settings, artifact store, teacher and plan. Never
    changed once :func:`prepare` returns it: a variant (a study's entry, a torchrun world) is a copy
    (``dataclasses.replace``)."""

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
    plan: RunPlan = field(default_factory=lambda: RunPlan(()))
    world: World | None = None  # ranks training this run together (torchrun); None: one process
    teacher_default: str | None = None  # why the teacher is the student's default (no --teacher given), else None
    loggers: LoggerSet = field(default_factory=LoggerSet)  # --log (and the always-on jsonl), checked
    teacher_source: dict | None = None  # where --teacher-checkpoint's bundle came from (records say it)
    #: What the numerics profile set each CPU library to run (``harness.core.numerics.activate``), measured.
    numerics: dict[str, str] = field(default_factory=dict)
    planning: Planning = field(default_factory=Planning, repr=False, compare=False)  # dry resolutions, until training
    data_missing: str | None = None  # a dry run whose data is not on disk: why (its loader's line), else None

    def info(self, seed: int) -> RunInfo:
        return RunInfo(arch=self.request.arch, recipe=self.recipe, seed=seed, teacher_stage=self.teacher)

    def env(self, seed: int, reporter: Reporter) -> RunEnv:
        assert self.dataset is not None
        return replace(self.env_of(self.dataset, seed), reporter=reporter)

    def env_of(self, dataset: ImageDataset, seed: int, *, platform: bool = True) -> RunEnv:
        """The run's environment for ``seed`` on ``dataset`` (the run's own, or a shape-only stand-in), with
        the platform its stages are computed on (measured in this process: a worker measures its own).
        ``platform=False``: without it (a dry resolution, which computes and records no stage, so that
        planning does not import what only the platform names, such as torchvision)."""
        env = RunEnv(
            arch=self.request.arch,
            dataset=dataset,
            recipe=self.recipe,
            seed=seed,
            device=self.device,
            reporter=Reporter(),
            resolve_arch=self.plugins.resolve_arch,
            amp=self.amp,
            channels_last=self.channels_last,
            select=self.request.select,
            tta=self.request.tta,
            world=self.world,
            compile=self.request.compile,
            numerics=numerics.profile(self.request.numerics).identity(),
        )
        measured = self.numerics or numerics.activate(
            self.request.numerics, self.request.threads, device=self.device.type
        )
        if not platform:
            return env
        env.platform = computing_platform(
            self.device, measured, env.engine(), self.world.size if self.world is not None else 1
        )
        return env

    def dry_runner(self, seed: int, dataset: ImageDataset | None = None) -> StageRunner:
        """A runner that trains and loads nothing: stage keys and cache states of ``seed``'s plans on
        ``dataset`` (the run's by default; a shape-only stand-in when its data is not on disk). Until
        :meth:`release_planning`, every caller gets the same runner (:mod:`harness.run.planning`)."""
        ds = dataset if dataset is not None else self.dataset
        assert ds is not None
        return self.planning.runner(seed, ds, lambda: self.env_of(ds, seed, platform=False), self.store)

    def plan_dataset(self) -> ImageDataset | None:
        """What the plans are resolved on: the run's dataset; without it on disk, a stand-in of the shape its
        plugin declares (the same one for every caller), or None when it declares none."""
        if self.dataset is not None:
            return self.dataset
        return self.planning.stand_in(
            lambda: declared_stand_in(self.plugins, self.request.dataset, self.request.val_split)
        )

    def train_images(self) -> int | None:
        """The run's training images: the dataset's; without it on disk, its plugin's declared count (after
        ``--train-subset``), None when it declares none."""
        if self.dataset is not None:
            return len(self.dataset.train_labels)
        declared = self.plugins.datasets.resolve(self.request.dataset).entry.meta.get("train_images")
        subset = self.request.train_subset
        return min(declared, subset) if declared and subset else declared

    def release_planning(self) -> None:
        """Drop the dry resolutions (models on the run's device) before training."""
        self.planning.release()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise UsageError(f"--device must be cpu, cuda or auto, got '{name}'")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    return torch.device(name)


def method_options(given: dict[str, dict[str, Any]] | list[str], methods: list[str]) -> dict[str, dict[str, Any]]:
    """The run's method options by method: ``given`` as a request holds them (a table ``{"kd": {"temperature":
    2}}``, typed from a study file or text from ``--opt``) or as ``METHOD.NAME=VALUE`` items; the method must
    be in the run, or a component of a composed method in it (``kd`` of ``kd+se``)."""
    table: dict[str, dict[str, Any]] = {}
    if isinstance(given, dict):
        table = {method: dict(values) for method, values in given.items()}
    else:
        for item in given:
            path, value = OPTIONS_KIND.item(item, "--opt")
            table = OPTIONS_KIND.merge(table, path, value)
    in_run = with_components(methods)
    for method, values in table.items():
        if method not in in_run:
            first = next(iter(values), "NAME")
            hint = did_you_mean(method, methods)
            raise UsageError(
                f"--opt {method}.{first}: method '{method}' is not in --methods ({', '.join(methods)})"
                + (f";{hint}" if hint else "")
            )
    return table


def build_methods(
    plugins: PluginSet, names: list[str], raw_options: dict[str, dict[str, Any]] | list[str]
) -> list[Method]:
    """Method instances with their validated options (:func:`method_options`)."""
    if len(set(names)) != len(names):
        raise UsageError(f"--methods lists a method twice: {','.join(names)}")
    entries = {name: plugins.methods.resolve(name).entry for name in names}
    options = method_options(raw_options, names)
    methods = []
    for name, entry in entries.items():
        given = component_options(name, options)  # a component's own options apply inside compositions
        for key in given:
            if key not in entry.obj.options:
                valid = ", ".join(sorted(entry.obj.options)) or "none"
                raise UsageError(
                    f"method '{name}' has no option '{key}';{did_you_mean(key, entry.obj.options)} its options: {valid}"
                )
        with plugin_code(f"method '{name}' (its options or constructor)", entry.plugin):
            methods.append(entry.obj(name, entry.obj.parse_options(name, given)))
    return methods


def load_dataset(req: RunRequest, plugins: PluginSet) -> ImageDataset:
    resolved = plugins.datasets.resolve(req.dataset)
    request = DatasetRequest(
        name=req.dataset, arg=resolved.arg, data_dir=req.data_dir, cache_dir=req.cache_dir, download=req.download
    )
    with plugin_code(f"the loader of dataset '{req.dataset}'", resolved.entry.plugin):
        ds = resolved.obj(request)
    check_loaded(ds, resolved.entry.plugin, req.dataset)  # uint8 NCHW pixels, int64 labels in range, stats
    check_declared(ds, resolved.entry.meta, resolved.entry.plugin, req.dataset)  # what dry runs go by
    check_sizes(req, len(ds.train_labels), req.dataset)  # a training split that trains, a validation split that holds
    return prepare_dataset(ds, train_subset=req.train_subset, test_subset=req.test_subset, val_split=req.val_split)


def teacher_stage(
    req: RunRequest, store: ArtifactStore, default: str | None = None
) -> tuple[Stage | None, dict | None]:
    """The run's teacher stage (``--teacher-checkpoint``, ``--teacher ARCH``'s baseline, or ``default``'s), and
    where a shared teacher came from (``--teacher-checkpoint`` a bundle, a URL or a Hub repository: fetched, its
    digest verified and imported into the store first)."""
    if req.teacher_checkpoint is not None:
        path, source = resolve_teacher(str(req.teacher_checkpoint), store, req.cache_dir)
        check_checkpoint_file(path)
        return checkpoint_stage(path, req.teacher, store), source
    arch = req.teacher or default
    return (baseline_stage(arch) if arch else None), None


def check_checkpoint_file(path: Path) -> None:
    """A UsageError naming ``--teacher-checkpoint`` for a record that cannot be read as one (a newer schema, a
    missing field: never misread) or an artifact whose meta JSON is unreadable; read here, so that the stage
    code (:func:`harness.methods.shared.checkpoint_stage`, which enters stage keys) holds no file checks."""
    where = f"--teacher-checkpoint {path}"
    if path.suffix == ".json" and path.exists():
        read_record_file(path, where)
    elif path.suffix == ".pt" and path.exists():
        meta_beside(path, where)


def default_teacher(req: RunRequest, plugins: PluginSet, methods: list[Method]) -> tuple[str, str] | None:
    """(teacher architecture, where the pair comes from) when a method needs a teacher and none was given:
    the student architecture's declared default; a UsageError naming the known pairs when it has none."""
    needs = [m.name for m in methods if m.uses_teacher]
    if not needs or req.teacher or req.teacher_checkpoint:
        return None
    meta = plugins.archs.resolve(req.arch).entry.meta
    if meta.get("default_teacher"):
        return str(meta["default_teacher"]), str(meta.get("teacher_source") or "declared by its plugin")
    pairs = ", ".join(
        f"{e.meta['default_teacher']} -> {e.name}" for e in plugins.archs.entries() if e.meta.get("default_teacher")
    )
    raise UsageError(
        f"method '{needs[0]}' needs a teacher and {req.arch} has no default teacher: pass --teacher ARCH "
        f"or --teacher-checkpoint PATH (default pairs: {pairs or 'none'})"
    )


def plan_run(run: PreparedRun) -> RunPlan:
    """The run's plan: every seed's methods, plus the shared baseline where a plan uses it."""
    req, plugins = run.request, run.plugins
    shared = None
    if "baseline" not in req.methods and "baseline" in plugins.methods:
        shared = lambda: plugins.methods.resolve("baseline").obj("baseline")  # noqa: E731
    return RunPlan.build(
        run.methods,
        req.seeds,
        run.info,
        baseline=shared,
        plugin_of=lambda name: plugins.methods.resolve(name).entry.plugin,
    )


def resolve_amp(req: RunRequest, recipe: Recipe, device: torch.device) -> tuple[bool, str | None]:
    """Whether the run trains and evaluates under bf16 autocast, and a note for the user where the recipe chose:
    ``--amp``/``--no-amp`` where given (``--amp`` refused on a CPU without bf16 instructions, where it is
    emulated and slower than fp32); else on CUDA, and on a CPU with bf16 instructions for a recipe that prefers
    it (``prefer_bf16``: the fast track, measured within seed noise of fp32 there, docs/fast-track.md) under
    the native numerics profile only (a pinned profile is for replaying bits on other CPUs, which bf16 kernels
    would not). The choice is the engine's ``amp``, in every stage key and record."""
    if req.amp is not None:
        if req.amp and device.type == "cpu" and not cpu_has_bf16():
            raise UsageError(
                "--amp: this CPU has no bf16 instructions (avx512_bf16 or amx_bf16), so bf16 autocast would "
                "be emulated and slower than fp32; drop --amp (it helps on CPUs that have them, and on CUDA)"
            )
        return req.amp, None
    if device.type == "cuda":
        return True, None
    if not recipe.prefer_bf16 or device.type != "cpu" or not cpu_has_bf16():
        return False, None
    if numerics.profile(req.numerics).pins:
        return False, (
            f"bench: note: recipe {recipe.name} prefers bf16, but --numerics {req.numerics} pins the CPU's kernels "
            f"for exact replay elsewhere, so it runs in fp32 (--amp to train in bf16 anyway)"
        )
    return True, (
        f"bench: note: recipe {recipe.name} trains in bf16 autocast on this CPU (it has bf16 instructions); "
        f"--no-amp for fp32"
    )


def prepare(req: RunRequest, plugins: PluginSet, reporter: Reporter, *, need_data: bool = True) -> PreparedRun:
    """Resolve and validate the whole run; raise UsageError before any training.

    ``need_data=False`` (dry runs): a dataset that is not on disk leaves ``dataset`` None instead of failing.
    """
    check_request(req)  # every number within its declared limits (the CLI's types check the same)
    check_run_dirs(req)  # --out and --cache-dir usable, before anything else
    device = resolve_device(req.device)
    measured = numerics.activate(req.numerics, req.threads, device=device.type)  # before anything computes
    if not req.methods:
        raise UsageError("--methods needs at least one method")
    if not req.seeds:
        raise UsageError("--seeds needs at least one seed")
    if req.select not in SELECTIONS:
        raise UsageError(f"--select must be one of {', '.join(SELECTIONS)}")
    if req.select == "val" and not req.val_split:
        raise UsageError("--select val needs a validation split: add --val-split FRACTION (e.g. 0.1)")
    if req.tta != "none" and req.select != "last":
        raise UsageError(
            f"--tta {req.tta} evaluates the last epoch only, so --select {req.select} would compare "
            f"epochs evaluated differently: use --select last with --tta"
        )
    methods = build_methods(plugins, req.methods, req.options)
    loggers = resolve_loggers(plugins.loggers, req.loggers)  # an unknown name or a missing extra: now
    plugins.archs.resolve(req.arch)
    if req.teacher is not None:
        plugins.archs.resolve(req.teacher)
    if (req.teacher or req.teacher_checkpoint) and not any(m.uses_teacher for m in methods):
        given = f"--teacher {req.teacher}" if req.teacher else f"--teacher-checkpoint {req.teacher_checkpoint}"
        raise UsageError(f"{given} was given but none of the methods ({','.join(req.methods)}) uses a teacher")
    named = plugins.recipes.resolve(req.recipe).obj
    recipe = named.with_overrides(**req.overrides)
    if recipe.schedule == "multistep" and recipe.collided_milestones(named):
        from harness.train.engine import schedule_text

        print(
            f"bench: warning: --epochs {recipe.epochs} scales recipe {named.name}'s milestones "
            f"{list(named.milestones)} to {list(recipe.milestones)}, which coincide: {schedule_text(recipe)}; "
            f"give --milestones (or --schedule cosine) to choose",
            file=sys.stderr,
        )
    if req.threads:
        torch.set_num_threads(req.threads)
    amp, amp_note = resolve_amp(req, recipe, device)
    if req.compile is not None and req.compile not in COMPILE_MODES:
        raise UsageError(f"--compile {req.compile}: the modes are {', '.join(COMPILE_MODES)}")
    channels_last = True if req.channels_last is None else req.channels_last  # faster on CUDA and on CPU
    store = ArtifactStore(req.cache_dir / "artifacts")
    default = default_teacher(req, plugins, methods)
    if default is not None:
        plugins.archs.resolve(default[0])
        print(
            f"bench: note: teacher {default[0]} is {req.arch}'s default ({default[1]}); choose another with "
            f"--teacher ARCH or --teacher-checkpoint PATH",
            file=sys.stderr,
        )
    teacher, teacher_source = teacher_stage(req, store, default[0] if default else None)
    run = PreparedRun(
        req,
        plugins,
        methods,
        None,
        recipe,
        device,
        amp,
        channels_last,
        store,
        teacher,
        teacher_default=default[1] if default else None,
        loggers=loggers,
        teacher_source=teacher_source,
        numerics=measured,
    )
    run = replace(run, plan=plan_run(run))  # every method plans every seed: a missing teacher etc. is refused here
    try:
        run = replace(run, dataset=load_dataset(req, plugins))
    except DataUnavailableError as exc:
        if need_data or not fetched_by_a_real_run(req, plugins):
            raise  # local data (a path, the bundled dataset, a plugin's files) missing or broken: exit 2, dry too
        run = replace(run, data_missing=(str(exc).strip().splitlines() or [""])[0])
        validate_by_shape(run)  # a dry run checks what it can without the data: the same validation
    else:
        validate(run)
    if amp_note:  # once the run is known to be valid: a refused run prints its one error line only
        print(amp_note, file=sys.stderr)
    return run


def fetched_by_a_real_run(req: RunRequest, plugins: PluginSet) -> bool:
    """Whether a dataset missing here is one a real run downloads (its plugin declares ``downloads=True``; with
    ``--data-dir`` too, which a real run looks in first): a dry run then plans on its declared shape and says
    whether this machine can download it. Any other dataset is local, and a dry run that cannot load it fails
    as a real run would."""
    return bool(plugins.datasets.resolve(req.dataset).entry.meta.get("downloads"))


def validate_by_shape(run: PreparedRun) -> None:
    """A dry run whose data is not on disk: :func:`validate` on a stand-in of the dataset's declared shape
    (class count, channels, size; no images), when its plugin declares one; nothing otherwise."""
    stand_in = run.plan_dataset()
    if stand_in is not None:
        validate(run, stand_in)


def validate(run: PreparedRun, dataset: ImageDataset | None = None) -> None:
    """Build the first seed's plans' objectives on untrained networks (nothing trained or loaded but
    checkpoints) on ``dataset`` (the run's by default): an architecture, a pair or an option that cannot work
    is refused now, with one line."""
    seed = run.plan.seeds[0]
    ds = dataset if dataset is not None else run.dataset
    assert ds is not None
    dry = run.dry_runner(seed, ds)
    checked: set[str] = set()  # the architectures whose logits were checked
    for entry in run.plan.of_seed(seed):
        where = (
            f"method '{entry.name}' cannot be set up on {run.request.arch} for {ds.name} "
            f"({ds.in_chans}x{ds.input_size}x{ds.input_size}, {ds.num_classes} classes)"
        )
        try:
            start = len(dry.resolved)
            dry.resolve(entry.plan.deploy, entry.name)
            check_architectures(
                dry.resolved[start:],
                (ds.in_chans, ds.input_size, ds.input_size),
                ds.num_classes,
                run.device,
                where,
                checked,
                run.planning.shape_pass,
            )
        except PluginFailed as exc:
            raise UsageError(f"{where}: {run.plugins.claim(exc, entry.name)}") from exc
        except BenchError:
            raise
        except Exception as exc:
            raise UsageError(f"{where}: {type(exc).__name__}: {exc}") from exc
