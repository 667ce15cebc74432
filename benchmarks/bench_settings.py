"""What bf16 autocast and torch.compile buy on this CPU: images/s of the engine per setting, in one run.

For resnet8, resnet20, resnet56 and vgg8 (CIFAR, 10 classes, batch 128, channels_last), one epoch of N images
of the bundled dataset through ``harness.train.engine.fit`` with each engine setting (as ``bench run`` trains):

    eager fp32 (the default), bf16 autocast (--amp), compiled (--compile), compiled + bf16, and the bare loop
    of bench_engine.py (pre-normalised batches, forward, cross-entropy, backward, step: the floor of overhead).

Each setting is warmed up once (for compiled settings, the compilation) and timed ``--repeats`` times; the
median is printed, with the ratio to eager fp32 and the fraction of this CPU's peak it reaches: training
FLOPs/s (images/s x 3 x forward FLOPs of the model, torch's counter) over the peak, measured here as the
best of 5 multiplications of two 2048x2048 matrices in fp32 (and in bf16 for the bf16 rows), i.e. what
torch's BLAS reaches on this CPU, not a datasheet number. On a CPU without bf16 instructions (where the engine
refuses ``--amp``) the bf16 rows are skipped, as emulated bf16 is orders of magnitude slower (a 256x256 probe
says by how much); ``--bf16-anyway`` times them regardless.

Usage (alone on the machine): python benchmarks/bench_settings.py [--images 4096] [--repeats 3] [--archs ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_engine import build_model, load_images, time_bare_loop  # noqa: E402

from harness.core.progress import Reporter  # noqa: E402
from harness.core.recipes import Recipe  # noqa: E402
from harness.data.pipeline import Normalizer, TrainStream  # noqa: E402
from harness.models.cost import count_cost  # noqa: E402
from harness.train.engine import compiled, cpu_has_bf16, fit  # noqa: E402
from harness.train.objective import Objective  # noqa: E402

SETTINGS = (
    ("eager fp32", False, False),
    ("bf16 autocast", True, False),
    ("compiled", False, True),
    ("compiled + bf16", True, True),
)


def peak_flops(dtype: torch.dtype, n: int = 2048, tries: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(tries):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def engine_rate(
    arch: str, images: torch.Tensor, labels: torch.Tensor, mean, std, *, amp: bool, compile_: bool, batch: int
) -> float:
    device = torch.device("cpu")
    objective = Objective(build_model(arch, device, True))
    stream = TrainStream(
        images,
        labels,
        batch_size=batch,
        seed=0,
        normalizer=Normalizer(mean, std, device),
        device=device,
        channels_last=True,
    )
    recipe = Recipe("bench", epochs=1, batch_size=batch, lr=0.05, weight_decay=5e-4, schedule="constant")
    step = compiled(objective, "default" if compile_ else None)
    fit(
        objective,
        stream,
        recipe,
        evaluate=dict,
        label="warm-up",
        reporter=Reporter(),
        device=device,
        amp=amp,
        forward=step,
    )  # the warm-up epoch (a compiled step compiles here)
    t0 = time.perf_counter()
    fit(
        objective,
        stream,
        recipe,
        evaluate=dict,
        label="timed",
        reporter=Reporter(),
        device=device,
        amp=amp,
        forward=step,
    )
    return len(labels) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="resnet8,resnet20,resnet56,vgg8")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bf16-anyway", action="store_true", help="time the bf16 settings on a CPU that emulates them")
    args = parser.parse_args()
    images, labels, mean, std = load_images(Path(tempfile.mkdtemp()), args.images)
    bf16 = cpu_has_bf16()
    # without bf16 instructions a bf16 matmul is emulated, orders of magnitude slower: probed on 256x256 once
    peaks = {
        torch.float32: peak_flops(torch.float32),
        torch.bfloat16: peak_flops(torch.bfloat16) if bf16 else peak_flops(torch.bfloat16, 256, 1),
    }
    print(
        f"CPU {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}; "
        f"bf16 instructions: {'yes' if bf16 else 'no (bench run refuses --amp here)'}"
    )
    print(
        f"peak (best 2048x2048 matmul): fp32 {peaks[torch.float32] / 1e9:.0f} GFLOP/s, "
        f"bf16 {peaks[torch.bfloat16] / 1e9:.1f} GFLOP/s{'' if bf16 else ' (emulated; 256x256)'}; "
        f"{len(labels)} images per timed epoch, batch {args.batch_size}, channels_last, median of {args.repeats}",
        flush=True,
    )
    settings = [s for s in SETTINGS if bf16 or args.bf16_anyway or not s[1]]
    if len(settings) < len(SETTINGS):
        print("bf16 rows skipped: this CPU would emulate them (--bf16-anyway times them regardless)", flush=True)
    for arch in args.archs.split(","):
        fwd = count_cost(build_model(arch, torch.device("cpu"), False), (3, 32, 32), torch.device("cpu")).flops
        rates: dict[str, float] = {}
        for name, amp, compile_ in settings:
            engine_rate(
                arch, images[:512], labels[:512], mean, std, amp=amp, compile_=compile_, batch=args.batch_size
            )  # compilation and caches, outside the timing
            rates[name] = statistics.median(
                engine_rate(arch, images, labels, mean, std, amp=amp, compile_=compile_, batch=args.batch_size)
                for _ in range(args.repeats)
            )
        bare = argparse.Namespace(arch=arch, batch_size=args.batch_size, channels_last=True, amp=False, compile=False)
        device = torch.device("cpu")
        time_bare_loop(bare, images[:512], labels[:512], mean, std, device)
        rates["bare loop fp32"] = statistics.median(
            time_bare_loop(bare, images, labels, mean, std, device) for _ in range(args.repeats)
        )
        for name, rate in rates.items():
            peak = peaks[torch.bfloat16 if "bf16" in name else torch.float32]
            print(
                f"{arch:9s} {name:16s} {rate:8.0f} img/s  RATIO vs eager fp32 {rate / rates['eager fp32']:.2f}  "
                f"FRACTION of peak {rate * 3 * fwd / peak:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
