"""Throughput of the harness against references measured in the same run.

1. Training: the engine (``harness.train.engine.fit``: shared augmentation pipeline, loss bookkeeping, progress
   accounting) against a bare hand-written PyTorch loop on the same model, data, batch size and number of
   steps. The bare loop does the least possible work: pre-normalised, un-augmented batches sliced from one
   float tensor, forward, cross-entropy, backward, step.
2. Data: the tensor pipeline (``TrainStream``: per-image crop + flip by one gather, normalisation) against
   the reference implementations' way, per-sample PIL transforms (RandomCrop(32, 4), RandomHorizontalFlip,
   ToTensor, Normalize) in a torch DataLoader, with 0 and 2 workers.

Usage: python benchmarks/bench_engine.py [--arch resnet20] [--images 2048] [--repeats 3] [--device cpu]
Prints the ratios last. Timings alternate between the two sides of each comparison; medians are reported.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from PIL import Image
from torch.nn import functional as F

from harness.data.datasets import DatasetRequest
from harness.train.engine import fit
from harness.train.objective import Objective
from harness.models.staged import ArchSpec
from harness.data.pipeline import Normalizer, TrainStream
from harness.plugins.manager import load_plugins
from harness.core.progress import Reporter
from harness.core.recipes import Recipe


def load_images(cache: Path, count: int) -> tuple[torch.Tensor, torch.Tensor, tuple, tuple]:
    plugins = load_plugins(entry_points=False, warn=False)
    ds = plugins.datasets.resolve("cifar10-mini").obj(DatasetRequest(name="cifar10-mini", cache_dir=cache))
    return ds.train_images[:count], ds.train_labels[:count], ds.mean, ds.std


def build_model(arch: str, device: torch.device, channels_last: bool) -> torch.nn.Module:
    plugins = load_plugins(entry_points=False, warn=False)
    torch.manual_seed(0)
    model = plugins.archs.resolve(arch).obj(ArchSpec(arch, 10)).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_engine(args, images, labels, mean, std, device) -> float:  # type: ignore[no-untyped-def]
    model = build_model(args.arch, device, args.channels_last)
    norm = Normalizer(mean, std, device)
    stream = TrainStream(images, labels, batch_size=args.batch_size, seed=0, normalizer=norm, device=device,
                         channels_last=args.channels_last)
    recipe = Recipe("bench", epochs=1, batch_size=args.batch_size, lr=0.05, weight_decay=5e-4, schedule="constant")
    sync(device)
    t0 = time.perf_counter()
    fit(Objective(model), stream, recipe, evaluate=dict, label="engine", reporter=Reporter(), device=device,
        amp=args.amp)
    sync(device)
    return len(labels) / (time.perf_counter() - t0)


def time_bare_loop(args, images, labels, mean, std, device) -> float:  # type: ignore[no-untyped-def]
    model = build_model(args.arch, device, args.channels_last)
    m = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=device).view(1, -1, 1, 1)
    x_all = ((images.to(device).float() / 255) - m) / s
    if args.channels_last:
        x_all = x_all.contiguous(memory_format=torch.channels_last)
    y_all = labels.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    model.train()
    sync(device)
    t0 = time.perf_counter()
    for i in range(0, len(labels) - 1, args.batch_size):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            loss = F.cross_entropy(model(x_all[i:i + args.batch_size]), y_all[i:i + args.batch_size])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return len(labels) / (time.perf_counter() - t0)


class PILDataset(torch.utils.data.Dataset):
    """What torchvision's CIFAR datasets do: a uint8 array per image, PIL transforms per sample."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std) -> None:  # type: ignore[no-untyped-def]
        from torchvision import transforms

        self.arrays = images.permute(0, 2, 3, 1).numpy()
        self.labels = labels.tolist()
        self.transform = transforms.Compose([
            transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
        return self.transform(Image.fromarray(self.arrays[i])), self.labels[i]


def time_pil_loader(images, labels, mean, std, batch: int, workers: int) -> float:  # type: ignore[no-untyped-def]
    loader = torch.utils.data.DataLoader(PILDataset(images, labels, mean, std), batch_size=batch, shuffle=True,
                                         num_workers=workers, persistent_workers=False)
    t0 = time.perf_counter()
    n = sum(len(y) for _, y in loader)
    return n / (time.perf_counter() - t0)


def time_stream(images, labels, mean, std, batch: int, device: torch.device) -> float:  # type: ignore[no-untyped-def]
    stream = TrainStream(images, labels, batch_size=batch, seed=0, normalizer=Normalizer(mean, std, device), device=device)
    sync(device)
    t0 = time.perf_counter()
    n = sum(len(y) for _, y in stream.epoch(0))
    sync(device)
    return n / (time.perf_counter() - t0)


def median_pair(fa, fb, repeats: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    a, b = [], []
    for _ in range(repeats):
        a.append(fa())
        b.append(fb())
    return statistics.median(a), statistics.median(b)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet20")
    p.add_argument("--images", type=int, default=2048, help="training images per timed epoch")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "encodenet-bench")
    p.add_argument("--threads", type=int)
    p.add_argument("--contiguous", action="store_true", help="NCHW instead of the harness default channels_last")
    args = p.parse_args()
    device = torch.device(args.device)
    args.amp = device.type == "cuda"
    args.channels_last = not args.contiguous
    if args.threads:
        torch.set_num_threads(args.threads)
    images, labels, mean, std = load_images(args.cache_dir, args.images)
    print(f"device {device} ({torch.get_num_threads()} threads), torch {torch.__version__}, arch {args.arch}, "
          f"{len(labels)} images, batch {args.batch_size}, {args.repeats} repeats (median)")

    time_engine(args, images[:256], labels[:256], mean, std, device)  # warm-up (allocator, kernels)
    engine, bare = median_pair(lambda: time_engine(args, images, labels, mean, std, device),
                               lambda: time_bare_loop(args, images, labels, mean, std, device), args.repeats)
    print(f"training   engine {engine:9.0f} img/s   bare loop {bare:9.0f} img/s")

    stream = statistics.median(time_stream(images, labels, mean, std, args.batch_size, device) for _ in range(args.repeats))
    pil0 = statistics.median(time_pil_loader(images, labels, mean, std, args.batch_size, 0) for _ in range(args.repeats))
    pil2 = statistics.median(time_pil_loader(images, labels, mean, std, args.batch_size, 2) for _ in range(args.repeats))
    print(f"data       tensor pipeline {stream:9.0f} img/s   PIL DataLoader {pil0:7.0f} img/s (0 workers), "
          f"{pil2:7.0f} img/s (2 workers)")
    print()
    print(f"RATIO engine / bare loop (training throughput):        {engine / bare:.3f}")
    print(f"RATIO tensor pipeline / PIL DataLoader, 0 workers:      {stream / pil0:.1f}")
    print(f"RATIO tensor pipeline / PIL DataLoader, 2 workers:      {stream / pil2:.1f}")


if __name__ == "__main__":
    main()
