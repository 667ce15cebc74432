"""EncodeNet: decoder shapes on every family, frozen encoder, representatives, elbow, end-to-end run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs

from conftest import run_tiny
from harness.core.errors import UsageError
from harness.models.levels import ArchSpec
from harness.plugins.manager import load_plugins
from plugins.methods.encodenet.autoencoder import ConvertingAutoencoder, Encoder, build_decoder
from plugins.methods.encodenet.clustering import (
    ClassClusters,
    cluster_class,
    cluster_per_class,
    entropy,
    one_per_class,
    representatives,
)

PLUGINS = load_plugins(entry_points=False, warn=False)


@pytest.mark.parametrize(
    "arch, chans, size",
    [
        ("resnet8", 3, 32),
        ("resnet8x4", 3, 32),
        ("vgg8", 3, 32),
        ("resnet18", 3, 32),
        ("timm:convnext_atto", 3, 32),
        ("vgg8", 1, 28),
        ("resnet8", 1, 28),
    ],
)
def test_decoder_reconstructs_input_shape_for_every_split(arch: str, chans: int, size: int) -> None:
    resolved = PLUGINS.archs.resolve(arch)
    model = resolved.obj(ArchSpec(arch, 10, chans, size, arg=resolved.arg)).eval()
    x = torch.randn(2, chans, size, size)
    for split in range(1, model.num_levels + 1):
        ae = ConvertingAutoencoder(Encoder(model, split), build_decoder(model.level_info, split, chans, size)).eval()
        with torch.no_grad():
            assert ae(x).shape == x.shape, (arch, split)
            # the encoder is the model's own stem and first stages
            torch.testing.assert_close(ae.encoder(x), model.forward_features(x, upto=split))


def test_entropy_by_hand() -> None:
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(entropy(p), [0.0, np.log(2)], atol=1e-9)


def test_representatives_are_argmin_entropy_members() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 50)
    entropies = rng.random(100)
    groups = []
    for c in (0, 1):
        members = np.flatnonzero(labels == c)
        groups.append(ClassClusters(c, 3, [], True, rng.integers(0, 3, len(members)), members))
    correct = rng.random(100) > 0.3
    reps = representatives(groups, entropies, correct, correct_only=False)
    assert len(reps.groups) == 6
    for g in reps.groups:
        cc = groups[g["label"]]
        members = cc.members[cc.assignment == g["cluster"]]
        assert g["representative"] == members[np.argmin(entropies[members])]
        assert (reps.target_of[members] == g["representative"]).all()
    only_correct = representatives(groups, entropies, correct, correct_only=True)
    for g in only_correct.groups:
        cc = groups[g["label"]]
        members = cc.members[cc.assignment == g["cluster"]]
        pool = members[correct[members]]
        assert g["representative"] == pool[np.argmin(entropies[pool])]
    per_class = one_per_class(labels, entropies, correct, False)
    assert [g["representative"] for g in per_class.groups] == [
        int(np.argmin(entropies[:50])),
        50 + int(np.argmin(entropies[50:])),
    ]


@pytest.mark.parametrize("centers", [3, 4, 5, 6])
def test_elbow_finds_the_number_of_blobs(centers: int) -> None:
    # well-separated blobs (8-d); on 2-d blobs whose centres happen to group, any elbow rule finds the groups
    x, _ = make_blobs(
        n_samples=100 * centers, centers=centers, n_features=8, cluster_std=1.0, center_box=(-20, 20), random_state=1
    )
    k, inertias, found, assignment = cluster_class(x, k_max=10, fixed_k=0, seed=0, n_init=10)
    assert found and k == centers
    assert len(inertias) == 10 and len(set(assignment)) == centers


def test_fixed_k_and_per_class() -> None:
    x, _ = make_blobs(n_samples=200, centers=2, random_state=0)
    labels = np.repeat([0, 1], 100)
    groups = cluster_per_class(x, labels, k_max=8, fixed_k=3, seed=0)
    assert [g.k for g in groups] == [3, 3] and all(len(g.members) == 100 for g in groups)


def state_of(payload: dict, prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in payload["objective"].items() if k.startswith(prefix)}


def test_encodenet_end_to_end(tmp_path: Path, cache_dir: Path) -> None:
    outcome = run_tiny(
        cache_dir, tmp_path, methods=["baseline", "encodenet"], train_subset=400, options=["encodenet.k_max=4"]
    )
    base, enc = outcome.records
    assert enc["metrics"]["params_deployed"] == base["metrics"]["params_deployed"] == 78_042
    assert enc["stages"]["baseline[resnet8]"]["reused"] is True  # trained once, by the baseline method
    assert enc["stages"]["baseline[resnet8]"]["artifact"] == base["stages"]["baseline[resnet8]"]["artifact"]
    assert {"baseline[resnet8]", "autoencoder", "head"} == set(enc["stages"])
    assert enc["stages"]["head"]["needs"]["autoencoder"] == enc["stages"]["autoencoder"]["artifact"]
    info = enc["info"]
    assert info["seconds_features"] >= 0 and info["seconds_clustering"] >= 0
    assert info["split"] == 2 and info["frozen_encoder"] and "encoder features" in info["features"]
    assert sum(g["size"] for g in info["representatives"]) == 400
    assert len(info["k_per_class"]) == 10 and all(1 <= k <= 4 for k in info["k_per_class"].values())
    assert len(info["reconstruction_curve"]) >= 1 and info["compute"]["flops_relative_to_baseline"] > 1
    for name in ("fig2_clusters", "fig3_elbow", "fig4_entropy", "fig5_converted"):
        png = Path(enc["figures"][name])
        assert png.exists() and png.read_bytes()[:4] == b"\x89PNG"
    # the encoder is bit-identical after the head stage (parameters and BatchNorm buffers)
    store = cache_dir / "artifacts"
    ae = torch.load(store / "autoencoder" / f"{info['autoencoder_artifact']}.pt", weights_only=False)
    head = torch.load(store / "head" / f"{enc['stages']['head']['artifact']}.pt", weights_only=False)
    encoder = state_of(ae, "model.encoder.")
    after = {
        **{f"stem.{k}": v for k, v in state_of(head, "model.stem.").items()},
        **{f"levels.{k}": v for k, v in state_of(head, "model.levels.").items() if int(k.split(".")[0]) < 2},
    }
    assert encoder.keys() == after.keys() and any("running_mean" in k for k in encoder)
    for k in encoder:
        assert torch.equal(encoder[k], after[k]), k
    # ... while the classification part did train
    base_state = torch.load(
        store / "baseline" / f"{base['stages']['baseline[resnet8]']['artifact']}.pt", weights_only=False
    )
    assert not torch.equal(state_of(head, "model.head.")["fc.weight"], state_of(base_state, "model.head.")["fc.weight"])


def test_ablations_and_finetune(tmp_path: Path, cache_dir: Path) -> None:
    outcome = run_tiny(
        cache_dir,
        tmp_path,
        methods=["encodenet-input", "encodenet-class", "encodenet-finetune"],
        train_subset=400,
        options=["encodenet-finetune.k=2", "encodenet-finetune.figures=false"],
    )
    by_method = {r["method"]["name"]: r for r in outcome.records}
    inp, cls, fine = by_method["encodenet-input"], by_method["encodenet-class"], by_method["encodenet-finetune"]
    assert (
        by_method["baseline"]["stages"]["baseline[resnet8]"]["artifact"]
        == fine["stages"]["baseline[resnet8]"]["artifact"]
    )  # the shared baseline gets its own row
    assert inp["info"]["target"] == "input" and "representatives" not in inp["info"]
    assert cls["info"]["target"] == "class" and len(cls["info"]["representatives"]) == 10
    assert fine["info"]["frozen_encoder"] is False and set(fine["info"]["k_per_class"].values()) == {2}
    assert fine["info"]["trainable_params"] == fine["metrics"]["params_deployed"]
    assert cls["info"]["trainable_params"] < cls["metrics"]["params_deployed"]
    assert "figures" not in fine


def test_bad_split_and_missing_vgg_weights_refused(tmp_path: Path, cache_dir: Path, monkeypatch) -> None:
    with pytest.raises(UsageError, match="split must be between 1 and 3"):
        run_tiny(cache_dir, tmp_path, methods=["encodenet"], options=["encodenet.split=4"])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    with pytest.raises(UsageError, match="needs ImageNet VGG16 weights"):
        run_tiny(cache_dir, tmp_path, methods=["encodenet"], options=["encodenet.features=vgg16"])


def test_a_missing_clustering_or_plotting_library_is_named_before_training(
    tmp_path: Path, cache_dir: Path, monkeypatch
) -> None:
    """scikit-learn, kneed and matplotlib are imported where they are used; planning checks that they are
    installed (a one-line error before anything trains) and using one that is missing says the same."""
    import importlib.util
    import sys

    from conftest import tiny_request
    from harness.core.progress import Reporter
    from harness.run.prepare import prepare
    from plugins.methods.encodenet import clustering, figures

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "kneed" else found(name, *a))

    def plan(**overrides) -> None:
        prepare(tiny_request(cache_dir, tmp_path, **overrides), PLUGINS, Reporter())  # plans; trains nothing

    with pytest.raises(UsageError, match="method 'encodenet' .target=cluster. needs kneed, which is not installed"):
        plan(methods=["encodenet"])
    plan(methods=["encodenet-input"])  # no clustering: kneed is not needed
    monkeypatch.setitem(sys.modules, "kneed", None)  # not importable
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UsageError, match="EncodeNet's elbow method needs kneed"):
        clustering.elbow([1, 2, 3, 4], [10.0, 3.0, 2.0, 1.5])
    with pytest.raises(UsageError, match="EncodeNet's figures needs matplotlib"):
        figures.pyplot()
