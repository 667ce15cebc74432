"""Artifacts: trained stages stored under a key derived from their full configuration.

A stage that several methods need (a trained baseline, a teacher) has the same configuration, hence the
same key, whichever method asks for it: it is trained once and loaded afterwards, also by later
invocations. Each artifact sits beside a JSON file with its configuration, for people and for
``bench`` commands that list or load artifacts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.core.io import atomic_torch_save, atomic_write_json


def state_digest(state: dict) -> str:
    """A content hash of a state dict: what downstream stages are keyed by, so that a stage trained on
    different weights (another machine, another thread count) never passes for the same one."""
    h = hashlib.sha256()
    for name in sorted(state):
        value = state[name]
        h.update(name.encode())
        if isinstance(value, torch.Tensor):
            h.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()[:20]


def config_key(config: dict) -> str:
    """A stable key for a JSON-able configuration."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class ArtifactStore:
    root: Path

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / f"{key}.pt"

    def checkpoint_path(self, stage: str, key: str) -> Path:
        return self.root / stage / f"{key}.ckpt"

    def load(self, stage: str, key: str) -> dict[str, Any] | None:
        path = self.path(stage, key)
        if not path.exists():
            return None
        try:
            return torch.load(path, weights_only=False, map_location="cpu")
        except Exception:  # an unreadable artifact is retrained, never trusted
            return None

    def save(self, stage: str, key: str, payload: dict[str, Any], config: dict) -> Path:
        path = self.path(stage, key)
        atomic_torch_save(payload, path)
        atomic_write_json(path.with_suffix(".json"), {"stage": stage, "key": key, "config": config})
        self.checkpoint_path(stage, key).unlink(missing_ok=True)
        return path
