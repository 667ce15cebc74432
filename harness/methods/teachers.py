"""``--teacher-checkpoint PATH``: a teacher trained elsewhere.

Accepted: a bench record (``.json``: its baseline artifact is loaded from the cache), a bench artifact
(``.pt`` with an ``objective`` state), or a plain state dict of the teacher architecture (``--teacher ARCH``
names the architecture). A checkpoint that does not fit the architecture or the dataset's class count is
refused with one line, before any training.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from harness.core.errors import UsageError

if TYPE_CHECKING:
    from harness.train.context import RunContext, TrainedStage


def _read_state(path: Path, ctx: "RunContext") -> tuple[dict, str | None]:
    """(state dict of the model, architecture if the file says) from a record, artifact or plain state dict."""
    if not path.exists():
        raise UsageError(f"--teacher-checkpoint {path}: no such file")
    if path.suffix == ".json":
        record = json.loads(path.read_text())
        arch = record.get("arch")
        stage = (record.get("stages") or {}).get(f"baseline[{arch}]")
        if not stage:
            raise UsageError(f"--teacher-checkpoint {path}: this record has no baseline stage of {arch} to load")
        artifact = ctx.s.store.path("baseline", stage["artifact"])
        if not artifact.exists():
            raise UsageError(f"--teacher-checkpoint {path}: its artifact {artifact} is not in this cache "
                             f"(use the same --cache-dir, or pass the artifact's .pt file)")
        path = artifact
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UsageError(f"--teacher-checkpoint {path}: not a torch checkpoint ({exc})") from None
    arch = None
    if isinstance(payload, dict) and "objective" in payload:
        meta = path.with_suffix(".json")
        if meta.exists():
            arch = json.loads(meta.read_text())["config"].get("arch")
        state = {k[len("model."):]: v for k, v in payload["objective"].items() if k.startswith("model.")}
    elif isinstance(payload, dict) and isinstance(payload.get("state_dict") or payload.get("model"), dict):
        state = payload.get("state_dict") or payload["model"]
    elif isinstance(payload, dict):
        state = payload
    else:
        raise UsageError(f"--teacher-checkpoint {path}: expected a state dict, a bench artifact or a bench record")
    return state, arch


def load_teacher_checkpoint(ctx: "RunContext", path: Path) -> "TrainedStage":
    from harness.train.context import TrainedStage

    state, file_arch = _read_state(path, ctx)
    arch = ctx.s.teacher_arch or file_arch
    if arch is None:
        raise UsageError(f"--teacher-checkpoint {path} is a plain state dict: name its architecture with --teacher ARCH")
    if ctx.s.teacher_arch and file_arch and file_arch != ctx.s.teacher_arch:
        raise UsageError(f"--teacher-checkpoint {path} holds a {file_arch}, not the --teacher {ctx.s.teacher_arch}")
    model = ctx.build_arch(arch)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc).splitlines()[0])
        raise UsageError(f"--teacher-checkpoint {path} does not fit {arch} with {ctx.dataset.num_classes} classes "
                         f"and {ctx.dataset.in_chans} input channels: {detail[:200]}") from None
    model.eval()
    digest = hashlib.sha256(b"".join(v.detach().cpu().numpy().tobytes() for v in state.values())).hexdigest()[:20]
    accuracy = ctx.evaluate(model)
    ctx.s.teacher_arch = arch
    return TrainedStage(name="teacher", key=f"checkpoint-{digest}", history=[accuracy], seconds=0.0, reused=True,
                        model=model, info={"checkpoint": str(path)}, digest=digest)
