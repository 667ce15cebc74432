"""Stages that several methods share: an architecture's baseline, and a teacher loaded from a checkpoint.

Both are ordinary stages: the baseline is trained once per (architecture, run) and reused through its key;
a checkpoint is a stage that trains nothing (``trains=False``) whose key holds the file's content digest.

``--teacher-checkpoint PATH`` accepts a bench record (``.json``: its baseline artifact is loaded from the
cache), a bench artifact (``.pt`` with an ``objective`` state), or a plain state dict of the teacher
architecture (``--teacher ARCH`` names the architecture). A checkpoint that does not fit the architecture or
the dataset's class count is refused with one line, before any training.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import torch

from harness.core.errors import UsageError
from harness.core.identity import file_digest
from harness.train.artifacts import ArtifactStore
from harness.train.stage import StageContext
from harness.train.objective import Objective
from harness.train.stage import Stage


def _cross_entropy(ctx: StageContext, arch: str) -> Objective:
    return Objective(ctx.build_arch(arch))


def baseline_stage(arch: str) -> Stage:
    """``arch`` trained with plain cross-entropy under the run's recipe: the stage every method compares with."""
    return Stage("baseline", partial(_cross_entropy, arch=arch), arch=arch)


# ---- teachers from checkpoints ---------------------------------------------------------------------------


def checkpoint_file(path: Path, store: ArtifactStore) -> tuple[Path, str | None]:
    """(the file holding the weights, the architecture when the file says) for a record, artifact or state
    dict; a record is followed to its baseline artifact in ``store``."""
    if not path.exists():
        raise UsageError(f"--teacher-checkpoint {path}: no such file")
    if path.suffix != ".json":
        meta = path.with_suffix(".json")
        arch = json.loads(meta.read_text()).get("arch") if meta.exists() and path.suffix == ".pt" else None
        return path, arch
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"--teacher-checkpoint {path}: not a readable bench record ({exc})") from None
    arch = record.get("arch")
    entry = next(
        (
            e
            for e in (record.get("stages") or {}).values()
            if e.get("stage") == "baseline" and e.get("arch") == arch and e.get("artifact")
        ),
        None,
    )
    if entry is None:
        raise UsageError(f"--teacher-checkpoint {path}: this record has no baseline stage of {arch} to load")
    artifact = store.path("baseline", entry["artifact"])
    if not artifact.exists():
        raise UsageError(
            f"--teacher-checkpoint {path}: its artifact {artifact} is not in this cache "
            f"(use the same --cache-dir, or pass the artifact's .pt file)"
        )
    return artifact, arch


def read_state(path: Path) -> dict:
    """The model state dict in a bench artifact or a plain (or wrapped) state dict file."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UsageError(f"--teacher-checkpoint {path}: not a torch checkpoint ({exc})") from None
    if isinstance(payload, dict) and "objective" in payload:
        return {k[len("model.") :]: v for k, v in payload["objective"].items() if k.startswith("model.")}
    if isinstance(payload, dict) and isinstance(payload.get("state_dict") or payload.get("model"), dict):
        return payload.get("state_dict") or payload["model"]
    if isinstance(payload, dict):
        return payload
    raise UsageError(f"--teacher-checkpoint {path}: expected a state dict, a bench artifact or a bench record")


def _load_checkpoint(ctx: StageContext, path: Path, arch: str) -> Objective:
    model = ctx.build_arch(arch)
    try:
        model.load_state_dict(read_state(path))
    except RuntimeError as exc:
        lines = str(exc).splitlines()
        detail = next((line.strip() for line in lines if "size mismatch" in line), lines[0] if lines else "")
        raise UsageError(
            f"--teacher-checkpoint {path} does not fit {arch} with {ctx.dataset.num_classes} classes "
            f"and {ctx.dataset.in_chans} input channels: {detail[:200]}"
        ) from None
    return Objective(model)


def checkpoint_stage(path: Path, arch: str | None, store: ArtifactStore) -> Stage:
    """A teacher loaded from ``path`` (record, artifact or state dict) as a stage that trains nothing."""
    weights, file_arch = checkpoint_file(path, store)
    if arch and file_arch and file_arch != arch:
        raise UsageError(f"--teacher-checkpoint {path} holds a {file_arch}, not the --teacher {arch}")
    arch = arch or file_arch
    if arch is None:
        raise UsageError(
            f"--teacher-checkpoint {path} is a plain state dict: name its architecture with --teacher ARCH"
        )
    return Stage(
        "checkpoint",
        partial(_load_checkpoint, path=weights, arch=arch),
        arch=arch,
        trains=False,
        config={"file": file_digest(weights)},
    )
