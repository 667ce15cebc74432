"""No silent wrong answers (issue 22, class 4): an image folder's channel count comes from all of its images
(the majority, the others named); records that cannot be read (a newer schema, missing or mistyped fields,
bad JSON) are named and counted by every command that reads records, never dropped without a word. (Archive
member names: tests/test_storage.py; dataset plugins' output: tests/test_plugin_faults.py.)"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from harness.core.errors import UsageError
from test_data import make_tree


def recolour(path: Path, mode: str) -> None:
    img = Image.open(path)
    img.convert(mode).save(path)


@pytest.mark.parametrize("majority", ["L", "RGB"])
def test_channel_count_is_the_majoritys_and_the_others_are_named(tmp_path: Path, majority: str) -> None:
    from harness.data.datasets import load_imagefolder

    tree = make_tree(tmp_path / "tree")  # grayscale PNGs
    images = sorted((tree / "train").rglob("*.png")) + sorted((tree / "test").rglob("*.png"))
    minority = "RGB" if majority == "L" else "L"
    odd = images[:3]  # the first ones in sort order: a decision from the first image would follow them
    for path in odd if majority == "L" else images[3:]:
        recolour(path, "RGB")
    notices: list[str] = []
    ds = load_imagefolder(tree, "t", tmp_path / "cache", notice=notices.append)
    assert ds.in_chans == (1 if majority == "L" else 3)
    kind = {"L": "grayscale", "RGB": "RGB"}
    (note,) = [n for n in notices if "converted" in n]
    assert note.startswith(
        f"note: t: 3 of 51 images are {kind[minority]}, the others {kind[majority]}: converted to {kind[majority]} ("
    )
    assert odd[0].relative_to(tree).as_posix() in note
    if majority == "RGB":  # grayscale replicated: the three channels of a converted image are equal
        first = np.asarray(Image.open(odd[0]))
        assert (ds.train_images[0] == ds.train_images[0][0]).all() and (ds.train_images[0][0].numpy() == first).all()


# ---- records that cannot be read are named and counted ----------------------------------------------------


@pytest.fixture(scope="module")
def good_record(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict:
    from conftest import run_tiny

    out = tmp_path_factory.mktemp("good")
    (path,) = run_tiny(cache_dir, out).paths
    return json.loads(path.read_text())


def bad_records(folder: Path, good: dict) -> dict[str, str]:
    """Files of a record folder that bench cannot read as records -> what the warning must say of each."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "good.json").write_text(json.dumps(good))
    cases = {
        "newer.json": ({**good, "schema": 99}, "record schema 99 is newer than this bench reads"),
        "no-metrics.json": ({k: v for k, v in good.items() if k != "metrics"}, "missing field(s) metrics"),
        "no-method-name.json": ({**good, "method": {"options": {}}}, "missing field(s) method.name"),
        "no-recipe-epochs.json": (
            {**good, "recipe": {"name": "x"}},
            "missing field(s) recipe.epochs, recipe.batch_size",
        ),
        "metrics-list.json": ({**good, "metrics": [1, 2]}, "metrics (list, not dict)"),
        "top1-text.json": (
            {**good, "metrics": {**good["metrics"], "top1_last": "high"}},
            "metrics.top1_last ('high', not a number)",
        ),
    }
    for name, (data, _) in cases.items():
        (folder / name).write_text(json.dumps(data))
    (folder / "truncated.json").write_text(json.dumps(good)[:50])
    return {**{name: said for name, (_, said) in cases.items()}, "truncated.json": "not readable as JSON"}


def check_warning(err: str, folder: Path, expected: dict[str, str]) -> None:
    (line,) = [line for line in err.splitlines() if line.startswith("bench: warning: ")]
    assert line.startswith(f"bench: warning: {len(expected)} file(s) not read as records: "), line
    for name, said in expected.items():
        assert f"{folder / name}: " in line and said in line, (name, said)


@pytest.mark.parametrize("command", ["table", "check", "plot"])
def test_every_command_that_reads_records_names_and_counts_what_it_left_out(
    capsys, tmp_path: Path, good_record: dict, command: str
) -> None:
    folder = tmp_path / "runs"
    expected = bad_records(folder, good_record)
    args = {
        "table": ["table", str(folder)],
        "check": ["check", str(folder), "--save-reference", str(tmp_path / "ref.csv")],
        "plot": ["plot", str(folder), "--out", str(tmp_path / "plots"), "--no-curves"],
    }[command]
    assert main(args) == 0
    check_warning(capsys.readouterr().err, folder, expected)


def test_a_resumed_run_names_the_records_it_cannot_reuse(
    capsys, tmp_path: Path, good_record: dict, cache_dir: Path
) -> None:
    """--resume (and bench reproduce) reuse finished records: the ones it cannot read are named, once."""
    from conftest import run_tiny

    out = tmp_path / "out"
    expected = bad_records(out, good_record)
    (out / "good.json").unlink()
    del expected  # the folder's bad files, without the good one
    capsys.readouterr()
    run_tiny(cache_dir, out, resume=True)
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench: warning: ")]
    assert line.startswith("bench: warning: 7 file(s) not read as records: ") and "newer.json" in line
    assert line.endswith("they are not reused, their runs run again")


# ---- a record without the top-1 a command reads, nothing readable left, a newer schema in code --------------


def without_best(folder: Path, good: dict) -> dict[str, str]:
    """A folder with a good record and one whose metrics lack ``top1_best`` -> what the warning says of it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "good.json").write_text(json.dumps(good))
    metrics = {k: v for k, v in good["metrics"].items() if k != "top1_best"}
    (folder / "no-best.json").write_text(json.dumps({**good, "seed": good["seed"] + 1, "metrics": metrics}))
    return {"no-best.json": "no top1_best (the top-1 of --metric best)"}


@pytest.mark.parametrize("command", ["table", "check", "plot"])
def test_a_record_without_the_top1_a_command_reads_is_named(
    capsys, tmp_path: Path, good_record: dict, command: str
) -> None:
    folder = tmp_path / "runs"
    expected = without_best(folder, good_record)
    args = {
        "table": ["table", str(folder), "--metric", "best"],
        "check": ["check", str(folder), "--save-reference", str(tmp_path / "ref.csv"), "--metric", "best"],
        "plot": ["plot", str(folder), "--out", str(tmp_path / "plots"), "--no-curves", "--metric", "best"],
    }[command]
    assert main(args) == 0
    check_warning(capsys.readouterr().err, folder, expected)
    assert main([*args[:-2], "--metric", "last"]) == 0  # the record has its last-epoch top-1: read, no warning
    assert "bench: warning" not in capsys.readouterr().err


def test_a_table_rendered_in_code_names_the_records_it_could_not_aggregate(good_record: dict) -> None:
    from harness.results.tables import render

    metrics = {k: v for k, v in good_record["metrics"].items() if k != "top1_best"}
    records = [
        {**good_record, "_path": "/x/good.json"},
        {**good_record, "seed": good_record["seed"] + 1, "metrics": metrics, "_path": "/x/no-best.json"},
    ]
    text = render(records, "markdown", "best")
    assert "1 record(s) left out (no top-1 to aggregate): no-best.json (no top1_best)" in text
    assert "left out" not in render(records, "markdown", "last")


@pytest.mark.parametrize("command", ["table", "check", "plot"])
def test_nothing_readable_left_is_exit_2(capsys, tmp_path: Path, good_record: dict, command: str) -> None:
    folder = tmp_path / "runs"
    expected = bad_records(folder, good_record)
    (folder / "good.json").unlink()
    args = {
        "table": ["table", str(folder)],
        "check": ["check", str(folder), "--reference", "smoke"],
        "plot": ["plot", str(folder), "--out", str(tmp_path / "plots"), "--no-curves"],
    }[command]
    assert main(args) == 2
    err = capsys.readouterr().err
    check_warning(err, folder, expected)
    assert f"bench: error: no readable result records in {folder}; {len(expected)} file(s) left out" in err


def test_a_newer_record_handed_to_the_tables_in_code_is_refused(good_record: dict) -> None:
    """Not only files: a record dict of a newer schema is never read as the current schema."""
    from harness.results.records import RecordError
    from harness.results.aggregation import aggregate

    with pytest.raises(RecordError, match="record schema 99 is newer than this bench reads"):
        aggregate([{**good_record, "schema": 99, "_path": "x.json"}])
    assert aggregate([good_record])  # the same record at its own schema is read


def test_a_teacher_record_of_a_newer_schema_is_named(
    capsys, tmp_path: Path, good_record: dict, cache_dir: Path
) -> None:
    record = tmp_path / "teacher.json"
    record.write_text(json.dumps({**good_record, "schema": 99}))
    args = [
        "run",
        "--methods",
        "kd",
        "--arch",
        "resnet8",
        "--teacher-checkpoint",
        str(record),
        "--dataset",
        "cifar10-mini",
        "--recipe",
        "smoke",
        "--cache-dir",
        str(cache_dir),
        "--out",
        str(tmp_path / "out"),
        "--dry-run",
    ]
    assert main(args) == 2
    assert (
        f"bench: error: --teacher-checkpoint {record}: record schema 99 is newer than this bench reads"
        in capsys.readouterr().err
    )


# ---- sizes that cannot train are refused before training, with the smallest that can ----------------------


RUN = [
    "run",
    "--methods",
    "baseline",
    "--arch",
    "resnet8",
    "--dataset",
    "cifar10-mini",
    "--recipe",
    "smoke",
    "--epochs",
    "1",
    "--no-latency",
    "--dry-run",
]


@pytest.mark.parametrize("subset, val_split", [(1, None), (3, 0.5), (10, 0.01)])
def test_a_training_subset_that_cannot_train_names_the_smallest_that_can(
    capsys, tmp_path: Path, cache_dir: Path, subset: int, val_split: float | None
) -> None:
    from types import SimpleNamespace

    from harness.run.limits import check_sizes

    split = ["--val-split", str(val_split)] if val_split else []
    args = [*RUN, "--train-subset", str(subset), *split, "--cache-dir", str(cache_dir), "--out", str(tmp_path)]
    assert main(args) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench: error: ")]
    assert line.startswith(f"bench: error: --train-subset {subset}: ")
    smallest = int(line.rpartition("the smallest --train-subset that works is ")[2])
    request = partial(SimpleNamespace, val_split=val_split)
    check_sizes(request(train_subset=smallest), smallest, "")  # it works
    for fewer in range(1, smallest):  # and nothing smaller does
        with pytest.raises(UsageError):
            check_sizes(request(train_subset=fewer), fewer, "")


def test_a_train_subset_of_one_built_in_code_is_refused_before_training(tmp_path: Path, cache_dir: Path) -> None:
    """The held-out fault: --train-subset 1 reached the training step (ZeroDivisionError)."""
    from conftest import tiny_request
    from harness.core.progress import Reporter
    from harness.plugins.manager import load_plugins
    from harness.run.prepare import prepare

    with pytest.raises(UsageError, match="the smallest --train-subset that works is 2"):
        prepare(tiny_request(cache_dir, tmp_path, train_subset=1), load_plugins(warn=False), Reporter())


def test_a_dataset_whose_validation_split_holds_out_nothing_is_refused(capsys, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from harness.run.limits import check_sizes

    tree = make_tree(tmp_path / "tree")  # 39 training images
    args = [
        "run",
        "--methods",
        "baseline",
        "--arch",
        "resnet8",
        "--dataset",
        f"imagefolder:{tree}",
        "--recipe",
        "smoke",
        "--epochs",
        "1",
        "--no-latency",
        "--val-split",
        "0.01",
        "--cache-dir",
        str(tmp_path / "c"),
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(args) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench: error: ")]
    assert "--val-split 0.01 of 39 training images holds out none; use --val-split " in line
    suggested = float(line.rpartition("use --val-split ")[2].partition(" ")[0])
    check_sizes(SimpleNamespace(train_subset=None, val_split=suggested), 39, "tree")  # the suggestion works
    assert not list((tmp_path / "out").glob("*.json"))  # nothing trained


def test_a_dataset_of_one_training_image_is_refused() -> None:
    from types import SimpleNamespace

    from harness.run.limits import check_sizes

    with pytest.raises(
        UsageError,
        match="dataset one: 1 training image.s. cannot train: a batch needs at least 2; "
        "it needs at least 2 training images",
    ):
        check_sizes(SimpleNamespace(train_subset=None, val_split=None), 1, "one")


# ---- environment variables: a name or value bench cannot read is named --------------------------------------


def test_unknown_names_in_bench_disable_plugins_are_named(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from harness.plugins.manager import load_plugins

    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "timm, nosuchplugin,kdd")
    plugins = load_plugins(entry_points=False)
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench: warning: ")]
    assert line.startswith("bench: warning: BENCH_DISABLE_PLUGINS names 2 plugin(s) that do not exist")
    assert "'kdd' (did you mean 'kd'?)" in line and "'nosuchplugin'" in line and "timm" not in line
    assert "timm" not in {p.name for p in plugins.plugins} and "kd" in {p.name for p in plugins.plugins}
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "timm")
    load_plugins(entry_points=False)
    assert "bench: warning" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "value, on",
    [
        ("1", True),
        (" Yes", True),
        ("on", True),
        ("0", False),
        ("off", False),
        ("", False),
        ("maybe", None),
        ("2", None),
    ],
)
def test_switch_variables_name_a_value_they_cannot_read(
    monkeypatch: pytest.MonkeyPatch, capsys, value: str, on: bool | None
) -> None:
    from harness.core.environ import switch
    from harness.core.environ import debugging

    monkeypatch.setenv("BENCH_OFFLINE", value)
    monkeypatch.setenv("BENCH_DEBUG", value)
    if on is None:
        with pytest.raises(UsageError, match=f"BENCH_OFFLINE='{value}': not a value bench reads; on: 1, true"):
            switch("BENCH_OFFLINE")
        assert debugging()  # tracebacks shown, and the value named
        assert f"bench: warning: BENCH_DEBUG='{value}': not a value bench reads" in capsys.readouterr().err
    else:
        assert switch("BENCH_OFFLINE") is on and debugging() is on
        assert not capsys.readouterr().err
