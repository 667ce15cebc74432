"""Tables never mix runs: one group per comparability key, duplicates counted once, every number over seeds.

All records here are written by hand (no training): the shape is what ``harness.run.recording.build_record`` writes.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path

import pytest

from harness.data.datasets import display_name, path_stem
from harness.results.check import Settings, compare, save_reference
from harness.results.reference import RefValue
from harness.results.records import record_path
from harness.results.records import migrate
from harness.results.aggregation import aggregate, collect
from harness.results.grouping import comparability_key as record_key
from harness.results.tables import render
from conftest import REPO
from harness.cli import main
from harness.core.errors import UsageError

LOCATION = "/work/shared/data/cifar10-jpg.tar.gz"


def record(
    method: str = "baseline",
    seed: int = 0,
    acc: float = 40.0,
    *,
    train: int = 5000,
    test: int = 1000,
    latency: float = 1.0,
    created: str = "2026-11-22T08:00:00+00:00",
    name: str = f"imagefolder:{LOCATION}",
    **changes: object,
) -> dict:
    r = {
        "schema": 1,
        "run_key": f"{method}{seed}{train}".ljust(20, "0"),
        "request_key": "r" * 20,
        "created": created,
        "method": {"name": method, "options": {}, "defaults": {}, "plugin": method},
        "arch": "resnet8",
        "teacher": None,
        "seed": seed,
        "dataset": {
            "name": name,
            "source": f"image folder {LOCATION}",
            "fingerprint": f"fp{train}x{test}",
            "num_classes": 10,
            "input": [3, 32, 32],
            "train": train,
            "test": test,
            "val": 0,
            "mean": [0.5] * 3,
            "std": [0.25] * 3,
            "train_subset": train,
            "test_subset": test,
            "split_seed": 0,
        },
        "recipe": {
            "name": "crd",
            "epochs": 8,
            "batch_size": 64,
            "lr": 0.05,
            "weight_decay": 5e-4,
            "momentum": 0.9,
            "nesterov": False,
            "schedule": "multistep",
            "milestones": [5, 6, 7],
            "gamma": 0.1,
            "warmup_epochs": 0,
            "stage_epochs": {},
            "notes": "CRD recipe",
        },
        "config": {"select": "last", "amp": False, "channels_last": True, "seeds_in_run": [0], "methods_in_run": []},
        "device": {"type": "cpu", "threads": 1, "name": "x86_64"},
        "metrics": {
            "top1_last": acc,
            "top1_best": acc,
            "top1_selected": acc,
            "params_deployed": 78_042,
            "params_extra": 0,
            "flops": 25_003_264,
            "latency_ms": {"batch1": latency, "batch64": latency * 20},
        },
        "info": {},
    }
    for path, value in changes.items():  # "recipe__lr": 0.1 sets r["recipe"]["lr"]
        *parents, leaf = path.split("__")
        target = r
        for p in parents:
            target = target[p]
        target[leaf] = value
    return r


def write(folder: Path, records: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(records):
        (folder / f"r{i}-{r['method']['name']}-seed{r['seed']}.json").write_text(json.dumps(r))
    return folder


def two_subsets() -> list[dict]:
    """The issue's folder: 5,000- and 200-image baselines (seeds 0, 1 each), label smoothing on 5,000 only."""
    return [
        record("baseline", 0, 41.0, latency=419.8),
        record("baseline", 1, 42.0, latency=0.88),
        record("baseline", 0, 15.0, train=200, test=200),
        record("baseline", 1, 17.0, train=200, test=200),
        record("label-smoothing", 0, 43.0),
        record("label-smoothing", 1, 43.5),
    ]


def test_two_subsets_render_two_groups_never_one(tmp_path: Path, capsys) -> None:
    agg = collect(two_subsets())
    assert len(agg.groups) == 2
    rows = {(r.group.data["train"], r.method): r for r in agg.rows}
    assert rows[5000, "baseline"].values == [41.0, 42.0] and rows[200, "baseline"].values == [15.0, 17.0]
    assert rows[5000, "label-smoothing"].delta == pytest.approx(43.25 - 41.5)  # against its own baseline only
    assert (200, "label-smoothing") not in rows
    folder = write(tmp_path / "runs", two_subsets())
    assert main(["table", str(folder), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert md.count("### resnet8 on imagefolder:cifar10-jpg (crd 8ep bs64)") == 2
    assert "[200 train / 200 test]" in md and "[5,000 train / 1,000 test]" in md
    assert "| baseline" in md and md.count("| baseline") == 2 and "over 4" not in md
    assert main(["table", str(folder)]) == 0  # rich: one table per group
    out = capsys.readouterr().out
    assert out.count("resnet8 on imagefolder:cifar10-jpg (crd 8ep bs64) [") == 2


def comparability_key(r: dict) -> tuple[str, ...]:
    """The key of a hand-written (schema 1) record, read as every reader reads it: migrated."""
    return record_key(migrate(r))


def test_any_setting_difference_splits_groups() -> None:
    base = record()
    variants = [
        record(recipe__lr=0.1),
        record(recipe__milestones=[4, 6, 7]),
        record(recipe__stage_epochs={"x": 1}),
        record(config__amp=True),
        record(config__channels_last=False),
        record(device__type="cuda"),
        record(config__select="best"),
        record(dataset__split_seed=1),
        record(dataset__val_split=0.1),
        record(dataset__fingerprint="other"),
        record(arch="resnet14"),
        record(engine={"version": 2, "device": "cpu", "amp": False, "channels_last": True}),
    ]
    keys = {comparability_key(r) for r in [base, *variants]}
    assert len(keys) == 1 + len(variants)
    # what does not change the training does not split: the recipe's description, the data's path and source
    same = [
        record(recipe__notes="other words"),
        record(dataset__source="elsewhere"),
        record(name="imagefolder:cifar10-jpg", dataset__location=LOCATION),
        record(method={"name": "kd", "options": {}, "defaults": {}}, seed=3),
    ]
    assert {comparability_key(r) for r in same} == {comparability_key(base)}


def test_engine_field_wins_over_config() -> None:
    with_engine = record(engine={"version": 1, "device": "cpu", "amp": False, "channels_last": True})
    same_engine = record(engine={"version": 1, "device": "cpu", "amp": False, "channels_last": True}, config__amp=True)
    assert comparability_key(with_engine) == comparability_key(same_engine)
    assert comparability_key(with_engine) != comparability_key(record())  # unversioned (old) records stay apart


def test_duplicate_seed_counted_once_and_reported(tmp_path: Path, capsys) -> None:
    old = record("baseline", 0, 15.0, train=200, test=200, created="2026-11-22T08:00:00+00:00")
    rerun = record("baseline", 0, 15.4, train=200, test=200, created="2026-11-23T08:00:00+00:00")
    recs = [old, record("baseline", 1, 17.0, train=200, test=200), rerun]
    (row,) = aggregate(recs)
    assert row.seeds == [0, 1] and row.values == [15.4, 17.0]  # the newest record of seed 0
    (dup,) = row.duplicates
    assert dup.seed == 0 and len(dup.ignored) == 1
    folder = write(tmp_path / "runs", recs)
    for fmt in ("markdown", "rich"):
        assert main(["table", str(folder), "--format", fmt]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert (
            "1 duplicate record(s) ignored: baseline seed 0 (kept r2-baseline-seed0.json; ignored "
            "r0-baseline-seed0.json)" in out
        )
    assert main(["table", str(folder), "--format", "json"]) == 0
    (data,) = json.loads(capsys.readouterr().out)
    assert data["n"] == 2 and data["seeds"] == [0, 1] and len(data["duplicates_ignored"]) == 1


def test_failed_records_are_not_aggregated() -> None:
    recs = [record(seed=0, acc=40.0), record(seed=1, acc=42.0, status="ok"), record(seed=2, acc=0.0, status="failed")]
    agg = collect(recs)
    (row,) = agg.rows
    assert row.seeds == [0, 1] and len(agg.not_ok) == 1


def test_every_numeric_column_is_a_mean_over_seeds(capsys, tmp_path: Path) -> None:
    recs = [
        record(seed=0, latency=419.8, metrics__flops=100, metrics__params_deployed=10),
        record(seed=1, latency=0.88, metrics__flops=300, metrics__params_deployed=30),
    ]
    (row,) = aggregate(recs)
    assert row.measured("latency") == pytest.approx((419.8 + 0.88) / 2) and row.measured_std("latency") > 290
    assert row.measured("flops") == 200 and row.params == 20
    kd = [record("kd", s, teacher={"arch": "resnet14", "test_acc": acc}) for s, acc in ((0, 60.0), (1, 62.0))]
    kd_row = next(r for r in aggregate(recs + kd) if r.method == "kd")
    assert kd_row.teacher == "resnet14 (61.00)"
    assert main(["table", str(write(tmp_path / "runs", recs)), "--format", "markdown"]) == 0
    assert "210.34 ± 296.22" in capsys.readouterr().out


def test_teacher_arch_is_a_row_distinction() -> None:
    kd = [record("kd", 0, teacher={"arch": arch, "test_acc": 60.0}) for arch in ("resnet14", "resnet20")]
    recs = [record("baseline", 0), *kd]
    rows = aggregate(recs)
    assert len({r.group.key for r in rows}) == 1
    assert sorted(r.teacher_arch or "" for r in rows) == ["", "resnet14", "resnet20"]
    assert all(r.delta is not None for r in rows if r.method == "kd")


def test_caption_states_the_real_data_size_and_no_path(capsys, tmp_path: Path) -> None:
    small = record(train=300, test=200, dataset__source="bundled CIFAR-10 subset (JPEG copy; 5,000 train / 1,000 test)")
    (group,) = collect([small]).groups
    cap = group.caption()
    assert cap.startswith("Data: 300 train / 200 test images (train subset 300, test subset 200, split seed 0")
    held = record(train=270, test=200, dataset__val=30, dataset__val_split=0.1)
    assert collect([held]).groups[0].data_text().startswith("270 train / 30 val / 200 test images")
    folder = write(tmp_path / "runs", [record(), small])
    for fmt in ("rich", "markdown", "csv", "json"):
        assert main(["table", str(folder), "--format", fmt]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "/work/" not in out and "shared/data" not in out, fmt
        assert "image folder cifar10-jpg.tar.gz" in out or fmt == "csv"  # a source's path: its last component
        assert "300 train / 200 test" in out and "5,000 train / 1,000 test" in out


def test_csv_and_json_identify_the_group(capsys, tmp_path: Path) -> None:
    folder = write(tmp_path / "runs", two_subsets())
    assert main(["table", str(folder), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len({r["group"] for r in rows}) == 2 and {r["data"].split(" images")[0] for r in rows} == {
        "5,000 train / 1,000 test",
        "200 train / 200 test",
    }
    assert main(["table", str(folder), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    groups = {d["group"]: d["setting"] for d in data}
    assert len(groups) == 2 and {g["data"]["train"] for g in groups.values()} == {5000, 200}


def test_dataset_display_name_is_short_and_stable(tmp_path: Path) -> None:
    assert display_name(f"imagefolder:{LOCATION}") == "imagefolder:cifar10-jpg"
    assert display_name("imagefolder:../shared/data/cifar10-jpg.tar.gz") == "imagefolder:cifar10-jpg"
    assert display_name("imagefolder:cifar10-jpg") == "imagefolder:cifar10-jpg"
    assert display_name("cifar10-mini") == "cifar10-mini"
    assert [path_stem(p) for p in ("/a/x.tgz", "/a/x.zip", "/a/x.tar", "/a/tree/", "x")] == ["x", "x", "x", "tree", "x"]
    name = record_path(tmp_path, record()).name
    assert name.startswith("imagefolder-cifar10-jpg__resnet8__baseline__crd__seed0__")
    assert "work" not in name and "shared" not in name


def test_imagefolder_plugin_names_without_path(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    from PIL import Image

    from harness.data.datasets import DatasetRequest, prepare
    from plugins.datasets.imagefolder import load

    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / "my-tree" / split / cls).mkdir(parents=True)
            image = Image.new("RGB", (8, 8), (10 if cls == "a" else 200, 0, 0))
            image.save(tmp_path / "my-tree" / split / cls / "0.png")
    ds = load(
        DatasetRequest(
            name=f"imagefolder:{tmp_path / 'my-tree'}", arg=str(tmp_path / "my-tree"), cache_dir=tmp_path / "cache"
        )
    )
    info = prepare(ds).describe()  # the harness fingerprints what the loader returned
    assert info["name"] == "imagefolder:my-tree" and info["location"] == str(tmp_path / "my-tree")
    assert str(tmp_path) not in info["source"] and info["fingerprint"]


def test_check_never_merges_groups(tmp_path: Path) -> None:
    recs = two_subsets()
    ref = [
        RefValue(
            table="t",
            dataset="imagefolder:cifar10-jpg",
            arch="resnet8",
            teacher="",
            method="baseline",
            variant="",
            metric="top1",
            value=40.0,
            protocol="last",
            runs="2",
            source="x",
            where="x:1",
        )
    ]
    results = compare(recs, ref, settings=Settings(tolerance=1.0, direction="down")).rows
    assert len(results) == 2  # one check per group: the 200-image baseline fails on its own
    assert sorted(r.passed for r in results) == [False, True]
    assert all("train /" in r.name for r in results)
    with pytest.raises(UsageError, match="non-comparable"):
        save_reference(recs, tmp_path / "ref.csv", "t")
    assert save_reference([r for r in recs if r["dataset"]["train"] == 5000], tmp_path / "ok.csv", "t")[0] == 2


def test_render_formats_do_not_crash_on_mixed_folder() -> None:
    recs = two_subsets() + [copy.deepcopy(two_subsets()[0])]
    for fmt in ("markdown", "csv", "json"):
        assert render(recs, fmt)


PUBLISHED = sorted((REPO / "results" / "published").glob("*/runs"))


@pytest.mark.parametrize("runs", PUBLISHED, ids=lambda p: p.parent.name)
def test_published_studies_load_and_render_as_committed(runs: Path) -> None:
    """Every published record (schema 1, some without ``engine`` or ``status``) is read through the one
    migration, none is skipped, and each study's markdown tables (``table-vs-METHOD.md``: Δ against METHOD)
    are what is committed beside it."""
    from harness.results.records import LoadReport, load_records

    report = LoadReport([])
    records = load_records([runs], failed=True, report=report)
    assert report.skipped == [] and len(records) == len(list(runs.rglob("*.json")))
    for metric, name in (("last", "table.md"), ("best", "table-best-epoch.md")):
        committed = runs.parent / name
        if committed.exists():
            assert render(records, "markdown", metric) == committed.read_text(), committed
    for committed in runs.parent.glob("table-vs-*.md"):  # `bench table --against METHOD --format markdown`
        against = committed.stem.removeprefix("table-vs-")
        assert render(records, "markdown", against=against) == committed.read_text(), committed


# ---- the terminal table and the exports (issue 20) -------------------------------------------------------


TWELVE = [
    "baseline",
    "encodenet",
    "encodenet-finetune",
    "baseline-matched",
    "kd",
    "fitnet",
    "ft-crd",
    "gam-gc",
    "cbam",
    "filter-ft",
    "wavecnet",
    "lowrank",
]


def twelve_methods() -> list[dict]:
    """Twelve methods over three seeds, some with options (long variants) or a teacher: a real table's width."""
    recs = []
    for i, method in enumerate(TWELVE):
        for seed in range(3):
            changes: dict = {"metrics__macs": 1_304_195_584 + i, "metrics__params_deployed": 23_705_252 + 1000 * i}
            if method in ("kd", "fitnet", "ft-crd"):
                changes["teacher"] = {"arch": "resnet32x4", "test_acc": 79.42}
            r = record(method, seed, 70.0 + i + 0.37 * seed, **changes)
            if method == "encodenet-finetune":
                r["method"] = {
                    "name": method,
                    "options": {"split": "classifier", "ae_epochs": 500},
                    "defaults": {"split": -1, "ae_epochs": 0},
                    "plugin": "encodenet",
                }
            recs.append(r)
    return recs


def quickstart() -> list[dict]:
    return [record(m, s, 37.3 + s, metrics__macs=12_512_192) for m in ("baseline", "label-smoothing") for s in (0, 1)]


@pytest.mark.parametrize("records", [quickstart(), twelve_methods()], ids=["quickstart", "twelve-methods"])
@pytest.mark.parametrize("width", [80, 100])
def test_terminal_table_cuts_no_cell(records: list[dict], width: int) -> None:
    from rich.console import Console

    from harness.results.formatting import select_columns, table_rows

    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    render(records, "rich", console=console)
    text = console.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    rows = aggregate(records)
    headers, body = table_rows(rows, select_columns(rows, compact=True))
    assert headers == ["method", "top-1 (%)", "Δ vs baseline", "p (Welch)", "params", "MACs"]
    assert table_cells(text) == [["".join(cell.split()) for cell in line] for line in body]


@pytest.mark.parametrize("width", [80, 100, 160])
def test_wide_table_names_every_method_at_any_width(width: int) -> None:
    """--wide below the width of all its columns: more tables, each with the method column (issue 32: at 100
    columns the method column shrank to nothing, rows without names); no cell is cut or lost."""
    from rich.console import Console

    from harness.results.formatting import select_columns, table_rows

    records = twelve_methods()
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    render(records, "rich", console=console, wide=True)
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= width
    rows = aggregate(records)
    headers, body = table_rows(rows, select_columns(rows))
    assert all(h in text for h in headers)
    expected = [["".join(cell.split()) for cell in line] for line in body]
    cells = table_cells(text)
    parts = [cells[i : i + len(body)] for i in range(0, len(cells), len(body))]
    assert len(parts) > 1 if width < 160 else len(parts) >= 1
    for part in parts:  # every part names every row, in full
        assert [line[0] for line in part] == [line[0] for line in expected]
    assert [sum((part[r][1:] for part in parts), []) for r in range(len(body))] == [line[1:] for line in expected]


def table_cells(text: str) -> list[list[str]]:
    """The body cells of the rich tables in ``text``: a folded cell's lines joined, so a cut cell shows."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        cells = ["".join(c.split()) for c in line.strip("│").split("│")]
        if rows and not any(cells[1:]):  # a continuation line: only the (folded) method cell has text
            rows[-1][0] += cells[0]
        else:
            rows.append(cells)
    return rows


def test_wide_and_chosen_columns(capsys, tmp_path: Path) -> None:
    folder = write(tmp_path / "runs", twelve_methods())
    assert main(["table", str(folder), "--columns", "method,seeds,teacher"]) == 0
    out = capsys.readouterr().out
    assert "resnet32x4 (79.42)" in out and "Δ vs baseline" not in out and "seeds" in out
    assert main(["table", str(folder), "--wide"]) == 0
    assert "95% CI" in capsys.readouterr().out
    assert main(["table", str(folder), "--columns", "method,nonsense"]) == 2
    assert "unknown column(s) nonsense; columns: method, top1" in capsys.readouterr().err


def test_exports_carry_numbers(capsys, tmp_path: Path) -> None:
    folder = write(tmp_path / "runs", twelve_methods())
    assert main(["table", str(folder), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 12
    kd = next(r for r in rows if r["method"] == "kd")
    assert float(kd["mean"]) == pytest.approx(74.37) and float(kd["std"]) == pytest.approx(0.37)
    assert int(kd["n"]) == 3 and int(kd["params"]) == 23_709_252 and int(kd["macs"]) == 1_304_195_588
    assert float(kd["delta_vs_baseline"]) == pytest.approx(4.0) and 0 <= float(kd["p_welch"]) < 0.05
    assert kd["teacher_arch"] == "resnet32x4" and float(kd["teacher_top1"]) == pytest.approx(79.42)
    assert main(["table", str(folder), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data[0]["params"], int) and data[0]["n"] == 3 and len(data[0]["values"]) == 3


def test_noisy_latency_is_marked_never_silently_averaged() -> None:
    from harness.results.formatting import measure_text
    from harness.results.records import MEASURES

    latency = next(m for m in MEASURES if m.name == "latency")
    spread_seeds = aggregate([record(seed=0, latency=419.8), record(seed=1, latency=0.88)])[0]
    assert measure_text(spread_seeds, latency).endswith("(noisy)")  # std over seeds above the mean
    busy = aggregate([record(seed=0, metrics__latency_ms={"batch1": 2.0, "batch1_spread": 3.1})])[0]
    assert measure_text(busy, latency) == "2.00 (noisy)"  # one seed's own timings spread more than their median
    steady = aggregate([record(seed=0, latency=1.0), record(seed=1, latency=1.1)])[0]
    assert "noisy" not in measure_text(steady, latency)


def test_latency_is_a_median_with_its_spread() -> None:
    import torch

    from harness.models.cost import measure_latency

    timed = measure_latency(torch.nn.Linear(8, 8), (8,), 1, torch.device("cpu"), repeats=15)
    assert timed.repeats >= 15 and timed.median > 0 and timed.spread >= 0
    assert timed.noisy == (timed.spread > timed.median)


# ---- Δ and p against another method: bench table --against (issue 31) ------------------------------------


def against_kd() -> list[dict]:
    """A baseline, kd and fitnet from one teacher, and label smoothing, three seeds each (spread values)."""
    teacher = {"arch": "resnet14", "test_acc": 50.0}
    accs = {
        "baseline": [40.1, 41.3, 40.6],
        "kd": [42.0, 43.1, 42.4],
        "fitnet": [42.9, 44.0, 43.7],
        "label-smoothing": [40.9, 41.0, 42.2],
    }
    return [
        record(
            m,
            s,
            acc,
            **({"teacher": teacher} if m in ("kd", "fitnet") else {}),
            metrics__params_deployed=78_042 + 1000 * i,
        )
        for i, (m, values) in enumerate(accs.items())
        for s, acc in enumerate(values)
    ]


def welch(a: list[float], b: list[float]) -> float:
    from scipy import stats

    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def test_delta_and_p_against_kd_are_welch_on_the_records_values() -> None:
    recs = against_kd()
    values = {
        m: [r["metrics"]["top1_last"] for r in recs if r["method"]["name"] == m]
        for m in ("baseline", "kd", "fitnet", "label-smoothing")
    }
    params = {r["method"]["name"]: r["metrics"]["params_deployed"] for r in recs}
    rows = collect(recs, against="kd").rows
    assert [r.method for r in rows][0] == "kd"  # the reference row first
    by = {r.method: r for r in rows}
    assert by["kd"].delta is None and by["kd"].p_value is None
    for m in ("baseline", "fitnet", "label-smoothing"):
        assert by[m].delta == pytest.approx(sum(values[m]) / 3 - sum(values["kd"]) / 3)
        assert by[m].p_value == pytest.approx(welch(values[m], values["kd"]))
        # the sizes stay relative to the baseline: they are about the deployed model
        assert by[m].params_x_baseline == pytest.approx(params[m] / params["baseline"])
    default = {r.method: r for r in collect(recs).rows}
    assert default["kd"].p_value == pytest.approx(welch(values["kd"], values["baseline"]))
    assert render(recs, "markdown") == render(recs, "markdown", against="baseline")


def test_against_picks_the_row_of_the_same_teacher_and_never_guesses() -> None:
    t1, t2 = {"arch": "resnet14", "test_acc": 50.0}, {"arch": "resnet20", "test_acc": 52.0}
    recs = [
        record(m, s, acc + s, teacher=t)
        for m, acc, t in (
            ("kd", 42.0, t1),
            ("kd", 44.0, t2),
            ("fitnet", 43.0, t2),
            ("crd", 45.0, {"arch": "resnet32", "test_acc": 55.0}),
            ("baseline", 40.0, None),
        )
        for s in range(2)
    ]
    rows = {(r.method, r.teacher_arch): r for r in collect(recs, against="kd").rows}
    kd2, fitnet = rows["kd", "resnet20"], rows["fitnet", "resnet20"]
    assert fitnet.delta == pytest.approx(fitnet.mean - kd2.mean)
    assert fitnet.p_value == pytest.approx(welch(fitnet.values, kd2.values))
    for key in (("crd", "resnet32"), ("baseline", None), ("kd", "resnet14"), ("kd", "resnet20")):
        assert rows[key].delta is None and rows[key].p_value is None, key  # two kd rows, none of its teacher


def test_against_kd_in_header_caption_and_exports(capsys, tmp_path: Path) -> None:
    folder = write(tmp_path / "runs", against_kd())
    assert main(["table", str(folder), "--against", "kd"]) == 0
    out = capsys.readouterr().out
    assert "Δ vs kd" in out and "Δ vs baseline" not in out and "against kd of the same table" in out
    assert main(["table", str(folder), "--against", "kd", "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "Δ vs kd" in md and "Welch's t-test against kd of the same table" in md
    assert md.index("| kd ") < md.index("| baseline ")
    assert main(["table", str(folder), "--against", "kd", "--format", "csv"]) == 0
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert "delta_vs_baseline" not in rows["kd"] and "p_welch" not in rows["kd"]
    (fitnet,) = [r for r in collect(against_kd(), against="kd").rows if r.method == "fitnet"]
    assert float(rows["fitnet"]["delta_vs_kd"]) == pytest.approx(fitnet.delta)
    assert float(rows["fitnet"]["p_welch_vs_kd"]) == pytest.approx(fitnet.p_value)
    assert rows["kd"]["delta_vs_kd"] == ""
    assert main(["table", str(folder), "--format", "json", "--against", "kd"]) == 0
    assert all("delta_vs_kd" in r for r in json.loads(capsys.readouterr().out))


def test_against_a_method_no_table_has_is_one_line(capsys, tmp_path: Path) -> None:
    folder = write(tmp_path / "runs", against_kd())
    assert main(["table", str(folder), "--against", "dkd"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--against dkd" in err and "methods: baseline, fitnet, kd, label-smoothing" in err
    with pytest.raises(UsageError, match="--against crd"):
        collect(against_kd(), against="crd")
