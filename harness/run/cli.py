"""The ``bench`` command line. Exit codes: 0 success, 1 a run failed, 2 bad usage or input."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.core.errors import BenchError, UsageError
from harness.data.distortions import Distortion, noise_levels, parse_distortions, unique
from harness.plugins.manager import KINDS, PluginSet, get_plugins
from harness.core.progress import Reporter, RichReporter, set_quiet
from harness.train.distributed import World
from harness.results.records import load_records, version_line
from harness.run.preflight import check_output_dir, check_output_file
from harness.run.runner import PreparedRun, RunRequest, execute, prepare
from harness.run.sweep.schedule import ExecutorOptions
from harness.results.tables import FORMATS, METRICS, render

DEFAULT_CACHE = Path(os.environ.get("BENCH_CACHE_DIR", Path.home() / ".cache" / "encodenet-bench"))


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got '{text}'") from None
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"seed {', '.join(map(str, repeated))} is listed twice in '{text}': "
                                         f"each seed is one run, give distinct seeds")
    return seeds


class _Parser(argparse.ArgumentParser):
    """argparse with bench's one-line errors: ``bench: error: ...`` and exit 2, no usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} -h')")


def _milestones(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"milestones must be comma-separated epochs, got '{text}'") from None


def _distortions(parse):  # type: ignore[no-untyped-def]
    """An argparse type from a distortion parser: its one-line error becomes the argument's error."""
    def convert(text: str) -> list[Distortion]:
        try:
            return parse(text)
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
    p.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated seeds (default 0)")
    p.add_argument("--recipe", default=recipe_default,
                   help=f"named recipe: crd, attention, encodenet, smoke (default: {recipe_default or 'the table’s'})")
    g = p.add_argument_group("recipe overrides")
    g.add_argument("--epochs", type=int, help="epochs (multistep milestones are scaled to match)")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--momentum", type=float)
    g.add_argument("--schedule", choices=("multistep", "cosine", "constant"))
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
    v.add_argument("--eval-noise", type=_distortions(noise_levels), default=[], metavar="SIGMAS",
                   help="also measure top-1 on the test set with additive Gaussian noise of these standard "
                        "deviations, in [0, 1] pixel units, e.g. 0.05,0.1,0.2")
    v.add_argument("--eval-distort", type=_distortions(parse_distortions), default=[], metavar="KIND:LEVEL,...",
                   help="the same for any distortion: noise:SIGMA (pixel units 0-1), blur:SIGMA (pixels), "
                        "e.g. noise:0.1,blur:1.0")
    m = p.add_argument_group("methods")
    m.add_argument("--opt", action="append", default=[], metavar="METHOD.NAME=VALUE",
                   help="a method option, e.g. --opt kd.temperature=2 (repeatable; 'bench list methods' shows them)")
    e = p.add_argument_group("execution")
    e.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    e.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast (default: on CUDA)")
    e.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels_last memory format (default: on; faster on CUDA and on CPU)")
    e.add_argument("--threads", type=int, help="CPU threads for torch")
    e.add_argument("--out", type=Path, default=Path("results/runs"), help="folder for result records")
    e.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                   help=f"decoded datasets, trained artifacts, checkpoints (default {DEFAULT_CACHE}; env BENCH_CACHE_DIR)")
    e.add_argument("--resume", action="store_true", help="continue interrupted stages from their checkpoints")
    e.add_argument("--retrain", action="store_true", help="train every stage again instead of reusing artifacts")
    e.add_argument("--no-latency", dest="latency", action="store_false", help="skip latency measurement")
    e.add_argument("--latency-batch", type=int, help="the large batch of the latency measurement (CPU 64, CUDA 512)")
    e.add_argument("--quiet", action="store_true", help="no progress output")
    x = p.add_argument_group("executors (see README, 'Scaling out')")
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


class _Version(argparse.Action):
    """--version: the package version and, from a checkout, the git commit (looked up only when asked)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the package version (and the git commit in a checkout) and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(version_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bench", description="Train and compare accuracy-boosting methods for image classifiers.",
        epilog="Run 'bench list methods' to see what can be compared, 'bench <command> -h' for a command's options.",
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="train methods on one architecture and dataset, write records, print a table")
    run.add_argument("--methods", type=_csv, required=True, help="comma-separated method names, e.g. baseline,kd")
    run.add_argument("--arch", required=True, help="architecture, e.g. resnet20, vgg8, resnet50, timm:convnext_atto")
    run.add_argument("--teacher", help="teacher architecture for distillation methods (trained once, reused)")
    run.add_argument("--teacher-checkpoint", type=Path,
                     help="a trained teacher: a bench record (.json), artifact (.pt) or plain state dict (with --teacher)")
    add_run_arguments(run, recipe_default="crd", dataset_default="cifar10")

    rep = sub.add_parser("reproduce", help="run what a paper table needs and print it beside the reported numbers")
    rep.add_argument("table", help="table2, table3, table4, table5 (EncodeNet paper) or smoke (CI)")
    rep.add_argument("--paper-dataset", help="only the table's settings on this dataset (e.g. cifar10 for table2)")
    rep.add_argument("--no-train", action="store_true", help="only the parameter/FLOP columns, from untrained models")
    rep.add_argument("--rerun", action="store_true", help="run again even where a record of the same run exists")
    rep.add_argument("--export", type=Path, help="also write the tables as markdown and CSV into this folder")
    rep.add_argument("--metric", choices=tuple(METRICS),
                     help="top-1 of the last or best epoch (or the --select'ed one); default: the table's protocol "
                          "(best for table4, as the paper's mdistiller runs; last for the others)")
    add_run_arguments(rep, recipe_default=None, dataset_default=None)

    lst = sub.add_parser("list", help="list methods, archs, datasets or recipes")
    lst.add_argument("kind", choices=KINDS)

    tab = sub.add_parser("table", help="render records as a comparison table")
    tab.add_argument("paths", nargs="*", type=Path, default=[Path("results/runs")], help="record files or folders")
    tab.add_argument("--format", choices=FORMATS, default="rich")
    tab.add_argument("--metric", choices=tuple(METRICS), default="last",
                     help="last epoch (default, CRD protocol), best epoch, or the --select'ed epoch")
    tab.add_argument("--export", type=Path, metavar="PREFIX",
                     help="also write PREFIX.md and PREFIX.csv next to the terminal table")

    cost = sub.add_parser("cost", help="parameters, FLOPs and latency of each method's deployed model, no training")
    cost.add_argument("--methods", type=_csv, required=True)
    cost.add_argument("--arch", required=True)
    cost.add_argument("--teacher", help="teacher architecture (for methods that need one)")
    cost.add_argument("--classes", type=int, default=100, help="number of classes (default 100)")
    cost.add_argument("--in-chans", type=int, default=3)
    cost.add_argument("--input-size", type=int, default=32)
    cost.add_argument("--opt", action="append", default=[], metavar="METHOD.NAME=VALUE")
    cost.add_argument("--reference", help="a bundled reference table (e.g. table5) or a reference CSV: print its "
                                          "parameter counts beside ours")
    cost.add_argument("--latency", action="store_true", help="also time batch-1 inference")
    cost.add_argument("--device", default="cpu")

    chk = sub.add_parser("check", help="CI gate: compare records with reference numbers; exit 1 on a regression")
    chk.add_argument("paths", nargs="*", type=Path, default=[Path("results/runs")], help="record files or folders")
    chk.add_argument("--reference", metavar="FILE|NAME",
                     help="a reference CSV of your own, or a bundled one by name or table id (smoke, "
                          "encodenet_table4, table4, crd)")
    chk.add_argument("--table", help="only the reference rows of this table id")
    chk.add_argument("--tolerance", type=float, default=1.0, help="allowed drop below the reference, in points (default 1)")
    chk.add_argument("--metric", choices=tuple(METRICS),
                     help="which top-1 is checked: last (top1_last) or best (top1_best) epoch, or the --select'ed "
                          "one; default: the reference rows' protocol, else last")
    chk.add_argument("--dataset-as", help="compare records as if their dataset were this one (e.g. cifar10)")
    chk.add_argument("--junit", type=Path, help="also write a JUnit XML report here")
    chk.add_argument("--save-reference", type=Path, help="instead of checking, save the records' means as a reference")

    plot = sub.add_parser("plot", help="accuracy vs parameters and MACs (baseline marked), anytime curves of "
                                        "multi-exit runs, accuracy under distortion, training curves (PNG and SVG)")
    plot.add_argument("paths", nargs="*", type=Path, default=[Path("results/runs")], help="record files or folders")
    plot.add_argument("--out", type=Path, default=Path("results/plots"), help="folder for the figures")
    plot.add_argument("--metric", choices=tuple(METRICS), default="last")
    plot.add_argument("--no-curves", dest="curves", action="store_false", help="skip the per-run training curves")

    sub.add_parser("plugins", help="list plugins and what each registered")
    return parser


def request_from_args(args: argparse.Namespace, **fields: object) -> RunRequest:
    overrides = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "weight_decay", "momentum",
                                               "schedule", "milestones", "gamma")}
    return RunRequest(
        dataset=args.dataset, seeds=args.seeds, recipe=args.recipe, overrides=overrides, options=args.opt,
        device=args.device, data_dir=args.data_dir, download=args.download, cache_dir=args.cache_dir, out=args.out,
        resume=args.resume, retrain=args.retrain, select=args.select, val_split=args.val_split,
        train_subset=args.train_subset, test_subset=args.test_subset, latency=args.latency,
        latency_batch=args.latency_batch, amp=args.amp, channels_last=args.channels_last, threads=args.threads,
        eval_distortions=unique([*args.eval_noise, *args.eval_distort]),
        **fields,  # type: ignore[arg-type]
    )


def reporter_for(args: argparse.Namespace, console: Console) -> Reporter:
    return Reporter(console) if args.quiet else RichReporter(Console(stderr=True))


def executor_options(args: argparse.Namespace) -> ExecutorOptions:
    """The execution choices of `bench run` / `bench reproduce`, checked before anything trains."""
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


def run_on_executor(runs: list, args: argparse.Namespace, plugins: PluginSet, reporter: Reporter) -> tuple[list, list[str]]:
    """Train ``runs`` in this process (``--workers 1``, the default) or as a sweep of stage jobs on the
    executor; returns each run's outcome and the failed jobs' lines."""
    from harness.run.sweep.driver import in_process, sweep

    options = executor_options(args)
    plugins.executors.resolve(args.executor)
    if in_process(args.executor, options):
        return [execute(run, reporter) for run in runs], []
    swept = sweep(runs, plugins, args.executor, options, reporter, quiet=args.quiet)
    return swept.outcomes, swept.job_failures


def cmd_run(args: argparse.Namespace, plugins: PluginSet, console: Console) -> int:
    from harness.run.sweep.driver import in_process
    from harness.run.sweep.schedule import wants_cuda

    request = request_from_args(args, methods=args.methods, arch=args.arch, teacher=args.teacher,
                                teacher_checkpoint=args.teacher_checkpoint)
    reporter = reporter_for(args, console)
    options = executor_options(args)
    world = None if args.dry_run else World.from_env(cuda=wants_cuda(args.device))
    if world is not None:
        return run_distributed(request, world, args, plugins, console, in_process(args.executor, options))
    prepared = prepare(request, plugins, reporter, need_data=not args.dry_run)
    if args.dry_run:
        from harness.run import reproduce

        reproduce.dry_run([(None, prepared)], console, throughput=args.throughput, workers=dry_workers(args))
        return 0
    (outcome,), job_failures = run_on_executor([prepared], args, plugins, reporter)
    if outcome.records:
        render(outcome.records, "rich", console=console)
        console.print(f"{len(outcome.paths)} record(s) written to {request.out}/")
    failures = job_failures + outcome.failures
    for failure in failures:
        print(f"bench: error: {failure}", file=sys.stderr)
    return 1 if failures else 0


def run_distributed(request: RunRequest, world: World, args: argparse.Namespace, plugins: PluginSet,
                    console: Console, single: bool) -> int:
    """One run trained by the ranks of torchrun together; rank 0 reports and writes the records."""
    import torch.distributed as dist

    if not single:
        raise UsageError("under torchrun the ranks train one run together: drop --executor/--workers/--per-gpu")
    if world.backend == "nccl":
        request.device = f"cuda:{world.local_rank}"
    reporter = reporter_for(args, console) if world.is_main else Reporter()
    try:
        if not world.is_main:
            dist.barrier()  # rank 0 prepares first (decodes the dataset once)
        prepared = prepare(request, plugins, reporter)
        if world.is_main:
            dist.barrier()
        check_world_batches(prepared, world.size)  # every rank refuses alike, before training
        prepared.world = world
        outcome = execute(prepared, reporter)
    finally:
        dist.destroy_process_group()
    if not world.is_main:
        return 0
    if outcome.records:
        render(outcome.records, "rich", console=console)
        console.print(f"{len(outcome.paths)} record(s) written to {request.out}/ (world size {world.size})")
    for failure in outcome.failures:
        print(f"bench: error: {failure}", file=sys.stderr)
    return 1 if outcome.failures else 0


def check_world_batches(run: PreparedRun, world_size: int) -> None:
    """Refuse a run whose epochs end in a batch that leaves some rank an empty shard (2 <= trailing batch <
    world size; a trailing batch of one image is dropped): its NaN statistics would poison every rank."""
    assert run.dataset is not None
    images = len(run.dataset.train_labels)
    for method in run.methods:
        for stage in method.plan(run.info(run.request.seeds[0])).stages():
            batch = (stage.recipe or run.recipe).batch_size
            rest = images % batch
            if stage.trains and 1 < rest < world_size:
                raise UsageError(f"{stage.label}: {images} training images in batches of {batch} end in a batch of "
                                 f"{rest}, fewer than world size {world_size}: a rank would train on nothing; "
                                 f"change --batch-size or --train-subset, or use fewer ranks")


def dry_workers(args: argparse.Namespace) -> int:
    """Workers a --dry-run estimates the wall time for (--workers, or --per-gpu times the visible GPUs)."""
    if args.per_gpu:
        import torch

        return args.per_gpu * max(1, torch.cuda.device_count())
    return args.workers or 1


def cmd_list(args: argparse.Namespace, plugins: PluginSet, console: Console) -> int:
    registry = plugins.registry(args.kind)
    table = Table(title=f"{args.kind}")
    table.add_column("name")
    table.add_column("plugin")
    table.add_column("description")
    if args.kind == "methods":
        table.add_column("options (--opt METHOD.NAME=VALUE)")
    conflicts = registry.conflicts()
    for entry in registry.entries():
        owner = f"{', '.join(conflicts[entry.name])} (conflict)" if entry.name in conflicts else entry.plugin
        row = [entry.name + ("<name>" if entry.prefix else ""), owner, entry.description]
        if args.kind == "methods":
            row.append("\n".join(f"{k}={o.default!r}: {o.help}" for k, o in entry.obj.options.items()) or "-")
        if args.kind == "recipes":
            r = entry.obj
            sched = f"{r.schedule}" + (f" x{r.gamma} at {list(r.milestones)}" if r.schedule == "multistep" else "")
            row[2] = (f"{r.epochs} ep, batch {r.batch_size}, lr {r.lr}, wd {r.weight_decay}, {sched}"
                      + (f" — {r.notes}" if r.notes else ""))
        table.add_row(*row)
    console.print(table)
    return 0


def cmd_table(args: argparse.Namespace, plugins: PluginSet, console: Console) -> int:
    if args.export:
        check_output_file(args.export.with_name(args.export.name + ".md"), "--export")
    records = load_records(args.paths, failed=True)  # failed runs are counted under the tables, never aggregated
    if not records:
        raise UsageError(f"no result records in {', '.join(map(str, args.paths))}; run 'bench run' first")
    text = render(records, args.format, args.metric, console=console)
    if text:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    if args.export:
        from harness.core.io import atomic_write_text

        for fmt, suffix in (("markdown", ".md"), ("csv", ".csv")):
            path = args.export.with_name(args.export.name + suffix)
            atomic_write_text(path, render(records, fmt, args.metric))
            console.print(f"wrote {path}")
    return 0


def cmd_plugins(args: argparse.Namespace, plugins: PluginSet, console: Console) -> int:
    table = Table(title="bench plugins")
    for col in ("plugin", "from", "module", "registered", "status"):
        table.add_column(col)
    for info in plugins.plugins:
        registered = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info.registered.items() if names)
        table.add_row(info.name, info.source, info.module, registered or "-", info.status)
    console.print(table)
    return 0


def cmd_cost(args: argparse.Namespace, plugins: PluginSet, console: Console) -> int:
    from harness.run.cost import measure_costs, render_costs
    from harness.results.reference import resolve
    from harness.run.runner import build_methods, resolve_device

    methods = build_methods(plugins, args.methods, args.opt)
    plugins.archs.resolve(args.arch)
    reference = resolve(args.reference) if args.reference else None
    rows = measure_costs(plugins, methods, args.arch, args.classes, in_chans=args.in_chans, size=args.input_size,
                         device=resolve_device(args.device), latency=args.latency, teacher=args.teacher)
    title = f"{args.arch}, {args.classes} classes, {args.in_chans}x{args.input_size}x{args.input_size} input"
    render_costs(rows, title + (f" (reference: {args.reference})" if args.reference else ""), reference, console)
    return 0


def cmd_check(args: argparse.Namespace, plugins: PluginSet, console: Console) -> int:
    from harness.results.check import check_metric, compare, junit, save_reference
    from harness.results.reference import resolve
    from harness.core.io import atomic_write_text

    for flag, target in (("--save-reference", args.save_reference), ("--junit", args.junit)):
        if target:
            check_output_file(target, flag)
    records = load_records(args.paths)
    if args.save_reference:
        n = save_reference(records, args.save_reference, args.table or "saved", args.metric or "last")
        console.print(f"saved {n} reference row(s) to {args.save_reference}")
        return 0
    if not args.reference:
        raise UsageError("bench check needs --reference FILE (or --save-reference FILE)")
    reference = resolve(args.reference, args.table)
    metric = check_metric(reference, args.metric)
    results = compare(records, reference, tolerance=args.tolerance, metric=metric, dataset_as=args.dataset_as)
    if not results:
        raise UsageError(f"{args.reference} has no top-1 rows to check")
    for r in results:
        print(r.line())
    failed = sum(not r.passed for r in results)
    print(f"checked: top-1 of the {metric} epoch ({METRICS[metric]})")
    print(f"{len(results) - failed} passed, {failed} failed")  # alone on its line, as CI summaries are read
    if args.junit:
        atomic_write_text(args.junit, junit(results, "bench check"))
    return 1 if failed else 0


def cmd_reproduce(args: argparse.Namespace, plugins: PluginSet, console: Console) -> int:
    from harness.run import reproduce

    if args.table not in reproduce.TABLES:
        raise UsageError(f"unknown table '{args.table}'; reproducible tables: {', '.join(reproduce.TABLES)}")
    spec = reproduce.TABLES[args.table]
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UsageError("bench reproduce is not for torchrun (its ranks train one 'bench run' together): spread "
                         "a table's runs with --executor/--workers instead")
    if args.no_train:
        from harness.run.cost import measure_costs, render_costs
        from harness.run.runner import build_methods

        reference = reproduce.reference_for(spec)  # before any model is built: a missing reference is an error
        for s in spec.settings:
            if args.paper_dataset not in (None, s.dataset):
                continue
            classes = 100 if s.dataset == "cifar100" else 10
            rows = measure_costs(plugins, build_methods(plugins, list(s.methods), args.opt), s.arch, classes,
                                 teacher=s.teacher)
            render_costs(rows, f"{spec.title} | {s.arch} on {s.dataset} ({classes} classes): parameters, untrained",
                         reference, console)
        return 0
    if args.export:
        check_output_dir(args.export, "--export")
    base = request_from_args(args, methods=[], arch="", reuse_records=not args.rerun)
    reporter = reporter_for(args, console)
    executor_options(args)
    plan = reproduce.plan(args.table, base, plugins, reporter, dataset=args.dataset, paper_dataset=args.paper_dataset,
                          need_data=not args.dry_run)
    if args.dry_run:
        reproduce.dry_run([(s.teacher, run) for s, run in plan.runs], console, throughput=args.throughput,
                          workers=dry_workers(args))
        return 0
    outcomes, failures = run_on_executor([run for _, run in plan.runs], args, plugins, reporter)
    records = [outcome.records for outcome in outcomes]
    failures += [f for outcome in outcomes for f in outcome.failures]
    markdown = reproduce.render(plan, records, console, args.metric)
    if args.export:
        from harness.core.io import atomic_write_text
        from harness.results.tables import render as render_table

        flat = [r for group in records for r in group]
        atomic_write_text(args.export / f"{args.table}.md", "\n".join(markdown))
        atomic_write_text(args.export / f"{args.table}.csv", render_table(flat, "csv", args.metric or spec.metric))
        console.print(f"exported {args.export / (args.table + '.md')} and {args.export / (args.table + '.csv')}")
    for failure in failures:
        print(f"bench: error: {failure}", file=sys.stderr)
    return 1 if failures else 0


def cmd_plot(args: argparse.Namespace, plugins: PluginSet, console: Console) -> int:
    from harness.results.plots import anytime, curves, efficiency, robustness

    check_output_dir(args.out, "--out")
    records = load_records(args.paths)
    if not records:
        raise UsageError(f"no result records in {', '.join(map(str, args.paths))}")
    written = efficiency(records, args.out, args.metric) + anytime(records, args.out, args.metric)
    written += robustness(records, args.out, args.metric)
    written += curves(records, args.out) if args.curves else []
    for path in written:
        console.print(str(path))
    return 0


COMMANDS = {"run": cmd_run, "reproduce": cmd_reproduce, "plot": cmd_plot, "cost": cmd_cost, "check": cmd_check, "list": cmd_list, "table": cmd_table, "plugins": cmd_plugins}


def main(argv: list[str] | None = None) -> int:
    console = Console() if sys.stdout.isatty() else Console(width=160)
    try:
        args = build_parser().parse_args(argv)
        set_quiet(getattr(args, "quiet", False))  # --quiet also silences dataset decoding and file loading
        plugins = get_plugins()
        return COMMANDS[args.command](args, plugins, console)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bench: interrupted; finished stages are kept, rerun with --resume to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
