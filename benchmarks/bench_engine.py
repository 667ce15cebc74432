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

3. GPU mode (``--gpu``, one command on a CUDA machine): engine against the bare loop, both with bf16 autocast
   and channels_last, for resnet20 (batch 64 and 128), resnet56, vgg8 and resnet50 (CIFAR stem), with and
   without ``torch.compile`` (``--compile``: the objective and the bare model compiled alike); then the
   aggregate images/s of K concurrent engine runs on the one GPU (``--concurrent 1,2,4``: separate processes,
   as ``bench run --per-gpu K`` starts them) against one run. Figures go into benchmarks/README.md with the
   device named:  python benchmarks/bench_engine.py --gpu --images 5000 --compile --concurrent 1,2,4
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from torch.nn import functional as F

from harness.data.datasets import DatasetRequest
from harness.train.engine import compiled, fit
from harness.train.objective import Objective
from harness.models.levels import ArchSpec
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


def engine_timer(args, images, labels, mean, std, device) -> Callable[[int], float]:
    """A function that trains N epochs through the engine and returns images/s; the model, objective and
    (``args.compile``) compiled step are built once, so its first call compiles and later calls reuse it."""
    model = build_model(args.arch, device, args.channels_last)
    objective = Objective(model)
    step = compiled(objective, "default" if getattr(args, "compile", False) else None)  # the engine's --compile
    norm = Normalizer(mean, std, device)
    stream = TrainStream(
        images,
        labels,
        batch_size=args.batch_size,
        seed=0,
        normalizer=norm,
        device=device,
        channels_last=args.channels_last,
    )

    def timed(epochs: int = 1) -> float:
        recipe = Recipe(
            "bench", epochs=epochs, batch_size=args.batch_size, lr=0.05, weight_decay=5e-4, schedule="constant"
        )
        sync(device)
        t0 = time.perf_counter()
        fit(
            objective,
            stream,
            recipe,
            evaluate=dict,
            label="engine",
            reporter=Reporter(),
            device=device,
            amp=args.amp,
            forward=step,
        )
        sync(device)
        return len(labels) * epochs / (time.perf_counter() - t0)

    return timed


def bare_timer(args, images, labels, mean, std, device) -> Callable[[int], float]:
    """The same for the bare loop (pre-normalised batches, forward, cross-entropy, backward, step)."""
    model = build_model(args.arch, device, args.channels_last)
    step_model = torch.compile(model) if getattr(args, "compile", False) else model
    m = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=device).view(1, -1, 1, 1)
    x_all = ((images.to(device).float() / 255) - m) / s
    if args.channels_last:
        x_all = x_all.contiguous(memory_format=torch.channels_last)
    y_all = labels.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    model.train()

    def timed(epochs: int = 1) -> float:
        sync(device)
        t0 = time.perf_counter()
        for _ in range(epochs):
            for i in range(0, len(labels) - 1, args.batch_size):
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
                    loss = F.cross_entropy(step_model(x_all[i : i + args.batch_size]), y_all[i : i + args.batch_size])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        sync(device)
        return len(labels) * epochs / (time.perf_counter() - t0)

    return timed


def time_engine(args, images, labels, mean, std, device) -> float:
    """Images/s of one epoch through the engine, on a fresh model."""
    return engine_timer(args, images, labels, mean, std, device)()


def time_bare_loop(args, images, labels, mean, std, device) -> float:
    """Images/s of one epoch of the bare loop, on a fresh model."""
    return bare_timer(args, images, labels, mean, std, device)()


class PILDataset(torch.utils.data.Dataset):
    """What torchvision's CIFAR datasets do: a uint8 array per image, PIL transforms per sample."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std) -> None:
        from torchvision import transforms

        self.arrays = images.permute(0, 2, 3, 1).numpy()
        self.labels = labels.tolist()
        self.transform = transforms.Compose(
            [
                transforms.RandomCrop(32, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(mean, std),
            ]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.arrays[i])), self.labels[i]


def time_pil_loader(images, labels, mean, std, batch: int, workers: int) -> float:
    loader = torch.utils.data.DataLoader(
        PILDataset(images, labels, mean, std),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        persistent_workers=False,
    )
    t0 = time.perf_counter()
    n = sum(len(y) for _, y in loader)
    return n / (time.perf_counter() - t0)


def time_stream(images, labels, mean, std, batch: int, device: torch.device) -> float:
    stream = TrainStream(
        images, labels, batch_size=batch, seed=0, normalizer=Normalizer(mean, std, device), device=device
    )
    sync(device)
    t0 = time.perf_counter()
    n = sum(len(y) for _, y in stream.epoch(0))
    sync(device)
    return n / (time.perf_counter() - t0)


def median_pair(fa, fb, repeats: int) -> tuple[float, float]:
    a, b = [], []
    for _ in range(repeats):
        a.append(fa())
        b.append(fb())
    return statistics.median(a), statistics.median(b)


GPU_SUITE = (("resnet20", 64), ("resnet20", 128), ("resnet56", 128), ("vgg8", 64), ("resnet50", 128))


def gpu_suite(args, images, labels, mean, std, device) -> None:
    """Engine / bare loop for every (arch, batch) of GPU_SUITE, eager and (with --compile) compiled."""
    print(
        f"GPU {torch.cuda.get_device_name(device)}, torch {torch.__version__}, bf16 autocast, channels_last, "
        f"{len(labels)} images per timed epoch, {args.repeats} repeats (median)"
    )
    modes = (False, True) if args.compile else (False,)
    for arch, batch in GPU_SUITE:
        for compile_on in modes:
            run = argparse.Namespace(**{**vars(args), "arch": arch, "batch_size": batch, "compile": compile_on})
            engine_t, bare_t = (timer(run, images, labels, mean, std, device) for timer in (engine_timer, bare_timer))
            engine_t(), bare_t()  # warm-up (and compilation): the timed epochs reuse the compiled step
            engine, bare = median_pair(engine_t, bare_t, args.repeats)
            print(
                f"{arch:9s} batch {batch:4d} {'compiled' if compiled else 'eager   '}  engine {engine:9.0f} img/s  "
                f"bare {bare:9.0f} img/s  RATIO engine / bare {engine / bare:.3f}"
            )


def _concurrent_run(args, start, queue) -> None:
    """One of K processes sharing the device: train ``args.epochs_each`` epochs after the common start."""
    device = torch.device(args.device)
    images, labels, mean, std = load_images(args.cache_dir, args.images)
    timed = engine_timer(args, images, labels, mean, std, device)
    engine_timer(args, images[:512], labels[:512], mean, std, device)()  # warm-up (allocator, kernels)
    start.wait()
    t0 = time.perf_counter()
    timed(args.epochs_each)
    queue.put((len(labels) * args.epochs_each, time.perf_counter() - t0))


def concurrent_rate(args, k: int, start_method: str = "spawn") -> float:
    """Aggregate images/s of ``k`` engine runs at once on ``args.device`` (separate processes, as
    ``bench run --per-gpu K`` starts them), from their common start to the last one's end; ``start_method``
    ("fork" on a CPU saves each process's imports) does not enter the measurement."""
    import multiprocessing as mp

    context = mp.get_context(start_method)
    start, queue = context.Barrier(k + 1), context.Queue()
    procs = [context.Process(target=_concurrent_run, args=(args, start, queue)) for _ in range(k)]
    for proc in procs:
        proc.start()
    start.wait()
    t0 = time.perf_counter()
    done = [queue.get() for _ in procs]
    wall = time.perf_counter() - t0
    for proc in procs:
        proc.join()
    return sum(n for n, _ in done) / wall


def concurrent(args) -> None:
    """Aggregate images/s of K engine runs at once on one GPU (separate processes) against one run."""
    base = None
    for k in args.concurrent:
        rate = concurrent_rate(args, k)
        base = base or rate
        print(
            f"{k} concurrent run(s) of {args.arch} batch {args.batch_size}: {rate:9.0f} img/s in all  "
            f"RATIO vs 1 run {rate / base:.2f}"
        )


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
    p.add_argument("--gpu", action="store_true", help="the GPU suite (implies --device cuda)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd engine and bare loop")
    p.add_argument(
        "--concurrent",
        type=lambda t: [int(k) for k in t.split(",")],
        default=None,
        help="with --gpu: aggregate img/s of K concurrent runs on the GPU, e.g. 1,2,4",
    )
    p.add_argument("--epochs-each", type=int, default=3, help="epochs of each concurrent run")
    args = p.parse_args()
    if args.gpu:
        args.device = "cuda"
    device = torch.device(args.device)
    args.amp = device.type == "cuda"
    args.channels_last = not args.contiguous
    if args.threads:
        torch.set_num_threads(args.threads)
    images, labels, mean, std = load_images(args.cache_dir, args.images)
    if args.gpu:
        gpu_suite(args, images, labels, mean, std, device)
        if args.concurrent:
            args.compile = False
            concurrent(args)
        return
    print(
        f"device {device} ({torch.get_num_threads()} threads), torch {torch.__version__}, arch {args.arch}, "
        f"{len(labels)} images, batch {args.batch_size}, {args.repeats} repeats (median)"
    )

    time_engine(args, images[:256], labels[:256], mean, std, device)  # warm-up (allocator, kernels)
    engine, bare = median_pair(
        lambda: time_engine(args, images, labels, mean, std, device),
        lambda: time_bare_loop(args, images, labels, mean, std, device),
        args.repeats,
    )
    print(f"training   engine {engine:9.0f} img/s   bare loop {bare:9.0f} img/s")

    stream = statistics.median(
        time_stream(images, labels, mean, std, args.batch_size, device) for _ in range(args.repeats)
    )
    pil0 = statistics.median(
        time_pil_loader(images, labels, mean, std, args.batch_size, 0) for _ in range(args.repeats)
    )
    pil2 = statistics.median(
        time_pil_loader(images, labels, mean, std, args.batch_size, 2) for _ in range(args.repeats)
    )
    print(
        f"data       tensor pipeline {stream:9.0f} img/s   PIL DataLoader {pil0:7.0f} img/s (0 workers), "
        f"{pil2:7.0f} img/s (2 workers)"
    )
    print()
    print(f"RATIO engine / bare loop (training throughput):        {engine / bare:.3f}")
    print(f"RATIO tensor pipeline / PIL DataLoader, 0 workers:      {stream / pil0:.1f}")
    print(f"RATIO tensor pipeline / PIL DataLoader, 2 workers:      {stream / pil2:.1f}")


if __name__ == "__main__":
    main()
