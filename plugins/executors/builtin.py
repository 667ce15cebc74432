"""The built-in executor plugins, declared by reference (``harness.api.declared_plugin``): an executor's module
(and its optional dependency) is imported when it is used."""

from __future__ import annotations

from harness.api import declared_plugin

local = declared_plugin(
    "executors",
    [
        ("local", "plugins.executors.local:LocalPool", "worker processes on this machine: --workers N, or --per-gpu K"),
    ],
)
ray = declared_plugin(
    "executors",
    [
        (
            "ray",
            "plugins.executors.ray_cluster:RayCluster",
            "Ray tasks on --ray-address (default: a local cluster); needs the ray extra",
        ),
    ],
)
slurm = declared_plugin(
    "executors",
    [
        (
            "slurm",
            "plugins.executors.slurm:SlurmJobs",
            "Slurm jobs through submitit (--slurm-local: its local mode); needs the slurm extra",
        ),
    ],
)
