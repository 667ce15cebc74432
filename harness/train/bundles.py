"""Artifact bundles: a trained stage as one file anyone can share (``bench artifacts export/import``).

A bundle is a zip archive of two members:

* ``weights.safetensors``: the stage's weights (its objective's state dict) as safetensors: plain tensors,
  nothing that runs code when read;
* ``bench-bundle.json``: the manifest: the stage's name, key, label, architecture and weights digest
  (:func:`harness.core.identity.weights_digest`), its identity (everything its key is the hash of, as the
  artifact's JSON meta holds it), its training history, info and JSON outputs, the record it was exported
  from if any, and the ``sha256`` of the weights file.

Reading a bundle (:func:`read_bundle`) checks everything before anything is used: the format, the sha256 of
the weights (a bundle whose weights were altered by one byte is refused), their digest, and that the key
is the hash of the identity. :func:`import_bundle` then adds the stage to an artifact store under its own
key, exactly as if it had been trained there (:meth:`ArtifactStore.save`), with a note of where it came
from in its meta (``imported``). Only stages whose outputs are JSON travel (a teacher, a baseline: any
classifier stage); a stage holding other Python objects is refused at export, since unpickling them would
run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

import harness
from harness.core.errors import UsageError
from harness.core.identity import KEY_LENGTH, config_key, weights_digest
from harness.train.artifacts import ArtifactStore

FORMAT = "encodenet-bench-bundle"
VERSION = 1
MANIFEST = "bench-bundle.json"
WEIGHTS = "weights.safetensors"
_KEY = re.compile(rf"[0-9a-f]{{{KEY_LENGTH}}}")
_STAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")  # a folder of the store: no separators, no '..'


@dataclass(frozen=True)
class Bundle:
    """A bundle read and verified: its manifest and weights."""

    path: str  # where it was read from (a file, or the source it was fetched from)
    manifest: dict[str, Any]
    state: dict[str, torch.Tensor]

    @property
    def stage(self) -> str:
        return self.manifest["stage"]

    @property
    def key(self) -> str:
        return self.manifest["key"]

    @property
    def sha256(self) -> str:
        return self.manifest["weights"]["sha256"]

    @property
    def test_acc(self) -> float | None:
        history = self.manifest.get("history") or []
        return history[-1].get("test_acc") if history else None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """The full sha256 (64 hex digits) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_bundle(path: Path) -> bool:
    """Whether ``path`` is a zip archive with a bundle manifest (a torch ``.pt`` is a zip too, without one)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return MANIFEST in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


# ---- export ------------------------------------------------------------------------------------------


def _jsonable(value: Any, what: str, where: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        raise UsageError(
            f"{where}: its {what} hold Python objects a bundle cannot carry safely (only weights "
            f"and JSON travel); export a classifier stage such as a teacher or a baseline"
        ) from None


def export_stage(store: ArtifactStore, stage: str, key: str, out: Path, *, record: dict | None = None) -> Bundle:
    """Write the stored stage ``stage/key`` as a bundle at ``out`` (atomically); returns it."""
    from safetensors.torch import save as save_safetensors

    where = f"artifact {stage}/{key}"
    meta = store.meta(stage, key)
    payload = store.load(stage, key)
    if meta is None or payload is None:
        raise UsageError(f"{where} is not in the artifact store {store.root} (bench artifacts list shows it)")
    state = payload["objective"]
    bad = [name for name, value in state.items() if not isinstance(value, torch.Tensor)]
    if bad:
        raise UsageError(
            f"{where}: its state holds non-tensor entries ({', '.join(bad[:3])}); a bundle carries tensors only"
        )
    tensors = {name: value.detach().cpu().contiguous().clone() for name, value in state.items()}  # no shared storage
    weights = save_safetensors(tensors, metadata={"format": FORMAT, "stage": stage, "key": key})
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "stage": stage,
        "key": key,
        "label": meta.get("label"),
        "arch": meta.get("arch"),
        "digest": weights_digest(state),
        "identity": meta.get("identity"),
        "weights": {"file": WEIGHTS, "sha256": sha256_bytes(weights), "bytes": len(weights)},
        "history": _jsonable(payload.get("history", []), "history", where),
        "seconds": payload.get("seconds", 0.0),
        "info": json.loads(json.dumps(payload.get("info", {}), default=str)),
        "outputs": _jsonable(payload.get("outputs", {}), "outputs", where),
        "record": record,
        "exported": _now(),
        "harness": harness.__version__,
    }
    if manifest["digest"] != meta.get("digest"):
        raise UsageError(
            f"{where}: its weights do not match the digest its meta records; it is damaged: "
            f"train it again (--retrain) rather than share it"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w") as archive:
            archive.writestr(MANIFEST, json.dumps(manifest, indent=2, default=str), zipfile.ZIP_DEFLATED)
            archive.writestr(WEIGHTS, weights, zipfile.ZIP_STORED)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Bundle(str(out), manifest, tensors)


# ---- reading and import ------------------------------------------------------------------------------


def read_bundle(path: Path, name: str | None = None) -> Bundle:
    """The bundle at ``path``, verified (format, sha256 and digest of the weights, key of the identity); a
    UsageError naming ``name`` (default: the path) and what is wrong otherwise."""
    from safetensors.torch import load as load_safetensors

    name = name or str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
            if MANIFEST not in members:
                raise UsageError(f"{name}: not a bench bundle (no {MANIFEST}; make one with bench artifacts export)")
            manifest = json.loads(archive.read(MANIFEST))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise UsageError(f"{name}: {MANIFEST} is not a bench bundle manifest")
            if manifest.get("version") != VERSION:
                raise UsageError(
                    f"{name}: bundle version {manifest.get('version')} is not the version this bench "
                    f"reads ({VERSION}); upgrade encodenet-bench"
                )
            weights_file = (manifest.get("weights") or {}).get("file", WEIGHTS)
            if weights_file not in members:
                raise UsageError(f"{name}: the bundle has no weights file {weights_file}")
            weights = archive.read(weights_file)
    except zipfile.BadZipFile as exc:  # also a member whose CRC no longer matches
        raise UsageError(f"{name}: a damaged or altered bundle ({exc}); refused") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{name}: not a readable bench bundle ({type(exc).__name__}: {exc})") from None
    expected = (manifest.get("weights") or {}).get("sha256")
    actual = sha256_bytes(weights)
    if actual != expected:
        raise UsageError(
            f"{name}: its weights' sha256 is {actual}, not the {expected} its manifest records: the "
            f"weights were altered or damaged; refused"
        )
    stage, key = manifest.get("stage"), manifest.get("key")
    if not (isinstance(stage, str) and _STAGE.fullmatch(stage) and isinstance(key, str) and _KEY.fullmatch(key)):
        raise UsageError(f"{name}: the manifest's stage {stage!r} or key {key!r} is not a bench stage name and key")
    if not isinstance(manifest.get("identity"), dict) or config_key(manifest["identity"]) != key:
        raise UsageError(f"{name}: its key {key} is not the hash of the identity it carries; refused")
    try:
        state = load_safetensors(weights)
    except Exception as exc:
        raise UsageError(f"{name}: its weights are not a safetensors file ({type(exc).__name__}: {exc})") from None
    digest = weights_digest(state)
    if digest != manifest.get("digest"):
        raise UsageError(
            f"{name}: its weights' digest is {digest}, not the {manifest.get('digest')} its manifest records; refused"
        )
    return Bundle(name, manifest, state)


@dataclass(frozen=True)
class Imported:
    """What an import did: ``status`` ``imported`` (added), ``present`` (the store held these very weights)."""

    bundle: Bundle
    path: Path  # the artifact in the store
    status: str


def import_bundle(
    store: ArtifactStore, path: Path, *, name: str | None = None, origin: str | None = None, replace: bool = False
) -> Imported:
    """Verify the bundle at ``path`` and add its stage to ``store`` under its own key (see :func:`read_bundle`);
    ``name`` prefixes errors, ``origin`` (default: the file's absolute path) is what the meta says it came from.

    A store that already holds the key with the same weights is left as it is; with other weights (the same
    configuration trained again, on other hardware) the import is refused unless ``replace``."""
    bundle = read_bundle(path, name)
    m = bundle.manifest
    stage, key = bundle.stage, bundle.key
    with store.lock(stage, key):
        present = store.meta(stage, key)
        if present is not None and not replace:
            if present.get("digest") == m["digest"]:
                return Imported(bundle, store.path(stage, key), "present")
            raise UsageError(
                f"the cache already holds {stage}/{key} with other weights (digest "
                f"{present.get('digest')}, the bundle's {m['digest']}); keep it, or import with --replace"
            )
        record = m.get("record") or {}
        imported = {
            "bundle": origin or str(Path(path).resolve()),
            "sha256": bundle.sha256,
            "imported": _now(),
            "exported": m.get("exported"),
            "dataset": (record.get("dataset") or {}).get("name"),
            "record_key": record.get("run_key"),
        }
        payload = {
            "objective": bundle.state,
            "history": m.get("history", []),
            "seconds": m.get("seconds", 0.0),
            "info": m.get("info", {}),
            "outputs": m.get("outputs", {}),
        }
        saved = store.save(
            stage,
            key,
            payload,
            {
                "label": m.get("label"),
                "arch": m.get("arch"),
                "digest": m["digest"],
                "identity": m["identity"],
                "imported": imported,
            },
        )
    return Imported(bundle, saved, "imported")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
