"""Image trees in the ImageFolder layout (``train/<class>/x.jpg``, ``test/<class>/...``): folders, zip and tar
archives, read member by member without extracting anything.

What a tree holds is listed here, and what could not be read is said, never dropped without a word:

* a folder is walked following symbolic links to folders (a class folder may be a link), once per real
  folder, so a link loop ends; a dangling link or a link loop is a *broken* entry, named by the loader;
* archive member names are normalised (``./train/a/x.jpg``, ``train//a/x.jpg``, backslashes) and a member
  that would point outside the archive (``train/../../x.jpg``, an absolute path) is refused with one line: a
  class named ``..`` never appears;
* a truncated or damaged archive is one line naming it and what to do.
"""

from __future__ import annotations

import errno
import functools
import os
import posixpath
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from harness.core.errors import DataUnavailableError, one_line

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip", ".tar")


class Member(NamedTuple):
    """One image of a tree: its split, its class, how to read its bytes, and its path inside the tree."""

    split: str
    cls: str
    read: Callable[[], bytes]
    path: str = ""


@dataclass
class Listing:
    """Every image file of a tree (``(path inside the tree as it is named there, normalised path, read)``),
    the files that are not images (``skipped``) and the entries that could not be read (``broken``: dangling
    links, link loops, unreadable folders), each with why."""

    files: list[tuple[str, str, Callable[[], bytes]]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)


def is_image_name(name: str) -> bool:
    """An image by its name: an image suffix, not hidden (``.DS_Store``, ``._x.jpg``), not in ``__MACOSX/``."""
    path = Path(name)
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and "__MACOSX" not in path.parts


def member_name(name: str, source: Path) -> str:
    """An archive member's name, normalised (``./a//b\\c`` -> ``a/b/c``); a DataUnavailableError for one that
    points outside the archive (``..`` after normalising, or an absolute path)."""
    clean = posixpath.normpath(name.replace("\\", "/"))
    if clean.startswith("/") or clean == ".." or clean.startswith("../") or (len(clean) > 1 and clean[1] == ":"):
        raise DataUnavailableError(
            f"'{source}' has a member '{name}' that points outside the archive; bench "
            f"reads no such archive (it may be unsafe or damaged): rebuild it from a folder"
        )
    return clean


def walk_folder(source: Path, listing: Listing) -> None:
    """Every file under ``source``, following links to folders once per real folder (a loop ends)."""
    seen: set[str] = set()

    def unreadable(exc: OSError) -> None:
        listing.broken.append(f"{_rel(exc.filename or '', source)} (cannot read the folder: {exc.strerror})")

    for root, dirs, names in os.walk(source, followlinks=True, onerror=unreadable):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            listing.broken.append(f"{_rel(root, source)}/ (a link to a folder already read: a link loop?)")
            continue
        seen.add(real)
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            rel = _rel(path, source)
            if os.path.isfile(path):
                if is_image_name(rel):
                    listing.files.append((rel, rel, Path(path).read_bytes))
                else:
                    listing.skipped.append(rel)
            elif os.path.islink(path):
                listing.broken.append(f"{rel} ({_link_problem(path)})")
            else:
                listing.skipped.append(rel)  # a fifo, a socket, a device


def _rel(path: str, source: Path) -> str:
    return Path(os.path.relpath(path, source)).as_posix()


def _link_problem(path: str) -> str:
    try:
        os.stat(path)
    except OSError as exc:
        return "a link loop" if exc.errno == errno.ELOOP else f"a dangling link to '{os.readlink(path)}'"
    return "a link to something that is not a file"


#: what a damaged archive raises while it is read
ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError)


def _damaged(source: Path, exc: BaseException) -> DataUnavailableError:
    return DataUnavailableError(
        f"'{source}' is a damaged or truncated archive ({one_line(exc)}); download or "
        f"copy it again, or unpack it and pass the folder"
    )


def _given(data: bytes) -> bytes:
    return data


def read_archive(source: Path, listing: Listing) -> None:
    """Every member of a zip or tar archive (a tar is read once, in stream order, into memory)."""
    try:
        if zipfile.is_zipfile(source):
            zf = zipfile.ZipFile(source)
            for name in sorted(n for n in zf.namelist() if not n.endswith("/")):
                clean = member_name(name, source)
                if is_image_name(clean):
                    listing.files.append((name, clean, functools.partial(zf.read, name)))
                else:
                    listing.skipped.append(name)
            return
        if not tarfile.is_tarfile(source):
            kind = next((s for s in ARCHIVE_SUFFIXES if source.name.lower().endswith(s)), None)
            if kind:
                raise DataUnavailableError(
                    f"'{source}' is named like a {kind} archive but cannot be read as one "
                    f"(truncated or damaged?); download or copy it again"
                )
            raise DataUnavailableError(f"'{source}' is neither a folder nor a zip/tar archive of images")
        found = []
        with tarfile.open(source, mode="r:*") as tf:
            for m in tf:
                clean = member_name(m.name, source)
                if not (m.isfile() or m.islnk() or m.issym()):
                    continue
                if not is_image_name(clean):
                    listing.skipped.append(m.name)
                    continue
                try:
                    member = tf.extractfile(m)
                except KeyError:  # a link to a member that is not there
                    member = None
                if member is None:
                    listing.broken.append(f"{m.name} (a link to '{m.linkname}', not in the archive)")
                    continue
                found.append((m.name, clean, member.read()))
        for name, clean, data in sorted(found, key=lambda f: f[1]):
            listing.files.append((name, clean, functools.partial(_given, data)))
    except DataUnavailableError:
        raise
    except ARCHIVE_ERRORS as exc:
        raise _damaged(source, exc) from None


def list_tree(source: Path) -> Listing:
    listing = Listing()
    if source.is_dir():
        walk_folder(source, listing)
    else:
        read_archive(source, listing)
    listing.files.sort(key=lambda f: f[1])
    return listing


def read_imagefolder(source: Path, listing: Listing | None = None) -> dict[str, list[Member]]:
    """Group the images of an ImageFolder tree by split: ``.../train/<class>/x.jpg`` and ``.../test/...``.

    Files that are not images, or not in that layout, are added to ``listing.skipped``; entries that cannot
    be read to ``listing.broken``."""
    found = list_tree(source)
    if listing is not None:
        listing.skipped.extend(found.skipped)
        listing.broken.extend(found.broken)
    splits: dict[str, list[Member]] = {"train": [], "test": []}
    for name, clean, read in found.files:
        parts = clean.split("/")
        for i in range(len(parts) - 2):
            if parts[i] in splits:
                splits[parts[i]].append(Member(parts[i], parts[i + 1], read, name))
                break
        else:
            if listing is not None:
                listing.skipped.append(name)
    if listing is not None:
        listing.skipped.sort()
        listing.broken.sort()
    if not splits["train"] or not splits["test"]:
        raise DataUnavailableError(
            f"'{source}' has no train/<class>/ and test/<class>/ image folders; an image-folder dataset "
            f"needs both (e.g. PATH/train/cat/0001.jpg and PATH/test/cat/0001.jpg)"
        )
    return splits
