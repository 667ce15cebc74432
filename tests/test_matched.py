"""Issue 11: the equal-compute control, EncodeNet's classifier-only split, the train-compute column and the
top-1 protocol (``--metric``) of `bench reproduce` and `bench check`."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from conftest import run_tiny
from harness.core.errors import UsageError
from harness.core.recipes import Recipe
from harness.api import RunInfo
from harness.models.levels import ArchSpec, require_levels
from harness.plugins.manager import load_plugins
from harness.results.check import Settings, check_metric, compare
from harness.results.reference import RefValue, table_values
from harness.results.tables import render
from harness.run import reproduce
from harness.cli import main
from plugins.methods.baseline_matched import BaselineMatched
from plugins.methods.encodenet.autoencoder import FrozenEncoderObjective
from plugins.methods.encodenet.method import EncodeNet


def recipe(epochs: int, milestones: tuple[int, ...] = (150, 225)) -> Recipe:
    return Recipe(
        name="r",
        epochs=epochs,
        batch_size=128,
        lr=0.1,
        weight_decay=1e-4,
        momentum=0.9,
        schedule="multistep",
        milestones=milestones,
    )


@pytest.mark.parametrize("opts, reference_epochs", [({}, 500 + 300), ({"reference_opts": "ae_epochs=7"}, 7 + 300)])
def test_control_plans_encodenets_post_baseline_epochs(opts: dict, reference_epochs: int) -> None:
    run = RunInfo(arch="resnet20", recipe=recipe(300))
    plan = BaselineMatched("baseline-matched", opts).plan(run)
    matched = plan.deploy
    assert [s.label for s in plan.stages()] == ["baseline[resnet20]", "matched"]
    assert matched.epochs(run.recipe) == reference_epochs
    # the run's schedule shape over the new epoch count; everything else is the run's recipe
    assert matched.recipe.milestones == tuple(round(m * reference_epochs / 300) for m in (150, 225))
    assert (matched.recipe.lr, matched.recipe.schedule, matched.recipe.batch_size) == (0.1, "multistep", 128)
    enc = EncodeNet("encodenet", EncodeNet.parse_options("encodenet", {"ae_epochs": "7"} if opts else {}))
    assert sum(s.epochs(run.recipe) for s in enc.plan(run).stages() if s.name != "baseline") == reference_epochs
    with pytest.raises(UsageError, match="has no option 'nope'"):
        BaselineMatched("baseline-matched", {"reference_opts": "nope=1"}).plan(run)


def test_control_spends_the_pipelines_image_epochs(tmp_path: Path, cache_dir: Path) -> None:
    outcome = run_tiny(
        cache_dir,
        tmp_path,
        methods=["baseline", "encodenet", "baseline-matched"],
        train_subset=400,
        options=["encodenet.k_max=2", "encodenet.figures=false"],
    )
    by = {r["method"]["name"]: r for r in outcome.records}
    base, enc, ctl = by["baseline"], by["encodenet"], by["baseline-matched"]
    n = enc["dataset"]["train"]
    enc_after = enc["stages"]["autoencoder"]["epochs"] + enc["stages"]["head"]["epochs"]
    assert ctl["stages"]["matched"]["epochs"] == enc_after == 3  # 2 autoencoder + 1 head epochs at 1 run epoch
    assert ctl["info"]["matched_image_epochs"] == n * enc_after
    assert (
        ctl["info"]["compute"]["image_epochs"]
        == enc["info"]["compute"]["image_epochs"]
        == {"baseline": n * 1, "after_baseline": n * enc_after}
    )
    assert ctl["info"]["matched_stages"] == {"autoencoder": 2, "head": 1} and ctl["info"]["matches"] == "encodenet"
    assert ctl["stages"]["matched"]["needs"]["baseline"] == base["stages"]["baseline[resnet8]"]["artifact"]
    assert ctl["info"]["compute"]["flops_relative_to_baseline"] == pytest.approx(4.0)
    assert ctl["metrics"]["params_deployed"] == base["metrics"]["params_deployed"]
    table = render(outcome.records, "markdown")
    assert "train compute (x baseline)" in table and "| 1.00x" in table and "| 4.00x" in table
    enc_x = enc["info"]["compute"]["flops_relative_to_baseline"]
    assert f"| {enc_x:.2f}x" in table


def test_split_classifier_trains_only_the_classification_layers(tmp_path: Path, cache_dir: Path) -> None:
    opts = EncodeNet.parse_options("encodenet", {"split": "classifier"})
    assert opts == {"split": "classifier"}
    method = EncodeNet("encodenet", opts)
    resolved = load_plugins(entry_points=False, warn=False).archs.resolve("resnet20")
    model = require_levels(resolved.obj(ArchSpec("resnet20", 100, 3, 32, arg=resolved.arg)), "encodenet")
    split = method.split_of(model)
    assert split == model.num_levels
    objective = FrozenEncoderObjective(model, split)
    trainable = {name for name, p in objective.model.named_parameters() if p.requires_grad}
    assert trainable == {"head.fc.weight", "head.fc.bias"}
    with pytest.raises(UsageError, match="expected an integer or 'classifier'"):
        EncodeNet.parse_options("encodenet", {"split": "last"})
    # end to end: only the classifier trains, the deployed model is the baseline's
    (enc,) = [
        r
        for r in run_tiny(
            cache_dir,
            tmp_path,
            methods=["encodenet"],
            train_subset=400,
            options=["encodenet.split=classifier", "encodenet.k_max=2", "encodenet.figures=false"],
        ).records
        if r["method"]["name"] == "encodenet"
    ]
    assert enc["info"]["split"] == 3 and enc["info"]["split_option"] == "classifier"
    assert enc["info"]["trainable_params"] == 64 * 10 + 10  # resnet8's fc on cifar10-mini
    assert enc["method"]["options"]["split"] == "classifier"


def ref(value: float, protocol: str) -> RefValue:
    return RefValue(
        table="t",
        dataset="cifar10-mini",
        arch="resnet8",
        teacher="",
        method="baseline",
        variant="",
        metric="top1",
        value=value,
        protocol=protocol,
        runs="1",
        source="x",
        where="t.csv:2",
    )


def test_metric_selects_the_checked_number(tmp_path: Path, cache_dir: Path, capsys) -> None:
    (record,) = run_tiny(cache_dir, tmp_path / "one").records
    recs = []
    for seed in (0, 1):
        r = copy.deepcopy(record)
        r["seed"], r["metrics"]["top1_last"], r["metrics"]["top1_best"] = seed, 40.0, 50.0
        recs.append(r)
    unspecified = [ref(45.0, "unspecified")]
    drop = Settings(tolerance=1.0, direction="down")  # fail only a drop of more than a point
    (last,) = compare(recs, unspecified, metric="last", settings=drop).rows
    (best,) = compare(recs, unspecified, metric="best", settings=drop).rows
    assert (last.measured, last.passed, best.measured, best.passed) == (40.0, False, 50.0, True)
    # the reference's protocol is the default; a contradicting --metric is refused with one line
    assert check_metric([ref(45.0, "best")], None) == "best" and check_metric(unspecified, None) == "last"
    with pytest.raises(UsageError, match="--metric last .* measured at the best epoch") as err:
        check_metric([ref(45.0, "best")], "last")
    assert "\n" not in str(err.value)
    folder = tmp_path / "recs"
    folder.mkdir()
    for i, r in enumerate(recs):
        (folder / f"r{i}.json").write_text(json.dumps(r))
    csv = tmp_path / "ref.csv"
    csv.write_text(
        "table,dataset,arch,teacher,method,variant,metric,value,protocol,runs,source\n"
        "t,cifar10-mini,resnet8,,baseline,,top1,45,best,1,x\n"
    )
    assert main(["check", str(folder), "--reference", str(csv), "--direction", "down"]) == 0
    assert "checked: top-1 of the best epoch (top1_best)" in capsys.readouterr().out
    assert main(["check", str(folder), "--reference", str(csv), "--metric", "last"]) == 2
    assert "measured at the best epoch" in capsys.readouterr().err


def test_table4_defaults_to_the_papers_best_epoch_protocol() -> None:
    from harness.cli.commands.reproduce import table_spec
    from harness.cli.study.session import open_study

    tables = {name: table_spec(open_study(name, None)) for name in ("table2", "table3", "table4", "smoke")}
    spec = tables["table4"]
    assert spec.metric == "best" and "mdistiller" in spec.protocol_note
    assert {v.protocol for v in table_values("table4")} == {"best"}
    assert all(
        s.methods[:2] == ("baseline", "baseline-matched") for t in ("table2", "table3") for s in tables[t].settings
    )
    assert "baseline-matched" not in tables["smoke"].settings[0].methods
    refs = table_values("table4")
    assert "best epoch (the paper's protocol" in reproduce.protocol_text(spec, "best", refs)
    assert "NOTE: the reported values are best-epoch numbers" in reproduce.protocol_text(spec, "last", refs)
