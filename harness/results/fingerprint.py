"""The platform a result was computed on, as far as it decides the bits of the result.

A run on this harness is bit-exact run after run on one platform (the same numerical libraries running the
same instruction sets, or the same GPU; the same torch / CUDA / cuDNN; the same thread count and engine
settings); on another platform the same seed gives other numbers from the first rounding difference on.

Every stage records the platform that computed it (:func:`computing_platform`, saved with its artifact, kept
by every run that reuses it), and a record's platform is its stages' (:func:`of_stages`): a stage reused from
a cache that another machine filled keeps that machine's platform, never the loader's. :func:`of_record` reads
a record's fingerprint; two records may be compared bit for bit only when :func:`differences` between their
fingerprints is empty. A field a record does not carry (records written before it existed) is ``unknown`` and
never matches: such records are compared statistically, never exactly.

What decides on a CPU is ``numerics`` (:mod:`harness.core.numerics`): what ATen, oneDNN and MKL were set to
run, as measured, and the profile that set them. Under the ``portable`` profile two CPU models with AVX2 give
the same bits, so the CPU model is not compared when both sides ran pinned with the same settings; under
``native`` the CPU model counts as well.
"""

from __future__ import annotations

import json
import platform as _platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from harness.core.numerics import describe as describe_numerics

#: Fingerprint fields, in the order a difference is reported: (name, section of an old record, key there).
#: Records since the numerics profile carry ``platform`` (every field but ``workers``); older ones are read
#: from the sections named here (their ``numerics`` is unknown, so they are never compared exactly).
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("device", "engine", "device"),
    ("gpu", "device", "gpu"),
    ("numerics", "device", "numerics"),
    ("cpu", "device", "cpu"),
    ("threads", "device", "threads"),
    ("torch", "versions", "torch"),
    ("cuda", "device", "cuda"),
    ("cudnn", "device", "cudnn"),
    ("torchvision", "versions", "torchvision"),
    ("timm", "versions", "timm"),
    ("python", "versions", "python"),
    ("engine", "engine", "version"),
    ("amp", "engine", "amp"),
    ("channels_last", "engine", "channels_last"),
    ("world_size", "execution", "world_size"),
    ("workers", "execution", "workers"),
)
#: Fields a record of one process may lack without making it unknown (the default is what a lack means).
DEFAULTS = {"world_size": 1, "workers": 1, "gpu": None, "cuda": None, "cudnn": None}
EXECUTION = ("world_size", "workers")  # defaults only for a record that says how it was executed
CUDA_FIELDS = ("gpu", "cuda", "cudnn")
UNKNOWN = "unknown"
#: A record whose stages were computed on more than one platform: ``platform`` is ``{MIXED: {label: ...}}``.
MIXED = "stages_differ"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what :mod:`platform` says)."""
    cpuinfo = Path("/proc/cpuinfo")
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return _platform.processor() or _platform.machine()


def probe(device: torch.device) -> dict[str, Any]:
    """What a record says of the machine that wrote it (its ``device`` section): the CPU model, the vector
    instruction set torch's CPU kernels dispatch to (``isa``), CUDA and cuDNN, the GPU."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "isa": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def computing_platform(
    device: torch.device, numerics: dict[str, Any], engine: dict[str, Any], world_size: int = 1
) -> dict[str, Any]:
    """The platform this process computes a stage on: every field of :data:`FIELDS` but ``workers`` (how a
    run was spread over processes is the record's, not a stage's)."""
    import timm  # here, not at the top: planning (which measures no platform) does not import them
    import torchvision

    on_cuda = device.type == "cuda"
    machine = probe(device)
    return {
        "device": device.type,
        "gpu": machine.get("gpu"),
        "numerics": dict(numerics) if numerics else UNKNOWN,
        "cpu": machine["cpu"],
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": machine["cuda"] if on_cuda else None,
        "cudnn": machine["cudnn"] if on_cuda else None,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "python": _platform.python_version(),
        "engine": engine.get("version"),
        "amp": engine.get("amp"),
        "channels_last": engine.get("channels_last"),
        "world_size": world_size,
    }


def of_stages(platforms: Iterable[tuple[str, dict[str, Any] | None]]) -> dict[str, Any]:
    """A record's platform from its stages' ``(label, platform)``: theirs when they agree; else
    ``{MIXED: {label: platform}}``. A stage that does not say (an artifact saved before stages carried their
    platform) counts as ``unknown``."""
    by_label = {
        label: p if p else {name: UNKNOWN for name, _, _ in FIELDS if name != "workers"} for label, p in platforms
    }
    distinct = {json.dumps(p, sort_keys=True, default=str) for p in by_label.values()}
    if len(distinct) == 1:
        return dict(next(iter(by_label.values())))
    return {MIXED: by_label}


def of_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's platform fingerprint: one value per field of :data:`FIELDS` (``unknown`` where unknown),
    or ``{MIXED: ...}`` when its stages were computed on more than one platform. The CUDA fields count only
    for runs on CUDA (a CPU run is the same whatever CUDA build torch has)."""
    stages = record.get("platform")
    if isinstance(stages, dict) and MIXED in stages:
        return {MIXED: stages[MIXED]}
    out: dict[str, Any] = {}
    cpu_only = (record.get("engine") or {}).get("device") != "cuda"
    for name, section, key in FIELDS:
        if isinstance(stages, dict) and name != "workers":
            values, key = stages, name
        else:
            values = record.get(section) or {}
        if name in CUDA_FIELDS and cpu_only:
            out[name] = None
        elif key in values:
            out[name] = values[key]
        elif name in DEFAULTS and (name not in EXECUTION or "execution" in record):
            out[name] = DEFAULTS[name]
        else:
            out[name] = UNKNOWN
    if stages is None and not (record.get("device") or {}).get("isa"):
        out["cpu"] = UNKNOWN  # a record before the platform fields: its device name is not the CPU model
    return out


def portable_pair(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Both fingerprints ran under the ``portable`` numerics profile with the same measured settings: then the
    CPU model does not decide the bits."""
    na, nb = a.get("numerics"), b.get("numerics")
    return isinstance(na, dict) and na == nb and na.get("profile") == "portable"


def differences(reference: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """``["cpu 'AMD EPYC' vs 'Intel Xeon'", ...]``: the fields that differ, or are unknown on either side. The
    CPU model is not compared between two runs of the portable profile with the same library settings."""
    mixed = [side for side, p in (("the reference", reference), ("the records", now)) if MIXED in p]
    if mixed:
        p = reference if MIXED in reference else now
        labels = ", ".join(f"{label} on {describe(stage)}" for label, stage in p[MIXED].items())
        return [f"the stages of {mixed[0]} were computed on more than one platform ({labels})"]
    skip = {"cpu"} if portable_pair(reference, now) else set()
    out = []
    for name, _, _ in FIELDS:
        a, b = reference.get(name, UNKNOWN), now.get(name, UNKNOWN)
        if name not in skip and (a == UNKNOWN or b == UNKNOWN or a != b):
            out.append(f"{name} {_show(a)} vs {_show(b)}")
    return out


def _show(value: Any) -> str:
    if isinstance(value, dict) and "profile" in value:
        return repr(describe_numerics(value))
    return repr(value)


def describe(p: Mapping[str, Any]) -> str:
    """``cpu portable (ATen AVX2, ...), 1 thread(s), torch 2.14.1`` or ``cpu AMD EPYC, native (...)``."""
    if MIXED in p:
        return f"{len(p[MIXED])} stages on more than one platform"
    numbers = p.get("numerics")
    kernels = describe_numerics(numbers) if isinstance(numbers, dict) else "unknown numerics"
    if p.get("gpu"):
        where = str(p.get("gpu"))
    elif isinstance(numbers, dict) and numbers.get("profile") == "portable":
        where = kernels
    else:
        where = f"{p.get('cpu')}, {kernels}"
    text = f"{p.get('device')} {where}, {p.get('threads')} thread(s), torch {p.get('torch')}"
    if p.get("cuda") is not None:
        text += f", CUDA {p.get('cuda')}"
    return text + f", amp {'on' if p.get('amp') else 'off'}"


def profiles(fingerprints: Iterable[Mapping[str, Any]]) -> set[str]:
    """The numerics profiles a set of fingerprints ran under (``unknown`` for records that do not say)."""
    names = set()
    for p in fingerprints:
        stages = p[MIXED].values() if MIXED in p else [p]
        for stage in stages:
            numbers = stage.get("numerics")
            names.add(numbers.get("profile", UNKNOWN) if isinstance(numbers, dict) else UNKNOWN)
    return names
