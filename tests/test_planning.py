"""A dry run resolves its plans once (issue 32): each architecture built once per seed, each stage resolved
once, models costed without arithmetic; the same keys, weights and random state as resolving without it."""

from __future__ import annotations

import copy
import io
from collections import Counter
from pathlib import Path

import pytest
import torch
from rich.console import Console
from torch import nn

from conftest import tiny_request
from harness.core.identity import code_identity
from harness.core.progress import Reporter
from harness.models.cost import _count, count_cost
from harness.models.levels import LevelClassifier
from harness.plugins.manager import PluginSet, load_plugins
from harness.run import reproduce
from harness.run.outputs import logits_problem
from harness.run.planning import ArchBuilds, cached_factory, lazy_copy
from harness.run.prepare import prepare
from harness.train.executor import StageRunner

METHODS = ["encodenet", "kd", "cbam"]  # the headline dry run's methods, on small architectures


def counting(plugins: PluginSet, calls: Counter) -> PluginSet:
    """``plugins`` whose architecture factories count their calls by architecture."""
    resolve = plugins.resolve_arch

    def resolve_counted(name: str):
        factory, arg = resolve(name)

        def build(spec):
            calls[spec.name] += 1
            return factory(spec)

        return build, arg

    plugins.resolve_arch = resolve_counted  # type: ignore[method-assign]  # counting the calls
    return plugins


@pytest.mark.parametrize("on_disk", [True, False], ids=["data-on-disk", "declared-shape"])
def test_a_dry_run_builds_each_architecture_once_per_seed(tmp_path: Path, cache_dir: Path, on_disk: bool) -> None:
    """Validation, the table, the workload estimate and the stage graph walk the same resolutions: resnet8
    (student, baseline) and resnet14 (teacher) are built once per seed, however many stages use them."""
    calls: Counter = Counter()
    plugins = counting(load_plugins(warn=False), calls)
    where = {} if on_disk else {"dataset": "cifar100", "download": False, "train_subset": None, "test_subset": None}
    run = prepare(
        tiny_request(
            cache_dir if on_disk else tmp_path / "cache",
            tmp_path / "out",
            methods=METHODS,
            teacher="resnet14",
            seeds=[0, 1],
            **where,
        ),
        plugins,
        Reporter(),
        need_data=False,
    )
    assert (run.dataset is not None) == on_disk
    out = io.StringIO()
    reproduce.dry_run([(None, run)], Console(file=out, width=200))
    assert "stage graph: 12 stage jobs" in out.getvalue()  # both seeds: baseline, teacher, kd, cbam, ae, head
    assert calls == {"resnet8": 2, "resnet14": 2}
    assert run.planning.builds.built == 4


def test_a_dry_run_makes_no_real_forward_pass_beyond_the_factories(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation's logits check and the workload's FLOPs share one meta-device pass per model structure: the
    only real forward passes of a dry run are those the architectures' factories make while building (the
    level probe, an adapter's check), each architecture built once per seed."""
    calls: Counter = Counter()
    plugins = counting(load_plugins(warn=False), calls)
    building = [0]
    resolve = plugins.resolve_arch

    def resolve_marked(name: str):
        factory, arg = resolve(name)

        def build(spec):
            building[0] += 1
            try:
                return factory(spec)
            finally:
                building[0] -= 1

        return build, arg

    plugins.resolve_arch = resolve_marked  # type: ignore[method-assign]  # marking the factories' passes
    passes: Counter = Counter()
    forward = LevelClassifier.forward

    def counted(self: LevelClassifier, x: torch.Tensor) -> torch.Tensor:
        passes[(x.device.type, "in a factory" if building[0] else "outside")] += 1
        return forward(self, x)

    monkeypatch.setattr(LevelClassifier, "forward", counted)
    run = prepare(
        tiny_request(cache_dir, tmp_path / "out", methods=METHODS, teacher="resnet14"),
        plugins,
        Reporter(),
        need_data=False,
    )
    reproduce.dry_run([(None, run)], Console(file=io.StringIO(), width=200))
    assert calls == {"resnet8": 1, "resnet14": 1}
    assert passes[("cpu", "outside")] == 0, passes
    assert passes[("meta", "outside")] == 3, passes  # resnet8 (baseline, kd's student), resnet14, resnet8 + CBAM


def test_the_logits_check_on_the_meta_device_says_what_a_real_pass_says() -> None:
    """The same answer as one real pass (a right model, a wrong class count, a model returning no tensor),
    and a real pass for a forward that needs values."""
    cpu = torch.device("cpu")
    model = load_plugins(warn=False).resolve_arch("resnet8")[0](tiny_spec())
    real_pass = lambda module, shape: None  # noqa: E731  (no meta pass: the check's real pass)
    for module, classes in ((model, 10), (model, 2), (Pair(), 10)):
        meta = logits_problem(module, (3, 32, 32), classes, cpu)
        assert meta == logits_problem(module, (3, 32, 32), classes, cpu, real_pass)
    assert logits_problem(model, (3, 32, 32), 10, cpu) is None
    assert "returns logits of shape (1, 10) for one 3x32x32 image, not (1, 2)" in str(
        logits_problem(model, (3, 32, 32), 2, cpu)
    )
    assert logits_problem(Pair(), (3, 32, 32), 10, cpu) == "returns a tuple, not a tensor of logits"
    needs_values = ValueBranch()
    assert "returns logits of shape (1, 3, 8, 8)" in str(logits_problem(needs_values, (3, 8, 8), 10, cpu))
    assert needs_values.real_passes == 1  # the meta pass failed; the check ran on the real module


class Pair(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x.flatten(1)[:, :10], x


def test_planned_resolutions_have_the_keys_of_plain_ones(tmp_path: Path, cache_dir: Path) -> None:
    run = prepare(
        tiny_request(cache_dir, tmp_path, methods=METHODS, teacher="resnet14"), load_plugins(warn=False), Reporter()
    )
    plain = StageRunner(run.env(0, Reporter()), run.store, dry=True)
    planned = run.dry_runner(0)
    for entry in run.plan.of_seed(0):
        for stage in entry.stages():
            a, b = planned.resolve(stage, entry.name), plain.resolve(stage, entry.name)
            assert (a.key, a.plan_key, a.cached) == (b.key, b.plan_key, b.cached), stage.label
    assert planned.resolve(entry.plan.deploy, entry.name) is planned.resolve(entry.plan.deploy, entry.name)


def test_a_cached_build_is_what_building_again_gives(tmp_path: Path) -> None:
    """Same weights and the same random state afterwards (the next draw), so training is unchanged."""
    plugins = load_plugins(warn=False)
    factory, _ = plugins.resolve_arch("resnet8")
    spec = tiny_spec()
    builds = ArchBuilds()
    cached = cached_factory(factory, builds)
    torch.manual_seed(3)
    fresh, after_fresh = factory(spec), torch.rand(4)
    for _ in range(2):
        torch.manual_seed(3)
        copy, after_copy = cached(spec), torch.rand(4)
        assert torch.equal(after_copy, after_fresh)
        assert all(torch.equal(a, b) for a, b in zip(copy.state_dict().values(), fresh.state_dict().values()))
    torch.manual_seed(4)  # another random state: another model
    other = cached(spec)
    assert builds.built == 2 and not torch.equal(
        other.state_dict()["stem.0.weight"], fresh.state_dict()["stem.0.weight"]
    )
    assert code_identity(cached) == code_identity(factory)  # stage keys see the architecture's own factory


def test_a_copy_on_write_copy_is_a_deep_copy_until_written() -> None:
    """The cache's copies share their weights' memory with the build until one side writes: each write stays
    on its side, as with ``copy.deepcopy``; tensors that share memory are copied by ``copy.deepcopy``."""
    model = load_plugins(warn=False).resolve_arch("resnet8")[0](tiny_spec())
    next(model.parameters()).requires_grad_(False)
    before = {name: t.clone() for name, t in model.state_dict().items()}
    copied = lazy_copy(model)
    pairs = list(zip(model.state_dict().values(), copied.state_dict().values()))
    assert all(torch.equal(a, b) and a.stride() == b.stride() for a, b in pairs)
    assert [p.requires_grad for p in copied.parameters()] == [p.requires_grad for p in model.parameters()]
    with torch.no_grad():
        for p in copied.parameters():
            p.add_(1)
    assert all(torch.equal(t, before[name]) for name, t in model.state_dict().items())  # the build unchanged
    again = lazy_copy(model)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    assert all(torch.equal(t, before[name]) for name, t in again.state_dict().items())  # the copy unchanged
    tied = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    tied[1].weight = tied[0].weight  # one parameter twice: one copy
    tied[1].register_buffer("view", tied[0].bias.detach()[:2])  # a buffer sharing a parameter's memory
    twin, deep = lazy_copy(tied), copy.deepcopy(tied)
    assert twin[1].weight is twin[0].weight
    assert all(torch.equal(a, b) for a, b in zip(twin.state_dict().values(), deep.state_dict().values()))
    shared = twin[1].view.untyped_storage().data_ptr() == twin[0].bias.untyped_storage().data_ptr()
    assert shared == (deep[1].view.untyped_storage().data_ptr() == deep[0].bias.untyped_storage().data_ptr())


def tiny_spec():
    from harness.models.levels import ArchSpec

    return ArchSpec("resnet8", 10)


def test_costs_are_counted_on_the_meta_device_as_on_the_real_one() -> None:
    """The workload's FLOPs and the records' MACs need no arithmetic: the same counts as a real forward pass,
    the gating operations of attention modules included; a forward that needs values is counted for real."""
    plugins = load_plugins(warn=False)
    model = plugins.resolve_arch("resnet8")[0](tiny_spec())
    gate = nn.Sequential(nn.Conv2d(3, 4, 3), Gate())
    cpu = torch.device("cpu")
    for module in (model, gate):
        assert count_cost(module, (3, 32, 32), cpu) == _count(module, (3, 32, 32), cpu)
    assert count_cost(gate, (3, 32, 32), cpu).macs > count_cost(gate, (3, 32, 32), cpu).flops // 2  # gates counted
    needs_values = ValueBranch()
    assert count_cost(needs_values, (3, 8, 8), cpu) == _count(needs_values, (3, 8, 8), cpu)
    assert needs_values.real_passes == 2  # the meta pass failed; both counts ran on the real module


class Gate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x.mean(dim=(2, 3), keepdim=True))


class ValueBranch(nn.Module):
    """A forward whose branch depends on the values (a meta tensor has none)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.real_passes = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if bool(y.sum() >= 0):
            pass
        if y.device.type != "meta":
            self.real_passes += 1
        return y


#: What a dry run of small architectures needs none of: EncodeNet's clustering and plots (sklearn, kneed,
#: matplotlib), statistics (scipy), timm and torchvision (the distortion protocols, the platform's versions).
NOT_IMPORTED = ("sklearn", "scipy", "matplotlib", "kneed", "timm", "torchvision")
#: What planning EncodeNet needs none of (scikit-learn and kneed cluster, matplotlib draws; kneed imports
#: scipy.signal and matplotlib.pyplot): the headline's methods, whose CBAM is timm's module (timm imports torchvision)
NOT_IMPORTED_BY_ENCODENET = ("sklearn", "scipy", "matplotlib", "kneed")
PROBE = """
import sys
from harness.cli import main
code = main(sys.argv[1:])
print("IMPORTED:", " ".join(m for m in {names!r} if m in sys.modules))
sys.exit(code)
"""


@pytest.mark.parametrize(
    "methods, jobs, not_imported",
    [
        ("baseline,kd,fitnet", 4, NOT_IMPORTED),  # baseline, teacher, kd, fitnet
        ("encodenet,kd,cbam", 6, NOT_IMPORTED_BY_ENCODENET),  # the headline's methods: baseline, autoencoder, head,
    ],
)  # teacher, kd, cbam
def test_a_dry_run_imports_only_what_planning_needs(
    tmp_path: Path, cache_dir: Path, methods: str, jobs: int, not_imported: tuple[str, ...]
) -> None:
    """A regression guard for the dry run's cost (issue 32): the table, the estimate and the stage graph of
    methods and architectures that use none of them import no statistics, plotting, clustering, timm or
    torchvision (each costs seconds on a 2-core machine; a module-level import in a presentation or
    orchestration module, or in EncodeNet's clustering and figures, brings them back). Checked in a fresh
    process, whose modules are its own. (torch._dynamo is not checked: torch's FLOP counter, which costs the
    plan, imports it when it runs.)"""
    import subprocess
    import sys

    args = [
        "run",
        "--methods",
        methods,
        "--arch",
        "resnet8",
        "--teacher",
        "resnet20",
        "--dataset",
        "cifar10-mini",
        "--train-subset",
        "320",
        "--test-subset",
        "100",
        "--dry-run",
        "--cache-dir",
        str(cache_dir),
        "--out",
        str(tmp_path / "out"),
    ]
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(names=not_imported), *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert f"stage graph: {jobs} stage jobs" in " ".join(done.stdout.split())  # it planned every stage
    imported = done.stdout.split("IMPORTED:")[-1].split()
    assert imported == [], f"a dry run imported {imported}"
