"""Numerics profiles: which instruction sets the numerical libraries under torch run on a CPU.

The bits a CPU run produces depend on the kernels that compute it, and torch's CPU stack picks its kernels
per machine: ATen's vectorised kernels by CPU capability (``AVX2``, ``AVX512``), oneDNN (convolutions) by its
maximum ISA, MKL (matrix products) by its own dispatch and its conditional numerical reproducibility mode
(CNR). Two CPUs with other instruction sets therefore give other numbers for the same seed, from the first
rounding difference on. A profile fixes that choice:

``native``
    every library runs what this CPU offers (the fastest; the default). Bit-exact only against runs on the
    same kind of CPU.
``portable``
    every library is pinned to AVX2 (ATen's capability, oneDNN's maximum ISA, MKL's instructions) and MKL to
    its ``COMPATIBLE`` CNR mode, with a fixed thread count (1 unless ``--threads`` says otherwise): the same
    torch build then gives the same bits on any x86-64 CPU with AVX2, with or without AVX-512. MKL's
    ``AVX2`` CNR branch is not used because MKL ignores it on non-Intel CPUs (its verbose mode reports
    ``CNR:AUTO`` there); ``COMPATIBLE`` is the branch Intel documents as equal on Intel and non-Intel CPUs.

The pins are environment variables that each library reads once, when it first runs a kernel; so a profile is
applied (:func:`activate`) before the run computes anything, and a process whose libraries were started
before the pins is started again (:func:`restart_pinned`, by the ``bench`` command). What a run records is
not the profile's name alone but what each library is set to run (:func:`measure`): ATen's capability as
torch reports it, oneDNN's ISA as its verbose mode reports it at its first use (else as its environment and
the CPU's flags decide), MKL's CNR mode as its verbose mode reports it. A partial pin (ATen alone, say)
therefore never looks like the portable profile.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError


@dataclass(frozen=True)
class Profile:
    """A numerics profile: the environment pins it sets and the thread count it fixes (None: any)."""

    name: str
    pins: Mapping[str, str] = field(default_factory=dict)
    threads: int | None = None
    summary: str = ""

    def identity(self) -> dict[str, Any]:
        """What enters engine settings and stage keys (``{}`` for native, so native keys stay as they were)."""
        if not self.pins:
            return {}
        return {"profile": self.name, "pins": dict(sorted(self.pins.items()))}


PORTABLE_ISA = "AVX2"
PROFILES: dict[str, Profile] = {
    "native": Profile(
        "native", summary="every library runs what this CPU offers (fastest; exact only against the same kind of CPU)"
    ),
    "portable": Profile(
        "portable",
        {
            "ATEN_CPU_CAPABILITY": "avx2",  # ATen's vectorised kernels
            "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN (convolutions)
            "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # MKL's kernels
            "MKL_CBWR": "COMPATIBLE",  # MKL's reproducible branch that is the same on Intel and AMD CPUs
        },
        threads=1,
        summary="ATen, oneDNN and MKL pinned to AVX2 (MKL CNR COMPATIBLE), one thread by default: "
        "the same bits on any x86-64 CPU with AVX2",
    ),
}
DEFAULT = "native"
#: Set in a process the bench command started again under a profile's pins (a second restart is a bug).
RESTARTED = "BENCH_NUMERICS_RESTARTED"


def profile(name: str | None) -> Profile:
    """The profile called ``name`` (None: the default); an unknown name is one line naming the choices."""
    name = DEFAULT if name is None else name
    if name not in PROFILES:
        raise UsageError(f"--numerics {name}: no such numerics profile; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def describe_choices() -> str:
    return "; ".join(f"{p.name}: {p.summary}" for p in PROFILES.values())


# ---- what each library is set to run -----------------------------------------------------------------------


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _native_isa() -> str:
    flags = cpu_flags()
    if "avx512f" in flags:
        return "AVX512"
    return "AVX2" if "avx2" in flags else "unknown"


def _captured(fn: Callable[[], object]) -> str:
    """What ``fn`` writes to the process's standard output (file descriptor 1, where C libraries write)."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        try:
            fn()
        finally:
            _flush_c_stdout()
            os.dup2(saved, 1)
            os.close(saved)
        sink.seek(0)
        return sink.read().decode(errors="replace")


def _flush_c_stdout() -> None:
    """Flush the C library's buffered standard output (where oneDNN and MKL print their verbose lines)."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


_ONEDNN: dict[str, str] = {}  # the first probe's answer: oneDNN reads its ISA once per process


def _onednn_isa() -> str:
    """oneDNN's ISA as its verbose mode reports it when it starts (``AVX2``, ``AVX512``); where oneDNN had
    already started, its environment variable and the CPU's flags decide (with ``(unverified)``)."""
    if "isa" in _ONEDNN:
        return _ONEDNN["isa"]
    import torch

    def convolve() -> None:
        with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
            torch.nn.functional.conv2d(torch.ones(8, 16, 16, 16), torch.ones(16, 16, 3, 3), padding=1)

    found = None
    if torch.backends.mkldnn.is_available():
        match = re.search(r"isa:(.*)", _captured(convolve))
        found = match.group(1).strip() if match else None
    if found is not None:
        isa = "AVX512" if "AVX-512" in found or "AVX512" in found else "AVX2" if "AVX2" in found else found
    else:
        pinned = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
        isa = f"{pinned.upper() if pinned else _native_isa()} (unverified)"
    _ONEDNN["isa"] = isa
    return isa


def _mkl_cnr() -> str:
    """MKL's CNR mode as its verbose line of a matrix product reports it (``OFF``, ``COMPATIBLE``, ``AUTO``)."""
    import torch

    if not torch.backends.mkl.is_available():
        return "no MKL"

    def multiply() -> None:
        with torch.backends.mkl.verbose(torch.backends.mkl.VERBOSE_ON):
            a = torch.ones(4, 4)
            a @ a

    match = re.search(r"CNR:(\S+)", _captured(multiply))
    return match.group(1) if match else "unknown"


def measure() -> dict[str, str]:
    """What each numerical library is set to run in this process: ``aten`` (torch's CPU capability),
    ``onednn`` (its maximum ISA), ``mkl`` (its instructions: the pin, or the CPU's) and ``mkl_cnr``."""
    import torch

    mkl = os.environ.get("MKL_ENABLE_INSTRUCTIONS")
    return {
        "aten": torch.backends.cpu.get_cpu_capability(),
        "onednn": _onednn_isa(),
        "mkl": mkl.upper() if mkl else _native_isa(),
        "mkl_cnr": _mkl_cnr(),
    }


def expected(p: Profile) -> dict[str, str] | None:
    """What :func:`measure` must say under profile ``p`` (None for native: whatever the CPU offers)."""
    if not p.pins:
        return None
    return {"aten": PORTABLE_ISA, "onednn": PORTABLE_ISA, "mkl": PORTABLE_ISA, "mkl_cnr": p.pins["MKL_CBWR"]}


def describe(settings: Mapping[str, Any] | None) -> str:
    """``portable (ATen AVX2, oneDNN AVX2, MKL AVX2, CNR COMPATIBLE)``."""
    if not settings:
        return "unknown numerics"
    return (
        f"{settings.get('profile', '?')} (ATen {settings.get('aten')}, oneDNN {settings.get('onednn')}, "
        f"MKL {settings.get('mkl')}, CNR {settings.get('mkl_cnr')})"
    )


# ---- applying a profile ----------------------------------------------------------------------------------


def pin_environment(
    p: Profile, env: MutableMapping[str, str] | None = None, threads: int | None = None
) -> MutableMapping[str, str]:
    """``env`` (default ``os.environ``) with the profile's pins and thread count set; returned for a child."""
    env = os.environ if env is None else env
    env.update(p.pins)
    count = threads or p.threads
    if p.pins and count:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(count)
    return env


class NotPinned(UsageError):
    """The profile's pins were set after a library had started: this process cannot run under them (the
    ``bench`` command then starts itself again with the pins, see :func:`restart_pinned`)."""

    def __init__(self, message: str, profile: str, threads: int | None) -> None:
        super().__init__(message)
        self.profile, self.threads = profile, threads


def activate(name: str | None, threads: int | None = None, *, device: str = "cpu") -> dict[str, str]:
    """Apply profile ``name`` to this process before it computes anything, and return what each library is set
    to run (with ``profile``). Under a pinning profile, a library that started before the pins were set (so
    runs another ISA) raises :class:`NotPinned`; a CPU without AVX2 cannot run the portable profile."""
    import torch

    p = profile(name)
    before, threads_before = dict(os.environ), torch.get_num_threads()
    if p.pins:
        if device != "cpu":
            raise UsageError(
                f"--numerics {p.name} pins CPU libraries; on {device} the numbers come from the GPU's "
                f"libraries: use --numerics native there"
            )
        if _native_isa() not in ("AVX2", "AVX512") and cpu_flags():
            raise UsageError(f"--numerics {p.name} needs a CPU with AVX2, and this one has none; use --numerics native")
        pin_environment(p, threads=threads)
        torch.set_num_threads(threads or p.threads or torch.get_num_threads())
    settings = measure()
    want = expected(p)
    if want is not None:
        wrong = [
            f"{lib} runs {settings[lib]} (pinned {value})" for lib, value in want.items() if settings[lib] != value
        ]
        if wrong:
            os.environ.clear()
            os.environ.update(before)  # this process keeps what it runs; its children are not told otherwise
            torch.set_num_threads(threads_before)
            raise NotPinned(
                f"--numerics {p.name}: {'; '.join(wrong)}: the libraries started before the pins were "
                f"set; start a new process (bench does this itself)",
                p.name,
                threads,
            )
    return {"profile": p.name, **settings}


def restart_pinned(name: str, threads: int | None, argv: list[str]) -> None:
    """Start this ``bench`` command again in a process whose environment holds profile ``name``'s pins from
    the start (its libraries read them when they first run). Never returns; a restarted process that still
    cannot pin raises :class:`NotPinned` instead of restarting again."""
    env = pin_environment(profile(name), dict(os.environ), threads)
    env[RESTARTED] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "harness", *argv], env)


def restarted() -> bool:
    return os.environ.get(RESTARTED) == "1"
