"""Result records: one JSON file per (method, arch, dataset, seed) with everything needed to compare it."""

from __future__ import annotations

import json
import platform
import re
import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

import harness
from harness.core.errors import UsageError
from harness.core.io import atomic_write_json
from harness.data.datasets import display_name

SCHEMA = 1


@lru_cache(maxsize=1)
def versions() -> dict[str, Any]:
    import timm
    import torchvision

    return {
        "python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
        "timm": timm.__version__, "harness": harness.__version__, "git": git_commit(),
    }


def git_commit() -> str | None:
    """The harness checkout's commit (with ``-dirty`` when it has uncommitted changes) when ``harness`` is
    imported from a git checkout; None for an installed package (also one installed into a checkout's venv)."""
    root = Path(harness.__file__).resolve().parents[1]
    if not (root / ".git").exists():  # a directory in a clone, a file in a worktree
        return None
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except Exception:
        return None


def version_line() -> str:
    """``bench --version``: the package version, and the git commit when run from a checkout."""
    commit = git_commit()
    return f"encodenet-bench {harness.__version__}" + (f" (git {commit})" if commit else "")


def device_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"type": device.type, "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
    else:
        info["name"] = platform.processor() or platform.machine()
    return info


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60]


FAILED_DIR = "failed"  # records of failed runs, under the output folder: never read as results


def record_path(out: Path, record: dict) -> Path:
    """``<dataset>__<arch>__<method>__<recipe>__seed<N>__<run key>.json``; the dataset part is its short display
    name (``imagefolder-cifar10-jpg``), never a path. A failed run's record (``status: failed``, keyed by its
    ``failure_key``) goes to ``<out>/failed/``."""
    ds = display_name(record["dataset"]["name"])
    failed = record.get("status") == "failed"
    key = record["failure_key"] if failed else record["run_key"]
    name = f"{slug(ds)}__{slug(record['arch'])}__{slug(record['method']['name'])}__{slug(record['recipe']['name'])}" \
           f"__seed{record['seed']}__{key[:8]}.json"
    return (out / FAILED_DIR if failed else out) / name


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_record(out: Path, record: dict) -> Path:
    path = record_path(out, record)
    atomic_write_json(path, record)
    return path


def load_records(paths: list[Path], *, failed: bool = False) -> list[dict]:
    """Records from files and folders (searched recursively for ``*.json``); others are skipped.

    Records of failed runs (``status: failed``, no metrics) are results of nothing: they are left out unless
    ``failed`` is True (``bench table`` counts them)."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(p.rglob("*.json")))
        elif p.exists():
            files.append(p)
        else:
            raise UsageError(f"no such file or folder: {p}")
    records = []
    for f in files:
        try:
            data = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"{f}: not a readable JSON record ({exc})") from None
        if not (isinstance(data, dict) and data.get("schema") == SCHEMA):
            continue
        wanted = failed if data.get("status") == "failed" else "metrics" in data
        if wanted:
            data["_path"] = str(f)
            records.append(data)
    return records
