"""Arguments shared by the ``bench`` commands and their conversion to run requests.

Importing this module is cheap (no torch, no plugins): ``bench --help`` builds every parser from it. What a
command needs to run is imported when it runs.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.core.errors import UsageError

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


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got '{text}'") from None
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"seed {', '.join(map(str, repeated))} is listed twice in '{text}': "
                                         f"each seed is one run, give distinct seeds")
    return seeds


class Parser(argparse.ArgumentParser):
    """argparse with bench's one-line errors: ``bench: error: ...`` and exit 2, no usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} -h')")


def _milestones(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in csv_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"milestones must be comma-separated epochs, got '{text}'") from None


def _distortions(parser: str) -> Callable[[str], list]:
    """An argparse type from a distortion parser of :mod:`harness.data.distortions` (imported when the option
    is given): its one-line error becomes the argument's error."""
    def convert(text: str) -> list:
        from harness.data import distortions

        try:
            return getattr(distortions, parser)(text)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


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
    g.add_argument("--epochs", type=int, help="epochs (multistep milestones are scaled to match)")
    g.add_argument("--batch-size", type=int, help="images per training step")
    g.add_argument("--lr", type=float, help="learning rate (of SGD with momentum)")
    g.add_argument("--weight-decay", type=float, help="L2 weight decay")
    g.add_argument("--momentum", type=float, help="SGD momentum")
    g.add_argument("--schedule", choices=("multistep", "cosine", "constant"), help="learning-rate schedule")
    g.add_argument("--milestones", type=_milestones, help="comma-separated epochs of the multistep schedule")
    g.add_argument("--gamma", type=float, help="multistep decay factor")
    d = p.add_argument_group("data")
    d.add_argument("--val-split", type=float, default=0.0, help="hold out this fraction of training data for validation")
    d.add_argument("--train-subset", type=int, help="train on a class-balanced subset of this many images")
    d.add_argument("--test-subset", type=int, help="evaluate on a class-balanced subset of this many test images")
    d.add_argument("--select", choices=("last", "val", "test"), default="last",
                   help="weights kept for downstream stages and deployment: last epoch (default), best validation "
                        "epoch (needs --val-split), or best test epoch (only when you explicitly want test selection)")
    v = p.add_argument_group("evaluation under distortion (every method's deployed model, recorded per level)")
    v.add_argument("--eval-noise", type=_distortions("noise_levels"), default=[], metavar="SIGMAS",
                   help="also measure top-1 on the test set with additive Gaussian noise of these standard "
                        "deviations, in [0, 1] pixel units, e.g. 0.05,0.1,0.2")
    v.add_argument("--eval-distort", type=_distortions("parse_distortions"), default=[], metavar="KIND:LEVEL,...",
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
    e.add_argument("--threads", type=int, help="CPU threads for torch")
    e.add_argument("--out", type=Path, default=Path("results/runs"), help="folder for result records")
    e.add_argument("--cache-dir", type=Path,
                   help="decoded datasets, trained artifacts, checkpoints (default $BENCH_CACHE_DIR, else "
                        "~/.cache/encodenet-bench)")
    e.add_argument("--resume", action="store_true", help="continue interrupted stages from their checkpoints")
    e.add_argument("--retrain", action="store_true", help="train every stage again instead of reusing artifacts")
    e.add_argument("--no-latency", dest="latency", action="store_false", help="skip latency measurement")
    e.add_argument("--latency-batch", type=int, help="the large batch of the latency measurement (CPU 64, CUDA 512)")
    e.add_argument("--quiet", action="store_true", help="no progress output")
    lg = p.add_argument_group("metrics loggers (see the docs: Loggers)")
    lg.add_argument("--log", type=csv_list, default=[], metavar="NAME[,NAME]",
                    help="also send every epoch and the record to these loggers: tensorboard, mlflow, wandb "
                         "(offline), trackio ('bench list loggers'); jsonl (<out>/logs/) is always written")
    x = p.add_argument_group("executors (see the docs: Scaling out)")
    x.add_argument("--executor", default="local", help="where stage jobs run: local (default), ray, slurm")
    x.add_argument("--workers", type=int,
                   help="local: worker processes (default 1: train in this process); ray, slurm: jobs in flight at most")
    x.add_argument("--per-gpu", type=int, metavar="K", help="K stage jobs at a time on each visible GPU")
    x.add_argument("--retries", type=int, default=1, help="run a failed stage job again this many times (default 1)")
    x.add_argument("--ray-address", help="an existing Ray cluster (default: start a local one)")
    x.add_argument("--slurm-opt", action="append", default=[], metavar="NAME=VALUE",
                   help="a submitit parameter, e.g. slurm_partition=gpu, timeout_min=600 (repeatable)")
    x.add_argument("--slurm-local", action="store_true", help="run the slurm executor's jobs through submitit's local mode")
    x.add_argument("--dry-run", action="store_true", help="list the stages and the training work, train nothing")
    x.add_argument("--throughput", type=float, metavar="IMG_PER_S",
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
        threads=args.threads,
        eval_distortions=unique([*args.eval_noise, *args.eval_distort]), loggers=args.log,
        **fields,  # type: ignore[arg-type]
    )


def reporter_for(args: argparse.Namespace, console: "Console") -> "Reporter":
    from rich.console import Console

    from harness.core.progress import Reporter, RichReporter

    return Reporter(console) if args.quiet else RichReporter(Console(stderr=True))


def executor_options(args: argparse.Namespace) -> "ExecutorOptions":
    """The execution choices of `bench run` / `bench reproduce`, checked before anything trains."""
    from harness.run.sweep.backend import ExecutorOptions

    executor = args.executor
    if args.retries < 0:
        raise UsageError(f"--retries must be 0 or more, got {args.retries}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.throughput is not None and not args.dry_run:
        raise UsageError("--throughput only estimates the wall time of a --dry-run; add --dry-run")
    if args.throughput is not None and not args.throughput > 0:
        raise UsageError(f"--throughput must be a positive number of images/s, got {args.throughput}")
    if args.per_gpu is not None and args.per_gpu < 1:
        raise UsageError(f"--per-gpu must be at least 1, got {args.per_gpu}")
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
    return ExecutorOptions(workers=args.workers, per_gpu=args.per_gpu, retries=args.retries, device=args.device,
                           threads=args.threads, ray_address=args.ray_address, slurm=slurm,
                           slurm_local=args.slurm_local, folder=str(args.cache_dir / "jobs"))


def run_on_executor(runs: list, args: argparse.Namespace, plugins: "PluginSet",
                    reporter: "Reporter") -> tuple[list, list[str]]:
    """Train ``runs`` in this process (``--workers 1``, the default) or as a sweep of stage jobs on the
    executor; returns each run's outcome and the failed jobs' lines."""
    from harness.run.execute import execute
    from harness.run.sweep.driver import in_process, sweep

    options = executor_options(args)
    plugins.executors.resolve(args.executor)
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
