"""DDP (torchrun, gloo on CPU): world size 2 trains the network world size 1 trains, up to float rounding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn import functional as F

from harness.models.levels import ArchSpec
from harness.plugins.manager import load_plugins
from harness.cli import main
from harness.train.distributed import World
from test_shared_cache import shared_cache

# one SGD step on one global batch of 64 images: float rounding has not been amplified by training yet
TINY = [
    "--methods",
    "baseline",
    "--arch",
    "resnet8",
    "--dataset",
    "cifar10-mini",
    "--recipe",
    "smoke",
    "--epochs",
    "1",
    "--seeds",
    "0",
    "--train-subset",
    "64",
    "--test-subset",
    "100",
    "--device",
    "cpu",
    "--no-latency",
    "--threads",
    "1",
    "--quiet",
]


def only_record(out: Path) -> dict:
    (path,) = out.glob("*.json")
    return json.loads(path.read_text())


def weights(cache: Path, record: dict) -> dict[str, torch.Tensor]:
    entry = record["stages"]["baseline[resnet8]"]
    return torch.load(cache / "artifacts" / "baseline" / f"{entry['artifact']}.pt", weights_only=False)["objective"]


def test_two_cpu_ranks_under_torchrun_match_one_process(tmp_path: Path, cache_dir: Path) -> None:
    cache = shared_cache(tmp_path, cache_dir)
    assert main(["run", *TINY, "--cache-dir", str(cache), "--out", str(tmp_path / "one")]) == 0
    ranks = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "harness",
            "run",
            *TINY,
            "--cache-dir",
            str(cache),
            "--out",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    one, two = only_record(tmp_path / "one"), only_record(tmp_path / "two")
    assert one["execution"]["executor"] == "in-process"
    assert two["execution"] == {"executor": "torchrun", "world_size": 2, "backend": "gloo"}
    assert one["run_key"] != two["run_key"]  # not the same computation bit for bit: its own artifact
    w1, w2 = weights(cache, one), weights(cache, two)
    assert w1.keys() == w2.keys()
    for name in w1:  # every weight and BatchNorm running statistic (per-rank BatchNorm would be ~1e-4 off)
        assert torch.allclose(w1[name].float(), w2[name].float(), rtol=1e-4, atol=1e-5), name
    (row1,), (row2,) = one["curves"], two["curves"]
    for key in ("train_loss", "test_loss", "lr"):  # the global batch's numbers, reported by rank 0
        assert abs(row1[key] - row2[key]) <= 1e-5 * abs(row1[key]), (key, row1[key], row2[key])


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return load_plugins(warn=False).archs.resolve("resnet8").obj(ArchSpec("resnet8", 10)).double()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(64, 3, 32, 32, generator=g, dtype=torch.float64), torch.randint(0, 10, (64,), generator=g)


def _rank(rank: int, port: int, queue) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    world = World(rank, 2, rank, "gloo")
    model = _model().train()
    images, labels = world.shard(*_batch())
    with world.global_batch_norm(model):
        loss = F.cross_entropy(model(images), labels)
        (loss * (len(labels) / 64)).backward()
    losses, _, n = world.reduce_step(list(model.parameters()), {"ce": loss}, len(labels), None)
    if rank == 0:
        grads = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        stats = torch.cat([b.double().reshape(-1) for b in model.buffers()])
        queue.put((grads.numpy().copy(), stats.numpy().copy(), float(losses["ce"]), n))
    dist.destroy_process_group()


def test_sharded_step_is_exact_in_float64() -> None:
    """The gradient all-reduce and the global-batch BatchNorm are exact: in float64, two ranks' summed
    gradients, BatchNorm statistics and loss equal one process's to 1e-12."""
    model = _model().train()
    images, labels = _batch()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    grads = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    stats = torch.cat([b.double().reshape(-1) for b in model.buffers()])
    context = mp.get_context("spawn")
    queue = context.Queue()
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [context.Process(target=_rank, args=(r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    got_grads, got_stats, got_loss, n = queue.get(timeout=300)
    for p in procs:
        p.join(timeout=60)
    assert n == 64 and abs(got_loss - loss.item()) < 1e-12
    assert torch.allclose(torch.from_numpy(got_grads), grads, rtol=0, atol=1e-12)
    assert torch.allclose(torch.from_numpy(got_stats), stats, rtol=0, atol=1e-12)


def test_a_trailing_batch_some_rank_gets_nothing_of_is_refused_before_training(tmp_path: Path, cache_dir: Path) -> None:
    """66 images in batches of 64: the trailing batch of 2 split over 3 ranks leaves one rank an empty shard,
    whose NaN moments and losses would poison every rank's step (a 'diverged' run after a wasted epoch).
    It is a one-line UsageError before training; 2 ranks (shards of 1) train."""
    import pytest
    from conftest import tiny_request

    from harness.core.errors import UsageError
    from harness.core.progress import Reporter
    from harness.run.torchrun import check_world_batches
    from harness.run.prepare import prepare

    run = prepare(
        tiny_request(shared_cache(tmp_path, cache_dir), tmp_path / "runs", train_subset=66),
        load_plugins(warn=False),
        Reporter(),
    )
    assert run.recipe.batch_size == 64
    check_world_batches(run, 2)
    with pytest.raises(UsageError, match="world size 3"):
        check_world_batches(run, 3)
