"""What an artifact store holds, which records use it, and removing what none uses (``bench artifacts
list`` / ``prune``), plus finding one artifact by reference (``bench artifacts export``).

An artifact is *used* by a record when the record names it: any of its stages' ``artifact`` keys (a failed
record's finished stages too), its teacher's, the store artifact its teacher came from
(``teacher.source.artifact``, an imported bundle) or a ``--teacher-checkpoint`` path inside the store.
Pruning removes the ``.pt`` and ``.json`` of every other artifact, each under its lock (a stage being
trained or saved right now is skipped), and nothing else (checkpoints of interrupted stages stay).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from filelock import Timeout

from harness.core.errors import UsageError
from harness.train.artifacts import ArtifactStore, meta_beside

if TYPE_CHECKING:
    from harness.results.records import Record


@dataclass
class ArtifactInfo:
    """One complete artifact of a store, as ``bench artifacts list`` shows it."""

    stage: str
    key: str
    label: str
    arch: str | None
    bytes: int
    classes: int | None
    fingerprint: str | None
    test_acc: float | None = None
    dataset: str | None = None
    imported: dict[str, Any] | None = None
    used_by: list[str] = field(default_factory=list)  # record files naming it

    @property
    def ref(self) -> str:
        return f"{self.stage}/{self.key}"


def artifacts(store: ArtifactStore) -> list[ArtifactInfo]:
    """Every complete artifact (``.pt`` with its ``.json``) of the store, by stage and key."""
    found = []
    for meta_file in sorted(store.root.glob("*/*.json")) if store.root.exists() else []:
        stage, key = meta_file.parent.name, meta_file.stem
        meta = store.meta(stage, key)
        if meta is None:
            continue
        dataset = ((meta.get("identity") or {}).get("run") or {}).get("dataset") or {}
        imported = meta.get("imported")
        found.append(
            ArtifactInfo(
                stage=stage,
                key=key,
                label=str(meta.get("label") or stage),
                arch=meta.get("arch"),
                bytes=store.path(stage, key).stat().st_size,
                classes=len(dataset["classes"]) if "classes" in dataset else None,
                fingerprint=dataset.get("fingerprint"),
                imported=imported,
                dataset=(imported or {}).get("dataset"),
            )
        )
    return found


def final_accuracy(store: ArtifactStore, stage: str, key: str) -> float | None:
    """The test top-1 of the artifact's last epoch, read without loading its weights (memory-mapped)."""
    try:
        payload = torch.load(store.path(stage, key), map_location="cpu", weights_only=False, mmap=True)
        history = payload.get("history") or []
        return history[-1].get("test_acc") if history else None
    except Exception:
        return None


# ---- records that use artifacts ----------------------------------------------------------------------


def used_keys(record: Mapping[str, Any], store: ArtifactStore) -> set[str]:
    """The artifact keys a record names (see the module docstring)."""
    keys = {entry.get("artifact") for entry in (record.get("stages") or {}).values()}
    teacher = record.get("teacher") or {}
    keys.add(teacher.get("artifact"))
    source = teacher.get("source") or {}
    if source.get("artifact"):
        keys.add(str(source["artifact"]).rpartition("/")[2])
    checkpoint = teacher.get("checkpoint")
    if checkpoint and Path(checkpoint).suffix == ".pt":
        path = Path(checkpoint).resolve()
        if store.root.resolve() in path.parents:
            keys.add(path.stem)
    return {k for k in keys if isinstance(k, str) and k}


def records_in(paths: Iterable[Path]) -> list[Record]:
    """Every record (ok and failed) under ``paths`` (files or folders, searched recursively)."""
    from harness.results.records import load_records

    paths = list(paths)
    for p in paths:
        if not p.exists():
            raise UsageError(f"no such records folder or file: {p}")
    return load_records(paths, failed=True)


def attach_records(found: list[ArtifactInfo], records: list[Record], store: ArtifactStore) -> None:
    """Fill ``used_by`` and, where a record trained on it, ``dataset`` of each artifact."""
    by_key = {info.key: info for info in found}
    for record in records:
        for key in used_keys(record, store):
            info = by_key.get(key)
            if info is None:
                continue
            info.used_by.append(record.get("_path", "?"))
            stages = record.get("stages") or {}
            if info.dataset is None and any(e.get("artifact") == key for e in stages.values()):
                info.dataset = (record.get("dataset") or {}).get("name")


# ---- pruning ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PruneResult:
    removed: list[ArtifactInfo]
    skipped: list[ArtifactInfo]  # locked: being trained or saved now


def unused(found: list[ArtifactInfo]) -> list[ArtifactInfo]:
    return [info for info in found if not info.used_by]


def remove(store: ArtifactStore, victims: list[ArtifactInfo]) -> PruneResult:
    """Delete each artifact's ``.pt`` and ``.json``, under its lock (a held lock: skipped)."""
    removed, skipped = [], []
    for info in victims:
        lock = store.lock(info.stage, info.key)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            skipped.append(info)
            continue
        try:
            path = store.path(info.stage, info.key)
            path.with_suffix(".json").unlink(missing_ok=True)  # first the meta: a half-pruned one is never "complete"
            path.unlink(missing_ok=True)
            removed.append(info)
        finally:
            lock.release()
    return PruneResult(removed, skipped)


# ---- finding one artifact ----------------------------------------------------------------------------


def find(store: ArtifactStore, ref: str) -> tuple[str, str]:
    """``(stage, key)`` of ``STAGE/KEY``, a key or a unique key prefix (6+ characters), or an artifact file."""
    path = Path(ref)
    if path.suffix == ".pt" and path.exists():
        data = meta_beside(path, ref)
        if data is None:
            raise UsageError(
                f"{ref}: no artifact meta ({path.with_suffix('.json').name}) beside it; not a bench artifact"
            )
        return str(data.get("stage") or path.parent.name), path.stem
    stage, _, key = ref.rpartition("/")
    if len(key) < 6:
        raise UsageError(
            f"'{ref}': name an artifact as STAGE/KEY, KEY or a key prefix of 6+ characters, or give a "
            f"record (.json) or an artifact file (.pt)"
        )
    matches = [(i.stage, i.key) for i in artifacts(store) if i.key.startswith(key) and stage in ("", i.stage)]
    if not matches:
        raise UsageError(f"no artifact '{ref}' in {store.root} (bench artifacts list --cache-dir ... shows them)")
    if len(matches) > 1:
        raise UsageError(
            f"'{ref}' matches {len(matches)} artifacts ({', '.join(f'{s}/{k}' for s, k in matches[:4])}); "
            f"give more of the key"
        )
    return matches[0]


def of_record(record: dict, where: str, label: str | None = None) -> tuple[str, str]:
    """``(stage, key)`` of a record's deployed stage, or of its stage ``label`` (e.g. its teacher,
    ``baseline[resnet20]``)."""
    stages = record.get("stages") or {}
    if label is None:
        wanted = record.get("run_key")
        picked = [entry for entry in stages.values() if entry.get("artifact") == wanted]
        if not picked:
            raise UsageError(f"{where}: its record names no stage of its run key {wanted} (a failed run?)")
        entry = picked[-1]
    else:
        if label not in stages:
            raise UsageError(f"{where}: the record has no stage '{label}'; its stages: {', '.join(stages)}")
        entry = stages[label]
    if entry.get("origin") == "loaded":
        raise UsageError(
            f"{where}: stage {entry.get('stage')} was loaded from a checkpoint, not trained into the "
            f"cache; share that checkpoint (its record's teacher.checkpoint) instead"
        )
    return str(entry["stage"]), str(entry["artifact"])
