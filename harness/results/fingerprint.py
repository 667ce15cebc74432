"""The platform a record was computed on, as far as it decides the bits of the result.

A run on this harness is bit-exact run after run on one platform (same CPU model and instruction set or the
same GPU, same torch / CUDA / cuDNN, same thread count, same engine settings); on another platform the
same seed gives other numbers from the first rounding difference on. :func:`of_record` reads that platform
from a record (its ``device``, ``versions`` and ``engine``); two records may be compared bit for bit only
when their fingerprints are equal (:func:`differences` is empty). A field a record does not carry (records
written before these fields existed) is ``None`` and never matches: such records are compared
statistically, never exactly. :func:`probe` is what a record writes about the machine it runs on.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch

#: Fingerprint fields, in the order a difference is reported: (name, section of the record, key there).
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("device", "engine", "device"), ("gpu", "device", "gpu"), ("cpu", "device", "cpu"), ("isa", "device", "isa"),
    ("threads", "device", "threads"), ("torch", "versions", "torch"), ("cuda", "device", "cuda"),
    ("cudnn", "device", "cudnn"), ("torchvision", "versions", "torchvision"), ("timm", "versions", "timm"),
    ("python", "versions", "python"), ("engine", "engine", "version"), ("amp", "engine", "amp"),
    ("channels_last", "engine", "channels_last"), ("world_size", "execution", "world_size"),
    ("workers", "execution", "workers"),
)
#: Fields a record of one process may lack without making it unknown (the default is what a lack means).
DEFAULTS = {"world_size": 1, "workers": 1, "gpu": None, "cuda": None, "cudnn": None}
EXECUTION = ("world_size", "workers")  # defaults only for a record that says how it was executed


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what :mod:`platform` says)."""
    cpuinfo = Path("/proc/cpuinfo")
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def probe(device: torch.device) -> dict[str, Any]:
    """What a record says of the machine: the fields of :data:`FIELDS` kept under ``device``. ``isa`` is the
    vector instruction set torch's CPU kernels dispatch to (e.g. ``AVX2``, ``AVX512``)."""
    info: dict[str, Any] = {
        "cpu": cpu_model(), "isa": torch.backends.cpu.get_cpu_capability(), "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def of_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record's platform fingerprint: one value per field of :data:`FIELDS` (``None`` where unknown).
    The CUDA fields count only for runs on CUDA (a CPU run is the same whatever CUDA build torch has)."""
    out: dict[str, Any] = {}
    cpu_only = (record.get("engine") or {}).get("device") != "cuda"
    for name, section, key in FIELDS:
        values = record.get(section) or {}
        if name in ("gpu", "cuda", "cudnn") and cpu_only:
            out[name] = None
        elif key in values:
            out[name] = values[key]
        elif name in DEFAULTS and (name not in EXECUTION or "execution" in record):
            out[name] = DEFAULTS[name]
        else:
            out[name] = UNKNOWN
    if not (record.get("device") or {}).get("isa"):
        out["cpu"] = out["isa"] = UNKNOWN  # a record before this module: its device name is not the CPU model
    return out


UNKNOWN = "unknown"


def differences(reference: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """``["cpu 'AMD EPYC' vs 'Intel Xeon'", ...]``: the fields that differ, or are unknown on either side."""
    out = []
    for name, _, _ in FIELDS:
        a, b = reference.get(name, UNKNOWN), now.get(name, UNKNOWN)
        if a == UNKNOWN or b == UNKNOWN or a != b:
            out.append(f"{name} {a!r} vs {b!r}")
    return out
