"""What the check's child processes run: each function returns a JSON-able value (or raises)."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import shutil
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

#: torch's deterministic settings (part e); bench run has no option for them
CUBLAS_WORKSPACE = ":4096:8"


def cuda_state() -> dict[str, Any]:
    """Whether torch sees a GPU (asked in a child, so the check's own process holds no CUDA state)."""
    import torch

    return {"torch": torch.__version__, "cuda_build": torch.version.cuda, "available": torch.cuda.is_available()}


def cpu_bf16() -> bool:
    """Whether this CPU has bf16 instructions (bench run refuses --amp on a CPU without them)."""
    from harness.train.engine import cpu_has_bf16

    return bool(cpu_has_bf16())


def environment(device: str) -> dict[str, Any]:
    """Part a: the software and hardware the other parts ran on."""
    import torch

    from harness.results.records import version_line

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch CUDA build": torch.version.cuda,
        "cuDNN": torch.backends.cudnn.version(),
        "harness": version_line(),
        "host CPU": cpu_model(),
        "CPU cores (this process)": len(os.sched_getaffinity(0)),
        "host memory GiB": mem_total_gib(),
        "CPU bf16 instructions": cpu_bf16(),
        "C compiler (torch.compile)": shutil.which("cc") or shutil.which("gcc") or "none",
    }
    for name in ("torchvision", "timm", "triton"):
        info[name] = dist_version(name) or "not installed"
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(
            {
                "GPU": props.name,
                "GPU memory GiB": round(props.total_memory / 2**30, 1),
                "GPU count": torch.cuda.device_count(),
                "compute capability": f"{props.major}.{props.minor}",
                "GPU bf16": torch.cuda.is_bf16_supported(),
                "nvidia-smi": nvidia_smi(),
            }
        )
    return info


def cpu_model() -> str:
    """The host CPU's model name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def mem_total_gib() -> float | None:
    """The host's memory in GiB (None where /proc/meminfo cannot be read)."""
    try:
        kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        return round(kib / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        return None


def nvidia_smi() -> str:
    """Driver version, name and memory as nvidia-smi gives them."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version,name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"not available ({type(exc).__name__})"


def dist_version(name: str) -> str | None:
    """An installed distribution's version, or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def builtin_methods() -> list[dict[str, Any]]:
    """The built-in methods, from the plugin registry (third-party plugins left out), and whether each
    needs a teacher. Prefix entries (``attn:<name>``) are left out: they name a family, not a runnable method,
    and their members' code is the named built-ins' (``eca``, ``gc``, ``se``, ``cbam`` through one kit)."""
    from harness.plugins.manager import load_plugins

    plugins = load_plugins(entry_points=False, warn=False)
    return [
        {"name": e.name, "uses_teacher": bool(getattr(plugins.methods.resolve(e.name).obj, "uses_teacher", False))}
        for e in plugins.methods.entries()
        if not e.prefix
    ]


def bench(argv: list[str], deterministic: bool = False) -> dict[str, Any]:
    """``bench ARGV`` in this process (as ``python -m harness`` runs it). ``deterministic``: torch's
    deterministic settings first (cuDNN deterministic, no cuDNN benchmark, cuBLAS's fixed workspace,
    deterministic algorithms where torch has them: an op without one warns, named in the result, instead of
    stopping the run, as AdaptiveAvgPool2d's CUDA backward would)."""
    from harness.cli import main

    if not deterministic:
        return {"exit_code": main(argv)}
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
    import torch

    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    ops = {
        str(w.message).split(" does not have")[0] for w in caught if "deterministic implementation" in str(w.message)
    }
    return {"exit_code": code, "nondeterministic_ops": sorted(ops)}


def engine_setting(
    arch: str,
    batch: int,
    amp: bool,
    channels_last: bool,
    compile_: bool,
    images: int,
    epochs: int,
    repeats: int,
    device: str,
    cache: str,
) -> dict[str, Any]:
    """Part c, one row: engine and bare loop images/s (``bench_engine.py``'s timers; median of ``repeats``),
    after a warm-up epoch each (with ``compile_``, the compilation: its seconds reported apart)."""
    import torch
    from bench_engine import bare_timer, engine_timer, load_images, median_pair

    dev = torch.device(device)
    data = load_images(Path(cache), images)
    args = argparse.Namespace(arch=arch, batch_size=batch, amp=amp, channels_last=channels_last, compile=compile_)
    engine_t, bare_t = engine_timer(args, *data, dev), bare_timer(args, *data, dev)
    warm = {}
    for side, timed in (("engine", engine_t), ("bare", bare_t)):
        t0 = time.perf_counter()
        timed(1)
        warm[side] = round(time.perf_counter() - t0, 3)
    engine, bare = median_pair(lambda: engine_t(epochs), lambda: bare_t(epochs), repeats)
    return {
        "engine_img_s": round(engine, 1),
        "bare_img_s": round(bare, 1),
        "ratio": round(engine / bare, 3),
        "engine_warmup_s": warm["engine"],
        "bare_warmup_s": warm["bare"],
    }


def concurrent_k(
    k: int, arch: str, batch: int, amp: bool, images: int, epochs: int, device: str, cache: str
) -> dict[str, Any]:
    """Part d, one K: aggregate images/s of K engine runs at once (``bench_engine.concurrent_rate``; spawned
    on CUDA as ``--per-gpu`` starts its workers, forked on a CPU to save their imports)."""
    from bench_engine import concurrent_rate

    args = argparse.Namespace(
        arch=arch,
        batch_size=batch,
        amp=amp,
        channels_last=True,
        compile=False,
        images=images,
        cache_dir=Path(cache),
        epochs_each=epochs,
        device=device,
    )
    rate = concurrent_rate(args, k, start_method="spawn" if device == "cuda" else "fork")
    return {"aggregate_img_s": round(rate, 1)}


def pinned_gate(out: str, cache: str) -> dict[str, Any]:
    """``.ci/gate OUT`` (the smoke table under ``--numerics portable``, checked against the bundled reference)
    in a fresh process on this host's CPU: its exit status, its mode line (exact or why not), its summary and
    first FAIL line. A fresh process: the profile's pins must be set before torch runs its first kernel."""
    import sys

    env = {**os.environ, "BENCH": f"{sys.executable} -m harness", "BENCH_CACHE_DIR": cache}
    proc = subprocess.run(
        ["bash", ".ci/gate", out],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = proc.stdout.splitlines()
    first = lambda prefix: next((line for line in lines if line.startswith(prefix)), None)  # noqa: E731
    return {
        "exit_code": proc.returncode,
        "mode": first("platform"),
        "summary": lines[-1] if lines else None,
        "first_fail": first("FAIL"),
        "stderr": (proc.stderr.strip().splitlines() or [None])[-1],
    }
