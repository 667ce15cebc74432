"""Statistics, `bench check` as a CI gate, `bench reproduce` planning and record reuse."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from scipy import stats as scipy_stats

from conftest import read_records, run_tiny
from harness.cli import main
from harness.results.stats import summarize, welch_p
from harness.results.aggregation import aggregate


def test_summary_and_welch_by_hand() -> None:
    s = summarize([1.0, 2.0, 3.0])
    assert (s.n, s.mean, s.std) == (3, 2.0, 1.0)
    assert s.ci95 == pytest.approx(4.302653 / 3**0.5, rel=1e-5)  # t(0.975, 2) * s / sqrt(n)
    assert summarize([5.0]).ci95 is None
    a, b = [70.1, 70.5, 70.3], [71.9, 72.4, 72.0]
    assert welch_p(a, b) == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert welch_p([1.0], b) is None


def fake_records(base: dict, accs: dict[str, list[float]]) -> list[dict]:
    out = []
    for method, values in accs.items():
        for seed, acc in enumerate(values):
            r = copy.deepcopy(base)
            r["method"] = {"name": method, "options": {}, "defaults": {}}
            r["seed"] = seed
            r["metrics"]["top1_last"] = acc
            out.append(r)
    return out


@pytest.fixture(scope="module")
def one_record(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict:
    out = tmp_path_factory.mktemp("one")
    (record,) = run_tiny(cache_dir, out).records
    return record


def test_table_marks_significance(one_record: dict) -> None:
    recs = fake_records(
        one_record, {"baseline": [50.0, 50.2, 49.9], "se": [55.0, 55.3, 54.8], "kd": [50.1, 49.7, 50.4]}
    )
    rows = {r.method: r for r in aggregate(recs)}
    assert rows["se"].delta_text().endswith("*") and rows["se"].p_value < 0.05
    assert rows["kd"].delta_text().endswith("(n.s.)")
    assert rows["baseline"].delta is None and rows["se"].ci95 is not None


def write(folder: Path, records: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(records):
        (folder / f"r{i}.json").write_text(json.dumps(r))
    return folder


def test_check_passes_then_fails_on_regression(tmp_path: Path, one_record: dict, capsys) -> None:
    good = write(tmp_path / "good", fake_records(one_record, {"baseline": [40.0, 41.0], "se": [45.0, 44.0]}))
    ref = tmp_path / "ref.csv"
    assert main(["check", str(good), "--save-reference", str(ref), "--table", "mini"]) == 0
    assert main(["check", str(good), "--reference", str(ref), "--tolerance", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 passed, 0 failed" in out and out.count("PASS") == 2
    bad = write(tmp_path / "bad", fake_records(one_record, {"baseline": [40.0, 41.0], "se": [42.0, 43.0]}))
    junit = tmp_path / "report.xml"
    assert main(["check", str(bad), "--reference", str(ref), "--tolerance", "1", "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    fail = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(fail) == 1 and "/resnet8/se" in fail[0] and "42.50" in fail[0] and "44.50" in fail[0]
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    assert [c.get("name") for c in suite if c.find("failure") is not None] == ["cifar10-mini/resnet8/se"]
    # within tolerance passes; a missing method fails
    assert main(["check", str(bad), "--reference", str(ref), "--tolerance", "2.5"]) == 0
    only_base = write(tmp_path / "only", fake_records(one_record, {"baseline": [40.0, 41.0]}))
    assert main(["check", str(only_base), "--reference", str(ref)]) == 1
    assert "no record" in capsys.readouterr().out


def test_committed_smoke_reference_loads() -> None:
    from harness.results.reference import table_values

    methods = {v.method for v in table_values("smoke")}
    assert methods == {"baseline", "se", "kd", "encodenet"}


def test_reproduce_dry_run_and_unknown_table(capsys, cache_dir: Path, tmp_path: Path) -> None:
    args = ["--cache-dir", str(cache_dir), "--out", str(tmp_path)]
    assert main(["reproduce", "table4", "--dataset", "cifar10-mini", "--recipe", "smoke", "--dry-run", *args]) == 0
    out = capsys.readouterr().out
    assert "resnet32 <- resnet110" in out and "vgg8 <- vgg16" in out and "image-epochs" in out
    assert "paraphraser" in out and "autoencoder" in out
    assert main(["reproduce", "table9", *args]) == 2


def test_reproduce_no_train_table5(capsys) -> None:
    assert main(["reproduce", "table5", "--no-train"]) == 0
    out = capsys.readouterr().out
    assert "26,220,196" in out and "24,063,319" in out and "149.47" in out and "23,705,252" in out


def test_resume_reuses_finished_records(tmp_path: Path, cache_dir: Path) -> None:
    first = run_tiny(cache_dir, tmp_path, methods=["baseline", "se"])
    again = run_tiny(cache_dir, tmp_path, methods=["baseline", "se"], reuse_records=True)
    assert [r["created"] for r in again.records] == [r["created"] for r in first.records]
    assert len(read_records(tmp_path)) == 2


def test_plots_and_table_export(tmp_path: Path, one_record: dict, capsys) -> None:
    runs = write(tmp_path / "runs", fake_records(one_record, {"baseline": [40.0, 41.0], "se": [45.0, 44.0]}))
    assert main(["plot", str(runs), "--out", str(tmp_path / "plots")]) == 0
    files = sorted(p.name for p in (tmp_path / "plots").rglob("*") if p.is_file())
    assert any(f.startswith("efficiency__") and f.endswith(".png") for f in files)
    assert any(f.startswith("efficiency__") and f.endswith(".svg") for f in files)
    assert sum(f.endswith(".png") for f in files) == 1 + 4  # one efficiency figure, four runs' curves
    for png in (tmp_path / "plots").rglob("*.png"):
        assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["table", str(runs), "--export", str(tmp_path / "exp" / "t")]) == 0
    assert "| baseline" in (tmp_path / "exp" / "t.md").read_text()
    assert (tmp_path / "exp" / "t.csv").read_text().startswith("group,dataset,source,arch,budget,method,variant")


def test_reproduce_under_torchrun_is_refused(capsys, monkeypatch, cache_dir: Path, tmp_path: Path) -> None:
    """torchrun's ranks train one `bench run` together; `bench reproduce` has no such path: every rank would
    run the whole table on its own (each stage trained by one rank, waited for by the others, every record
    written by every rank). A one-line UsageError before anything is planned."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    args = ["--cache-dir", str(cache_dir), "--out", str(tmp_path)]
    assert main(["reproduce", "smoke", "--dataset", "cifar10-mini", "--recipe", "smoke", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "torchrun" in err, err
