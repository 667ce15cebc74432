"""Filesystem faults are one line (issue 22, class 3): a full disk while writing a record, a checkpoint, an
artifact or a decoded dataset (exit 74, nothing half-written, what was there intact); a file where bench's
cache or output folders should be (exit 2, before anything runs); broken links and link loops in image
folders (named, skipped); truncated or damaged archives and members that escape them (exit 2)."""

from __future__ import annotations

import errno
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from harness.cli import main
from test_data import make_tree
from test_faults import one_line_error


def tree_args(tmp_path: Path, tree: Path, *extra: str) -> list[str]:
    return [
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
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--no-latency",
        "--quiet",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "out"),
        *extra,
    ]


@pytest.fixture
def disk_full(monkeypatch):
    """From now on every atomic write fails as on a full disk, after its bytes were (partly) written."""
    import harness.core.io as bench_io

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    return lambda: monkeypatch.setattr(bench_io.os, "fsync", full)


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_full_disk_while_writing_a_record_is_one_line_and_keeps_the_old_record(
    capsys, tmp_path: Path, disk_full
) -> None:
    tree = make_tree(tmp_path / "tree")
    assert main(tree_args(tmp_path, tree)) == 0
    (record,) = (tmp_path / "out").glob("*.json")
    before = record.read_bytes()
    capsys.readouterr()
    disk_full()
    line = one_line_error(capsys, tree_args(tmp_path, tree), code=74)  # the same run: the same record file
    assert line.startswith(f"bench: error: cannot write '{record}': no space left on the device (ENOSPC); ")
    assert "free space there or point --out/--cache-dir elsewhere" in line
    assert record.read_bytes() == before and leftovers(tmp_path) == []
    assert not (tmp_path / "out" / "failed").exists()  # a full disk is not the run's failure


def test_full_disk_while_writing_a_checkpoint_keeps_the_artifact(capsys, tmp_path: Path, disk_full) -> None:
    tree = make_tree(tmp_path / "tree")
    assert main(tree_args(tmp_path, tree)) == 0
    artifacts = {p: p.read_bytes() for p in (tmp_path / "cache" / "artifacts").rglob("*") if p.is_file()}
    capsys.readouterr()
    disk_full()
    line = one_line_error(capsys, tree_args(tmp_path, tree, "--retrain"), code=74)
    assert "cannot write '" in line and ".ckpt': no space left on the device (ENOSPC)" in line
    assert {p: p.read_bytes() for p in artifacts} == artifacts and leftovers(tmp_path) == []


def test_full_disk_while_caching_a_decoded_dataset(capsys, tmp_path: Path, disk_full) -> None:
    tree = make_tree(tmp_path / "tree")
    disk_full()
    line = one_line_error(capsys, tree_args(tmp_path, tree), code=74)
    assert f"cannot write '{tmp_path / 'cache' / 'datasets'}/" in line and "(ENOSPC)" in line
    assert not (tmp_path / "cache" / "artifacts").exists() and leftovers(tmp_path) == []


def test_a_real_write_error_from_torch_save_is_one_line(tmp_path: Path, monkeypatch) -> None:
    """torch.save reports a failed write as a RuntimeError of its zip writer: still one StorageError line."""
    import torch

    import harness.core.io as bench_io
    from harness.core.errors import StorageError

    class Full(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bench_io.os, "fdopen", lambda fd, mode: (os.close(fd), Full())[1])
    with pytest.raises(StorageError, match="no space left on the device"):
        bench_io.atomic_torch_save({"w": torch.zeros(1000)}, tmp_path / "a.pt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "where, flag", [("cache/datasets", "--cache-dir"), ("cache/artifacts", "--cache-dir"), ("out/failed", "--out")]
)
def test_a_file_where_a_folder_of_bench_should_be(capsys, tmp_path: Path, where: str, flag: str) -> None:
    tree = make_tree(tmp_path / "tree")
    blocker = tmp_path / where
    blocker.parent.mkdir(parents=True)
    blocker.write_text("keep me")
    line = one_line_error(capsys, tree_args(tmp_path, tree), code=2)
    assert f"'{blocker}' is a file where bench keeps its {blocker.name}/ folder; move or remove" in line
    assert f"choose another {flag}" in line and blocker.read_text() == "keep me"
    assert not list((tmp_path / "cache").rglob("*.pt"))  # nothing decoded, nothing trained


def test_os_errors_say_what_happened_and_what_to_do() -> None:
    from harness.core.errors import storage_error

    for code, said in (
        (errno.EACCES, "permission denied (EACCES); fix the permissions"),
        (errno.EROFS, "the filesystem is read-only (EROFS); choose a writable folder"),
        (errno.EDQUOT, "disk quota exceeded (EDQUOT)"),
        (errno.ENOTDIR, "a file is where a folder should be (ENOTDIR); remove or rename"),
    ):
        error = storage_error(OSError(code, os.strerror(code)), "/x/y.json")
        assert str(error).startswith("cannot write '/x/y.json': ") and said in str(error) and error.exit_code == 74


def test_an_artifact_folder_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    from harness.core.errors import StorageError
    from harness.train.artifacts import ArtifactStore

    (tmp_path / "baseline").write_text("")
    with pytest.raises(StorageError, match=f"cannot create the folder '{tmp_path / 'baseline'}': a file is where"):
        ArtifactStore(tmp_path).lock("baseline", "k").acquire()


# ---- image folders: links ---------------------------------------------------------------------------------


def test_broken_links_and_link_loops_are_named_and_skipped_linked_folders_followed(tmp_path: Path) -> None:
    from harness.data.datasets import load_imagefolder

    tree = make_tree(tmp_path / "tree")
    elsewhere = make_tree(tmp_path / "elsewhere", classes=1, per_split={"train": 5})
    (tree / "train" / "linked").symlink_to(elsewhere / "train" / "class0")  # a class folder that is a link
    (tree / "train" / "class0" / "dangling.png").symlink_to(tmp_path / "missing.png")
    (tree / "train" / "class1" / "loop.png").symlink_to(tree / "train" / "class1" / "loop.png")
    (tree / "train" / "class2" / "up").symlink_to(tree / "train")  # a folder loop
    notices: list[str] = []
    for _ in range(2):  # decoded, then from the cache: the same lines
        ds = load_imagefolder(tree, "t", tmp_path / "cache", notice=notices.append)
    assert ds.classes == ["class0", "class1", "class2", "linked"] and len(ds.train_labels) == 39 + 5
    warning = notices[0]
    assert notices[0] == notices[2] and warning.startswith(
        f"warning: t: skipped 3 entries of '{tree}' that cannot be read: "
    )
    assert "train/class0/dangling.png (a dangling link to" in warning
    assert "train/class1/loop.png (a link loop)" in warning
    assert "train/class2/up/ (a link to a folder already read" in warning and warning.endswith("fix or remove them")


# ---- archives ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, expected",
    [
        ("gztar", "is a damaged or truncated archive ("),
        ("zip", "is named like a .zip archive but cannot be read as one"),
    ],
)
def test_truncated_archives_are_one_line(capsys, tmp_path: Path, fmt: str, expected: str) -> None:
    tree = make_tree(tmp_path / "tree")
    archive = Path(shutil.make_archive(str(tmp_path / "data"), fmt, tree))
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    line = one_line_error(capsys, tree_args(tmp_path, archive), code=2)
    assert f"'{archive}' {expected}" in line
    assert not (tmp_path / "cache" / "artifacts").exists()


def add_member(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def test_archive_members_are_normalised_and_refused_when_they_escape(capsys, tmp_path: Path) -> None:
    from harness.data.datasets import load_imagefolder

    tree = make_tree(tmp_path / "tree")
    png = (tree / "train" / "class0" / "0.png").read_bytes()
    good = tmp_path / "odd-names.tar"
    with tarfile.open(good, "w") as tf:
        for path in sorted(tree.rglob("*.png")):
            rel = path.relative_to(tree).as_posix()
            add_member(tf, "./" + rel.replace("/", "//", 1), path.read_bytes())  # ./train//class0/0.png
    ds = load_imagefolder(good, "odd", tmp_path / "cache", notice=lambda _: None)
    assert ds.classes == ["class0", "class1", "class2"] and len(ds.train_labels) == 39

    bad = tmp_path / "escaping.tar"
    shutil.copy(good, bad)
    with tarfile.open(bad, "a") as tf:
        add_member(tf, "train/../../x.png", png)
    line = one_line_error(capsys, tree_args(tmp_path, bad), code=2)
    assert f"'{bad}' has a member 'train/../../x.png' that points outside the archive" in line
