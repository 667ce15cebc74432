"""One `bench run` trained by the ranks of torchrun together: data-parallel, rank 0 reports and writes.

The ranks prepare the same run (rank 0 first, so that the dataset is decoded once), refuse alike a run whose
last batch would leave some rank no images, then train every stage together
(:mod:`harness.train.distributed`).
"""

from __future__ import annotations

from dataclasses import replace

from harness.core.errors import UsageError
from harness.core.progress import Reporter
from harness.plugins.manager import PluginSet
from harness.run.execute import RunOutcome, execute
from harness.run.prepare import PreparedRun, prepare
from harness.run.request import RunRequest
from harness.train.distributed import World


def check_world_batches(run: PreparedRun, world_size: int) -> None:
    """Refuse a run whose epochs end in a batch that leaves some rank an empty shard (2 <= trailing batch <
    world size; a trailing batch of one image is dropped): its NaN statistics would poison every rank."""
    assert run.dataset is not None
    images = len(run.dataset.train_labels)
    for entry in run.plan.of_seed(run.plan.seeds[0]):
        for stage in entry.stages():
            batch = (stage.recipe or run.recipe).batch_size
            rest = images % batch
            if stage.trains and 1 < rest < world_size:
                raise UsageError(
                    f"{stage.label}: {images} training images in batches of {batch} end in a batch of "
                    f"{rest}, fewer than world size {world_size}: a rank would train on nothing; "
                    f"change --batch-size or --train-subset, or use fewer ranks"
                )


def run_distributed(
    request: RunRequest, world: World, plugins: PluginSet, reporter: Reporter, *, single: bool
) -> RunOutcome:
    """Prepare and train ``request`` on every rank of ``world``; ``single``: no executor options were given
    (a sweep cannot run under torchrun)."""
    import torch.distributed as dist

    if not single:
        raise UsageError("under torchrun the ranks train one run together: drop --executor/--workers/--per-gpu")
    if world.backend == "nccl":
        request = replace(request, device=f"cuda:{world.local_rank}")
    try:
        if not world.is_main:
            dist.barrier()  # rank 0 prepares first (decodes the dataset once)
        prepared = prepare(request, plugins, reporter)
        if world.is_main:
            dist.barrier()
        check_world_batches(prepared, world.size)  # every rank refuses alike, before training
        return execute(replace(prepared, world=world), reporter)
    finally:
        dist.destroy_process_group()
