"""The artifact store: trained stages on disk under the key the harness computed for them.

Each artifact (``<stage>/<key>.pt``: weights, history, info) sits beside a JSON file with its label, the
digest of its weights and its config, for people, for ``bench`` commands that list artifacts, and for dry
runs (which read the digest without loading the weights). Writes are atomic; an unreadable artifact is
retrained, never trusted. A stage is trained under its lock (``<stage>/<key>.lock``, see
:meth:`ArtifactStore.lock`), so that processes sharing a store train it once; its checkpoint
(``<stage>/<key>.ckpt``) lives only until the artifact is saved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from harness.core.io import atomic_torch_save, atomic_write_json
from harness.core.progress import loading


@dataclass(frozen=True)
class ArtifactStore:
    root: Path

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / f"{key}.pt"

    def checkpoint_path(self, stage: str, key: str) -> Path:
        return self.root / stage / f"{key}.ckpt"

    def lock(self, stage: str, key: str) -> FileLock:
        """The lock a process holds while it trains (and saves) the stage ``key``: an OS lock (``flock``) on
        ``<stage>/<key>.lock``, released by the OS when its holder dies, so a killed run never blocks others.
        The empty lock file stays (removing it while another process waits on it would break the lock)."""
        path = self.root / stage / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(path)

    def meta(self, stage: str, key: str) -> dict[str, Any] | None:
        """The JSON beside a complete artifact, or None when there is no complete artifact."""
        path = self.path(stage, key)
        meta = path.with_suffix(".json")
        if not (path.exists() and meta.exists()):
            return None
        try:
            return json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def load(self, stage: str, key: str) -> dict[str, Any] | None:
        path = self.path(stage, key)
        if not path.exists():
            return None
        try:
            with loading(path, f"loading trained artifact {stage}/{key[:12]}"):
                return torch.load(path, weights_only=False, map_location="cpu")
        except Exception:  # an unreadable artifact is retrained, never trusted
            return None

    def save(self, stage: str, key: str, payload: dict[str, Any], meta: dict[str, Any]) -> Path:
        path = self.path(stage, key)
        atomic_torch_save(payload, path)
        atomic_write_json(path.with_suffix(".json"), {"stage": stage, "key": key, **meta})
        self.checkpoint_path(stage, key).unlink(missing_ok=True)
        return path
