"""The built-in logger plugins, declared by reference (``harness.api.declared_plugin``): a logger's module (and
its optional library) is imported when ``--log`` names it."""

from __future__ import annotations

from harness.api import declared_plugin

jsonl = declared_plugin(
    "loggers",
    [
        ("jsonl", "plugins.loggers.jsonl:JsonLines", "one JSON line per epoch per stage in <out>/logs/ (always on)"),
    ],
)
tensorboard = declared_plugin(
    "loggers",
    [
        (
            "tensorboard",
            "plugins.loggers.tensorboard_events:TensorBoard",
            "TensorBoard event files in <out>/tensorboard/; needs the tensorboard extra",
        ),
    ],
)
mlflow = declared_plugin(
    "loggers",
    [
        (
            "mlflow",
            "plugins.loggers.mlflow_tracking:MLflow",
            "an MLflow run per method and seed in MLflow's default local store; needs the mlflow extra",
        ),
    ],
)
wandb = declared_plugin(
    "loggers",
    [
        (
            "wandb",
            "plugins.loggers.wandb_offline:Wandb",
            "a W&B run per method and seed, offline in <out>/wandb/; needs the wandb extra",
        ),
    ],
)
trackio = declared_plugin(
    "loggers",
    [
        (
            "trackio",
            "plugins.loggers.trackio_local:Trackio",
            "a trackio run per method and seed in trackio's local store; needs trackio (see the docs: Loggers)",
        ),
    ],
)
