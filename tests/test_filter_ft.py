"""Issue 13: filter-level fine-tuning for distorted images: Borda ranking, selection, gradient masks that
leave every unselected filter unchanged, and a tiny run recording clean and distorted top-1."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import run_tiny
from harness.core.errors import UsageError
from harness.core.recipes import Recipe
from harness.api import RunInfo
from harness.models.levels import ArchSpec
from harness.plugins.manager import load_plugins
from harness.train.artifacts import ArtifactStore
from harness.train.engine import make_optimizer
from plugins.methods.filter_ft.method import FilterFinetune, MaskedFinetune
from plugins.methods.filter_ft.ranking import (
    LayerEvidence,
    borda_points,
    conv_layers,
    evidence,
    top_filters,
    top_layers,
)


def resnet8() -> nn.Module:
    factory, _ = load_plugins(warn=False).resolve_arch("resnet8")
    torch.manual_seed(0)
    return factory(ArchSpec("resnet8", 10))


def test_borda_count_gives_each_image_a_ranking_vote() -> None:
    distances = torch.tensor([[0.1, 0.9, 0.5], [0.2, 0.8, 0.9], [0.0, 1.0, 0.3]])  # 3 images, 3 filters
    assert borda_points(distances).tolist() == [0, 5, 4]  # filter 1 most affected in two of three votes


def test_selection_per_layer_and_whole_layers_at_the_same_budget() -> None:
    found = {
        "a": LayerEvidence(torch.tensor([5, 1, 9, 3]), relative=0.2),
        "b": LayerEvidence(torch.tensor([2, 8, 4, 6, 0, 1, 3, 7]), relative=0.9),
    }
    filters = top_filters(found, 0.25)
    assert filters["a"].tolist() == [False, False, True, False] and filters["b"].nonzero().flatten().tolist() == [1, 7]
    layers = top_layers(found, 0.25)  # 3 of 12 filters: the most affected layer, whole
    assert layers["b"].all() and not layers["a"].any()


def test_noise_moves_activations_and_the_ranking_sees_it() -> None:
    model = resnet8().eval()
    clean = torch.randn(6, 3, 32, 32)
    found = evidence(model, clean, clean + 0.5 * torch.randn_like(clean), batch_size=4)
    assert set(found) == set(conv_layers(model))
    assert all(ev.borda.sum() == 6 * ev.borda.numel() * (ev.borda.numel() - 1) // 2 for ev in found.values())
    assert all(ev.relative > 0 for ev in found.values())
    same = evidence(model, clean, clean.clone())
    assert all(ev.relative == 0 for ev in same.values())


def test_gradient_masks_leave_unselected_filters_unchanged() -> None:
    model = resnet8()
    convs = conv_layers(model)
    torch.manual_seed(1)
    masks = {name: torch.rand(conv.out_channels) < 0.3 for name, conv in convs.items()}
    masks["stem.0"][:] = False  # a layer with nothing selected stays frozen as a whole
    before = copy.deepcopy(model.state_dict())
    objective = MaskedFinetune(model, masks)
    recipe = Recipe("ft", epochs=1, batch_size=8, lr=0.5, weight_decay=0.0, momentum=0.9)
    optimizer = make_optimizer([p for p in objective.parameters() if p.requires_grad], recipe)
    objective.train()
    for _ in range(3):
        out = objective(torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)))
        optimizer.zero_grad()
        out.losses["ce"].backward()
        optimizer.step()
    after = model.state_dict()
    for name in convs:
        w0, w1 = before[f"{name}.weight"], after[f"{name}.weight"]
        keep = masks[name]
        assert torch.equal(w0[~keep], w1[~keep]), name
        if keep.any():
            assert not torch.equal(w0[keep], w1[keep]), name
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {f"{name}.weight" for name, m in masks.items() if m.any()}  # BN (stats too) and fc frozen


def test_plan_options_and_budget() -> None:
    run = RunInfo(arch="resnet20", recipe=Recipe("r", epochs=30, batch_size=64, lr=0.1, weight_decay=5e-4))
    plan = FilterFinetune("filter-ft", {}).plan(run)
    assert [s.label for s in plan.stages()] == ["baseline[resnet20]", "finetune"]
    ft = plan.deploy.recipe
    assert (ft.epochs, ft.lr, ft.weight_decay) == (3, pytest.approx(0.01), 0.0)
    for opts, message in (
        ({"distortion": "rain:1"}, "unknown distortion"),
        (
            {"fraction": 0.0},
            r"filter-ft.fraction must be a finite "
            r"number in \(0, 1\], got 0.0",
        ),
    ):
        with pytest.raises(UsageError, match=message):
            FilterFinetune("filter-ft", opts).plan(run)


@pytest.mark.parametrize("select", ["filters", "layers"])
def test_tiny_run_fine_tunes_only_the_selection(tmp_path: Path, cache_dir: Path, select: str) -> None:
    outcome = run_tiny(
        cache_dir,
        tmp_path,
        methods=["filter-ft"],
        options=[
            f"filter-ft.select={select}",
            "filter-ft.epochs_ratio=1",
            "filter-ft.lr_scale=1",
            "filter-ft.rank_images=64",
            "filter-ft.distortion=noise:0.2",
        ],
    )
    by = {r["method"]["name"]: r for r in outcome.records}
    ft, base = by["filter-ft"], by["baseline"]  # the shared baseline gets its own row
    assert set(ft["metrics"]["top1_distorted"]) == {"noise:0.2"}  # clean top-1 and the distortion's, recorded
    info = ft["info"]
    assert 0 < info["filters_selected"] < info["filters_total"]
    store = ArtifactStore(cache_dir / "artifacts")
    tuned = store.load("finetune", ft["run_key"])["objective"]
    trained = store.load("baseline", base["run_key"])["objective"]
    for i, (path, (chosen, total)) in enumerate(info["selected_per_layer"].items()):
        mask = tuned[f"masks.layer{i}"]  # the selection, kept with the artifact
        assert int(mask.sum()) == chosen and mask.numel() == total
        w0, w1 = trained[f"model.{path}.weight"], tuned[f"model.{path}.weight"]
        assert torch.equal(w0[~mask], w1[~mask]), path
        assert chosen == 0 or not torch.equal(w0[mask], w1[mask]), path
        if select == "layers":
            assert chosen in (0, total)
    assert all(torch.equal(trained[k], tuned[k]) for k in trained if ".bn" in k or "head" in k or "downsample.1" in k)
