"""`bench reproduce TABLE`: run exactly the runs a paper table needs and render it in the paper's layout.

Tables are study files (``harness/studies/*.toml``, read by :mod:`harness.cli.study`): each run of one is a
setting of the table (dataset, architecture, teacher, methods, recipe). Trained stages are reused from the
artifact cache and finished (method, seed) runs from the records in ``--out``, so an interrupted reproduction continues
where it stopped. Each setting's table shows our measured mean ± std beside the reported value and their difference, and
each method's training compute relative to the baseline's; a dataset or budget other than the paper's is stated
in the title and the caption. Tables 2 and 3 show ``baseline-matched`` (the baseline continued for the
image-epochs EncodeNet spends after it) beside EncodeNet, so that its gain is not read as extra training.

Each table has a default top-1 protocol (``metric``): the last epoch, except Table 4, whose KD comparisons the
paper ran with mdistiller (its reference [1]), whose trainer reports the best test epoch; ``--metric``
overrides it and the caption says which was used.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from tabulate import tabulate

from harness.results.reference import RefValue, table_values
from harness.results.stats import summarize
from harness.results.aggregation import aggregate
from harness.results.formatting import fmt_compute
from harness.results.grouping import budget
from harness.results.records import Record
from harness.run.prepare import PreparedRun
from harness.run.sweep.estimate import critical_path, hours, wall_seconds
from harness.run.workload import PlannedStage, estimated_seconds, long_plan_advice, plan_work
from harness.run.sweep.graph import JobGraph, build_graph


@dataclass(frozen=True)
class Setting:
    """A run of a table as its study file declares it (before command-line options): the paper's setting."""

    dataset: str
    arch: str
    methods: tuple[str, ...]
    teacher: str | None = None
    recipe: str = "crd"


@dataclass(frozen=True)
class TableSpec:
    """A paper table: its study file's ``[study]`` table (title, reference table, top-1 protocol)."""

    name: str
    title: str
    settings: tuple[Setting, ...]
    reference_table: str | None = None  # id in the bundled reference data; defaults to ``name``
    metric: str = "last"  # the top-1 protocol of the reported numbers (harness.results.aggregation.METRICS)
    protocol_note: str = ""  # why, for the caption


@dataclass
class Reproduction:
    """The runs of a reproduction: one prepared run per setting, each with its paper dataset."""

    spec: TableSpec
    runs: list[tuple[Setting, PreparedRun]]


def _stage_text(s: PlannedStage, on_disk: bool) -> str:
    """``baseline[resnet8] 240 cached``: a stage's epochs and state (``?``: its cache state is unknown)."""
    if s.state == "loaded":
        return f"{s.stage.label} loaded"
    if s.state == "shared":
        return f"{s.stage.label} {s.epochs} (shared)"
    if not on_disk:
        return f"{s.stage.label} {s.epochs} ?"
    suffix = " cached" if s.state == "cached" else " (after upstream)" if s.after_upstream else ""
    return f"{s.stage.label} {s.epochs}{suffix}"


def dry_run(
    runs: list[tuple[str | None, PreparedRun]], console: Console, *, throughput: float | None = None, workers: int = 1
) -> None:
    """Walk every run's plans as a real run would, ask the artifact store about each stage, and total the
    training still to do (image-epochs, FLOPs and the estimated time on this device:
    :mod:`harness.run.workload`); then the stage graph's totals and, given one worker's ``throughput``
    (img/s), the wall time on ``workers`` workers. A dataset that is not on disk is said so, with what would
    train once it is (from the dataset's declared size). ``runs``: (teacher of the setting, prepared run)."""
    total_work, total_flops, entries, seconds = 0, 0, 0, 0.0
    missing: dict[str, PreparedRun] = {}
    counted: set[str] = set()  # a stage two runs share (a teacher of two KD runs) is counted once, as in the graph
    for teacher, run in runs:
        work = plan_work(run, counted)
        ds = run.dataset
        if ds is not None:
            size = f"{len(ds.train_labels):,} training images"
        else:
            missing.setdefault(run.request.dataset, run)
            size = (
                f"dataset not on disk; {work.stages[0].images:,} training images declared"
                if work.images_declared
                else "dataset not on disk: its size is unknown"
            )
        table = Table(
            title=f"{run.request.arch}"
            + (f" <- {teacher}" if teacher else "")
            + f" on {run.request.dataset} ({run.recipe.name}, {run.recipe.epochs} epochs, {size})",
            title_justify="left",
        )
        for col in ("seed", "method", "stages (epochs, cache)", "to train (image-epochs)"):
            table.add_column(col)
        for seed in run.plan.seeds:
            for entry in run.plan.of_seed(seed):
                mine = [s for s in work.stages if s.seed == seed and s.method == entry.name]
                image_epochs = sum(s.image_epochs for s in mine)
                known = ds is not None or work.images_declared
                table.add_row(
                    str(seed),
                    entry.name,
                    escape(", ".join(_stage_text(s, ds is not None) for s in mine) or "-"),
                    f"{image_epochs:,}" if known else "?",
                )
                entries += 1
        console.print(table)
        total_work += work.image_epochs
        total_flops += work.flops
        estimate = estimated_seconds(run, work)
        seconds += estimate or 0.0
    note = (
        f"{entries} (method, seed) runs; {total_work:,} image-epochs of training (one image through one training "
        f"step = 1)"
    )
    if total_flops:
        note += f", {total_flops:.3g} training FLOPs"
    if seconds:
        note += f", about {hours(seconds)} on this CPU (an estimate from the FLOPs; evaluation not counted)"
    console.print(note + ". Stages already in the cache and records already in --out are reused.", highlight=False)
    advice = long_plan_advice(seconds)
    if advice:
        console.print(advice, highlight=False)
    for run in missing.values():
        console.print(missing_data_note(run), highlight=False)
    print_graph(build_graph([run for _, run in runs]), console, throughput, workers)


def missing_data_note(run: PreparedRun) -> str:
    """What a dry run says of a dataset that is not on disk: whether a real run gets it (``--no-download``, or
    this machine could not download it: the loader's line), and that the counts use its declared size."""
    name = run.request.dataset
    if not run.request.download:
        how = (
            "--no-download was given, so a real run stops here: drop --no-download on a machine that reaches "
            "the network, or give --data-dir DIR (a copy of it)"
        )
    else:
        how = f"this machine cannot download it, so a real run here stops too: {run.data_missing or 'no detail'}"
    return (
        f"dataset {name} is not on disk; {how}. Its stages' cache states are unknown, and the counts use its "
        f"declared size."
    )


def print_graph(graph: JobGraph, console: Console, throughput: float | None, workers: int) -> None:
    """The stage graph's totals and, with a throughput, the estimated wall time on ``workers`` workers."""
    todo = graph.todo()
    unknown = f" (not counted: {', '.join(graph.unknown)}, dataset not on disk)" if graph.unknown else ""
    console.print(
        f"stage graph: {len(graph.jobs)} stage jobs, {len(todo)} to train in {len(graph.layers())} layers, "
        f"{graph.image_epochs:,} image-epochs in all, {critical_path(graph):,} on the longest chain{unknown}"
    )
    if throughput:
        console.print(
            f"estimated wall time at {throughput:,.0f} img/s per worker: "
            f"{hours(wall_seconds(graph, throughput, workers))} on {workers} worker(s), "
            f"{hours(wall_seconds(graph, throughput, 1))} on 1 (training steps only: evaluation and "
            f"start-up are not counted)"
        )


def reference_for(spec: TableSpec) -> list[RefValue]:
    """The table's reported numbers; a missing reference is an error, never a silently narrower table."""
    return table_values(spec.reference_table or spec.name)


def protocol_text(spec: TableSpec, metric: str, refs: list[RefValue]) -> str:
    """What the caption says of the top-1 protocol: ours, why, and whether the reported numbers share it."""
    text = f"top-1 = {metric} epoch" + (
        f" ({spec.protocol_note})" if metric == spec.metric and spec.protocol_note else ""
    )
    protocols = {v.protocol for v in refs if v.metric == "top1" and v.protocol in ("last", "best")}
    theirs = sorted(protocols - {metric})
    if theirs and metric in protocols:  # a table of two sources (the CRD table's DKD rows come from mdistiller)
        text += f"; NOTE: reported values marked ({theirs[0]} ep.) are {theirs[0]}-epoch numbers, another protocol"
    elif theirs:
        text += f"; NOTE: the reported values are {'/'.join(theirs)}-epoch numbers, another protocol"
    return text


def reported_text(ref: RefValue, metric: str) -> str:
    """A reported top-1 as the table shows it: marked with its protocol when that is not the measured one."""
    return f"{ref.value:.2f}" + (
        f" ({ref.protocol} ep.)" if ref.protocol in ("last", "best") and ref.protocol != metric else ""
    )


def render(
    p: Reproduction, records_by_setting: list[list[Record]], console: Console, metric: str | None = None
) -> list[str]:
    """Print each setting as the paper lays it out, top-1 by ``metric`` (the table's protocol by default);
    returns the markdown of each (for --export)."""
    metric = metric or p.spec.metric
    refs = reference_for(p.spec)
    markdown = []
    for (setting, run), records in zip(p.runs, records_by_setting):
        assert run.dataset is not None  # loaded: the runs were trained or their records read
        rows = aggregate(records, metric)
        ours = f"{run.dataset.name} ({run.dataset.source}), {budget(records[0]) if records else run.recipe.name}"
        paper_recipe = setting.recipe
        differs = (
            run.dataset.name != setting.dataset
            or run.recipe.as_dict() != run.plugins.recipes.resolve(paper_recipe).obj.as_dict()
        )
        title = f"{p.spec.title} | {setting.arch}" + (f" <- {setting.teacher}" if setting.teacher else "")
        if differs:
            title += f" | OURS ON {run.dataset.name}, {run.recipe.name} {run.recipe.epochs} ep: NOT THE PAPER'S SETUP"
        headers = [
            "method",
            "measured top-1 (%)",
            "n",
            "reported",
            "Δ (measured - reported)",
            "params",
            "train compute (x baseline)",
        ]
        body = []
        for r in rows:
            ref = next(
                (
                    v
                    for v in refs
                    if v.metric == "top1"
                    and v.dataset == setting.dataset
                    and v.arch == setting.arch
                    and v.method == r.method
                    and (v.teacher or None) == (setting.teacher if v.teacher else None)
                ),
                None,
            )
            s = summarize(r.values)
            body.append(
                [
                    r.method + (f" [{r.variant}]" if r.variant else ""),
                    f"{s.mean:.2f} ± {s.std:.2f}",
                    str(s.n),
                    reported_text(ref, metric) if ref else "-",
                    f"{s.mean - ref.value:+.2f}" if ref else "-",
                    f"{r.params / 1e6:.2f}M" if r.params else "-",
                    fmt_compute(r.measured("train_compute")),
                ]
            )
        sources = sorted({v.source for v in refs if v.dataset == setting.dataset and v.arch == setting.arch})
        caption = (
            f"Measured: {ours}; {protocol_text(p.spec, metric, refs)}; mean ± std over seeds; train "
            f"compute = training FLOPs relative to the baseline's. Reported: "
            f"{'; '.join(sources) or 'no reference values'} ({setting.dataset}, recipe '{paper_recipe}')."
            + (" Different dataset or budget: compare trends, not values." if differs else "")
        )
        table = Table(title=escape(title), caption=escape(caption), title_justify="left")
        for h in headers:
            table.add_column(h, justify="left" if h == "method" else "right")
        for line in body:
            table.add_row(*map(escape, line))
        console.print(table)
        markdown.append(f"### {title}\n\n" + tabulate(body, headers, tablefmt="github") + f"\n\n{caption}\n")
    return markdown
