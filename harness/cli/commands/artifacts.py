"""``bench artifacts export|import|list|prune``: share trained stages as bundles, see and tidy the cache."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from harness.core.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from harness.train.artifacts import ArtifactStore


def add_parser(sub: argparse._SubParsersAction) -> None:
    art = sub.add_parser("artifacts", help="export/import trained stages as bundles, list and prune the cache")
    cmds = art.add_subparsers(dest="action", required=True, metavar="ACTION")

    def with_cache(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--cache-dir",
            type=Path,
            help="the cache whose artifacts/ to use (default $BENCH_CACHE_DIR, else ~/.cache/encodenet-bench)",
        )
        return p

    exp = with_cache(
        cmds.add_parser(
            "export", help="write a trained stage as a bundle (safetensors weights, identity, record, sha256)"
        )
    )
    exp.add_argument(
        "ref",
        metavar="STAGE_OR_RECORD",
        help="a record (.json: its deployed stage, or --stage), an artifact (.pt), STAGE/KEY or a key prefix",
    )
    exp.add_argument("-o", "--output", type=Path, required=True, help="the bundle file to write (e.g. teacher.zip)")
    exp.add_argument(
        "--stage", metavar="LABEL", help="with a record: export this stage of it, e.g. baseline[resnet20] (its teacher)"
    )
    exp.add_argument("--force", action="store_true", help="overwrite an existing output file")
    imp = with_cache(
        cmds.add_parser("import", help="verify a bundle's digest and add its stage to the cache under its key")
    )
    imp.add_argument(
        "source",
        metavar="FILE",
        help="a bundle file, or file:// / https://...#sha256=HEX, or hf-hub:ORG/NAME[/FILE][@REV]",
    )
    imp.add_argument(
        "--replace", action="store_true", help="replace an artifact of the same key that holds other weights"
    )
    lst = with_cache(cmds.add_parser("list", help="what the cache holds: stage, arch, dataset, accuracy, size"))
    lst.add_argument(
        "--records",
        type=Path,
        nargs="+",
        default=[],
        metavar="DIR",
        help="also say which of these records use each artifact (and name their datasets)",
    )
    lst.add_argument("--format", choices=("rich", "json"), default="rich")
    pr = with_cache(
        cmds.add_parser("prune", help="remove the artifacts no record in --keep-records uses (a dry run unless --yes)")
    )
    pr.add_argument(
        "--keep-records",
        type=Path,
        nargs="+",
        required=True,
        metavar="DIR",
        help="records (files or folders) whose artifacts are kept: every other artifact goes",
    )
    pr.add_argument("--yes", action="store_true", help="delete; without it, only list what would be deleted")


def main(args: argparse.Namespace, console: "Console") -> int:
    from harness.train.artifacts import ArtifactStore

    store = ArtifactStore(args.cache_dir / "artifacts")
    return {"export": export, "import": import_, "list": list_, "prune": prune}[args.action](args, store, console)


def export(args: argparse.Namespace, store: "ArtifactStore", console: "Console") -> int:
    from harness.run.preflight import check_output_file
    from harness.train import bundles, inventory

    check_output_file(args.output, "-o")
    if args.output.exists() and not args.force:
        raise UsageError(f"-o {args.output}: the file exists; choose another name or pass --force")
    record = None
    ref = Path(args.ref)
    if ref.suffix == ".json":
        from harness.results.records import read_record_file

        record = read_record_file(ref)
        stage, key = inventory.of_record(dict(record), str(ref), args.stage)
    elif args.stage:
        raise UsageError("--stage picks a stage of a record: give a record (.json)")
    else:
        stage, key = inventory.find(store, args.ref)
    bundle = bundles.export_stage(store, stage, key, args.output, record=dict(record) if record else None)
    acc = bundle.test_acc
    console.print(
        f"exported {stage}/{key} ({bundle.manifest.get('arch') or bundle.manifest.get('label')}"
        f"{f', test top-1 {acc:.2f}%' if acc is not None else ''}) to {args.output}",
        highlight=False,
    )
    console.print(
        f"weights sha256 {bundle.sha256} ({bundle.manifest['weights']['bytes']:,} bytes), digest "
        f"{bundle.manifest['digest']}; bundle file sha256 {bundles.sha256_file(args.output)}",
        highlight=False,
    )
    return 0


def import_(args: argparse.Namespace, store: "ArtifactStore", console: "Console") -> int:
    from harness.train import bundles, sources

    source = sources.parse_source(args.source, "bench artifacts import")
    path = sources.fetch(source, args.cache_dir, "bench artifacts import")
    if not bundles.is_bundle(path):
        raise UsageError(
            f"bench artifacts import {args.source}: not a bench bundle (make one with bench artifacts export)"
        )
    origin = str(Path(args.source).resolve()) if source.kind == "path" else args.source
    done = bundles.import_bundle(store, path, name=args.source, origin=origin, replace=args.replace)
    b = done.bundle
    what = "imported" if done.status == "imported" else "already in the cache (same weights):"
    console.print(
        f"{what} {b.stage}/{b.key} ({b.manifest.get('arch') or b.manifest.get('label')}) -> {done.path}",
        highlight=False,
    )
    console.print(f"weights sha256 {b.sha256} verified, digest {b.manifest['digest']}", highlight=False)
    return 0


def list_(args: argparse.Namespace, store: "ArtifactStore", console: "Console") -> int:
    from rich.table import Table

    from harness.train import inventory

    found = inventory.artifacts(store)
    if args.records:
        inventory.attach_records(found, inventory.records_in(args.records), store)
    for info in found:
        info.test_acc = inventory.final_accuracy(store, info.stage, info.key)
    if args.format == "json":
        console.print_json(json.dumps([{**vars(i), "ref": i.ref} for i in found], default=str))
        return 0
    table = Table(title=f"{len(found)} artifact(s) in {store.root} ({sum(i.bytes for i in found) / 1e6:,.1f} MB)")
    for column in ("stage", "key", "arch", "dataset", "top-1 (%)", "size (MB)", "origin") + (
        ("used by",) if args.records else ()
    ):
        table.add_column(column, justify="right" if column in ("top-1 (%)", "size (MB)", "used by") else "left")
    for i in found:
        dataset = i.dataset or (f"{i.classes} classes, {i.fingerprint[:8]}" if i.classes and i.fingerprint else "?")
        row = [
            i.label,
            i.key,
            i.arch or "-",
            dataset,
            "-" if i.test_acc is None else f"{i.test_acc:.2f}",
            f"{i.bytes / 1e6:.2f}",
            "imported" if i.imported else "trained here",
        ]
        table.add_row(*row, *((str(len(i.used_by)),) if args.records else ()))
    console.print(table)
    return 0


def prune(args: argparse.Namespace, store: "ArtifactStore", console: "Console") -> int:
    from harness.train import inventory

    found = inventory.artifacts(store)
    inventory.attach_records(found, inventory.records_in(args.keep_records), store)
    victims = inventory.unused(found)
    size = sum(i.bytes for i in victims) / 1e6
    kept = len(found) - len(victims)
    if not victims:
        console.print(f"nothing to prune: the {kept} artifact(s) in {store.root} are all used by these records")
        return 0
    if not args.yes:
        for i in victims:
            console.print(f"would remove {i.ref} ({i.label}, {i.bytes / 1e6:.2f} MB)", highlight=False)
        console.print(
            f"{len(victims)} artifact(s), {size:,.1f} MB, are used by no record in "
            f"{', '.join(map(str, args.keep_records))}; {kept} kept. Nothing was deleted: add --yes to "
            f"delete them",
            highlight=False,
        )
        return 0
    result = inventory.remove(store, victims)
    for i in result.removed:
        console.print(f"removed {i.ref} ({i.label}, {i.bytes / 1e6:.2f} MB)", highlight=False)
    for i in result.skipped:
        console.print(f"kept {i.ref}: a run holds its lock (training or saving it now)", highlight=False)
    console.print(
        f"removed {len(result.removed)} artifact(s), {sum(i.bytes for i in result.removed) / 1e6:,.1f} MB; "
        f"{kept + len(result.skipped)} kept",
        highlight=False,
    )
    return 0
