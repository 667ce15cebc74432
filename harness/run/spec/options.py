"""The run specification, declared once: :data:`OPTIONS`, one :class:`RunOption` per option of a run.

Each option says its kind of value (:mod:`harness.run.spec.kinds`: type and constraint), its default, its help,
its command-line flag and how it is written there, its study-file table, and where its value goes in a
:class:`~harness.run.request.RunRequest`. Everything else is generated from this table: `bench run`'s and
`bench reproduce`'s options (:func:`harness.cli.args.add_run_arguments`), the ``[defaults]``, ``[[runs]]``
and ``[execution]`` keys of study files (:data:`harness.cli.study.schema.KEYS`), the fields of
:class:`~harness.run.request.RunRequest` and the option tables of ``docs/commands.md`` and
``docs/studies.md``. Adding an option is one entry here.

Importing this module is cheap (no torch): ``bench --help`` is built from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.constraints import COUNT, POSITIVE, between
from harness.core.numerics import PROFILES
from harness.core.recipes import (
    AVERAGING,
    FAST_LIMITS,
    FLIPS,
    MILESTONE,
    PAD_MODES,
    RECIPE_LIMITS,
    SCHEDULES,
    TTA_LEVELS,
)
from harness.run.spec.kinds import (
    Distortions,
    Integer,
    Items,
    Kind,
    Number,
    PathValue,
    Settings,
    Switch,
    Text,
)

#: a seed: what torch, numpy and Python's random all accept
SEED = between(0, 2**32 - 1, integer=True)
#: ``--retries``: 0 (never retry) or more
RETRIES = between(0, 100, integer=True)
#: how an option is written on the command line: ``value`` (``--epochs 3``), ``on`` (``--resume``), ``off``
#: (``--no-download``: the option is on unless given), ``both`` (``--amp``/``--no-amp``, unset: decided later),
#: ``optional`` (``--compile`` alone means its ``const``), ``repeat`` (``--opt A --opt B``)
STYLES = ("value", "on", "off", "both", "optional", "repeat")
#: which table of a study file holds an option: ``run`` (``[defaults]`` and ``[[runs]]``: one value per run, a
#: list gives one run per item), ``execution`` (``[execution]``: one value for the study), ``command`` (none:
#: how one invocation behaves, never what a study is); ``study``: a key of the ``[study]`` table, no option
SCOPES = ("run", "execution", "command", "study")
RECIPE = "the recipe's"
#: the request field every recipe override goes into, by name (``Recipe.with_overrides``)
OVERRIDES = "overrides"


@dataclass(frozen=True)
class RunOption:
    """One option of a run. ``name`` is its study-file key and argparse destination; ``field`` the
    :class:`~harness.run.request.RunRequest` field it sets (:data:`OVERRIDES` for a recipe override; None for
    an option of the execution or of the command only, not of the request); ``none`` says in the docs what
    unset means; ``shown_default`` replaces a default that depends on the machine."""

    name: str
    kind: Kind
    help: str
    flag: str | None = None
    default: Any = None
    scope: str = "run"
    group: str = ""
    field: str | None = ""  # "": the option's own name
    style: str = "value"
    const: Any = None
    metavar: str | None = None
    none: str = "none"
    shown_default: str | None = None

    def __post_init__(self) -> None:
        assert self.style in STYLES and self.scope in SCOPES, self
        if self.field == "":
            object.__setattr__(self, "field", self.name)

    @property
    def matrix(self) -> bool:
        """Run keys of a study file take a list of values, one run each (the study's matrix)."""
        return self.scope == "run"

    @property
    def recipe(self) -> bool:
        """A recipe override (``--epochs``): unset keeps the recipe's value."""
        return self.field == OVERRIDES

    def default_text(self, default: Any) -> str | None:
        """What help text says of a value option's default (``default`` as the command gives it): the value,
        else what unset means; None for a switch or where nothing is worth saying."""
        if self.style not in ("value", "optional"):
            return None
        if default not in (None, [], {}) and self.style == "value":
            return ",".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        if self.shown_default:
            return self.shown_default.replace("`", "")
        return None if self.none in ("none", "required", RECIPE) else self.none

    @property
    def flags(self) -> tuple[str, ...]:
        """The command-line spellings (``--amp``, ``--no-amp``)."""
        if self.flag is None:
            return ()
        if self.style == "both":
            return (self.flag, "--no-" + self.flag[2:])
        return (self.flag,)


def _recipe(name: str, help: str, flag: str) -> RunOption:
    limit = {**RECIPE_LIMITS, **FAST_LIMITS}[name]
    kind = Integer(limit) if limit.integer else Number(limit)
    return RunOption(name, kind, help, flag, group="recipe overrides", field=OVERRIDES, none=RECIPE)


#: the help groups of the command line (and the docs' tables); the targets are in none
TARGET, DATA, EXECUTION = "target", "data", "execution"
DISTORTION = "evaluation under distortion (every method's deployed model, recorded per level)"
LOGGERS, EXECUTORS = "metrics loggers (see the docs: Loggers)", "executors (see the docs: Scaling out)"

OPTIONS: tuple[RunOption, ...] = (
    # what is trained
    RunOption(
        "methods",
        Items(Text(), "method names", nonempty=True, name="methods"),
        "comma-separated method names, e.g. baseline,kd; kd+se composes methods (an objective with "
        "architecture rewrites), attn:eca is any of timm's attention types (a study file: a list, or a list "
        "of such lists: one run per method set)",
        "--methods",
        group=TARGET,
        none="required",
    ),
    RunOption(
        "arch",
        Text(),
        "architecture, e.g. resnet20, vgg8, resnet50, timm:convnext_atto",
        "--arch",
        group=TARGET,
        none="required",
    ),
    RunOption(
        "teacher",
        Text(),
        "teacher architecture for distillation methods (trained once, reused)",
        "--teacher",
        group=TARGET,
        none="the architecture's default teacher, where a method needs one",
    ),
    RunOption(
        "teacher_checkpoint",
        PathValue(sources=True),
        "a trained teacher: a bundle (bench artifacts export), a bench record (.json), artifact (.pt) or "
        "plain state dict (with --teacher); or a bundle at file:// or https://...#sha256=HEX or "
        "hf-hub:ORG/NAME[/FILE][@REV] (see docs/teachers.md)",
        "--teacher-checkpoint",
        group=TARGET,
        metavar="SOURCE",
    ),
    # data, seeds, recipe
    RunOption(
        "dataset",
        Text(),
        "cifar10, cifar100, cifar10-mini (bundled, offline), imagefolder:PATH (a path "
        "relative to the working directory, also in a study file)",
        "--dataset",
        default="cifar10",
    ),
    RunOption(
        "data_dir", PathValue(), "folder holding an existing copy of the dataset", "--data-dir", scope="execution"
    ),
    RunOption(
        "download",
        Switch(),
        "whether missing data may be downloaded (--no-download: never)",
        "--no-download",
        default=True,
        scope="execution",
        style="off",
    ),
    RunOption(
        "seeds",
        Items(Integer(SEED), "distinct integers", nonempty=True, distinct=True, name="seeds"),
        "comma-separated seeds: one run of every method per seed",
        "--seeds",
        default=[0],
    ),
    RunOption(
        "recipe",
        Text(),
        "named recipe: crd, attention, encodenet, smoke, fast (bench list recipes)",
        "--recipe",
        default="crd",
    ),
    _recipe("epochs", "epochs (multistep milestones are scaled to match)", "--epochs"),
    _recipe("batch_size", "images per training step", "--batch-size"),
    _recipe("lr", "learning rate (of SGD with momentum)", "--lr"),
    _recipe("weight_decay", "L2 weight decay", "--weight-decay"),
    _recipe("momentum", "SGD momentum", "--momentum"),
    RunOption(
        "schedule",
        Text(SCHEDULES),
        "learning-rate schedule",
        "--schedule",
        group="recipe overrides",
        field=OVERRIDES,
        none=RECIPE,
    ),
    RunOption(
        "milestones",
        Items(Integer(MILESTONE), "epochs", as_tuple=True, name="milestones"),
        "comma-separated epochs of the multistep schedule",
        "--milestones",
        group="recipe overrides",
        field=OVERRIDES,
        none=RECIPE,
    ),
    _recipe("gamma", "multistep decay factor", "--gamma"),
    _recipe("label_smoothing", "label smoothing of the cross-entropy on labels (fast: 0.2)", "--label-smoothing"),
    RunOption(
        "averaging",
        Text(AVERAGING),
        "weight averaging (fast: lookahead, airbench's)",
        "--averaging",
        group="recipe overrides",
        field=OVERRIDES,
        none=RECIPE,
    ),
    _recipe("translate", "random-crop padding in pixels (CIFAR standard 4; fast: 2)", "--translate"),
    RunOption(
        "flip",
        Text(FLIPS),
        "horizontal flip: random per image and epoch, alternating (airbench) or none",
        "--flip",
        group="recipe overrides",
        field=OVERRIDES,
        none=RECIPE,
    ),
    RunOption(
        "pad_mode",
        Text(PAD_MODES),
        "padding of the random crop (fast: reflect)",
        "--pad-mode",
        group="recipe overrides",
        field=OVERRIDES,
        none=RECIPE,
    ),
    _recipe(
        "whiten",
        "set the first layer to the frozen patch-whitening of this many training images (0: off; "
        "fast: 5000; the architecture must declare a whitening layer)",
        "--whiten",
    ),
    # the data of the run
    RunOption(
        "val_split",
        Number(between(0, 1, exclusive_maximum=True)),
        "hold out this fraction of training data for validation",
        "--val-split",
        default=0.0,
        group=DATA,
    ),
    RunOption(
        "train_subset",
        Integer(COUNT),
        "train on a class-balanced subset of this many images",
        "--train-subset",
        group=DATA,
        none="every training image",
    ),
    RunOption(
        "test_subset",
        Integer(COUNT),
        "evaluate on a class-balanced subset of this many test images",
        "--test-subset",
        group=DATA,
        none="every test image",
    ),
    RunOption(
        "select",
        Text(("last", "val", "test")),
        "weights kept for downstream stages and deployment: last epoch (default), best validation epoch "
        "(needs --val-split), or best test epoch (only when you explicitly want test selection)",
        "--select",
        default="last",
        group=DATA,
    ),
    RunOption(
        "tta",
        Text(TTA_LEVELS),
        "test-time augmentation of the last epoch's evaluation: none, mirror, or "
        "mirror-translate (airbench94's six views); recorded in the protocol, so its records are never in "
        "a table with plain ones",
        "--tta",
        default="none",
        group=DATA,
    ),
    RunOption(
        "eval_noise",
        Distortions("noise"),
        "also measure top-1 on the test set with additive Gaussian noise "
        "of these standard deviations, in [0, 1] pixel units, e.g. 0.05,0.1,0.2",
        "--eval-noise",
        default=[],
        group=DISTORTION,
        field="eval_distortions",
        metavar="SIGMAS",
    ),
    RunOption(
        "eval_distort",
        Distortions(),
        "the same for any distortion: noise:SIGMA (pixel units 0-1), blur:SIGMA (pixels), e.g. noise:0.1,blur:1.0",
        "--eval-distort",
        default=[],
        group=DISTORTION,
        field="eval_distortions",
        metavar="KIND:LEVEL,...",
    ),
    RunOption(
        "options",
        Settings(depth=2),
        "a method option, e.g. --opt kd.temperature=2 (repeatable; 'bench "
        "list methods' shows them; kd's also applies inside kd+se, whose own are kd+se.kd.temperature=2; a "
        "study file: `[runs.options]` `kd.temperature = 2`, a list value: one run each)",
        "--opt",
        default={},
        group="methods",
        style="repeat",
        metavar="METHOD.NAME=VALUE",
        none="each method's defaults (`bench list methods`)",
    ),
    # how it computes
    RunOption("device", Text(), "cpu, cuda or auto", "--device", default="auto", scope="execution", group=EXECUTION),
    RunOption(
        "amp",
        Switch(),
        "bf16 autocast (--amp refused on a CPU without bf16 instructions; default: on CUDA, and on a CPU with "
        "them for a recipe that prefers bf16 (fast) under the native numerics; fp32 otherwise)",
        "--amp",
        group=EXECUTION,
        style="both",
        none="on CUDA; on a bf16 CPU for recipe fast",
    ),
    RunOption(
        "compile",
        Text(),
        "torch.compile the training step and evaluation (MODE: default, reduce-overhead, "
        "max-autotune, max-autotune-no-cudagraphs); part of every stage key; its warm-up is reported apart "
        "from the throughput",
        "--compile",
        group=EXECUTION,
        style="optional",
        const="default",
        metavar="MODE",
        none="off (eager)",
    ),
    RunOption(
        "channels_last",
        Switch(),
        "channels_last memory format (default: on; faster on CUDA and on CPU)",
        "--channels-last",
        group=EXECUTION,
        style="both",
        none="on",
    ),
    RunOption(
        "threads",
        Integer(COUNT),
        "CPU threads for torch",
        "--threads",
        scope="execution",
        group=EXECUTION,
        none="torch's",
    ),
    RunOption(
        "numerics",
        Text(tuple(PROFILES)),
        "which instruction sets torch's CPU libraries run: native "
        "(default: what this CPU offers) or portable (ATen, oneDNN and MKL pinned to AVX2, one thread unless "
        "--threads: the same bits on any x86-64 CPU with AVX2); part of every stage key and record",
        "--numerics",
        scope="execution",
        group=EXECUTION,
        none="native",
    ),
    RunOption(
        "out",
        PathValue(),
        "folder for result records (and a study's resolved copy)",
        "--out",
        default=Path("results/runs"),
        scope="execution",
        group=EXECUTION,
    ),
    RunOption(
        "cache_dir",
        PathValue(),
        "decoded datasets, trained artifacts, checkpoints",
        "--cache-dir",
        scope="execution",
        group=EXECUTION,
        shown_default="`$BENCH_CACHE_DIR`, else `~/.cache/encodenet-bench`",
    ),
    RunOption(
        "resume",
        Switch(),
        "continue interrupted stages from their checkpoints (and reuse finished records)",
        "--resume",
        default=False,
        scope="execution",
        group=EXECUTION,
        style="on",
    ),
    RunOption(
        "retrain",
        Switch(),
        "train every stage again instead of reusing artifacts",
        "--retrain",
        default=False,
        scope="execution",
        group=EXECUTION,
        style="on",
    ),
    RunOption(
        "latency",
        Switch(),
        "whether inference latency is measured (--no-latency: skip it)",
        "--no-latency",
        default=True,
        group=EXECUTION,
        style="off",
    ),
    RunOption(
        "latency_batch",
        Integer(COUNT),
        "the large batch of the latency measurement",
        "--latency-batch",
        group=EXECUTION,
        none="CPU 64, CUDA 512",
    ),
    RunOption(
        "quiet",
        Switch(),
        "no progress output",
        "--quiet",
        default=False,
        scope="command",
        group=EXECUTION,
        field=None,
        style="on",
    ),
    RunOption(
        "log",
        Items(Text(), "logger names", name="loggers"),
        "also send every epoch and the record to these "
        "loggers: tensorboard, mlflow, wandb (offline), trackio ('bench list loggers'); jsonl (<out>/logs/) "
        "is always written",
        "--log",
        default=[],
        scope="execution",
        group=LOGGERS,
        field="loggers",
        metavar="NAME[,NAME]",
    ),
    # where stage jobs run
    RunOption(
        "executor",
        Text(),
        "where stage jobs run: local, ray, slurm",
        "--executor",
        default="local",
        scope="execution",
        group=EXECUTORS,
        field=None,
    ),
    RunOption(
        "workers",
        Integer(COUNT),
        "local: worker processes; ray, slurm: jobs in flight at most",
        "--workers",
        scope="execution",
        group=EXECUTORS,
        field=None,
        none="1: train in this process",
    ),
    RunOption(
        "per_gpu",
        Integer(COUNT),
        "K stage jobs at a time on each visible GPU",
        "--per-gpu",
        scope="execution",
        group=EXECUTORS,
        field=None,
        metavar="K",
    ),
    RunOption(
        "retries",
        Integer(RETRIES),
        "run a failed stage job again this many times",
        "--retries",
        default=1,
        scope="execution",
        group=EXECUTORS,
        field=None,
    ),
    RunOption(
        "ray_address",
        Text(),
        "an existing Ray cluster",
        "--ray-address",
        scope="execution",
        group=EXECUTORS,
        field=None,
        none="start a local one",
    ),
    RunOption(
        "slurm",
        Settings(),
        "a submitit parameter, e.g. slurm_partition=gpu, timeout_min=600 (repeatable; a "
        'study file: `[execution.slurm]` `slurm_partition = "gpu"`)',
        "--slurm-opt",
        default={},
        scope="execution",
        group=EXECUTORS,
        field=None,
        style="repeat",
        metavar="NAME=VALUE",
    ),
    RunOption(
        "slurm_local",
        Switch(),
        "run the slurm executor's jobs through submitit's local mode",
        "--slurm-local",
        default=False,
        scope="execution",
        group=EXECUTORS,
        field=None,
        style="on",
    ),
    RunOption(
        "order",
        Text(("runs", "seeds")),
        "`runs`: each run with all its seeds, in the file's order; "
        "`seeds`: seed by seed (every run's first seed, then the next), so an interrupted study has whole "
        "seeds",
        default="runs",
        scope="execution",
        group=EXECUTORS,
        field=None,
    ),
    RunOption(
        "dry_run",
        Switch(),
        "list the stages and the training work, train nothing",
        "--dry-run",
        default=False,
        scope="command",
        group=EXECUTORS,
        field=None,
        style="on",
    ),
    RunOption(
        "throughput",
        Number(POSITIVE),
        "with --dry-run: images/s of one worker, to estimate the wall time",
        "--throughput",
        scope="command",
        group=EXECUTORS,
        field=None,
        metavar="IMG_PER_S",
    ),
)
BY_NAME: dict[str, RunOption] = {o.name: o for o in OPTIONS}
#: what a run trains (`bench reproduce` and a study file declare it instead of the command line)
TARGETS = tuple(o.name for o in OPTIONS if o.group == TARGET)
#: the recipe overrides, in order (``--epochs`` ... ``--gamma``)
RECIPE_OPTIONS = tuple(o.name for o in OPTIONS if o.recipe)


def request_fields() -> dict[str, list[RunOption]]:
    """``RunRequest`` field -> the options that set it (several for ``overrides`` and ``eval_distortions``)."""
    fields: dict[str, list[RunOption]] = {}
    for option in OPTIONS:
        if option.field is not None:
            fields.setdefault(option.field, []).append(option)
    return fields


def request_values(values: dict[str, Any]) -> dict[str, Any]:
    """The :class:`~harness.run.request.RunRequest` keyword arguments of typed option ``values`` (by option
    name; an option left out is not passed): recipe overrides into one dict, the distortions of
    ``eval_noise`` and ``eval_distort`` into one list (each distortion once, in order)."""
    out: dict[str, Any] = {}
    for field, options in request_fields().items():
        given = [o for o in options if o.name in values]
        if not given:
            continue
        if field == OVERRIDES:
            out[field] = {o.name: values[o.name] for o in given}
        elif len(options) > 1:  # eval_noise and eval_distort: one list of distortions, each once, in order
            seen: dict[str, Any] = {}
            for distortion in (d for o in given for d in values[o.name] or []):
                seen.setdefault(distortion.name, distortion)
            out[field] = list(seen.values())
        else:
            out[field] = values[given[0].name]
    return out


def defaults() -> dict[str, Any]:
    """Every option's default, by name (a fresh copy of a list or table)."""
    return {o.name: (type(o.default)(o.default) if isinstance(o.default, (list, dict)) else o.default) for o in OPTIONS}
