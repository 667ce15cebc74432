"""Time to a table: the wall time of a stage graph on N workers at a measured throughput.

A list-scheduling simulation: whenever a worker is free it takes the ready job (its needs finished) with
the most work; a job takes its image-epochs divided by one worker's images/s. Evaluation, data loading and
process start-up are not counted, so the estimate is a lower bound of the same kind as the throughput.
"""

from __future__ import annotations

import heapq

from harness.run.sweep.graph import JobGraph


def wall_seconds(graph: JobGraph, throughput: float, workers: int) -> float:
    """Seconds to train every job of ``graph`` still to train on ``workers`` workers of ``throughput`` img/s."""
    todo = {job.id: job for job in graph.todo()}
    pending = set(todo)  # jobs outside it (cached, or not in the graph) count as done from the start
    finished: set[str] = set()
    running: list[tuple[float, str]] = []  # (end time, job id)
    now, free = 0.0, workers
    while todo or running:
        ready = sorted(
            (j for j in todo.values() if all(n in finished or n not in pending for n in j.needs)),
            key=lambda j: -j.image_epochs,
        )
        for job in ready[:free]:
            heapq.heappush(running, (now + job.image_epochs / throughput, job.id))
            del todo[job.id]
            free -= 1
        if not running:
            break
        now, done = heapq.heappop(running)
        finished.add(done)
        free += 1
    return now


def critical_path(graph: JobGraph) -> int:
    """Image-epochs of the longest chain of jobs (the wall time's floor however many workers)."""
    longest: dict[str, int] = {}
    for job in graph.todo():
        longest[job.id] = job.image_epochs + max((longest.get(n, 0) for n in job.needs), default=0)
    return max(longest.values(), default=0)


def hours(seconds: float) -> str:
    """``45 s``, ``12.5 min``, ``3.2 h``, ``41 days``."""
    if seconds >= 48 * 3600:
        return f"{seconds / 86400:,.0f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"
