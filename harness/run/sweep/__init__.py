"""Sweeps: a run (or a table's runs) as a graph of stage jobs, trained by an executor plugin."""
