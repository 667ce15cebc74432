"""What a `bench run` is asked for, before anything is resolved: :class:`RunRequest`.

A request is plain data (names, numbers, paths), picklable, so that sweep workers rebuild the same run from it
(:class:`harness.run.sweep.backend.JobSpec`). :func:`harness.run.prepare.prepare` resolves and validates it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.data.distortions import Distortion


@dataclass
class RunRequest:
    """A `bench run` invocation, as parsed from the command line."""

    methods: list[str]
    arch: str
    dataset: str = "cifar10"
    teacher: str | None = None
    teacher_checkpoint: Path | str | None = None  # a path, file:// or https:// URL with #sha256=, hf-hub:ORG/NAME
    seeds: list[int] = field(default_factory=lambda: [0])
    recipe: str = "crd"
    overrides: dict = field(default_factory=dict)
    options: list[str] = field(default_factory=list)  # raw "method.key=value"
    device: str = "auto"
    data_dir: Path | None = None
    download: bool = True
    cache_dir: Path = Path(".cache")
    out: Path = Path("results/runs")
    resume: bool = False
    retrain: bool = False
    select: str = "last"
    val_split: float = 0.0
    train_subset: int | None = None
    test_subset: int | None = None
    latency: bool = True
    latency_batch: int | None = None
    reuse_records: bool = False  # skip (seed, method) pairs whose record is already in ``out``
    amp: bool | None = None
    compile: str | None = None  # a torch.compile mode (--compile), None: eager
    channels_last: bool | None = None
    threads: int | None = None
    numerics: str | None = None  # a numerics profile (harness.core.numerics), None: native
    eval_distortions: list[Distortion] = field(default_factory=list)  # --eval-noise / --eval-distort
    #: the study file the run was declared in (name, file, digest, resolved copy), written into its records;
    #: presentation only: it never enters a stage key, a run key or a failed record's key
    study: dict[str, str] | None = None
    loggers: list[str] = field(default_factory=list)  # --log: metrics loggers besides the always-on jsonl
