"""The study file format, declared once: :data:`KEYS`, one :class:`Key` per key a study file may hold.

Everything else is derived from this table: the checks of :mod:`harness.cli.study.load` (each key's
:class:`Kind` says what values it takes, and how it reads in an error), the defaults (a key set by a
`bench run` option has that option's default and conversion: :func:`harness.cli.args.run_parser`),
`bench study keys` and the key reference of ``docs/studies.md`` (:func:`markdown`; a test checks that the
page holds exactly this text). A `bench run` option that is neither a key here nor in :data:`CLI_ONLY` fails
``tests/test_study.py``: a new option is a decision about study files, not an accident.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from harness.cli.args import METRIC_CHOICES
from harness.core.numerics import PROFILES

#: The tables of a study file, in the order the docs present them.
TABLES = {
    "study": "what the study is: its name, and for `bench reproduce` its reference table and protocol",
    "defaults": "run keys shared by every `[[runs]]` table (a `[[runs]]` table's own value wins)",
    "runs": "one `[[runs]]` table per group of runs: what is trained; a list value expands into one run per item",
    "execution": "where and how the runs train and are recorded: one value for the whole study (not in its digest)",
}
#: Which tables hold which keys: ``run`` keys go in ``[defaults]`` and ``[[runs]]``.
SCOPES = {"study": "study", "defaults": "run", "runs": "run", "execution": "execution"}
#: `bench run` options that say how this invocation behaves, never what a study is: no key of a study file.
CLI_ONLY = frozenset({"dry_run", "throughput", "quiet"})


def show(value: Any) -> str:
    """A value as TOML spells it, for error messages: ``"ten"``, ``[1, 2]``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, str, int, float)):
        return json.dumps(value, default=str)
    return repr(value)


class Kind(ABC):
    """The values a key takes: :meth:`ok` checks a parsed TOML value, ``what`` names them in messages."""

    what = "a value"

    @abstractmethod
    def ok(self, value: Any) -> bool:
        """Whether ``value`` (as TOML parsed it) is one of this kind's values."""

    def cli(self, value: Any) -> str:
        """The value as its `bench run` option's text, for the option's own conversion."""
        return str(value)

    def toml(self, value: Any) -> Any:
        """A converted (argparse-level) value back as TOML, for resolved copies and defaults."""
        return value


@dataclass(frozen=True)
class Integer(Kind):
    minimum: int | None = None

    @property
    def what(self) -> str:  # type: ignore[override]
        return "an integer" + (f" >= {self.minimum}" if self.minimum is not None else "")

    def ok(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and \
            (self.minimum is None or value >= self.minimum)


@dataclass(frozen=True)
class Number(Kind):
    """A float (an integer is accepted): ``low`` / ``high`` bounds, open when ``*_open``."""

    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = True

    @property
    def what(self) -> str:  # type: ignore[override]
        if self.low is not None and self.high is not None:
            return f"a number in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"a number {'>' if self.low_open else '>='} {self.low:g}"
        return "a number"

    def ok(self, value: Any) -> bool:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def cli(self, value: Any) -> str:
        return repr(float(value))


@dataclass(frozen=True)
class Text(Kind):
    choices: tuple[str, ...] = ()

    @property
    def what(self) -> str:  # type: ignore[override]
        return f"one of {', '.join(show(c) for c in self.choices)}" if self.choices else "a string"

    def ok(self, value: Any) -> bool:
        return isinstance(value, str) and (not self.choices or value in self.choices)


class Boolean(Kind):
    what = "true or false"

    def ok(self, value: Any) -> bool:
        return isinstance(value, bool)


@dataclass(frozen=True)
class PathText(Kind):
    """A path: relative to the study file's folder when written in a study file; ``sources``: a URL or hub id
    (``https://...``, ``file://...``, ``hf-hub:...``) is taken as written."""

    sources: bool = False
    what = "a path (a string)"

    def ok(self, value: Any) -> bool:
        return isinstance(value, str) and bool(value)

    def toml(self, value: Any) -> Any:
        return None if value is None else str(value)


@dataclass(frozen=True)
class Items(Kind):
    """A list of ``of`` values; ``distortion``: the items are distortions (their levels or names as TOML)."""

    of: Kind
    plural: str
    nonempty: bool = False
    distortion: str = ""  # "level": --eval-noise (sigmas); "name": --eval-distort (KIND:LEVEL)

    @property
    def what(self) -> str:  # type: ignore[override]
        return f"a {'non-empty ' if self.nonempty else ''}list of {self.plural}"

    def ok(self, value: Any) -> bool:
        return isinstance(value, list) and (bool(value) or not self.nonempty) and all(self.of.ok(v) for v in value)

    def cli(self, value: Any) -> str:
        return ",".join(self.of.cli(v) for v in value)

    def toml(self, value: Any) -> Any:
        if value is None:
            return None
        if self.distortion:
            return [getattr(d, self.distortion) for d in value]
        return list(value)


SCALAR = (str, int, float, bool)


@dataclass(frozen=True)
class Settings(Kind):
    """A table of ``NAME = VALUE`` (``depth=2``: a table of such tables, per method); each value a string,
    number or boolean. Converted to its repeatable option's ``NAME=VALUE`` items (``--opt``, ``--slurm-opt``)."""

    depth: int = 1
    what = "a table"

    def ok(self, value: Any) -> bool:
        return isinstance(value, dict)

    def toml(self, value: Any) -> Any:
        table: dict[str, Any] = {}
        for item in value or []:
            name, _, text = item.partition("=")
            *outer, inner = name.split(".", self.depth - 1)
            target = table
            for part in outer:
                target = target.setdefault(part, {})
            target[inner] = text
        return table


@dataclass(frozen=True)
class Key:
    """One key of a study file: its table (``study``, ``run`` or ``execution``, see :data:`SCOPES`), the
    values it takes, what it means, and the `bench run` option that sets it (whose default and conversion it
    has); a key without an option has ``default``. ``none`` says what an unset value means."""

    name: str
    scope: str
    kind: Kind
    help: str
    flag: str | None = None
    default: Any = None
    none: str = "none"
    shown_default: str | None = None  # the docs' default where the option's is machine-specific

    @property
    def matrix(self) -> bool:
        """Run keys take a list of values, one run each (the study's matrix)."""
        return self.scope == "run"


RECIPE = "the recipe's"
KEYS: tuple[Key, ...] = (
    Key("name", "study", Text(), "the study's name: its records name it, its resolved copy is "
        "`<out>/<name>-<digest>.study.toml`", none="the file's name without `.toml`"),
    Key("title", "study", Text(), "one line saying what it is (`bench reproduce`'s table titles)", none="the name"),
    Key("reference", "study", Text(), "the bundled reference table `bench reproduce` sets the measured numbers "
        "beside (table2 ... table5, smoke, crd, dcff)", none="none: `bench reproduce` refuses the study"),
    Key("metric", "study", Text(METRIC_CHOICES), "`bench reproduce`'s top-1 protocol: the last, best or `select`ed "
        "epoch (`--metric` overrides it)", default="last"),
    Key("protocol_note", "study", Text(), "why that protocol, for the caption", default=""),

    Key("dataset", "run", Text(), "dataset: cifar10, cifar100, cifar10-mini, imagefolder:PATH (a path here "
        "is relative to the working directory)", "--dataset"),
    Key("arch", "run", Text(), "the architecture trained", "--arch", none="required"),
    Key("methods", "run", Items(Text(), "method names", nonempty=True), "the methods trained on it; a list "
        "of such lists is one run per method set", "--methods", none="required"),
    Key("teacher", "run", Text(), "the teacher architecture of distillation methods", "--teacher",
        none="the architecture's default teacher, where a method needs one"),
    Key("teacher_checkpoint", "run", PathText(sources=True), "a trained teacher: a bundle (`bench artifacts "
        "export`), record, artifact or state dict; or a bundle's URL (`https://...#sha256=HEX`) or `hf-hub:ORG/NAME`",
        "--teacher-checkpoint"),
    Key("seeds", "run", Items(Integer(), "distinct integers", nonempty=True), "the seeds: one run of every "
        "method per seed", "--seeds"),
    Key("recipe", "run", Text(), "the named recipe: crd, attention, encodenet, smoke (`bench list recipes`)",
        "--recipe"),
    Key("epochs", "run", Integer(1), "epochs (multistep milestones are scaled to match)", "--epochs", none=RECIPE),
    Key("batch_size", "run", Integer(2), "batch size", "--batch-size", none=RECIPE),
    Key("lr", "run", Number(0, low_open=True), "learning rate", "--lr", none=RECIPE),
    Key("weight_decay", "run", Number(0), "weight decay", "--weight-decay", none=RECIPE),
    Key("momentum", "run", Number(0), "SGD momentum", "--momentum", none=RECIPE),
    Key("schedule", "run", Text(("multistep", "cosine", "constant")), "learning-rate schedule", "--schedule",
        none=RECIPE),
    Key("milestones", "run", Items(Integer(1), "epochs"), "epochs of the multistep schedule", "--milestones",
        none=RECIPE),
    Key("gamma", "run", Number(0, low_open=True), "multistep decay factor", "--gamma", none=RECIPE),
    Key("val_split", "run", Number(0, high=1), "fraction of the training data held out for validation",
        "--val-split"),
    Key("train_subset", "run", Integer(1), "train on a class-balanced subset of this many images",
        "--train-subset", none="every training image"),
    Key("test_subset", "run", Integer(1), "evaluate on a class-balanced subset of this many test images",
        "--test-subset", none="every test image"),
    Key("select", "run", Text(("last", "val", "test")), "the weights deployed: last epoch, best validation or "
        "best test epoch", "--select"),
    Key("eval_noise", "run", Items(Number(0), "numbers >= 0", distortion="level"), "also measure top-1 "
        "under Gaussian noise of these sigmas (pixel units 0-1)", "--eval-noise"),
    Key("eval_distort", "run", Items(Text(), "KIND:LEVEL strings", distortion="name"), "the same for any "
        "distortion: noise:SIGMA, blur:SIGMA", "--eval-distort"),
    Key("options", "run", Settings(depth=2), "method options, a table per method: `[runs.options]` "
        "`kd.temperature = 2` (a list value: one run each)", "--opt", none="each method's defaults "
        "(`bench list methods`)"),
    Key("amp", "run", Boolean(), "bf16 autocast", "--amp", none="on CUDA"),
    Key("compile", "run", Text(), "torch.compile the training step and evaluation, in this mode: default, "
        "reduce-overhead, max-autotune, max-autotune-no-cudagraphs", "--compile", none="off (eager)"),
    Key("channels_last", "run", Boolean(), "channels_last memory format", "--channels-last", none="on"),
    Key("latency", "run", Boolean(), "measure inference latency", "--no-latency"),
    Key("latency_batch", "run", Integer(1), "the large batch of the latency measurement", "--latency-batch",
        none="CPU 64, CUDA 512"),

    Key("out", "execution", PathText(), "folder of the records and the resolved study", "--out"),
    Key("cache_dir", "execution", PathText(), "decoded datasets, trained artifacts, checkpoints", "--cache-dir",
        shown_default="`$BENCH_CACHE_DIR`, else `~/.cache/encodenet-bench`"),
    Key("data_dir", "execution", PathText(), "folder holding an existing copy of the dataset", "--data-dir"),
    Key("download", "execution", Boolean(), "try to download missing data", "--no-download"),
    Key("device", "execution", Text(), "cpu, cuda or auto", "--device"),
    Key("threads", "execution", Integer(1), "CPU threads for torch", "--threads", none="torch's"),
    Key("numerics", "execution", Text(tuple(PROFILES)), "the numerics profile: native (what the CPU offers) or "
        "portable (AVX2 pins, the same bits on any x86-64 CPU)", "--numerics", none="native"),
    Key("resume", "execution", Boolean(), "continue interrupted stages from their checkpoints and reuse "
        "finished records", "--resume"),
    Key("retrain", "execution", Boolean(), "train every stage again instead of reusing artifacts", "--retrain"),
    Key("order", "execution", Text(("runs", "seeds")), "`runs`: each run with all its seeds, in the file's "
        "order; `seeds`: seed by seed (every run's first seed, then the next), so an interrupted study has "
        "whole seeds", default="runs"),
    Key("executor", "execution", Text(), "where stage jobs run: local, ray, slurm", "--executor"),
    Key("workers", "execution", Integer(1), "local: worker processes; ray, slurm: jobs in flight at most",
        "--workers", none="1: train in this process"),
    Key("per_gpu", "execution", Integer(1), "stage jobs at a time on each visible GPU", "--per-gpu"),
    Key("retries", "execution", Integer(0), "run a failed stage job again this many times", "--retries"),
    Key("ray_address", "execution", Text(), "an existing Ray cluster", "--ray-address",
        none="start a local one"),
    Key("slurm", "execution", Settings(), "submitit parameters: `[execution.slurm]` `slurm_partition = "
        "\"gpu\"`", "--slurm-opt"),
    Key("slurm_local", "execution", Boolean(), "run the slurm executor's jobs through submitit's local mode",
        "--slurm-local"),
    Key("log", "execution", Items(Text(), "logger names"), "loggers that receive every epoch's row and the "
        "record besides the always-written jsonl: tensorboard, mlflow, wandb, trackio (docs/loggers.md)", "--log", default=[]),
)
BY_NAME = {key.name: key for key in KEYS}


def keys_of(table: str) -> dict[str, Key]:
    """The keys a table of a study file holds (``defaults`` and ``runs``: the run keys)."""
    return {k.name: k for k in KEYS if k.scope == SCOPES[table]}


def markdown(defaults: dict[str, Any]) -> str:
    """The key reference of ``docs/studies.md``: one table per study-file table. ``defaults``: each key's
    default as TOML (:func:`harness.cli.study.load.defaults`)."""
    lines: list[str] = []
    for table, about in TABLES.items():
        if table == "defaults":
            continue
        heading = "[[runs]] and [defaults]" if table == "runs" else f"[{table}]"
        lines += [f"#### `{heading}`", "", about[0].upper() + about[1:] + ".", "",
                  "| key | type | default | option | meaning |", "|---|---|---|---|---|"]
        for key in keys_of(table).values():
            value = defaults.get(key.name)
            shown = key.shown_default or (f"`{show(value)}`" if value not in (None, {}) else key.none)
            lines.append(f"| `{key.name}` | {key.kind.what} | {shown} | {f'`{key.flag}`' if key.flag else '-'} "
                         f"| {key.help} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
