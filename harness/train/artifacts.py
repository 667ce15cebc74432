"""The artifact store: trained stages on disk under the key the harness computed for them.

Each artifact (``<stage>/<key>.pt``: weights, history, info) sits beside a JSON file with its label, the
digest of its weights and its config, for people, for ``bench`` commands that list artifacts, and for dry
runs (which read the digest without loading the weights). Writes are atomic. Every artifact is verified
when it is loaded (:meth:`ArtifactStore.load`): one that cannot be read, is no bench artifact, does not fit
the objective it is loaded into, or whose weights' digest differs from the one stored beside it raises
:class:`DamagedArtifact`; the runner then warns once, moves it aside (``<key>.pt.damaged``, see
:meth:`ArtifactStore.set_aside`) and trains the stage again: a damaged artifact is never served. A stage is trained
under its lock (``<stage>/<key>.lock``, see :meth:`ArtifactStore.lock`), so that processes sharing a store train it
once; its checkpoint (``<stage>/<key>.ckpt``) lives only until the artifact is saved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout

from harness.core.errors import UsageError, one_line, storage_error
from harness.core.identity import weights_digest
from harness.core.io import atomic_torch_save, atomic_write_json, make_folder, set_aside
from harness.core.progress import loading


class DamagedArtifact(Exception):
    """An artifact file that is there but cannot be trusted; ``reason`` says why (for the warning line)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def meta_beside(weights: Path, where: str) -> dict[str, Any] | None:
    """The artifact meta JSON beside a ``.pt`` file the user named (None when there is none); a UsageError
    naming ``where`` when it is there but not a readable JSON object."""
    meta = weights.with_suffix(".json")
    if not meta.exists():
        return None
    try:
        data = json.loads(meta.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"{where}: its artifact meta {meta.name} is not readable JSON ({type(exc).__name__}: {str(exc)[:80]})"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"{where}: its artifact meta {meta.name} is not a JSON object")
    return data


def mismatch(expected: dict[str, Any], stored: Any) -> str | None:
    """Why ``stored`` weights cannot be loaded where ``expected`` (a state dict) is: missing or extra names,
    other shapes; None when they fit."""
    if not isinstance(stored, dict) or not all(isinstance(v, torch.Tensor) for v in stored.values()):
        return "its weights are not a state dict of tensors"
    missing, extra = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or extra:
        first = (missing or extra)[0]
        return f"its weights do not fit: {len(missing)} missing and {len(extra)} unexpected tensor(s) (e.g. '{first}')"
    for name, tensor in expected.items():
        if isinstance(tensor, torch.Tensor) and tuple(stored[name].shape) != tuple(tensor.shape):
            return (
                f"its weights do not fit: '{name}' is {tuple(stored[name].shape)} where "
                f"{tuple(tensor.shape)} is expected"
            )
    return None


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
        make_folder(path.parent)
        return _Lock(path)

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

    def load(self, stage: str, key: str, expect: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The verified payload of artifact ``key`` (its weights' digest under ``"digest"``), None when the
        store has none, :class:`DamagedArtifact` when the file is there but cannot be trusted: unreadable, no
        bench artifact, its JSON missing, weights that do not fit ``expect`` (the state dict they are loaded
        into) or whose digest is not the one stored beside them. The digest is the one the record carries, so
        verifying costs nothing more than loading did."""
        path = self.path(stage, key)
        if not path.exists():
            return None
        try:
            with loading(path, f"loading trained artifact {stage}/{key[:12]}"):
                payload = torch.load(path, weights_only=False, map_location="cpu")
        except PermissionError as exc:
            raise storage_error(exc, path, "read") from None
        except Exception as exc:  # truncated, bit-flipped, not a torch file: never trusted
            raise DamagedArtifact(path, f"unreadable ({one_line(exc)})") from None
        fields = ("objective", "history", "seconds")
        if not isinstance(payload, dict) or any(f not in payload for f in fields):
            raise DamagedArtifact(path, f"not a bench artifact (it needs {', '.join(fields)})")
        problem = mismatch(expect, payload["objective"]) if expect is not None else None
        if problem:
            raise DamagedArtifact(path, problem)
        meta = self.meta(stage, key)
        if meta is None:
            raise DamagedArtifact(path, f"its metadata {path.with_suffix('.json').name} is missing or unreadable")
        digest = weights_digest(payload["objective"])
        if meta.get("digest") != digest:
            raise DamagedArtifact(
                path,
                f"its weights' digest {digest} is not the {meta.get('digest')} stored in "
                f"{path.with_suffix('.json').name} (the file was changed or damaged)",
            )
        return {**payload, "digest": digest}

    def set_aside(self, stage: str, key: str) -> Path | None:
        """Move a damaged artifact and its JSON out of the way (``.damaged``), so it is never tried again."""
        path = self.path(stage, key)
        meta = path.with_suffix(".json")
        if meta.exists():
            set_aside(meta)
        return set_aside(path)

    def save(self, stage: str, key: str, payload: dict[str, Any], meta: dict[str, Any]) -> Path:
        path = self.path(stage, key)
        atomic_torch_save(payload, path)
        atomic_write_json(path.with_suffix(".json"), {"stage": stage, "key": key, **meta})
        self.checkpoint_path(stage, key).unlink(missing_ok=True)
        return path


class _Lock(FileLock):
    """A FileLock whose lock file cannot be created (a full disk, no permission) is one StorageError line."""

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().acquire(*args, **kwargs)
        except Timeout:
            raise
        except OSError as exc:
            raise storage_error(exc, self.lock_file, "create the lock") from None
