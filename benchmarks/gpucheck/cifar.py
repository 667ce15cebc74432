"""Part f: resnet20 baseline on the full JPEG CIFAR-10 with the CRD recipe, at as many epochs as fit."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

from gpucheck import probes
from gpucheck.check import Check, PartResult
from gpucheck.parts import record_row, records_of

REPO = Path(__file__).resolve().parents[2]
#: the JPEG copy of CIFAR-10 (../shared/data/README.md)
CIFAR_SHA256 = "ad296cc64329387731be53da7af5be5778a4656584e4f2e13c13c15e14be315e"
#: where part f looks for it: a copy in the repository's ignored .data/ first (it travels to a GPU machine
#: when the run carries .data; ../shared does not travel), then ../shared/data
DATA_CANDIDATES = (REPO / ".data" / "cifar10-jpg.tar.gz", REPO.parent / "shared" / "data" / "cifar10-jpg.tar.gz")


def find_data(given: Path | None) -> tuple[Path | None, str]:
    """Part f's tarball and where it was found, or None and why not."""
    candidates = (given,) if given is not None else DATA_CANDIDATES
    for path in candidates:
        if path is not None and path.is_file():
            return path, str(path)
    where = " or ".join(str(p) for p in candidates if p is not None)
    return None, f"no JPEG CIFAR-10 tarball at {where} (benchmarks/gpu_prepare.sh copies it into .data/)"


def sampled_tarball(source: Path, target: Path, per_class: tuple[int, int]) -> Path:
    """A tarball of the first ``per_class`` (train, test) images of every class of ``source``, in its layout
    (``--tiny``: part f's whole path, data included, at a toy size)."""
    counts: dict[tuple[str, str], int] = {}
    with tarfile.open(source, "r:gz") as src, tarfile.open(target, "w:gz") as dst:
        for member in src:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 4 or parts[-3] not in ("train", "test"):
                continue
            key = (parts[-3], parts[-2])
            if counts.get(key, 0) < per_class[0 if parts[-3] == "train" else 1]:
                counts[key] = counts.get(key, 0) + 1
                dst.addfile(member, src.extractfile(member))
    return target


def part_cifar10(check: Check, part: PartResult) -> None:
    """f. A 1-epoch probe (data decoding included) says how many epochs fit in the time left; then the main
    run at that many epochs (the CRD recipe's milestones scaled to them). Its top-1 and time."""
    s = check.scale
    data, where = find_data(check.args.data)
    if data is None:
        part.status, part.note = "skipped", where
        return
    if check.remaining() < s.cifar_min_s:
        part.status, part.note = "skipped", f"only {check.remaining():.0f} s left (it needs {s.cifar_min_s:.0f})"
        return
    if s.cifar_per_class is not None:
        data = sampled_tarball(data, check.work / "cifar10-jpg-sample.tar.gz", s.cifar_per_class)
        where += f", sampled to {s.cifar_per_class[0]}/{s.cifar_per_class[1]} train/test images per class"
    part.note = (
        f"resnet20 baseline, recipe crd (batch 64, 240 epochs, milestones scaled to --epochs), on {where}; "
        f"a 1-epoch probe (data decoding included) sets the epochs that fit. A JPEG copy: lossy pixels, "
        f"close to but not identical with published CIFAR-10 numbers"
    )

    def train(epochs: int, label: str) -> dict[str, Any]:
        """One bench run of ``epochs``, its row."""
        out = check.work / "cifar10" / label
        argv = check.bench_argv(
            "--methods",
            "baseline",
            "--arch",
            "resnet20",
            "--dataset",
            f"imagefolder:{data}",
            "--recipe",
            "crd",
            "--epochs",
            str(epochs),
            out=out,
        )
        o = check.run(part, f"cifar10 {label} ({epochs} epochs)", probes.bench, {"argv": argv})
        row = {"run": label, "epochs": epochs, "status": o.status, "seconds": o.seconds, "error": o.error}
        row.update(record_row(records_of(out).get("baseline")) if o.status == "ok" else {})
        part.rows.append(row)
        return row

    probe = train(1, "probe")
    if probe["status"] != "ok":
        return
    epoch_s = float(next(iter(probe["stages"].values()))["seconds"])
    overhead = max(0.0, float(probe["wall_s"] or 0) - epoch_s) + 10  # evaluation, cost counting, start-up
    epochs = min(s.cifar_max_epochs, int(0.85 * (check.left(part) - overhead) / max(epoch_s, 1e-3)))
    part.info.update(probe_epoch_s=round(epoch_s, 2), planned_epochs=epochs)
    if epochs >= 2:
        train(epochs, "main")
    else:
        part.info["why no main run"] = f"{check.left(part):.0f} s left fit fewer than 2 epochs of {epoch_s:.1f} s"
