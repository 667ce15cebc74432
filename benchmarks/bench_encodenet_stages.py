"""EncodeNet's extra stages against one baseline training epoch, measured in the same run.

On the 50,000 training images of the CIFAR-10 JPEG copy (or the bundled 5,000 when the copy is absent):
1. one baseline training epoch (the engine, the run's pipeline) of the architecture;
2. the baseline pass: softmax (for the entropies) and pooled encoder features (the clustering features)
   of every training image from one forward pass, batched on the device;
3. per-class k-means for k = 1..8 (n_init 10) with the elbow choice.
Prints each stage's seconds and its ratio to the baseline epoch. The network is untrained: the cost of
these stages does not depend on the weights.

Usage: python benchmarks/bench_encodenet_stages.py [--arch resnet20] [--data PATH] [--device cpu]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from harness.data.datasets import DatasetRequest, load_imagefolder
from harness.train.engine import fit
from harness.train.objective import Objective
from harness.models.levels import ArchSpec
from harness.data.pipeline import Normalizer, TrainStream
from harness.plugins.manager import load_plugins
from harness.core.progress import Reporter
from harness.core.recipes import Recipe
from plugins.methods.encodenet.clustering import cluster_per_class
from plugins.methods.encodenet.features import clustering_features
from plugins.methods.encodenet.method import predict

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg.tar.gz"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet20")
    p.add_argument("--data", type=Path, default=SHARED)
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "encodenet-bench")
    p.add_argument("--k-max", type=int, default=8)
    args = p.parse_args()
    device = torch.device(args.device)
    plugins = load_plugins(entry_points=False, warn=False)
    if args.data.exists():
        ds = load_imagefolder(args.data, f"imagefolder:{args.data}", args.cache_dir)
    else:
        ds = plugins.datasets.resolve("cifar10-mini").obj(DatasetRequest(name="cifar10-mini", cache_dir=args.cache_dir))
    n = len(ds.train_labels)
    torch.manual_seed(0)
    model = plugins.archs.resolve(args.arch).obj(ArchSpec(args.arch, ds.num_classes)).to(device)
    model = model.to(memory_format=torch.channels_last)
    norm = Normalizer(ds.mean, ds.std, device)
    print(f"{args.arch} on {n:,} training images ({ds.source}), device {device}, {torch.get_num_threads()} threads")

    stream = TrainStream(
        ds.train_images, ds.train_labels, batch_size=128, seed=0, normalizer=norm, device=device, channels_last=True
    )
    recipe = Recipe("bench", epochs=1, batch_size=128, lr=0.1, weight_decay=5e-4, schedule="constant")
    t0 = time.perf_counter()
    fit(Objective(model), stream, recipe, evaluate=dict, label="baseline", reporter=Reporter(), device=device)
    epoch = time.perf_counter() - t0

    t0 = time.perf_counter()
    _, embeddings = predict(model, ds.train_images, norm, device)
    feats, described = clustering_features(
        ds.train_images,
        model,
        ds.mean,
        ds.std,
        choice="encoder",
        vgg16_weights="",
        device=device,
        note=print,
        encoder_features=embeddings.numpy(),
    )
    pass_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    groups = cluster_per_class(feats, ds.train_labels.numpy(), k_max=args.k_max, fixed_k=0, seed=0, n_init=10)
    clustering_s = time.perf_counter() - t0

    print(f"baseline epoch        {epoch:8.1f} s")
    print(f"entropies + features  {pass_s:8.1f} s   ratio {pass_s / epoch:.3f}   (one pass; {described})")
    print(
        f"clustering (k=1..{args.k_max}) {clustering_s:8.1f} s   ratio {clustering_s / epoch:.3f}   "
        f"(k per class: {[g.k for g in groups]})"
    )
    print(f"RATIO (entropies + features + clustering) / one baseline epoch: {(pass_s + clustering_s) / epoch:.3f}")


if __name__ == "__main__":
    main()
