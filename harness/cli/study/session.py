"""What `bench run STUDY`, `bench reproduce` and `bench study show` share: finding a study (a file or a
bundled one) and previewing it (preparing its runs: :func:`harness.run.launch.prepare_all`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.study.load import Study, StudyRun, load, override
from harness.core.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from harness.run.prepare import PreparedRun


def find(text: str | Path) -> Study:
    """The study of ``text``, checked and expanded: a study file, else the bundled study of that name."""
    from harness import studies

    path = Path(text)
    if path.is_file() or path.suffix == ".toml" or len(path.parts) > 1:
        return load(path)
    found = studies.find(str(text))
    if found is None:
        from harness.core.errors import unknown_name

        raise UsageError(f"{unknown_name('study', str(text), studies.names())} (or give a study file: NAME.toml)")
    return load(Path(str(found)), label=f"{text} (bundled study)", file_id=f"bundled:{text}")


def open_study(
    text: str | Path, cli: argparse.Namespace | None, keep: Callable[[StudyRun], bool] | None = None
) -> Study:
    """:func:`find`'s study, its runs filtered by ``keep`` (on the file's values), then the command line's
    options applied (:func:`harness.cli.study.load.override`)."""
    study = find(text)
    if keep is not None:
        study.runs = [run for run in study.runs if keep(run)]
    override(study, cli)
    return study


def header(study: Study, console: "Console", runs: int) -> None:
    console.print(
        f"study '{study.name}' ({study.file}): {len(study.runs)} run(s)"
        + (f", {runs} requests seed by seed" if runs != len(study.runs) else "")
        + (f" - {study.meta['title']}" if study.meta["title"] != study.name else "")
    )


def run_lines(prepared: list[tuple[StudyRun | None, "PreparedRun"]], console: "Console") -> None:
    """One line per run: where the file declares it, what it trains, on what, for how long."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="runs", title_justify="left")
    for column in ("declared in", "dataset", "arch", "methods", "teacher", "seeds", "recipe"):
        table.add_column(column)
    for run, p in prepared:
        req = p.request
        table.add_row(
            escape(run.where if run else "-"),
            req.dataset,
            req.arch,
            ",".join(req.methods),
            p.teacher.arch if p.teacher is not None and p.teacher.arch else "-",
            ",".join(map(str, req.seeds)),
            f"{p.recipe.name}, {p.recipe.epochs} epochs",
        )
    console.print(table)


def preview(
    study: Study,
    prepared: list[tuple[StudyRun | None, "PreparedRun"]],
    args: argparse.Namespace,
    console: "Console",
    *,
    resolved_copy: bool = False,
) -> None:
    """What the study will run, as `--dry-run` prints it (and, with ``resolved_copy``, its resolved copy)."""
    from harness.cli.study import resolved
    from harness.run import reproduce
    from harness.run.launch import dry_workers

    header(study, console, len(prepared))
    run_lines(prepared, console)
    if resolved_copy:
        document = resolved.resolved(study, [(run, p) for run, p in prepared if run is not None])  # (all of them)
        key = resolved.digest(document)
        console.print(resolved.dumps(document, study, key), markup=False, highlight=False, soft_wrap=True)
    reproduce.dry_run(
        [(p.request.teacher, p) for _, p in prepared], console, throughput=args.throughput, workers=dry_workers(args)
    )
