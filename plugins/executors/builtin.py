"""Built-in executors: where the stage jobs of a sweep run (``--executor local|ray|slurm``)."""
