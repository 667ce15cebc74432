"""What a check runs and at what size: the full check (<= 8 minutes on one H100) and ``--tiny`` (a CPU)."""

from __future__ import annotations

from dataclasses import dataclass

#: the parts, in the order they run, and their letters (issue 29)
PARTS = {
    "environment": "a",
    "methods": "b",
    "engine": "c",
    "concurrent": "d",
    "determinism": "e",
    "gate": "g",
    "cifar10": "f",
}
#: method options part b needs beyond the defaults: dcff's default keep ratios are the paper's for vgg16 only
OPTIONS_FOR = {"dcff": ("dcff.keep=0.5",)}
#: modules the child processes share, imported once by the fork server (one that fails to import is skipped)
PRELOAD = (
    "torch",
    "torchvision",
    "timm",
    "harness.cli",
    "harness.cli.commands.run",
    "harness.run.execute",
    "harness.results.tables",
    "harness.results.stats",
    "harness.run.recording",
    "bench_engine",
)


@dataclass(frozen=True)
class Scale:
    """The sizes of one check; every number of a part's work is here, none in the parts."""

    name: str
    total_s: float  # the whole check; part f gets what parts a-e leave
    budgets: dict[str, float]  # seconds of parts a-e and g
    gate: bool  # part g runs .ci/gate (its budget is fixed: 2,000 images; about 2-4 minutes of one CPU core)
    arch: str  # part b's architecture
    arch_for: dict[str, str]  # methods that cannot train it (their description says so): the one they need
    teacher: str  # part b's teacher (trained once, reused by every distillation method)
    train_subset: int
    test_subset: int
    jobs: int  # part b's bench runs at once
    method_timeout_s: float  # one bench run of part b
    latency: bool  # part b measures latency (the CUDA latency path is part of the proof)
    engine_archs: tuple[str, ...]
    engine_batches: tuple[int, ...]
    engine_images: int  # per timed epoch (cifar10-mini has 5,000)
    engine_epochs: int  # per timing
    repeats: int  # timings per setting (median)
    compile: bool  # part c's --compile rows by default
    ks: tuple[int, ...]
    k_epochs: int
    det_arch: str
    det_subset: int
    cifar_per_class: tuple[int, int] | None  # (train, test) images per class of a sampled tarball; None: all
    cifar_max_epochs: int
    cifar_min_s: float  # part f starts only with this much time left


FULL = Scale(
    "full",
    total_s=470,
    budgets={"environment": 30, "methods": 140, "engine": 140, "concurrent": 55, "determinism": 35, "gate": 240},
    gate=True,
    arch="resnet20",
    arch_for={"anytime": "msdnet"},
    teacher="resnet56",
    train_subset=500,
    test_subset=500,
    jobs=4,
    method_timeout_s=90,
    latency=True,
    engine_archs=("resnet8", "resnet20", "resnet56"),
    engine_batches=(128, 512),
    engine_images=5000,
    engine_epochs=1,
    repeats=3,
    compile=True,
    ks=(1, 2, 4, 8),
    k_epochs=2,
    det_arch="resnet20",
    det_subset=2000,
    cifar_per_class=None,
    cifar_max_epochs=240,
    cifar_min_s=60,
)
TINY = Scale(
    "tiny",
    total_s=600,  # a cap for a loaded 2-core machine: about 4 minutes is the usual
    budgets={"environment": 60, "methods": 240, "engine": 90, "concurrent": 90, "determinism": 60, "gate": 5},
    gate=False,
    arch="resnet8",
    arch_for={"anytime": "msdnet:blocks=2,base=1,step=1,channels=4,growth=2"},
    teacher="resnet8",
    train_subset=100,
    test_subset=50,
    jobs=2,
    method_timeout_s=60,
    latency=False,
    engine_archs=("resnet8",),
    engine_batches=(32,),
    engine_images=64,
    engine_epochs=1,
    repeats=1,
    compile=False,
    ks=(1, 2),
    k_epochs=1,
    det_arch="resnet8",
    det_subset=64,
    cifar_per_class=(10, 5),
    cifar_max_epochs=2,
    cifar_min_s=15,
)
