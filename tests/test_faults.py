"""Every bad input and fault answered: one line that says what to do, the right exit code, nothing lost."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from harness.core.errors import TrainingDiverged
from harness.core.progress import Reporter
from harness.core.recipes import Recipe
from harness.cli import main
from harness.train.divergence import DivergenceGuard
from harness.train.engine import fit
from harness.train.objective import StepOutput


def one_line_error(capsys: pytest.CaptureFixture, args: list[str], code: int) -> str:
    """Run the CLI; it must exit with ``code`` and print exactly one ``bench: error:`` line on stderr."""
    assert main(args) == code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    other = [line for line in err if not line.startswith(("bench: warning: ", "bench: note: ", "== "))]
    assert len(other) == 1 and other[0].startswith("bench: error: "), err  # no usage block, no traceback
    return other[0]


TINY = [
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
    "--train-subset",
    "320",
    "--test-subset",
    "100",
    "--device",
    "cpu",
    "--no-latency",
    "--quiet",
]


# ---- a diverging run stops at the first non-finite loss ---------------------------------------------


def test_huge_lr_stops_at_first_nonfinite_loss(capsys, tmp_path: Path, cache_dir: Path) -> None:
    line = one_line_error(
        capsys, [*TINY, "--lr", "1e9", "--cache-dir", str(cache_dir), "--out", str(tmp_path / "out")], code=1
    )
    assert "baseline[resnet8]: loss 'ce' is nan at epoch 1, batch" in line
    assert "lower --lr (now 1e9)" in line
    assert not list((tmp_path / "out").glob("*.json"))  # no record with a NaN loss
    (failed,) = [json.loads(p.read_text()) for p in (tmp_path / "out" / "failed").glob("*.json")]
    assert failed["status"] == "failed" and "metrics" not in failed and failed["stages"] == {}
    assert line == f"bench: error: baseline (seed 0): {failed['error']}"


def test_failed_run_is_recorded_apart_counted_by_table_never_checked(
    capsys, tmp_path: Path, cache_dir: Path, monkeypatch
) -> None:
    """A failed (method, seed) leaves a record under <out>/failed/ (status, error line, the stages that did
    finish, no metrics); `bench table` counts it, `bench check` never sees it; a later success removes it."""
    import harness.run.measure as runner  # build_record imports measure from here when it records
    from conftest import run_tiny, tiny_request
    from harness.run.execute import execute
    from harness.run.prepare import prepare
    from harness.plugins.manager import load_plugins

    out = tmp_path / "out"
    run_tiny(cache_dir, out, methods=["se"], seeds=[1])  # one good record beside the failed one
    real_measure = runner.measure

    def broken(*args: object) -> dict:
        raise RuntimeError("boom")

    monkeypatch.setattr(runner, "measure", broken)
    prepared = prepare(tiny_request(cache_dir, out), load_plugins(warn=False), Reporter())
    outcome = execute(prepared, Reporter())
    assert not outcome.records and outcome.failures[0].startswith("baseline (seed 0) failed: RuntimeError: boom")
    (path,) = (out / "failed").glob("*.json")
    failed = json.loads(path.read_text())
    assert failed["status"] == "failed" and failed["error"] == "RuntimeError: boom" and "metrics" not in failed
    stage = failed["stages"]["baseline[resnet8]"]  # it trained before measuring failed: the artifact is kept
    assert stage["origin"] in ("trained", "cache") and stage["artifact"]
    assert (cache_dir / "artifacts" / "baseline" / f"{stage['artifact']}.pt").exists()

    capsys.readouterr()
    assert main(["table", str(out), "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    assert f"1 failed run (see {out / 'failed'}/)" in text and "| se " in text and "| baseline" not in text
    ref = tmp_path / "ref.csv"
    assert main(["check", str(out), "--save-reference", str(ref)]) == 0
    assert "from 1 record(s)" in ref.read_text() and ",baseline," not in ref.read_text()
    assert main(["check", str(out), "--reference", str(ref)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 passed, 0 failed"

    monkeypatch.setattr(runner, "measure", real_measure)
    run_tiny(cache_dir, out)  # the same run succeeds: its failed record is history
    assert not path.exists()


def test_nonfinite_evaluation_loss_stops_the_stage(tmp_path: Path, cache_dir: Path) -> None:
    """A stage evaluated by its losses (an autoencoder, a paraphraser) stops when one is not finite, before the
    epoch's checkpoint, and stores nothing; its lock is free again."""
    from conftest import tiny_request
    from harness.plugins.manager import load_plugins
    from harness.run.prepare import prepare
    from harness.train.artifacts import ArtifactStore
    from harness.train.objective import Objective
    from harness.train.stage import Stage
    from harness.train.executor import StageRunner

    class NanWhenEvaluated(Objective):
        def __init__(self) -> None:
            super().__init__(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4)))

        def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
            recon = self.model(images).pow(2).mean()
            return StepOutput(losses={"recon": recon if self.training else recon * math.nan})

    prepared = prepare(tiny_request(cache_dir, tmp_path / "out"), load_plugins(warn=False), Reporter())
    store = ArtifactStore(tmp_path / "artifacts")
    stage = Stage("nan-eval", lambda ctx: NanWhenEvaluated(), evaluate="losses")
    with pytest.raises(TrainingDiverged) as info:
        StageRunner(prepared.env(0, Reporter()), store).resolve(stage, "m")
    assert str(info.value) == (
        "m/nan-eval: loss 'test_recon' is nan in the evaluation after epoch 1; the run "
        "diverged: lower --lr (now 0.05) or check the method's loss"
    )
    assert not list(store.root.rglob("*.pt")) and not list(store.root.rglob("*.ckpt"))
    (lock,) = store.root.rglob("*.lock")
    store.lock("nan-eval", lock.stem).acquire(timeout=0)  # released


class TwoLosses(nn.Module):
    """An objective whose second loss becomes infinite at a chosen batch."""

    def __init__(self, bad_at: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))
        self.calls, self.bad_at = 0, bad_at

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        self.calls += 1
        kd = (self.w.pow(2).sum() + 1) * (math.inf if self.calls == self.bad_at else 1.0)
        return StepOutput(losses={"ce": self.w.pow(2).sum(), "kd": kd})


class Stream:
    def __init__(self, batches: int) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return self.batches

    def epoch(self, epoch: int):
        for _ in range(self.batches):
            yield torch.zeros(2, 1), torch.zeros(2, dtype=torch.int64)


def test_fit_names_label_epoch_batch_and_loss(tmp_path: Path) -> None:
    recipe = Recipe("r", epochs=3, batch_size=2, lr=0.01, weight_decay=0)
    ckpt = tmp_path / "stage.ckpt"
    with pytest.raises(TrainingDiverged) as info:
        fit(
            TwoLosses(bad_at=10 + 3),
            Stream(10),
            recipe,
            evaluate=dict,
            label="resnet8/kd",
            reporter=Reporter(),
            device=torch.device("cpu"),
            checkpoint=ckpt,
        )
    exc = info.value
    assert (exc.label, exc.epoch, exc.batch, exc.loss) == ("resnet8/kd", 2, 3, "kd") and exc.exit_code == 1
    assert str(exc) == (
        "resnet8/kd: loss 'kd' is inf at epoch 2, batch 3/10; the run diverged: lower --lr "
        "(now 0.01) or check the method's loss"
    )
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1  # the last good epoch's checkpoint is kept


def test_deferred_check_used_on_cuda_reports_the_first_bad_batch() -> None:
    guard = DivergenceGuard("m/s", 0.1, 200, torch.device("cpu"))
    guard.deferred = True  # what CUDA does: no read of the loss until CHECK_EVERY batches or the epoch end
    finite = {"ce": torch.tensor(1.0), "kd": torch.tensor(2.0)}
    guard.batch(0, 0, finite, torch.tensor(3.0))
    guard.batch(0, 1, {"ce": torch.tensor(1.0), "kd": torch.tensor(math.nan)}, torch.tensor(math.nan))
    guard.batch(0, 2, {"ce": torch.tensor(math.inf), "kd": torch.tensor(1.0)}, torch.tensor(math.inf))
    with pytest.raises(TrainingDiverged, match="loss 'kd' is nan at epoch 1, batch 2/200"):
        guard.flush(0)
    guard.batch(1, 0, finite, torch.tensor(3.0))
    guard.flush(1)  # finite again: nothing raised
    for b in range(DivergenceGuard.CHECK_EVERY - 1):
        guard.batch(2, b, finite, torch.tensor(3.0))
    guard.batch(2, 3, {"ce": torch.tensor(1e38), "kd": torch.tensor(1e38)}, torch.tensor(math.inf))
    with pytest.raises(TrainingDiverged, match="loss 'total' is inf at epoch 3, batch 4/200"):
        guard.batch(2, DivergenceGuard.CHECK_EVERY - 1, finite, torch.tensor(3.0))  # the periodic read


# ---- where results go is checked before any training --------------------------------------------------


@pytest.mark.parametrize(
    "out, expected",
    [
        ("a-file", "'{tmp}/a-file' is a file, not a folder; give a folder path"),
        ("a-file/runs", "'{tmp}/a-file' is a file, so no folder can be made under it"),
    ],
)
def test_out_under_or_at_a_file_is_refused_before_training(capsys, tmp_path: Path, out: str, expected: str) -> None:
    (tmp_path / "a-file").write_text("keep me")
    line = one_line_error(capsys, [*TINY, "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / out)], code=2)
    assert expected.format(tmp=tmp_path) in line and line.startswith(f"bench: error: --out {tmp_path / out}:")
    assert not (tmp_path / "cache").exists()  # nothing decoded, nothing trained
    assert (tmp_path / "a-file").read_text() == "keep me"


def test_unwritable_out_is_refused_before_training(capsys, tmp_path: Path, monkeypatch) -> None:
    import harness.run.preflight as preflight

    def denied(**kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(preflight.tempfile, "mkstemp", denied)  # root ignores chmod: simulate the probe failing
    line = one_line_error(
        capsys, [*TINY, "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "ro" / "runs")], code=2
    )
    assert f"--out {tmp_path / 'ro' / 'runs'}: cannot write in '{tmp_path}' (Permission denied)" in line
    assert not (tmp_path / "cache").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write in read-only folders")
def test_read_only_out_folder_is_refused(capsys, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        line = one_line_error(capsys, [*TINY, "--cache-dir", str(tmp_path / "cache"), "--out", str(ro)], code=2)
    finally:
        ro.chmod(0o755)
    assert "cannot write in" in line


def test_export_and_report_targets_are_checked(capsys, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    records = str(Path(__file__).parent)  # any folder: the target is checked first
    for args in (
        ["table", records, "--export", str(tmp_path / "a-file" / "t")],
        ["plot", records, "--out", str(tmp_path / "a-file")],
        ["check", records, "--junit", str(tmp_path)],
        ["check", records, "--save-reference", str(tmp_path / "a-file" / "ref.csv")],
        ["reproduce", "smoke", "--dry-run", "--export", str(tmp_path / "a-file" / "e")],
    ):
        line = one_line_error(capsys, args, code=2)
        assert ("is a file" in line or "is a folder" in line) and args[-2] in line, line


# ---- bad command lines: one line, exit 2 ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "--methods", "baseline", "--arch", "resnet8", "--seeds", "0,0"], "seed 0 is listed twice in '0,0'"),
        (["run", "--methods", "baseline", "--arch", "resnet8", "--seeds", "1,2,1,2"], "seed 1, 2 is listed twice"),
        (["run", "--methods", "baseline", "--arch", "resnet8", "--seeds", "0,x"], "comma-separated integers"),
        (
            ["run", "--arch", "resnet8"],
            "required: --methods, or a study file: bench run STUDY.toml (see 'bench run -h')",
        ),
        (["lst"], "invalid choice: 'lst'"),
        (["run", "--methods", "baseline", "--arch", "resnet8", "--epochs", "two"], "--epochs: invalid int value"),
    ],
)
def test_command_line_errors_are_one_line(capsys, args: list[str], expected: str) -> None:
    line = one_line_error(capsys, args, code=2)
    assert expected in line


# ---- data access ------------------------------------------------------------------------------------------


def test_no_download_is_honoured_without_data_dir(capsys, tmp_path: Path, monkeypatch) -> None:
    import plugins.datasets.cifar as cifar

    tried = []
    real = cifar._torchvision_split
    monkeypatch.setattr(
        cifar,
        "_torchvision_split",
        lambda name, root, train, download: tried.append(download) or real(name, root, train, False),
    )
    (tmp_path / "cache" / "torchvision" / "cifar-10-batches-py").mkdir(parents=True)  # an empty, broken copy
    line = one_line_error(
        capsys,
        [
            "run",
            "--methods",
            "baseline",
            "--arch",
            "resnet8",
            "--dataset",
            "cifar10",
            "--no-download",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--quiet",
        ],
        code=2,
    )
    assert True not in tried  # never a download attempt
    assert f"cifar10: not found in '{tmp_path}/cache/torchvision/cifar-10-batches-py' (incomplete or corrupt" in line
    assert "--no-download was given" in line and "--data-dir" in line


# ---- image folders: unreadable files, junk files, classes missing from test/ -----------------------------


def tree_args(tmp_path: Path, source: Path) -> list[str]:
    return [
        "run",
        "--methods",
        "baseline",
        "--arch",
        "resnet8",
        "--dataset",
        f"imagefolder:{source}",
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
    ]


@pytest.mark.parametrize(
    "archive, content, error",
    [
        (None, b"not an image at all", "UnidentifiedImageError: cannot identify image file"),
        ("zip", b"\xff\xd8\xff\xe0 truncated JPEG", "OSError"),
        ("gztar", b"not an image at all", "UnidentifiedImageError"),
    ],
)
def test_corrupt_image_is_named_before_training(
    capsys, tmp_path: Path, archive: str | None, content: bytes, error: str
) -> None:
    import shutil

    from test_data import make_tree

    tree = make_tree(tmp_path / "tree")
    (tmp_path / "tree" / "train" / "class1" / "broken.jpg").write_bytes(content)
    source = Path(shutil.make_archive(str(tmp_path / "tree-archive"), archive, tree)) if archive else tree
    line = one_line_error(capsys, tree_args(tmp_path, source), code=2)
    inside = "./train/class1/broken.jpg" if archive == "gztar" else "train/class1/broken.jpg"  # as the tar names it
    assert f"cannot read image '{inside}' in '{source}' ({error}" in line
    assert line.endswith("remove or replace it")
    assert not (tmp_path / "cache" / "artifacts").exists() and not (tmp_path / "out").exists()


def test_images_of_another_size_are_named(capsys, tmp_path: Path) -> None:
    from PIL import Image

    from test_data import make_tree

    tree = make_tree(tmp_path / "tree")
    Image.new("L", (30, 28)).save(tree / "test" / "class2" / "wide.png")
    line = one_line_error(capsys, tree_args(tmp_path, tree), code=2)
    assert "'test/class2/wide.png' is 30x28, 12 of 13 are 28x28; resize them to one size first" in line


def test_skipped_files_are_counted_in_one_notice(capsys, tmp_path: Path, cache_dir: Path) -> None:
    from harness.data.datasets import load_imagefolder

    from test_data import make_tree

    tree = make_tree(tmp_path / "tree")
    for junk in ("train/.DS_Store", "train/class0/notes.txt", "test/class1/._0.png", "README.md", "extra.png"):
        (tree / junk).write_bytes(b"x")
    notices: list[str] = []
    for _ in range(2):  # decoded, then from the cache: the notice is the same
        ds = load_imagefolder(tree, "t", tmp_path / "cache", notice=notices.append)
        assert len(ds.train_labels) == 39 and len(ds.test_labels) == 12
    assert len(notices) == 2 and notices[0] == notices[1]
    assert notices[0].startswith(f"note: t: skipped 5 file(s) in '{tree}' that are not images in the train/<class>/")
    assert "README.md, extra.png, test/class1/._0.png, ... (2 more)" in notices[0]
    load_imagefolder(tree, "t", tmp_path / "cache")  # default: one line on stderr
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("bench: note: t: skipped 5 file(s)")


def test_class_missing_from_test_is_warned_and_recorded(capsys, tmp_path: Path) -> None:
    import shutil

    from test_data import make_tree

    tree = make_tree(tmp_path / "tree", classes=4, per_split={"train": 40, "test": 12})
    shutil.rmtree(tree / "test" / "class3")
    assert main([*tree_args(tmp_path, tree), "--test-subset", "8"]) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "warning" in line]
    assert warning == [
        "bench: warning: imagefolder:tree: test/ has no images of 1 of the 4 classes in train/ "
        "(class3); test accuracy covers the other 3 only"
    ]
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("*.json")]
    assert record["dataset"]["missing_test_classes"] == ["class3"]
    assert record["dataset"]["test"] == 8  # the subset is spread over the classes that are there


# ---- progress in logs: one unwrapped line per epoch, lines while decoding and loading --------------------


def log_console():
    import io

    from rich.console import Console

    return Console(file=io.StringIO(), width=40, force_terminal=False)


def test_epoch_lines_in_a_log_are_one_unwrapped_line_each() -> None:
    from harness.core.progress import RichReporter

    console = log_console()
    reporter = RichReporter(console)
    reporter.start_stage("resnet8/kd [a-long-label]", epochs=2, batches=3)
    for epoch in (1, 2):
        for seen in (8, 16, 24):
            reporter.advance_batch(seen, {"ce": torch.tensor(2.0 * seen)}, torch.tensor(seen // 2))
        reporter.end_epoch(
            {
                "epoch": epoch,
                "lr": 0.1,
                "train_loss": 2.0,
                "train_acc": 50.0,
                "test_acc": 41.5,
                "test_loss": 1.9,
                "images_per_s": 1234.0,
            }
        )
    reporter.note("a note that is certainly longer than the forty columns of this console")
    reporter.end_stage()
    lines = console.file.getvalue().splitlines()
    assert lines[0] == (
        "resnet8/kd [a-long-label] epoch 1/2  lr 0.1  loss 2.0000 acc  50.0%  test_acc 41.50  "
        "test_loss 1.90  1234 img/s"
    )
    assert len(lines) == 3 and lines[1].startswith("resnet8/kd [a-long-label] epoch 2/2") and "longer" in lines[2]


def test_task_progress_prints_periodic_lines_when_not_a_terminal(monkeypatch) -> None:
    from harness.core import progress

    monkeypatch.setattr(progress, "_QUIET", False)  # as without --quiet
    console = log_console()
    clock = iter(range(0, 1000, 4))  # every call: 4 s later
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    with progress.task("decoding x train/", 100, console=console, every_s=10) as advance:
        for _ in range(10):
            advance(10)
    lines = console.file.getvalue().splitlines()
    assert lines[0] == "decoding x train/: 100 to do"
    assert lines[1] == "decoding x train/: 30/100 (30%, 12 s)" and len(lines) == 1 + 3  # at 12, 24, 36 s
    progress.set_quiet(True)
    quiet = log_console()
    with progress.task("x", 5, console=quiet) as advance:
        advance(5)
    assert quiet.file.getvalue() == ""


def test_loading_a_large_file_says_so(tmp_path: Path, monkeypatch) -> None:
    from harness.core import progress

    monkeypatch.setattr(progress, "_QUIET", False)
    big = tmp_path / "big.pt"
    big.write_bytes(b"0" * 2_000)
    console = log_console()
    with progress.loading(big, "loading decoded dataset", min_bytes=1_000, console=console):
        pass
    with progress.loading(big, "loading", min_bytes=10_000, console=console):  # small files: nothing
        pass
    assert console.file.getvalue() == f"loading decoded dataset {big} (0 MB)\n"


def test_loading_a_trained_artifact_says_so(tmp_path: Path, monkeypatch) -> None:
    from harness.core import progress
    from harness.train import artifacts

    console = log_console()
    real = progress.loading
    monkeypatch.setattr(progress, "_QUIET", False)
    monkeypatch.setattr(artifacts, "loading", lambda path, text: real(path, text, min_bytes=1, console=console))
    store = artifacts.ArtifactStore(tmp_path)
    from harness.core.identity import weights_digest

    weights = {"w": torch.zeros(3)}
    store.save(
        "baseline",
        "0123456789abcdef",
        {"objective": weights, "history": [], "seconds": 0.0},
        {"digest": weights_digest(weights)},
    )
    assert store.load("baseline", "0123456789abcdef")["objective"]["w"].shape == (3,)
    path = tmp_path / "baseline" / "0123456789abcdef.pt"
    assert console.file.getvalue() == f"loading trained artifact baseline/0123456789ab {path} (0 MB)\n"


# ---- plugins that exit or conflict do not take other commands down --------------------------------------


@pytest.fixture
def fresh_plugins(tmp_path: Path, monkeypatch):
    """A folder on sys.path for fake installed plugins, and a plugin set loaded anew by the next command."""
    import harness.plugins.manager as manager

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(manager, "_CACHE", None)
    yield site
    manager._CACHE = None


@pytest.mark.parametrize(
    "source, where",
    [
        ("import sys\nsys.exit(3)\n", "failed to load: SystemExit: 3 (the plugin exits the process)"),
        (
            "from harness import hookimpl\n@hookimpl\ndef bench_register_methods(register):\n    raise SystemExit\n",
            "failed in bench_register_methods: SystemExit (the plugin exits the process)",
        ),
    ],
)
def test_plugin_calling_sys_exit_is_named_and_skipped(capsys, fresh_plugins: Path, source: str, where: str) -> None:
    from test_plugins import fake_distribution

    fake_distribution(fresh_plugins, "bench-quitter", "quitter", "bench_quitter_mod", source)
    assert main(["list", "methods"]) == 0
    captured = capsys.readouterr()
    assert "baseline" in captured.out
    assert captured.err.strip() == (
        f"bench: warning: plugin 'quitter' from package 'bench-quitter' {where} "
        f"(skipped; set BENCH_DISABLE_PLUGINS=quitter to silence)"
    )


def test_conflicting_plugins_break_only_the_conflicting_name(capsys, fresh_plugins: Path, tmp_path: Path) -> None:
    from test_plugins import fake_distribution

    fake_distribution(
        fresh_plugins,
        "bench-rival",
        "rival",
        "bench_rival_mod",
        """
        from harness.api import Method, hookimpl
        class RivalBaseline(Method):
            pass
        @hookimpl
        def bench_register_methods(register):
            register("baseline", RivalBaseline, description="another baseline")
    """,
    )
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    (rival,) = [line for line in out.splitlines() if line.startswith("│ rival ")]
    assert "│ bench-rival " in rival and "│ conflict: method 'baseline' also" in rival
    assert main(["list", "methods"]) == 0 and "baseline, rival (conflict)" in capsys.readouterr().out
    assert main(["table", str(tmp_path / "no-records")]) == 2  # runs (and says there is nothing to show)
    assert "no such file or folder" in capsys.readouterr().err
    line = one_line_error(capsys, [*TINY, "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "o")], 2)
    assert line == (
        "bench: error: method 'baseline' is registered by both plugin 'baseline' and plugin 'rival'; "
        "disable one with BENCH_DISABLE_PLUGINS=rival"
    )


# ---- files get the user's umask, not mkstemp's 0600 -------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_written_files_follow_the_umask(tmp_path: Path, mask: int) -> None:
    import subprocess
    import sys

    script = (
        "import os, sys; from pathlib import Path; os.umask(int(sys.argv[2], 8)); "
        "from harness.core.io import atomic_write_json, atomic_torch_save; "
        "atomic_write_json(Path(sys.argv[1]) / 'r.json', {}); atomic_torch_save({}, Path(sys.argv[1]) / 'a.pt')"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path), oct(mask)], check=True)
    for name in ("r.json", "a.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


def test_records_of_a_run_are_readable_by_the_group(tmp_path: Path, cache_dir: Path) -> None:
    from conftest import run_tiny
    from harness.core.io import umask

    (path,) = run_tiny(cache_dir, tmp_path).paths
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask()
