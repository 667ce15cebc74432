"""Arguments shared by the ``bench`` commands and their conversion to run requests.

Importing this module is cheap (no torch, no plugins): ``bench --help`` builds every parser from it. What a
command needs to run is imported when it runs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from harness.core.constraints import COUNT, NON_NEGATIVE, POSITIVE, Constraint, between
from harness.core.errors import UsageError
from harness.core.numerics import PROFILES
from harness.core.recipes import MILESTONE, RECIPE_LIMITS
from harness.run.limits import REQUEST_LIMITS, SEED

if TYPE_CHECKING:
    from rich.console import Console

    from harness.core.progress import Reporter
    from harness.plugins.manager import PluginSet
    from harness.run.request import RunRequest
    from harness.run.sweep.backend import ExecutorOptions

CACHE_ENV = "BENCH_CACHE_DIR"


def default_cache() -> Path:
    """The cache folder when ``--cache-dir`` is not given: ``$BENCH_CACHE_DIR``, else ~/.cache/encodenet-bench
    (read when a command runs, so that a process may change the variable between commands)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "encodenet-bench")
#: ``--metric`` choices and what each reads (as :data:`harness.results.tables.METRICS`)
METRIC_CHOICES = ("last", "best", "selected")
TABLE_FORMATS = ("rich", "markdown", "csv", "json")


def csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


class Number:
    """An argparse ``type``: a number of ``kind`` (int or float) within ``constraint`` (see
    :mod:`harness.core.constraints`), or with ``many`` a comma-separated list of them. NaN, infinities and
    values out of range are refused as the argument's one-line error, naming the range, before anything runs.
    ``template`` formats a number as this option's text (what tests feed it)."""

    template = "{}"

    def __init__(self, kind: type, constraint: "Constraint", *, many: str = "") -> None:
        self.kind, self.constraint, self.many = kind, constraint, many
        self.__name__ = kind.__name__  # argparse: "invalid int value: 'two'"

    def __call__(self, text: str) -> object:
        if not self.many:
            return self.one(text)
        try:
            values = [self.kind(item) for item in csv_list(text)]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{self.many} must be comma-separated {self.noun()}s, got '{text}'") \
                from None
        for item, value in zip(csv_list(text), values):
            if not self.constraint.allows(value):
                raise argparse.ArgumentTypeError(f"{self.many} must be {self.constraint.describe()} each, got "
                                                 f"'{item}' in '{text}'")
        return values

    def noun(self) -> str:
        return "integer" if self.kind is int else "number"

    def one(self, text: str) -> object:
        try:
            value = self.kind(text)  # a ValueError: argparse's "invalid float value: 'x'"
        except ValueError:
            if self.kind is int and _is_float(text):  # 'inf', '2.5': a number, but not an allowed one
                raise argparse.ArgumentTypeError(f"must be {self.constraint.describe()}, got '{text}'") from None
            raise
        if not self.constraint.allows(value):
            raise argparse.ArgumentTypeError(f"must be {self.constraint.describe()}, got '{text}'")
        return value


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class Seeds(Number):
    """``--seeds``: comma-separated distinct integers, each a valid seed."""

    def __init__(self) -> None:
        super().__init__(int, SEED, many="seeds")

    def __call__(self, text: str) -> list[int]:
        seeds: list[int] = super().__call__(text)  # type: ignore[assignment]
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            raise argparse.ArgumentTypeError(f"seed {', '.join(map(str, repeated))} is listed twice in '{text}': "
                                             f"each seed is one run, give distinct seeds")
        return seeds


seed_list = Seeds()


class Parser(argparse.ArgumentParser):
    """argparse with bench's one-line errors: ``bench: error: ...`` and exit 2, no usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} -h')")


class Milestones(Number):
    """``--milestones``: comma-separated epochs (each within the epochs is checked by the recipe)."""

    def __init__(self) -> None:
        super().__init__(int, MILESTONE, many="milestones")

    def noun(self) -> str:
        return "epoch"

    def __call__(self, text: str) -> tuple[int, ...]:
        return tuple(super().__call__(text))  # type: ignore[arg-type]


def recipe_number(field: str) -> Number:
    """The type of a recipe override (``--lr``): the recipe field's declared limits."""
    return Number(int if RECIPE_LIMITS[field].integer else float, RECIPE_LIMITS[field])


def request_number(field: str) -> Number:
    """The type of a run request's number (``--threads``): its declared limits (harness.run.limits)."""
    limit = REQUEST_LIMITS[field][1]
    return Number(int if limit.integer else float, limit)


#: ``--retries``: 0 (never retry) or more
RETRIES = between(0, 100, integer=True)


class Distortions:
    """An argparse type from a distortion parser of :mod:`harness.data.distortions` (imported when the option
    is given): its one-line error becomes the argument's error. Levels are finite numbers >= 0."""

    constraint = NON_NEGATIVE

    def __init__(self, parser: str, template: str) -> None:
        self.parser, self.template = parser, template

    def __call__(self, text: str) -> list:
        from harness.data import distortions

        try:
            return getattr(distortions, self.parser)(text)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    """What `bench run` trains: methods, architecture, teacher; a study file declares them instead."""
    p.add_argument("--methods", type=csv_list, help="comma-separated method names, e.g. baseline,kd")
    p.add_argument("--arch", help="architecture, e.g. resnet20, vgg8, resnet50, timm:convnext_atto")
    p.add_argument("--teacher", help="teacher architecture for distillation methods (trained once, reused)")
    p.add_argument("--teacher-checkpoint", metavar="SOURCE",
                   help="a trained teacher: a bundle (bench artifacts export), a bench record (.json), artifact (.pt) "
                        "or plain state dict (with --teacher); or a bundle at file:// or https://...#sha256=HEX or "
                        "hf-hub:ORG/NAME[/FILE][@REV] (see docs/teachers.md)")


def add_run_arguments(p: argparse.ArgumentParser, recipe_default: str | None, dataset_default: str | None) -> None:
    """Arguments shared by `bench run` and `bench reproduce`: data, recipe, options, execution."""
    default = "the table's" if dataset_default is None else dataset_default
    p.add_argument("--dataset", default=dataset_default,
                   help=f"cifar10, cifar100, cifar10-mini (bundled, offline), imagefolder:PATH (default: {default})")
    p.add_argument("--data-dir", type=Path, help="folder holding an existing copy of the dataset")
    p.add_argument("--no-download", dest="download", action="store_false", help="never try to download data")
    p.add_argument("--seeds", type=seed_list, default=[0], help="comma-separated seeds (default 0)")
    p.add_argument("--recipe", default=recipe_default,
                   help=f"named recipe: crd, attention, encodenet, smoke (default: {recipe_default or 'the table’s'})")
    g = p.add_argument_group("recipe overrides")
    g.add_argument("--epochs", type=recipe_number("epochs"), help="epochs (multistep milestones are scaled to match)")
    g.add_argument("--batch-size", type=recipe_number("batch_size"), help="images per training step")
    g.add_argument("--lr", type=recipe_number("lr"), help="learning rate (of SGD with momentum)")
    g.add_argument("--weight-decay", type=recipe_number("weight_decay"), help="L2 weight decay")
    g.add_argument("--momentum", type=recipe_number("momentum"), help="SGD momentum")
    g.add_argument("--schedule", choices=("multistep", "cosine", "constant"), help="learning-rate schedule")
    g.add_argument("--milestones", type=Milestones(), help="comma-separated epochs of the multistep schedule")
    g.add_argument("--gamma", type=recipe_number("gamma"), help="multistep decay factor")
    d = p.add_argument_group("data")
    d.add_argument("--val-split", type=request_number("val_split"), default=0.0, help="hold out this fraction of training data for validation")
    d.add_argument("--train-subset", type=request_number("train_subset"), help="train on a class-balanced subset of this many images")
    d.add_argument("--test-subset", type=request_number("test_subset"), help="evaluate on a class-balanced subset of this many test images")
    d.add_argument("--select", choices=("last", "val", "test"), default="last",
                   help="weights kept for downstream stages and deployment: last epoch (default), best validation "
                        "epoch (needs --val-split), or best test epoch (only when you explicitly want test selection)")
    v = p.add_argument_group("evaluation under distortion (every method's deployed model, recorded per level)")
    v.add_argument("--eval-noise", type=Distortions("noise_levels", "{}"), default=[], metavar="SIGMAS",
                   help="also measure top-1 on the test set with additive Gaussian noise of these standard "
                        "deviations, in [0, 1] pixel units, e.g. 0.05,0.1,0.2")
    v.add_argument("--eval-distort", type=Distortions("parse_distortions", "noise:{}"), default=[], metavar="KIND:LEVEL,...",
                   help="the same for any distortion: noise:SIGMA (pixel units 0-1), blur:SIGMA (pixels), "
                        "e.g. noise:0.1,blur:1.0")
    m = p.add_argument_group("methods")
    m.add_argument("--opt", action="append", default=[], metavar="METHOD.NAME=VALUE",
                   help="a method option, e.g. --opt kd.temperature=2 (repeatable; 'bench list methods' shows them)")
    e = p.add_argument_group("execution")
    e.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    e.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (default: on CUDA; on a CPU only where it has bf16 instructions)")
    e.add_argument("--compile", nargs="?", const="default", metavar="MODE",
                   help="torch.compile the training step and evaluation (MODE: default, reduce-overhead, "
                        "max-autotune, max-autotune-no-cudagraphs); part of every stage key; its warm-up is "
                        "reported apart from the throughput")
    e.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels_last memory format (default: on; faster on CUDA and on CPU)")
    e.add_argument("--threads", type=request_number("threads"), help="CPU threads for torch")
    e.add_argument("--numerics", choices=tuple(PROFILES), default=None,
                   help="which instruction sets torch's CPU libraries run: native (default: what this CPU offers) "
                        "or portable (ATen, oneDNN and MKL pinned to AVX2, one thread unless --threads: the same "
                        "bits on any x86-64 CPU with AVX2); part of every stage key and record")
    e.add_argument("--out", type=Path, default=Path("results/runs"), help="folder for result records")
    e.add_argument("--cache-dir", type=Path,
                   help="decoded datasets, trained artifacts, checkpoints (default $BENCH_CACHE_DIR, else "
                        "~/.cache/encodenet-bench)")
    e.add_argument("--resume", action="store_true", help="continue interrupted stages from their checkpoints")
    e.add_argument("--retrain", action="store_true", help="train every stage again instead of reusing artifacts")
    e.add_argument("--no-latency", dest="latency", action="store_false", help="skip latency measurement")
    e.add_argument("--latency-batch", type=request_number("latency_batch"), help="the large batch of the latency measurement (CPU 64, CUDA 512)")
    e.add_argument("--quiet", action="store_true", help="no progress output")
    lg = p.add_argument_group("metrics loggers (see the docs: Loggers)")
    lg.add_argument("--log", type=csv_list, default=[], metavar="NAME[,NAME]",
                    help="also send every epoch and the record to these loggers: tensorboard, mlflow, wandb "
                         "(offline), trackio ('bench list loggers'); jsonl (<out>/logs/) is always written")
    x = p.add_argument_group("executors (see the docs: Scaling out)")
    x.add_argument("--executor", default="local", help="where stage jobs run: local (default), ray, slurm")
    x.add_argument("--workers", type=Number(int, COUNT),
                   help="local: worker processes (default 1: train in this process); ray, slurm: jobs in flight at most")
    x.add_argument("--per-gpu", type=Number(int, COUNT), metavar="K", help="K stage jobs at a time on each visible GPU")
    x.add_argument("--retries", type=Number(int, RETRIES), default=1, help="run a failed stage job again this many times (default 1)")
    x.add_argument("--ray-address", help="an existing Ray cluster (default: start a local one)")
    x.add_argument("--slurm-opt", action="append", default=[], metavar="NAME=VALUE",
                   help="a submitit parameter, e.g. slurm_partition=gpu, timeout_min=600 (repeatable)")
    x.add_argument("--slurm-local", action="store_true", help="run the slurm executor's jobs through submitit's local mode")
    x.add_argument("--dry-run", action="store_true", help="list the stages and the training work, train nothing")
    x.add_argument("--throughput", type=Number(float, POSITIVE), metavar="IMG_PER_S",
                   help="with --dry-run: images/s of one worker, to estimate the wall time")


class VersionAction(argparse.Action):
    """--version: the package version and, from a checkout, the git commit (looked up only when asked)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the package version (and the git commit in a checkout) and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from harness.results.records import version_line

        print(version_line())
        parser.exit()


def run_parser() -> argparse.ArgumentParser:
    """A parser of `bench run`'s options (no study argument): the defaults and conversions of study files."""
    p = Parser(prog="bench run", add_help=False)
    add_target_arguments(p)
    add_run_arguments(p, recipe_default="crd", dataset_default="cifar10")
    return p


def run_request(args: argparse.Namespace, **fields: object) -> "RunRequest":
    """The request of `bench run` arguments: :func:`request_from_args` with the methods, arch and teacher."""
    return request_from_args(args, methods=args.methods, arch=args.arch, teacher=args.teacher,
                             teacher_checkpoint=args.teacher_checkpoint, **fields)


def request_from_args(args: argparse.Namespace, **fields: object) -> "RunRequest":
    """The :class:`~harness.run.request.RunRequest` of `bench run` / `bench reproduce` arguments."""
    from harness.data.distortions import unique
    from harness.run.request import RunRequest

    overrides = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "weight_decay", "momentum",
                                               "schedule", "milestones", "gamma")}
    return RunRequest(
        dataset=args.dataset, seeds=args.seeds, recipe=args.recipe, overrides=overrides, options=args.opt,
        device=args.device, data_dir=args.data_dir, download=args.download, cache_dir=args.cache_dir, out=args.out,
        resume=args.resume, retrain=args.retrain, select=args.select, val_split=args.val_split,
        train_subset=args.train_subset, test_subset=args.test_subset, latency=args.latency,
        latency_batch=args.latency_batch, amp=args.amp, compile=args.compile, channels_last=args.channels_last,
        threads=args.threads, numerics=args.numerics,
        eval_distortions=unique([*args.eval_noise, *args.eval_distort]), loggers=args.log,
        **fields,  # type: ignore[arg-type]
    )


def records_of(paths: list[Path], *, failed: bool = False) -> list:
    """The records of ``paths`` for a command that reads them (table, check, plot): what is left out (a newer
    schema, missing fields or wrong types, unreadable JSON) is named and counted in one warning line."""
    from harness.results.records import LoadReport, load_records

    report = LoadReport([])
    records = load_records(paths, failed=failed, report=report)
    report.warn()
    return records


def reporter_for(args: argparse.Namespace, console: "Console") -> "Reporter":
    from rich.console import Console

    from harness.core.progress import Reporter, RichReporter

    return Reporter(console) if args.quiet else RichReporter(Console(stderr=True))


def executor_options(args: argparse.Namespace, plugins: "PluginSet | None" = None) -> "ExecutorOptions":
    """The execution choices of `bench run` / `bench reproduce`, checked before anything trains; with
    ``plugins``, also the executor's name and its own check of them (as for real runs, for ``--dry-run``)."""
    from harness.run.sweep.backend import ExecutorOptions, check_executor

    executor = args.executor
    if args.throughput is not None and not args.dry_run:  # the numbers themselves: their argparse types
        raise UsageError("--throughput only estimates the wall time of a --dry-run; add --dry-run")
    if args.per_gpu is not None and args.device not in ("auto", "cuda"):
        raise UsageError(f"--per-gpu runs jobs on every visible GPU (each job sees only its own): use --device "
                         f"cuda or auto, not {args.device} (choose GPUs with CUDA_VISIBLE_DEVICES)")
    slurm = {}
    for item in args.slurm_opt:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--slurm-opt expects NAME=VALUE (e.g. slurm_partition=gpu), got '{item}'")
        slurm[name] = value
    if (slurm or args.slurm_local) and executor != "slurm":
        raise UsageError("--slurm-opt and --slurm-local are options of --executor slurm")
    if args.ray_address and executor != "ray":
        raise UsageError("--ray-address is an option of --executor ray")
    options = ExecutorOptions(workers=args.workers, per_gpu=args.per_gpu, retries=args.retries, device=args.device,
                              threads=args.threads, ray_address=args.ray_address, slurm=slurm,
                              slurm_local=args.slurm_local, folder=str(args.cache_dir / "jobs"))
    if plugins is not None:
        check_executor(plugins, executor, options)
    return options


def run_on_executor(runs: list, args: argparse.Namespace, plugins: "PluginSet",
                    reporter: "Reporter") -> tuple[list, list[str]]:
    """Train ``runs`` in this process (``--workers 1``, the default) or as a sweep of stage jobs on the
    executor; returns each run's outcome and the failed jobs' lines."""
    from harness.run.execute import execute
    from harness.run.sweep.driver import in_process, sweep

    options = executor_options(args)
    if in_process(args.executor, options):
        return [execute(run, reporter) for run in runs], []
    swept = sweep(runs, plugins, args.executor, options, reporter, quiet=args.quiet)
    return swept.outcomes, swept.job_failures




def dry_workers(args: argparse.Namespace) -> int:
    """Workers a --dry-run estimates the wall time for (--workers, or --per-gpu times the visible GPUs)."""
    if args.per_gpu:
        import torch

        return args.per_gpu * max(1, torch.cuda.device_count())
    return args.workers or 1


def note_long_plan(runs: list) -> None:
    """Before training: one ``bench: note:`` line per run whose CPU plan is estimated to take over 30 minutes
    (:func:`harness.run.workload.long_plan_note`)."""
    import sys

    from harness.run.workload import long_plan_note

    for run in runs:
        note = long_plan_note(run)
        if note:
            print(f"bench: note: {run.request.arch} on {run.request.dataset}: {note}", file=sys.stderr)
