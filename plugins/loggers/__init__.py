"""Built-in metrics loggers (``--log NAME``): jsonl (always on), tensorboard, mlflow, wandb, trackio; ``builtin.py``
declares what each registers."""
