"""Methods that compose (``kd+se``): roles, refusals, options, stage identity, costs (issue 31, item 4)."""

from __future__ import annotations

import pytest

from conftest import read_records, run_tiny, tiny_request
from harness.kits.distill import DistillMethod, KDObjective
from harness.core.errors import UsageError
from harness.core.progress import Reporter
from harness.methods.compose import compose
from harness.plugins.manager import load_plugins
from harness.run.cost import measure_costs
from harness.run.prepare import build_methods, prepare
from harness.testing import bench_with

PLUGINS = load_plugins(entry_points=False, warn=False)
DRY = ["--arch", "resnet8", "--teacher", "resnet14", "--dataset", "cifar10-mini", "--recipe", "smoke", "--dry-run"]


@pytest.mark.parametrize(
    "methods, why",
    [
        ("kd+rkd", "'kd' and 'rkd' both change the training objective"),
        ("se+cbam", "'se' and 'cbam' both rewrite the block attention sites"),
        ("encodenet+kd", "'encodenet' declares no role"),
        ("kd+kd", "lists 'kd' twice"),
        ("kd+", "joins two or more method names"),
    ],
)
def test_compositions_that_cannot_work_are_one_line_before_training(
    methods: str, why: str, capsys: pytest.CaptureFixture
) -> None:
    assert bench_with([], ["run", "--methods", methods, *DRY]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and why in err, err


def test_rewrites_of_different_sites_compose() -> None:
    """se at the block sites, cbam moved to the level sites: composable; an option decides it."""
    (method,) = build_methods(PLUGINS, ["se+cbam"], ["se+cbam.cbam.placement=level"])
    assert [c.name for c in method.rewrites] == ["se", "cbam"]
    build_methods(PLUGINS, ["wavecnet+lowrank+se"], [])


def test_a_distiller_built_on_the_kit_composes_without_declaring_anything() -> None:
    class Mine(DistillMethod):
        def make_objective(self, student, teacher):
            return KDObjective(student, teacher)

    se = PLUGINS.methods.resolve("se").obj
    cls = compose("mine+se", [("mine", Mine), ("se", se)])
    assert Mine.role == "objective" and cls.uses_teacher
    with pytest.raises(UsageError, match="both change the training objective"):
        compose("mine+kd", [("mine", Mine), ("kd", PLUGINS.methods.resolve("kd").obj)])


def test_component_options_apply_inside_compositions() -> None:
    """``--opt kd.temperature=2`` applies to kd alone and inside kd+se; the composition's own wins."""
    kd, kdse = build_methods(PLUGINS, ["kd", "kd+se"], ["kd.temperature=2", "kd+se.se.reduction=8"])
    assert kd.opts["temperature"] == 2.0
    assert kdse.opts["kd.temperature"] == 2.0 and kdse.components[0].opts["temperature"] == 2.0
    assert kdse.components[1].opts["reduction"] == 8
    (own,) = build_methods(PLUGINS, ["kd+se"], ["kd.temperature=2", "kd+se.kd.temperature=3"])
    assert own.components[0].opts["temperature"] == 3.0
    with pytest.raises(UsageError, match="not in --methods"):
        build_methods(PLUGINS, ["kd+se"], ["rkd.distance_weight=1"])
    with pytest.raises(UsageError, match="has no option 'se.temperature'"):
        build_methods(PLUGINS, ["kd+se"], ["kd+se.se.temperature=1"])


def test_stage_keys_come_from_the_components(tmp_path, cache_dir) -> None:
    """kd+se trains neither kd's nor se's stage; it shares the teacher; se+kd is the same training."""
    run = prepare(
        tiny_request(cache_dir, tmp_path, methods=["kd", "se", "kd+se", "se+kd"], teacher="resnet14"),
        PLUGINS,
        Reporter(),
    )
    runner = run.dry_runner(0)
    keys = {}
    for entry in run.plan.of_seed(0):
        nodes = {n.label: n for n in (runner.resolve(s, entry.name) for s in entry.stages())}
        keys[entry.name] = {label: n.plan_key for label, n in nodes.items()}
    assert keys["kd+se"]["train"] not in (keys["kd"]["train"], keys["se"]["train"])
    assert keys["kd+se"]["baseline[resnet14]"] == keys["kd"]["baseline[resnet14]"]
    assert keys["kd+se"] == keys["se+kd"]
    changed = build_methods(PLUGINS, ["kd+se"], ["kd+se.se.reduction=8"])[0]
    other = runner.resolve(changed.plan(run.info(0)).deploy, "kd+se")
    assert other.plan_key != keys["kd+se"]["train"]


def test_a_composition_costs_what_its_architecture_costs() -> None:
    """kd+se deploys the SE-equipped student: se's parameters and MACs (the teacher is not deployed)."""
    methods = build_methods(PLUGINS, ["se", "kd+se", "kd", "eca+wavecnet", "eca"], [])
    rows = {r.method: (r.params, r.macs) for r in measure_costs(PLUGINS, methods, "resnet8", 10, teacher="resnet14")}
    assert rows["kd+se"] == rows["se"] and rows["kd+se"] != rows["kd"]
    assert rows["eca+wavecnet"] != rows["eca"]


def test_tiny_real_runs_of_the_new_methods(tmp_path, cache_dir) -> None:
    """eca, attn:gc and kd+se train (1 epoch, 320 images); one record each, kd+se's as its own row."""
    outcome = run_tiny(cache_dir, tmp_path, methods=["eca", "attn:gc", "kd+se"], teacher="resnet14")
    records = {r["method"]["name"]: r for r in read_records(tmp_path)}
    assert set(records) == {"eca", "attn:gc", "kd+se"}
    kdse = records["kd+se"]
    assert [c["name"] for c in kdse["method"]["components"]] == ["kd", "se"]
    assert 0 <= kdse["metrics"]["top1_last"] <= 100
    stages = kdse["stages"].values()
    assert {s["stage"] for s in stages} == {"baseline", "train"}
    assert kdse["info"]["rewrites"]["se"]["modules"] == 3
    assert outcome is not None


def test_study_files_accept_composed_names(tmp_path) -> None:
    from harness.cli.study.load import load

    study = tmp_path / "s.toml"
    study.write_text(
        '[defaults]\ndataset = "cifar10-mini"\nrecipe = "smoke"\n\n[[runs]]\narch = "resnet8"\n'
        'teacher = "resnet14"\nmethods = ["kd+se", "attn:eca"]\n[runs.options]\nkd.temperature = 2\n'
        '"kd+se"."se.reduction" = 8\n"attn:eca".kernel_size = 5\n'
    )
    (run,) = load(study).runs
    assert run.values["methods"] == ["kd+se", "attn:eca"]
    kdse, eca = build_methods(PLUGINS, run.values["methods"], run.values["options"])
    assert kdse.components[0].opts["temperature"] == 2.0 and kdse.components[1].opts["reduction"] == 8
    assert eca.opts["kernel_size"] == 5


def test_every_registered_distiller_composes_with_an_attention_method() -> None:
    """The role comes from the kit: every method that uses a teacher is an objective and composes with se."""
    distillers = [e.name for e in PLUGINS.methods.entries() if not e.prefix and e.obj.uses_teacher]
    assert "kd" in distillers and len(distillers) >= 4
    for name in distillers:
        assert PLUGINS.methods.resolve(f"{name}+se").obj.uses_teacher, name
