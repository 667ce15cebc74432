"""Build plugins/datasets/data/cifar10-mini.zip from the JPEG copy of CIFAR-10.

Usage: python scripts/make_bundled_dataset.py ../shared/data/cifar10-jpg.tar.gz
Takes the first 500 training and 100 test images of each class (by their index in the original order), and
stores the JPEG bytes unchanged (no re-encoding) in a zip with fixed timestamps, so the output is
byte-for-byte reproducible.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

PER_CLASS = {"train": 500, "test": 100}
OUT = Path(__file__).resolve().parents[1] / "plugins" / "datasets" / "data" / "cifar10-mini.zip"


def main(src: str) -> None:
    picked: dict[str, bytes] = {}
    with tarfile.open(src) as tf:
        members = [m for m in tf.getmembers() if m.isfile() and m.name.endswith(".jpg")]
        by_group: dict[tuple[str, str], list[tarfile.TarInfo]] = {}
        for m in members:
            parts = Path(m.name).parts  # cifar-10-images-jpg/<split>/<class>/NNNN.jpg
            by_group.setdefault((parts[-3], parts[-2]), []).append(m)
        for (split, cls), group in sorted(by_group.items()):
            group.sort(key=lambda m: int(Path(m.name).stem))
            for m in group[: PER_CLASS[split]]:
                picked[f"{split}/{cls}/{Path(m.name).name}"] = tf.extractfile(m).read()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(OUT, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(picked):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            zf.writestr(info, picked[name])
    print(f"wrote {OUT} ({len(picked)} images, {OUT.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/cifar10-jpg.tar.gz")
