"""Where a shared teacher comes from: a local file, a URL with its digest, or a Hugging Face Hub repository.

``--teacher-checkpoint`` (and ``bench artifacts import``) take a *source*:

* a path: a bundle (``bench artifacts export``), or what :mod:`harness.methods.shared` reads (a record, an
  artifact, a state dict);
* ``file:///PATH#sha256=HEX``, ``https://HOST/PATH#sha256=HEX`` (or ``http://``): a bundle whose file has this
  sha256 (64 hex digits, required: the digest is checked before the file is used). A download is kept
  under ``<cache-dir>/downloads/<sha256>/`` and found there again, offline too;
* ``hf-hub:ORG/NAME[/FILE][@REVISION][#sha256=HEX]``: ``FILE`` (default ``bench-bundle.zip``) of a Hub model
  repository, through ``huggingface_hub`` (the ``hub`` extra) and its cache (``HF_HUB_OFFLINE=1`` uses only
  that cache).

What comes from a URL or the Hub must be a bundle: a pickled checkpoint from the network could run code
when loaded. Offline (``BENCH_OFFLINE=1``, or no network), a remote source that is not in a cache fails
with one line naming it and the offline alternative.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness.core.environ import switch
from harness.core.errors import UsageError
from harness.core.extras import import_extra
from harness.train.artifacts import ArtifactStore
from harness.train.bundles import import_bundle, is_bundle, sha256_file

OFFLINE_ENV = "BENCH_OFFLINE"
HUB_PREFIX = "hf-hub:"
HUB_FILE = "bench-bundle.zip"
TIMEOUT_S = 60
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Source:
    """A parsed source: ``kind`` ``path``, ``url`` or ``hub``; ``sha256`` the file's expected digest."""

    text: str
    kind: str
    location: str  # the path, the URL without its fragment, or ORG/NAME
    sha256: str | None = None
    filename: str = HUB_FILE  # hub: the file in the repository
    revision: str | None = None  # hub

    @property
    def remote(self) -> bool:
        return self.kind != "path" and not self.location.startswith("file:")


def parse_source(text: str, option: str = "--teacher-checkpoint") -> Source:
    """A source from its text; a UsageError for a URL without a valid ``#sha256=``."""
    text = str(text)
    if text.startswith(HUB_PREFIX):
        rest, _, fragment = text[len(HUB_PREFIX) :].partition("#")
        rest, _, revision = rest.partition("@")
        parts = [p for p in rest.split("/") if p]
        if len(parts) < 2:
            raise UsageError(f"{option} {text}: a Hub source is hf-hub:ORG/NAME[/FILE][@REVISION][#sha256=HEX]")
        return Source(
            text,
            "hub",
            "/".join(parts[:2]),
            _fragment_sha256(fragment, text, option, required=False),
            filename="/".join(parts[2:]) or HUB_FILE,
            revision=revision or None,
        )
    scheme = urllib.parse.urlsplit(text).scheme
    if scheme in ("file", "http", "https"):
        url, _, fragment = text.partition("#")
        return Source(text, "url", url, _fragment_sha256(fragment, text, option, required=True))
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", text):
        raise UsageError(f"{option} {text}: unsupported scheme '{scheme}'; use a path, file://, https:// or hf-hub:")
    return Source(text, "path", text)


def _fragment_sha256(fragment: str, text: str, option: str, *, required: bool) -> str | None:
    values = dict(urllib.parse.parse_qsl(fragment))
    digest = values.get("sha256", "").lower()
    if not digest and not required:
        return None
    if not _SHA256.fullmatch(digest):
        raise UsageError(
            f"{option} {text}: name the file's digest as #sha256=<64 hex digits> (bench artifacts "
            f"export prints it; sha256sum FILE computes it)"
        )
    return digest


def fetch(source: Source, cache_dir: Path, option: str = "--teacher-checkpoint") -> Path:
    """A local file holding the source's content, its sha256 checked when the source names one."""
    if source.kind == "path":
        path = Path(source.location)
        if not path.exists():
            raise UsageError(f"{option} {source.text}: no such file")
        return path
    if source.kind == "hub":
        path = _from_hub(source, option)
    elif source.location.startswith("file:"):
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(source.location).path))
        if not path.exists():
            raise UsageError(f"{option} {source.text}: no such file {path}")
    else:
        path = _download(source, cache_dir, option)
    if source.sha256 is not None:
        actual = sha256_file(path)
        if actual != source.sha256:
            raise UsageError(
                f"{option} {source.text}: the file's sha256 is {actual}, not the one the source names; "
                f"refused (a different or damaged file)"
            )
    return path


def _offline_hint(source: Source, option: str) -> str:
    return (
        f"offline, copy the bundle here from a connected machine and pass its path ({option} FILE, or "
        f"bench artifacts import FILE)"
    )


def _download(source: Source, cache_dir: Path, option: str) -> Path:
    assert source.sha256 is not None
    name = Path(urllib.parse.urlsplit(source.location).path).name or "download"
    target = cache_dir / "downloads" / source.sha256 / name
    if target.exists() and sha256_file(target) == source.sha256:
        return target  # downloaded before: no network needed
    if switch(OFFLINE_ENV):
        raise UsageError(
            f"{option} {source.text}: not downloaded ({OFFLINE_ENV} is set); {_offline_hint(source, option)}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(source.location, timeout=TIMEOUT_S) as response:
            shutil.copyfileobj(response, out, 1 << 20)
        if sha256_file(Path(tmp)) != source.sha256:
            raise UsageError(
                f"{option} {source.text}: the downloaded file's sha256 is not the one the source names; "
                f"refused (a different or damaged file)"
            )
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UsageError(
            f"{option} {source.text}: cannot download it ({type(exc).__name__}: {reason}); "
            f"{_offline_hint(source, option)}"
        ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def _from_hub(source: Source, option: str) -> Path:
    hub = import_extra("huggingface_hub", "hub", f"{option} {HUB_PREFIX}...", package="huggingface_hub")
    from huggingface_hub import errors

    try:
        return Path(hub.hf_hub_download(source.location, source.filename, revision=source.revision))
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UsageError(
            f"{option} {source.text}: not in the Hugging Face cache and not downloadable here "
            f"({type(exc).__name__}: {first[:160]}); {_offline_hint(source, option)}"
        ) from None
    except (
        errors.RepositoryNotFoundError,
        errors.RevisionNotFoundError,
        errors.EntryNotFoundError,
        errors.HFValidationError,
    ) as exc:
        raise UsageError(f"{option} {source.text}: {type(exc).__name__} ({str(exc).splitlines()[0][:160]})") from None
    except OSError as exc:
        raise UsageError(
            f"{option} {source.text}: cannot download it ({type(exc).__name__}: {exc}); {_offline_hint(source, option)}"
        ) from None


def resolve_teacher(
    text: str, store: ArtifactStore, cache_dir: Path, option: str = "--teacher-checkpoint"
) -> tuple[Path, dict | None]:
    """The file a checkpoint teacher stage reads for source ``text``, and where it came from (None for a plain
    local checkpoint). A bundle (local or fetched) is verified and imported into ``store``: the stage reads the
    stored artifact, and the provenance names the source, the weights' sha256 and the artifact."""
    source = parse_source(text, option)
    path = fetch(source, cache_dir, option)
    if not is_bundle(path):
        if source.remote:
            raise UsageError(
                f"{option} {text}: not a bench bundle; what comes from a URL or the Hub must be one "
                f"(bench artifacts export makes it), since a pickled checkpoint could run code"
            )
        return path, None
    imported = import_bundle(
        store, path, name=f"{option} {text}", origin=str(Path(text).resolve()) if source.kind == "path" else text
    )
    bundle = imported.bundle
    return imported.path, {
        "kind": source.kind if source.remote or source.kind == "url" else "bundle",
        "source": text,
        "sha256": bundle.sha256,
        "artifact": f"{bundle.stage}/{bundle.key}",
        "file_sha256": source.sha256,
    }
