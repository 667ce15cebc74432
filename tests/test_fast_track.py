"""The fast track (issue 33): the airbench94 network with the level interface, the ``fast`` recipe's pieces
(whitening from the run's training patches, label smoothing, per-step schedule, BatchNorm lr scale, Lookahead,
alternating flip, reflection padding) and test-time augmentation as an evaluation option of the protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import read_records, run_tiny, tiny_request
from harness.api import ArchSpec
from harness.cli import main
from harness.core.errors import UsageError
from harness.core.progress import Reporter
from harness.core.recipes import FAST_DEFAULTS, Recipe
from harness.data.pipeline import Normalizer, TrainStream
from harness.models.whitening import patches, whitening_weights
from harness.plugins.manager import load_plugins
from harness.results.aggregation import collect
from harness.run.prepare import prepare
from harness.testing import bench_with
from harness.train.averaging import Lookahead
from harness.train.engine import airbench_factor, make_optimizer, norm_params
from harness.train.evaluation import tta_logits
from plugins.archs.airbench import airbench
from plugins.recipes.builtin import RECIPES

FAST = {"epochs": 1, "batch_size": 64, "whiten": 64}  # the fast recipe at a test's size


def fast_request(cache_dir: Path, out: Path, **overrides: object):
    return tiny_request(
        cache_dir, out, **{"arch": "airbench94", "recipe": "fast", "overrides": dict(FAST), **overrides}
    )


def deployed(cache_dir: Path, out: Path, method: str = "baseline", **overrides: object):
    """The deploy stage of ``method`` as a dry run resolves it: its key and its built (untrained) objective."""
    run = prepare(fast_request(cache_dir, out, methods=[method], **overrides), load_plugins(warn=False), Reporter())
    return run, run.dry_runner(0).resolve(run.plan.find(0, method).plan.deploy, method)


# ---- the architecture ------------------------------------------------------------------------------------


def test_airbench94_has_the_reference_layout_and_levels() -> None:
    net = airbench(ArchSpec("airbench94", num_classes=10))
    # 1,972,792 parameters: airbench94's make_net (legacy/airbench94.py), counted by running it outside the project
    assert sum(p.numel() for p in net.parameters()) == 1_972_792
    assert [(i.name, i.channels, i.size) for i in net.level_info] == [
        ("stem", 24, 31),
        ("block1", 64, 15),
        ("block2", 256, 7),
        ("block3", 256, 3),
    ]
    assert net.whitening_layer == "stem.0" and net.get_submodule("stem.0").kernel_size == (2, 2)
    assert [s.path for s in net.attention_sites("block")] == ["levels.0.attn", "levels.1.attn", "levels.2.attn"]
    assert net.downsampling_sites() == ["levels.0.pool", "levels.1.pool", "levels.2.pool"]
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(not m.weight.requires_grad and m.bias.requires_grad for m in norms)
    x = torch.randn(2, 3, 32, 32)
    feats = net.forward_levels(x)
    assert torch.equal(net.forward_from(net.forward_features(x, upto=1), 1), net(x))
    assert [f.shape[1] for f in feats] == [24, 64, 256, 256]


def test_width_option_and_default_teacher() -> None:
    wide = airbench(ArchSpec("airbench:block1=32,block2=64,block3=128", 10, arg="block1=32,block2=64,block3=128"))
    assert [i.channels for i in wide.level_info[1:]] == [32, 64, 128]
    x2 = airbench(ArchSpec("airbench94x2", 10), widths=(128, 512, 512))
    assert sum(p.numel() for p in x2.parameters()) > 3 * 1_972_792
    plugins = load_plugins(warn=False)
    assert plugins.archs.resolve("airbench94").entry.meta["default_teacher"] == "airbench94x2"
    for refused in ("block1=0", "block1=2.5", "width=3"):
        assert main(["cost", "--methods", "baseline", "--arch", f"airbench:{refused}"]) == 2


def test_level_methods_and_attention_work_on_it() -> None:
    """EncodeNet, FitNet, KD (teacher airbench94x2) and SE/CBAM build on the level interface of airbench94."""
    assert bench_with([], ["cost", "--methods", "baseline,se,cbam,fitnet,kd,encodenet", "--arch", "airbench94"]) == 0


# ---- whitening ---------------------------------------------------------------------------------------------


def test_whitening_whitens_the_patches_it_was_computed_from() -> None:
    torch.manual_seed(0)
    mixing = torch.randn(3, 3) + 2 * torch.eye(3)  # correlated channels, so that whitening has work to do
    images = torch.einsum("ij,njhw->nihw", mixing, torch.randn(64, 3, 16, 16)) + 0.5
    w = whitening_weights(images, (2, 2), eps=0.0)
    assert w.shape == (24, 3, 2, 2) and torch.equal(w[12:], -w[:12])
    flat = patches(images, (2, 2)).double()
    outputs = flat @ w[:12].reshape(12, -1).double().T  # each filter's response to every patch
    assert torch.allclose(outputs.T @ outputs / flat.shape[0], torch.eye(12, dtype=torch.float64), atol=1e-3)
    assert not torch.allclose(whitening_weights(images.flip(1), (2, 2)).abs(), whitening_weights(images, (2, 2)).abs())


def test_the_fast_recipe_whitens_from_the_runs_training_images(cache_dir: Path, tmp_path: Path) -> None:
    run, stage = deployed(cache_dir, tmp_path)
    layer = stage.model.get_submodule("stem.0")
    ds = run.dataset
    normalise = Normalizer(ds.mean, ds.std, torch.device("cpu"))
    assert torch.allclose(layer.weight, whitening_weights(normalise(ds.train_images[:64]), (2, 2)))
    assert not layer.weight.requires_grad and layer.bias.requires_grad
    # what it is computed from is in the stage key: other training data, another image count, no whitening
    keys = {
        stage.key,
        deployed(cache_dir, tmp_path, train_subset=300)[1].key,
        deployed(cache_dir, tmp_path, overrides={**FAST, "whiten": 32})[1].key,
        deployed(cache_dir, tmp_path, overrides={**FAST, "whiten": 0})[1].key,
    }
    assert None not in keys and len(keys) == 4
    _, other = deployed(cache_dir, tmp_path, train_subset=300)
    assert not torch.equal(other.model.get_submodule("stem.0").weight, layer.weight)


def test_the_fast_recipe_on_an_architecture_without_whitening_is_refused(
    cache_dir: Path, tmp_path: Path, capsys
) -> None:
    with pytest.raises(UsageError, match="declares no whitening layer"):
        prepare(fast_request(cache_dir, tmp_path, arch="resnet8"), load_plugins(warn=False), Reporter())
    args = [
        "run",
        "--methods",
        "baseline",
        "--arch",
        "resnet8",
        "--recipe",
        "fast",
        "--dataset",
        "cifar10-mini",
        "--train-subset",
        "100",
        "--test-subset",
        "50",
        "--cache-dir",
        str(cache_dir),
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "architecture 'resnet8' declares no whitening layer" in err[0]
    assert main([*args, "--whiten", "0", "--dry-run"]) == 0  # the other pieces suit any network


# ---- the recipe's options ----------------------------------------------------------------------------------


def test_recipe_options_validate() -> None:
    fast = next(r for r in RECIPES if r.name == "fast")
    assert (
        fast.label_smoothing,
        fast.averaging,
        fast.translate,
        fast.flip,
        fast.pad_mode,
        fast.whiten,
        fast.nesterov,
        fast.batch_size,
        fast.schedule,
    ) == (0.2, "lookahead", 2, "alternating", "reflect", 5000, True, 1024, "airbench")
    for bad in (
        {"label_smoothing": 1.0},
        {"label_smoothing": -0.1},
        {"averaging": "ema"},
        {"flip": "vertical"},
        {"pad_mode": "circular"},
        {"translate": -1},
        {"whiten": 2.5},
        {"norm_lr_scale": 0.0},
        {"schedule": "triangle"},
    ):
        with pytest.raises(UsageError):
            fast.with_overrides(**bad)
    for flag, value in (
        ("--label-smoothing", "1"),
        ("--averaging", "ema"),
        ("--flip", "up"),
        ("--tta", "all"),
        ("--whiten", "-3"),
    ):
        assert (
            main(["run", "--methods", "baseline", "--arch", "airbench94", "--recipe", "fast", flag, value, "--dry-run"])
            == 2
        )


def test_other_recipes_keep_their_records_and_keys() -> None:
    """The fast-track fields are left out of a recipe's dict where they are at their defaults."""
    for recipe in RECIPES:
        if recipe.name != "fast":
            assert not set(FAST_DEFAULTS) & set(recipe.as_dict())
    fast = next(r for r in RECIPES if r.name == "fast").as_dict()
    assert set(FAST_DEFAULTS) - {"label_smoothing"} <= set(fast) and fast["label_smoothing"] == 0.2


def test_the_fast_recipe_prefers_bf16_only_where_the_cpu_has_it(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --amp/--no-amp, recipe fast trains in bf16 on a CPU with bf16 instructions under the native
    numerics, in fp32 on one without them or under a pinned profile; --amp/--no-amp always decide; the other
    recipes stay fp32 on a CPU. The preference is no key field: the engine's amp is."""
    from harness.run import prepare as preparing

    fast = next(r for r in RECIPES if r.name == "fast")
    crd = next(r for r in RECIPES if r.name == "crd")
    cpu = torch.device("cpu")
    assert fast.prefer_bf16 and "prefer_bf16" not in fast.as_dict()

    def amp(recipe: Recipe, has_bf16: bool, **request: object) -> tuple[bool, str]:
        monkeypatch.setattr(preparing, "cpu_has_bf16", lambda: has_bf16)
        chosen, note = preparing.resolve_amp(fast_request(cache_dir, tmp_path, **request), recipe, cpu)
        return chosen, note or ""

    assert amp(fast, True)[0] is True and "trains in bf16 autocast on this CPU" in amp(fast, True)[1]
    assert amp(fast, False) == (False, "")
    assert (
        amp(fast, True, numerics="portable")[0] is False and "runs in fp32" in amp(fast, True, numerics="portable")[1]
    )
    assert amp(fast, True, amp=False) == (False, "") and amp(fast, True, numerics="portable", amp=True) == (True, "")
    assert amp(crd, True) == (False, "")
    with pytest.raises(UsageError, match="no bf16 instructions"):
        amp(fast, False, amp=True)
    with pytest.raises(UsageError, match="prefer_bf16 must be True or False"):
        fast.with_overrides(prefer_bf16="yes")
    # a whole preparation: the recipe's choice is the run's engine setting, which the stage keys hold
    monkeypatch.setattr(preparing, "cpu_has_bf16", lambda: True)
    (chosen, bf16), (_, given) = deployed(cache_dir, tmp_path), deployed(cache_dir, tmp_path, amp=True)
    _, fp32 = deployed(cache_dir, tmp_path, amp=False)
    assert chosen.amp and bf16.key == given.key != fp32.key


def test_airbench_schedule_and_norm_learning_rate() -> None:
    total = 100
    factors = [airbench_factor(s, total) for s in range(total)]
    assert factors[0] == pytest.approx(0.2) and max(factors) == pytest.approx(1.0) == factors[23]
    assert airbench_factor(total, total) == pytest.approx(0.07) and factors[23:] == sorted(factors[23:], reverse=True)
    net = airbench(ArchSpec("airbench94", 10))
    recipe = next(r for r in RECIPES if r.name == "fast")
    trainable = [p for p in net.parameters() if p.requires_grad]
    opt = make_optimizer(trainable, recipe, norm_params(net))
    main_group, norm_group = opt.param_groups
    assert main_group["lr"] == recipe.lr and norm_group["lr"] == recipe.lr * 64
    assert norm_group["weight_decay"] * norm_group["lr"] == pytest.approx(main_group["weight_decay"] * recipe.lr)
    assert {id(p) for p in norm_group["params"]} == {id(m.bias) for m in net.modules() if isinstance(m, nn.BatchNorm2d)}
    plain = make_optimizer(trainable, Recipe("x", epochs=1, batch_size=2, lr=0.1, weight_decay=0.0), norm_params(net))
    assert len(plain.param_groups) == 1


def test_lookahead_moves_slow_weights_and_ends_on_them() -> None:
    net = nn.Linear(3, 2)
    look = Lookahead(net, total_steps=10)
    start = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    look.step(4)  # not a multiple of 5: nothing happens
    assert torch.equal(net.weight, start + 1)
    look.step(5)
    decay = 0.95**5 * 0.5**3
    assert torch.allclose(net.weight, start + (1 - decay)) and torch.allclose(look.slow["weight"], net.weight)
    with torch.no_grad():
        net.weight.add_(1.0)
    look.synchronise(10, last=True)  # the network takes the slow weights
    assert torch.allclose(net.weight, start + (1 - decay))


def test_alternating_flip_and_reflection_padding() -> None:
    images = torch.randint(0, 255, (40, 3, 8, 8), dtype=torch.uint8)
    stream = TrainStream(
        images,
        torch.zeros(40, dtype=torch.long),
        batch_size=8,
        seed=3,
        normalizer=Normalizer((0.5,) * 3, (0.25,) * 3, torch.device("cpu")),
        device=torch.device("cpu"),
        pad=2,
        flip="alternating",
        pad_mode="reflect",
    )
    f0, f1, f2 = (stream.plan(e).flip for e in range(3))
    assert torch.equal(f1, ~f0) and torch.equal(f2, f0) and 0 < int(f0.sum()) < 40
    assert torch.equal(stream.padded[:, :, 0, 2:-2], images[:, :, 2])  # reflected, not zeros
    with pytest.raises(ValueError):
        TrainStream(
            images,
            torch.zeros(40, dtype=torch.long),
            batch_size=8,
            seed=3,
            normalizer=stream.normalizer,
            device=torch.device("cpu"),
            flip="sometimes",
        )


# ---- test-time augmentation --------------------------------------------------------------------------------


def test_tta_views() -> None:
    """Mirror TTA of a network that reads one pixel averages that pixel and its mirror; the six views of
    mirror-translate weigh 1/2 the unshifted pair and 1/4 each shifted pair."""
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    corner_net = lambda t: t[:, :, 0, 0]  # noqa: E731
    assert torch.equal(tta_logits(corner_net, x, "none"), x[:, :, 0, 0])
    assert torch.allclose(tta_logits(corner_net, x, "mirror"), (x[:, :, 0, 0] + x[:, :, 0, -1]) / 2)
    constant = lambda t: torch.ones(t.shape[0], 5)  # noqa: E731
    assert torch.allclose(tta_logits(constant, x, "mirror-translate"), torch.ones(2, 5))  # weights sum to 1


def test_tta_records_never_share_a_table_with_plain_ones(cache_dir: Path, tmp_path: Path) -> None:
    """A tiny real run of the fast track with and without TTA: the last epoch of the TTA run holds both numbers,
    its record's protocol says tta, and the two records are two groups."""
    run_tiny(
        cache_dir,
        tmp_path / "tta",
        **{**dict(arch="airbench94", recipe="fast", overrides=dict(FAST)), "tta": "mirror-translate"},
    )
    run_tiny(cache_dir, tmp_path / "plain", arch="airbench94", recipe="fast", overrides=dict(FAST))
    (tta,), (plain,) = read_records(tmp_path / "tta"), read_records(tmp_path / "plain")
    assert tta["protocol"] == {"select": "last", "tta": "mirror-translate"} and plain["protocol"] == {"select": "last"}
    last = tta["curves"][-1]
    assert {"test_acc", "test_acc_plain"} <= set(last) and "test_acc_plain" not in plain["curves"][-1]
    assert last["test_acc_plain"] == plain["curves"][-1]["test_acc"]  # the same weights, evaluated plainly
    assert tta["run_key"] != plain["run_key"]
    assert len(collect([tta, plain]).groups) == 2
    with pytest.raises(UsageError, match="--tta mirror evaluates the last epoch only"):
        prepare(fast_request(cache_dir, tmp_path, tta="mirror", select="test"), load_plugins(warn=False), Reporter())


def test_a_killed_fast_run_resumes_to_identical_weights(tmp_path: Path, cache_dir: Path) -> None:
    """Lookahead and the per-step schedule keep no state outside the checkpoint: a run killed in its second
    epoch and resumed ends with the weights (digest), curves and top-1 of an uninterrupted one. Batch 48 of 320
    images: 7 steps an epoch, so Lookahead's every-5-steps updates fall inside epochs, not at their ends."""
    from test_engine import bench

    from conftest import kill_at

    run = [
        "run",
        "--methods",
        "baseline",
        "--arch",
        "airbench94",
        "--recipe",
        "fast",
        "--dataset",
        "cifar10-mini",
        "--epochs",
        "3",
        "--batch-size",
        "48",
        "--whiten",
        "64",
        "--train-subset",
        "320",
        "--test-subset",
        "100",
        "--tta",
        "mirror",
        "--device",
        "cpu",
        "--no-latency",
        "--quiet",
        "--seeds",
        "1",
        "--threads",
        "2",
    ]
    (cache_dir / "datasets").mkdir(parents=True, exist_ok=True)
    for name in ("clean", "killed"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "datasets").symlink_to(cache_dir / "datasets", target_is_directory=True)
    clean = bench([*run, "--cache-dir", str(tmp_path / "clean"), "--out", str(tmp_path / "out-clean")])
    assert clean.returncode == 0, clean.stderr
    killed = bench(
        [*run, "--cache-dir", str(tmp_path / "killed"), "--out", str(tmp_path / "out-killed")], env=kill_at("2:3")
    )
    assert killed.returncode != 0 and not list(tmp_path.glob("out-killed/*.json"))
    resumed = bench([*run, "--cache-dir", str(tmp_path / "killed"), "--out", str(tmp_path / "out-killed"), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    (a,), (b,) = read_records(tmp_path / "out-clean"), read_records(tmp_path / "out-killed")
    sa, sb = a["stages"]["baseline[airbench94]"], b["stages"]["baseline[airbench94]"]
    assert (sa["resumed_from_epoch"], sb["resumed_from_epoch"]) == (0, 1)
    assert sa["digest"] == sb["digest"]
    strip = lambda curves: [
        {k: v for k, v in row.items() if "seconds" not in k and k != "images_per_s"}  # noqa: E731
        for row in curves
    ]
    assert strip(a["curves"]) == strip(b["curves"]) and a["metrics"]["top1_last"] == b["metrics"]["top1_last"]
