"""No silent wrong answers (issue 22, class 4): an image folder's channel count comes from all of its images
(the majority, the others named); records that cannot be read (a newer schema, missing or mistyped fields,
bad JSON) are named and counted by every command that reads records, never dropped without a word. (Archive
member names: tests/test_storage.py; dataset plugins' output: tests/test_plugin_faults.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
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
    for path in (odd if majority == "L" else images[3:]):
        recolour(path, "RGB")
    notices: list[str] = []
    ds = load_imagefolder(tree, "t", tmp_path / "cache", notice=notices.append)
    assert ds.in_chans == (1 if majority == "L" else 3)
    kind = {"L": "grayscale", "RGB": "RGB"}
    (note,) = [n for n in notices if "converted" in n]
    assert note.startswith(f"note: t: 3 of 51 images are {kind[minority]}, the others {kind[majority]}: "
                           f"converted to {kind[majority]} (")
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
        "no-recipe-epochs.json": ({**good, "recipe": {"name": "x"}}, "missing field(s) recipe.epochs, recipe.batch_size"),
        "metrics-list.json": ({**good, "metrics": [1, 2]}, "metrics (list, not dict)"),
        "top1-text.json": ({**good, "metrics": {**good["metrics"], "top1_last": "high"}},
                           "metrics.top1_last ('high', not a number)"),
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
def test_every_command_that_reads_records_names_and_counts_what_it_left_out(capsys, tmp_path: Path,
                                                                            good_record: dict, command: str) -> None:
    folder = tmp_path / "runs"
    expected = bad_records(folder, good_record)
    args = {"table": ["table", str(folder)],
            "check": ["check", str(folder), "--save-reference", str(tmp_path / "ref.csv")],
            "plot": ["plot", str(folder), "--out", str(tmp_path / "plots"), "--no-curves"]}[command]
    assert main(args) == 0
    check_warning(capsys.readouterr().err, folder, expected)


def test_a_resumed_run_names_the_records_it_cannot_reuse(capsys, tmp_path: Path, good_record: dict,
                                                         cache_dir: Path) -> None:
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
