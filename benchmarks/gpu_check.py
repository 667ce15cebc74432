"""One prepared command for a GPU machine: proves every built-in method on CUDA and measures the engine.

A GPU machine is lent for a few minutes at a time, with no network and no time to debug, so this one command
does what a first GPU session should, every piece in a child process with a time limit; each part has a
budget, and a part that fails or runs out of it is recorded (with its first error line) and the next runs.

  a. environment   torch, CUDA, cuDNN, the GPU's name and memory, the host CPU, a C compiler (torch.compile)
  b. methods       every built-in method (from the plugin registry) through ``bench run`` at a tiny budget
                   (1 epoch of a few hundred images, the teacher it needs): one row each, exit status, wall time
  c. engine        the engine against a bare PyTorch loop (``bench_engine.py``'s timers), resnet8/20/56 at batch
                   128 and 512: fp32, bf16 autocast, + channels_last, + compile (its warm-up reported apart):
                   images/s and the ratio engine / bare loop
  d. concurrent    aggregate images/s of K engine processes at once on the device (K = 1, 2, 4, 8, as
                   ``bench run --per-gpu K`` runs them), and one ``bench run --per-gpu 2``
  e. determinism   the same stage trained twice, with the default and with torch's deterministic settings:
                   equal weight digests or not (whether an exact gate can exist on this device)
  g. gate          the CI gate pinned (``.ci/gate``, ``--numerics portable``) on the host CPU, another CPU model:
                   exact against the bundled reference or not, passed or not (issue 34); skipped with --tiny
  f. cifar10       with the time left: resnet20 baseline on the full JPEG CIFAR-10 with the CRD recipe at as
                   many epochs as fit (a 1-epoch probe says how many): its top-1 and time

Writes summary.md, results.json and log.txt (every child's output) under ``--out``, rewritten after every
part. benchmarks/README.md gives the GPU machine's exact invocation.

    python benchmarks/gpu_check.py --device cuda --out OUT         # the check, <= 8 minutes on one H100
    python benchmarks/gpu_check.py --device cpu --tiny --out OUT   # a toy budget on a CPU (the test suite's)
    python benchmarks/gpu_check.py --check-install .whl            # the dry run: carried wheels and install
    python benchmarks/gpu_check.py --list-wheels                   # the wheels a GPU machine lacks

Exit status: 0 every part ok (or skipped), 1 a part failed or ran out of time (all recorded), 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # gpucheck and bench_engine; the harness of this tree

from gpucheck import install, probes  # noqa: E402
from gpucheck.check import BadInput, Check, run_part  # noqa: E402
from gpucheck.cifar import CIFAR_SHA256, find_data, part_cifar10  # noqa: E402
from gpucheck.gate import part_gate  # noqa: E402
from gpucheck.parts import part_concurrent, part_determinism, part_engine, part_environment, part_methods  # noqa: E402
from gpucheck.plan import FULL, PARTS, TINY  # noqa: E402
from gpucheck.report import summary_markdown, write_outputs  # noqa: E402

PART_FUNCTIONS = {
    "environment": part_environment,
    "methods": part_methods,
    "engine": part_engine,
    "concurrent": part_concurrent,
    "determinism": part_determinism,
    "gate": part_gate,
    "cifar10": part_cifar10,
}


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line and exit 2 (through :class:`BadInput`)."""

    def error(self, message: str) -> NoReturn:
        raise BadInput(f"{message} (see --help)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, checked: bad input raises BadInput."""
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="where to train (default cuda)")
    p.add_argument(
        "--tiny",
        action="store_true",
        help="a toy budget (a few minutes on 2 CPU cores): proves the script, measures nothing worth quoting",
    )
    p.add_argument("--out", type=Path, help="folder for summary.md, results.json, log.txt")
    p.add_argument(
        "--parts",
        default=",".join(PARTS),
        help="comma-separated parts to run (default: all; a rerun: the ones that failed)",
    )
    p.add_argument(
        "--total-s",
        type=float,
        help="seconds for the whole check (default 470; --tiny 600): part f gets what the others leave",
    )
    p.add_argument(
        "--data",
        type=Path,
        help="part f's JPEG CIFAR-10 tarball (default: .data/cifar10-jpg.tar.gz, "
        "else ../shared/data/cifar10-jpg.tar.gz)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("BENCH_CACHE_DIR") or Path.home() / ".cache" / "encodenet-bench"),
        help="where decoded datasets are cached (trained stages never are: each check trains afresh)",
    )
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="part c's compile rows (default: on; off with --tiny)",
    )
    p.add_argument("--keep-work", action="store_true", help="keep the work folder (records, artifacts, logs)")
    p.add_argument(
        "--check-install",
        type=Path,
        metavar="WHEELDIR",
        help="the dry run: the carried wheels in WHEELDIR, their install with --no-deps, the data; trains nothing",
    )
    p.add_argument("--list-wheels", action="store_true", help="print the wheels a GPU machine lacks, pinned")
    args = p.parse_args(argv)
    unknown = sorted(set(args.parts.split(",")) - set(PARTS))
    if unknown:
        raise BadInput(f"--parts: unknown part(s) {', '.join(unknown)}; the parts: {', '.join(PARTS)}")
    if args.check_install is not None and not args.check_install.is_dir():
        raise BadInput(f"--check-install {args.check_install}: no such folder (benchmarks/gpu_prepare.sh fills .whl)")
    if args.out is None and args.check_install is None and not args.list_wheels:
        raise BadInput("give --out DIR: the folder for summary.md, results.json and log.txt")
    if args.data is not None and not args.data.is_file():
        raise BadInput(f"--data {args.data}: no such file")
    if args.total_s is not None and args.total_s <= 0:
        raise BadInput(f"--total-s {args.total_s:g}: must be positive")
    return args


def require_cuda(check: Check) -> None:
    """``--device cuda`` where torch sees no GPU: BadInput (asked in a child: this process holds no CUDA)."""
    o = check.runner.run("cuda check", probes.cuda_state, {}, 300)
    if o.status != "ok":
        raise BadInput(f"--device cuda: torch cannot be imported to look for CUDA: {o.error}")
    if not o.value["available"]:
        build = f"built for CUDA {o.value['cuda_build']}" if o.value["cuda_build"] else "a CPU-only build"
        raise BadInput(
            f"--device cuda: no CUDA device is available (torch {o.value['torch']}, {build}); run on a "
            f"GPU machine or use --device cpu"
        )


def run_check(args: argparse.Namespace) -> int:
    """Every part asked for, each within its budget; the outputs rewritten after each."""
    scale = TINY if args.tiny else FULL
    if args.compile is None:
        args.compile = scale.compile
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    try:
        check = Check(args, scale, work)
        if args.device == "cuda":
            require_cuda(check)
        else:
            check.cpu_bf16 = bool(check.runner.run("cpu bf16", probes.cpu_bf16, {}, 300).value)
        args.out.mkdir(parents=True, exist_ok=True)
        check.say(
            f"gpu_check: {args.device}, {scale.name} scale ({check.remaining():.0f} s at most), out "
            f"{args.out}, work {work}"
        )
        for name in args.parts.split(","):
            run_part(check, name, PART_FUNCTIONS[name])
            write_outputs(check, args.out)
        print(summary_markdown(check, time.perf_counter() - check.t0), flush=True)
        return 0 if all(p.status in ("ok", "skipped") for p in check.parts.values()) else 1
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """The command: the check, the dry run or the wheel list; bad input is one line on stderr and exit 2."""
    try:
        args = parse_args(argv)
        if args.list_wheels:
            print("\n".join(install.carried_wheels()))
            return 0
        if args.check_install is not None:
            text, ready = install.check_install(args.check_install, find_data(args.data), CIFAR_SHA256)
            print(text)
            if args.out is not None:
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / "check-install.txt").write_text(text + "\n")
            return 0 if ready else 1
        return run_check(args)
    except BadInput as exc:
        print(f"gpu_check: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
