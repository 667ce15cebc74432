"""`bench check`'s two modes: exact replay on the reference's platform, statistics elsewhere; the power a
statistical row reports; old (means-only) references. Records come from tiny runs or are edited by hand."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from conftest import run_tiny
from scipy import stats as scipy_stats

from harness.cli import main
from harness.results.stats import shift_test


@pytest.fixture(scope="module")
def kd_records(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> list[dict]:
    """A two-stage run (teacher, then the distilled student), two epochs each, on 320 images."""
    out = tmp_path_factory.mktemp("kd")
    return run_tiny(
        cache_dir, out, methods=["kd"], teacher="resnet14", overrides={"epochs": 2, "batch_size": 64}
    ).records


def write(folder: Path, records: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(records):
        (folder / f"r{i}.json").write_text(json.dumps({k: v for k, v in r.items() if not k.startswith("_")}))
    return folder


def check(capsys, *args: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["check", *args])
    return code, capsys.readouterr().out.splitlines()


def test_exact_mode_passes_a_rerun_and_fails_on_one_ulp_naming_the_first_divergence(
    tmp_path: Path, cache_dir: Path, kd_records: list[dict], capsys
) -> None:
    ref = tmp_path / "ref.json"
    assert main(["check", str(write(tmp_path / "a", kd_records)), "--save-reference", str(ref)]) == 0
    saved = json.loads(ref.read_text())
    assert saved["platform"]["threads"] and saved["platform"]["numerics"]["aten"]
    (row,) = saved["rows"]
    assert [s["label"] for s in row["seeds"][0]["trace"]["stages"]] == ["baseline[resnet14]", "train"]

    # the same run again, trained from scratch in this process: bit for bit the reference
    again = run_tiny(
        cache_dir,
        tmp_path / "b",
        methods=["kd"],
        teacher="resnet14",
        overrides={"epochs": 2, "batch_size": 64},
        retrain=True,
    ).records
    code, out = check(capsys, str(tmp_path / "b"), "--reference", str(ref))
    assert code == 0 and out[0].startswith("platform matches the reference's") and "exact mode" in out[0]
    assert out[1].startswith("PASS") and "exact: seed(s) 0 identical to the reference (2 stage(s), 4 epoch(s)" in out[1]

    # one ulp up or down in the teacher's epoch-2 training loss, and something later in the student: the
    # teacher's number is named, with both values at full precision
    for direction in (math.inf, -math.inf):
        changed = copy.deepcopy(again)
        teacher = changed[0]["stages"]["baseline[resnet14]"]["curves"][1]
        before = teacher["train_loss"]
        teacher["train_loss"] = math.nextafter(before, direction)
        changed[0]["curves"][0]["test_acc"] += 1.0
        code, out = check(capsys, str(write(tmp_path / f"ulp{direction}", changed)), "--reference", str(ref))
        assert code == 1
        fail = next(line for line in out if line.startswith("FAIL"))
        assert (
            f"first divergence at seed 0, stage baseline[resnet14], epoch 2, train_loss: reference {before!r} "
            f"vs now {teacher['train_loss']!r}"
        ) in fail
        assert out[-1] == "0 passed, 1 failed"


def test_exact_mode_compares_weights_and_metrics_and_ignores_timings(
    tmp_path: Path, kd_records: list[dict], capsys
) -> None:
    ref = tmp_path / "ref.json"
    assert main(["check", str(write(tmp_path / "a", kd_records)), "--save-reference", str(ref)]) == 0
    timed = copy.deepcopy(kd_records)
    for entry in timed[0]["stages"].values():
        for row in entry["curves"]:
            row["train_seconds"] *= 3
            row["images_per_s"] /= 3
    timed[0]["wall_seconds"] *= 3
    assert check(capsys, str(write(tmp_path / "timed", timed)), "--reference", str(ref))[0] == 0
    digest = copy.deepcopy(kd_records)
    digest[0]["stages"]["train"]["digest"] = "0" * 20
    code, out = check(capsys, str(write(tmp_path / "digest", digest)), "--reference", str(ref))
    assert code == 1 and "stage train, weights digest: reference" in out[1]
    macs = copy.deepcopy(kd_records)
    macs[0]["metrics"]["macs"] += 1
    code, out = check(capsys, str(write(tmp_path / "macs", macs)), "--reference", str(ref))
    assert code == 1 and "seed 0, macs: reference" in out[1]


def test_another_platform_falls_back_to_statistics_with_one_line(
    tmp_path: Path, kd_records: list[dict], capsys
) -> None:
    ref = tmp_path / "ref.json"
    assert main(["check", str(write(tmp_path / "a", kd_records)), "--save-reference", str(ref)]) == 0
    elsewhere = copy.deepcopy(kd_records)
    elsewhere[0]["platform"]["cpu"] = "Some Other CPU"
    elsewhere[0]["platform"]["threads"] = 16
    loss = elsewhere[0]["stages"]["train"]["curves"][0]
    loss["train_loss"] = math.nextafter(loss["train_loss"], math.inf)  # rounding differs there: no failure
    code, out = check(capsys, str(write(tmp_path / "b", elsewhere)), "--reference", str(ref))
    platform = json.loads(ref.read_text())["platform"]
    assert [line for line in out if "platform" in line] == [out[0]]
    assert out[0].startswith(
        f"platform differs from the reference's (cpu {platform['cpu']!r} vs 'Some Other CPU'; "
        f"threads {platform['threads']} vs 16)"
    )
    assert out[0].endswith("statistical mode, not exact")
    assert code == 0 and out[1].startswith("PASS") and "top-1" in out[1] and "exact" not in out[1]
    assert "checked: top-1 of the last epoch (top1_last), statistical mode" in out


def _seeded(record: dict, top1: list[float], *, cpu: str | None = None, first: int = 0) -> list[dict]:
    out = []
    for seed, value in enumerate(top1, start=first):
        r = copy.deepcopy(record)
        r["seed"], r["metrics"]["top1_last"] = seed, value
        if cpu:
            r["platform"]["cpu"] = cpu
        out.append(r)
    return out


def test_statistical_mode_is_two_sided_and_reports_what_it_detects(
    tmp_path: Path, kd_records: list[dict], capsys
) -> None:
    student = kd_records[0]
    reference = [40.0, 41.2, 39.1, 40.6, 39.8, 40.9]
    ref = tmp_path / "ref.json"
    assert main(["check", str(write(tmp_path / "ref", _seeded(student, reference))), "--save-reference", str(ref)]) == 0
    now = [40.3, 39.5]
    # the smallest shift detected with 80% probability, computed here from scipy's noncentral t
    n, k = len(reference), len(now)
    df = n + k - 2
    pooled = math.sqrt(((n - 1) * np.var(reference, ddof=1) + (k - 1) * np.var(now, ddof=1)) / df)
    se = pooled * math.sqrt(1 / n + 1 / k)
    crit = scipy_stats.t.ppf(0.975, df)
    test = shift_test(reference, now)
    mde = test.detectable()
    nc = mde / se
    power = scipy_stats.nct.sf(crit, df, nc) + scipy_stats.nct.cdf(-crit, df, nc)
    assert power == pytest.approx(0.80, abs=1e-6) and test.scale == pytest.approx(se)

    def run(shift: float, *extra: str) -> tuple[int, list[str]]:
        shifted = [v + shift for v in now]
        # seeds the reference lacks: every reference seed is compared with (see the leave-out test below)
        folder = write(tmp_path / f"now{shift:+.3f}{''.join(extra)}", _seeded(student, shifted, first=n))
        return check(capsys, str(folder), "--reference", str(ref), "--mode", "statistical", *extra)

    for shift in (mde, -mde):  # beyond what it detects, either way: fails
        code, out = run(shift)
        assert code == 1 and out[0].startswith("FAIL") and f"detects |Δ| ≥ {mde:.2f}" in out[0], out
    code, out = run(0.5 * crit * se)  # within: passes
    assert code == 0 and out[0].startswith("PASS") and f"detects |Δ| ≥ {mde:.2f}" in out[0]
    assert "alpha 0.05 over 1 test(s)" in "\n".join(out)  # equal losses over seeds: only the top-1 is tested
    # --direction down: an improvement passes, a drop fails
    assert run(mde, "--direction", "down")[0] == 0 and run(-mde, "--direction", "down")[0] == 1
    # --tolerance: a band, with what it detects given the spread
    code, out = run(mde, "--tolerance", f"{mde + 0.01}")
    assert code == 0 and f"band ±{mde + 0.01:.2f}" in out[0]


def test_statistical_power_holds_by_simulation() -> None:
    rng = np.random.default_rng(0)
    reference = list(rng.normal(50, 1, 8))
    mde = shift_test(reference, [50.0]).detectable()
    base = shift_test(reference, [50.0])
    trials = 3000
    # fixed reference, fresh measured seed: rejection rate at the shift it claims to detect, and under no shift
    hits = sum(
        shift_test(reference, [x]).failed
        for x in rng.normal(np.mean(reference) + mde, np.std(reference, ddof=1), trials)
    )
    nulls = sum(shift_test(list(rng.normal(50, 1, 8)), [x]).failed for x in rng.normal(50, 1, trials))
    assert base.df == 7 and abs(hits / trials - 0.80) < 0.04 and abs(nulls / trials - 0.05) < 0.015


def test_old_means_only_reference_still_works_statistically(tmp_path: Path, kd_records: list[dict], capsys) -> None:
    csv = tmp_path / "old.csv"
    csv.write_text(
        "table,dataset,arch,teacher,method,variant,metric,value,protocol,runs,source\n"
        "t,cifar10-mini,resnet8,resnet14,kd,,top1,40.0,last,1,x\n"
    )
    folder = write(tmp_path / "two", _seeded(kd_records[0], [40.4, 39.8]))
    code, out = check(capsys, str(folder), "--reference", str(csv))
    assert out[0] == "old.csv has no per-seed values (means only): statistical mode against its means"
    assert code == 0 and out[1].startswith("PASS") and "vs 40.00: Δ +0.10, p" in out[1]
    one = write(tmp_path / "one", _seeded(kd_records[0], [41.5]))
    code, out = check(capsys, str(one), "--reference", str(csv))  # no spread anywhere: the ±1 band, said so
    assert code == 1 and "band ±1.00 (no seed spread on either side" in out[1]
    assert main(["check", str(one), "--reference", str(csv), "--mode", "exact"]) == 2
    assert "--mode exact needs a reference with every seed's values" in capsys.readouterr().err


def test_setup_and_model_differences_fail_in_either_mode(tmp_path: Path, kd_records: list[dict], capsys) -> None:
    ref = tmp_path / "ref.json"
    assert main(["check", str(write(tmp_path / "a", kd_records)), "--save-reference", str(ref)]) == 0
    other = copy.deepcopy(kd_records)
    other[0]["recipe"]["weight_decay"] = 0.0
    for mode in ("auto", "statistical"):
        code, out = check(capsys, str(write(tmp_path / f"wd{mode}", other)), "--reference", str(ref), "--mode", mode)
        (fail,) = [line for line in out if line.startswith("FAIL")]
        assert code == 1 and "setup differs from the reference's: recipe.weight_decay 0.0005 vs 0.0" in fail
    bigger = copy.deepcopy(kd_records)
    bigger[0]["metrics"]["params_deployed"] += 10
    code, out = check(capsys, str(write(tmp_path / "params", bigger)), "--reference", str(ref), "--mode", "statistical")
    assert code == 1 and any("model differs from the reference's: params_deployed" in line for line in out)


def test_saving_a_reference_and_junit(tmp_path: Path, kd_records: list[dict], capsys) -> None:
    folder = write(tmp_path / "a", kd_records)
    assert main(["check", str(folder), "--save-reference", str(tmp_path / "ref.txt")]) == 2
    assert "name the file FILE.json" in capsys.readouterr().err
    two = write(
        tmp_path / "two", [*_seeded(kd_records[0], [40.0]), *_seeded(kd_records[0], [0, 41.0], cpu="Other")[1:]]
    )
    assert main(["check", str(two), "--save-reference", str(tmp_path / "two.json")]) == 2
    assert "more than one platform (cpu" in capsys.readouterr().err
    ref = tmp_path / "ref.json"
    assert main(["check", str(folder), "--save-reference", str(ref)]) == 0
    assert "exact mode there" in capsys.readouterr().out
    report = tmp_path / "report.xml"
    assert main(["check", str(folder), "--reference", str(ref), "--junit", str(report)]) == 0
    suite = ET.parse(report).getroot()
    assert suite.get("tests") == "1" and suite.get("failures") == "0"
    assert suite.find("properties/property").get("value") == "exact"


def _noisy_seeds(record: dict, seeds: int, rng: np.random.Generator, scale: float = 0.01) -> list[dict]:
    """``seeds`` copies of ``record`` whose every stage's curves (losses, accuracies; not the learning rate)
    vary from seed to seed as real seeds do, each seed's top-1 the last epoch's test accuracy."""
    out = []
    for seed in range(seeds):
        r = copy.deepcopy(record)
        r["seed"] = seed
        for stage in r["stages"].values():
            for row in stage["curves"]:
                for key, value in row.items():
                    if key not in ("epoch", "lr") and isinstance(value, float):
                        row[key] = value * (1 + scale * float(rng.standard_normal()))
        r["curves"] = copy.deepcopy(r["stages"]["train"]["curves"])
        r["metrics"]["top1_last"] = r["curves"][-1]["test_acc"]
        out.append(r)
    return out


def test_curve_tests_catch_a_shifted_epoch_the_final_numbers_miss(
    tmp_path: Path, kd_records: list[dict], capsys
) -> None:
    reference = _noisy_seeds(kd_records[0], 8, np.random.default_rng(1))
    ref = tmp_path / "ref.json"
    assert main(["check", str(write(tmp_path / "ref", reference)), "--save-reference", str(ref)]) == 0
    # a fresh draw of the same distribution, then the same seed with the teacher's epoch-1 train loss 20%
    # higher (a bug that shows early: the final top-1 and the student's final losses do not move)
    (fresh,) = _noisy_seeds(kd_records[0], 1, np.random.default_rng(2))
    fresh["seed"] = 8
    shifted = copy.deepcopy(fresh)
    shifted["stages"]["baseline[resnet14]"]["curves"][0]["train_loss"] *= 1.2
    args = ("--reference", str(ref), "--mode", "statistical")
    code, out = check(capsys, str(write(tmp_path / "fresh", [fresh])), *args)
    tests = next(line for line in out if line.startswith("statistical: alpha"))
    curves = int(next(part for part in out[0].split("; ") if "curve test(s) within" in part).split()[0])
    assert code == 0 and out[0].startswith("PASS") and curves >= 5, out  # two stages' training columns
    assert f"over {2 + curves} test(s)" in tests  # the top-1, the final test loss and every curve share alpha
    assert "test_loss at epoch" not in "\n".join(out)  # held-out columns: the final epoch's only
    code, out = check(capsys, str(write(tmp_path / "shifted", [shifted])), *args)  # default: every epoch apart
    assert code == 1 and "baseline[resnet14] train_loss at epoch 1" in out[0] and "(shifted)" in out[0], out
    code, out = check(capsys, str(write(tmp_path / "shifted", [shifted])), *args, "--curves", "mean")
    assert code == 1 and "baseline[resnet14] train_loss (mean of 2 epochs)" in out[0], out
    code, out = check(capsys, str(write(tmp_path / "shifted", [shifted])), *args, "--curves", "off")
    assert code == 0 and "curve" not in out[0] and "train loss" in out[0], out  # the old test: final numbers only


def test_a_changed_schedule_fails_in_the_statistical_mode_too(tmp_path: Path, kd_records: list[dict], capsys) -> None:
    ref = tmp_path / "ref.json"
    assert main(["check", str(write(tmp_path / "a", kd_records)), "--save-reference", str(ref)]) == 0
    other = copy.deepcopy(kd_records)
    other[0]["stages"]["train"]["curves"][-1]["lr"] *= 0.5
    code, out = check(capsys, str(write(tmp_path / "lr", other)), "--reference", str(ref), "--mode", "statistical")
    assert code == 1 and "training schedule differs from the reference's: stage 'train': lr at epoch 2" in out[0], out
    rounded = copy.deepcopy(kd_records)  # the last bits of math.cos on another platform: not a difference
    lr = rounded[0]["stages"]["train"]["curves"][-1]["lr"]
    rounded[0]["stages"]["train"]["curves"][-1]["lr"] = math.nextafter(lr, math.inf)
    code, out = check(capsys, str(write(tmp_path / "ulp", rounded)), "--reference", str(ref), "--mode", "statistical")
    assert code == 0, out


def test_a_measured_seed_is_compared_with_the_other_reference_seeds(
    tmp_path: Path, kd_records: list[dict], capsys
) -> None:
    """A run of seed 3 is not an independent draw from a reference that holds seed 3 (same initialisation and
    data order): the statistical mode compares it with the reference's other seeds, as Student's t-test of
    scipy does with those 7 and the one measured value."""
    reference = [40.0, 41.2, 39.1, 40.6, 39.8, 40.9, 40.2, 39.5]
    ref = tmp_path / "ref.json"
    records = _seeded(kd_records[0], reference)
    assert main(["check", str(write(tmp_path / "ref", records)), "--save-reference", str(ref)]) == 0
    (twin,) = _seeded(kd_records[0], [41.9], first=3)
    code, out = check(capsys, str(write(tmp_path / "twin", [twin])), "--reference", str(ref), "--mode", "statistical")
    others = reference[:3] + reference[4:]
    p = scipy_stats.ttest_ind(others, [41.9], equal_var=True).pvalue
    line = next(line for line in out if "top-1" in line)
    assert code == 0 and "(n=7): Δ" in line and f", p {p:.2g}," in line, out
    assert any(line.startswith("measured seed(s) 3 left out of the reference seeds") for line in out), out
    (new,) = _seeded(kd_records[0], [41.9], first=8)  # a seed the reference lacks: compared with all 8
    code, out = check(capsys, str(write(tmp_path / "new", [new])), "--reference", str(ref), "--mode", "statistical")
    p = scipy_stats.ttest_ind(reference, [41.9], equal_var=True).pvalue
    line = next(line for line in out if "top-1" in line)
    assert "(n=8): Δ" in line and f", p {p:.2g}," in line and not any("left out" in line for line in out), out
    # a reference of 2 seeds, both measured again: leaving them out would leave no spread, so both are kept
    small = tmp_path / "small.json"
    assert main(["check", str(write(tmp_path / "two", records[:2])), "--save-reference", str(small)]) == 0
    again = _seeded(kd_records[0], [40.5, 40.8])
    code, out = check(capsys, str(write(tmp_path / "again", again)), "--reference", str(small), "--mode", "statistical")
    assert "(n=2): Δ" in out[0] and not any("left out" in line for line in out), out


def test_the_whole_statistical_check_holds_alpha_on_synthetic_normal_seeds(
    tmp_path: Path, kd_records: list[dict]
) -> None:
    """False-alarm calibration of the whole check (top-1, final test loss, every training curve at every epoch,
    Bonferroni over them): reference and measured seeds drawn from one normal distribution per number (fixed
    RNG), the measured seed one of the reference's seed numbers (so it is left out of its comparison); the
    share of failing checks stays at or below alpha (Bonferroni is conservative) and above zero."""
    from harness.results.check import Settings, compare
    from harness.results.reference import load_file

    rng = np.random.default_rng(7)
    draws, failed, tests = 120, 0, 0
    for i in range(draws):
        seeds = _noisy_seeds(kd_records[0], 9, rng, scale=0.02)  # the top-1: the last epoch's test accuracy
        ref = tmp_path / f"ref{i}.json"
        assert main(["check", str(write(tmp_path / f"r{i}", seeds[:8])), "--save-reference", str(ref)]) == 0
        measured = seeds[8]
        measured["seed"] = int(rng.integers(8))  # a reference seed rerun on another platform: a fresh draw
        result = compare([measured], load_file(ref), settings=Settings(mode="statistical"))
        failed += result.failed > 0
        tests = result.tests
    assert tests >= 8  # the curves at every epoch are tested, not only the final numbers
    # 0.05 over the check: 6 of 120 expected at most; 3 binomial standard errors above it is a miscalibration
    assert 1 <= failed <= 6 + 3 * math.sqrt(draws * 0.05 * 0.95), failed
