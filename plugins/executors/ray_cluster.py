"""The ``ray`` executor: every stage job a Ray task, on an existing cluster (``--ray-address``) or on a local
one started for the sweep.

A task asks for ``--threads`` CPUs (default 1) and, on CUDA, one GPU, or 1/K of one with ``--per-gpu K``
(Ray sets the task's ``CUDA_VISIBLE_DEVICES``). The driver submits a task once the tasks it needs have
finished (so that a failed task can be retried, resuming from its checkpoint; see
:mod:`harness.run.sweep.schedule`). Every node must have bench installed and see ``--cache-dir`` (and the
working directory, for relative paths) on a shared filesystem; records are built on the driver.

``--ray-address`` is checked before anything is prepared (also by ``--dry-run``): its form (``HOST:PORT``,
``ray://HOST:PORT`` or ``auto``) and, for a host and port, that something answers there (a TCP connection,
at most ``BENCH_RAY_CONNECT_TIMEOUT`` seconds, default 30); connecting to the cluster is bounded by the same
time. An address where nothing answers, or something that is no Ray cluster, is one line (exit 2), never a
connection retried for ever; SIGTERM and Ctrl-C stop the wait.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any

from harness.api import Backend, ExecutorOptions, JobResult, JobSpec, UsageError, import_extra, run_job, wants_cuda

UNBOUNDED = 1 << 20
TIMEOUT_ENV = "BENCH_RAY_CONNECT_TIMEOUT"


def connect_timeout() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "30")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 24 * 3600:
        raise UsageError(f"{TIMEOUT_ENV}={raw!r}: give the seconds to wait for the Ray cluster (a number > 0)")
    return value


def parse_address(address: str) -> tuple[str, int] | None:
    """(host, port) of ``--ray-address`` (None for ``auto``); a UsageError for an address of no known form."""
    if address == "auto":
        return None
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "", address
    host, colon, port = rest.rstrip("/").rpartition(":")
    if scheme not in ("", "ray") or not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(
            f"--ray-address {address}: expected HOST:PORT (the head's GCS address, e.g. 10.0.0.1:6379), "
            f"ray://HOST:PORT (Ray Client, port 10001) or auto"
        )
    return host.strip("[]"), int(port)


def probe(address: str, timeout: float) -> None:
    """Refuse an address where nothing accepts a connection within ``timeout`` seconds."""
    where = parse_address(address)
    if where is None:
        return
    try:
        socket.create_connection(where, timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or ("timed out" if isinstance(exc, TimeoutError) else type(exc).__name__)
        raise UsageError(
            f"--ray-address {address}: no Ray cluster answers at {where[0]}:{where[1]} ({reason}); "
            f"start one there (ray start --head --port {where[1]}) or leave --ray-address out to start "
            f"a local cluster"
        ) from None


def bounded(call: Callable[[], Any], timeout: float, what: str) -> Any:
    """``call()`` in a daemon thread, waited for at most ``timeout`` seconds in short slices (so that SIGTERM
    and Ctrl-C are handled at once); a UsageError naming ``what`` when it does not return in time."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="bench-ray-connect", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while thread.is_alive() and time.monotonic() < deadline:
        thread.join(0.2)
    if thread.is_alive():
        raise UsageError(
            f"{what}: no answer within {timeout:g} s; check the address (raise the wait with {TIMEOUT_ENV}=SECONDS)"
        )
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, UsageError):
            raise exc
        text = str(exc).strip().splitlines()
        raise UsageError(f"{what}: {type(exc).__name__}: {text[0][:200] if text else ''}") from None
    return box.get("value")


class RayCluster(Backend):
    name = "ray"

    def __init__(self, options: ExecutorOptions) -> None:
        ray = import_extra("ray", "ray", "--executor ray", package="Ray")
        self.ray = ray
        self.threads = options.threads or 1
        per_gpu = options.per_gpu or 1
        self.gpus = 1 / per_gpu if wants_cuda(options.device) else 0
        self.started = False
        if not ray.is_initialized():
            if options.ray_address is None:  # a local cluster for this sweep
                cpus = options.workers * self.threads if options.workers else None
                ray.init(num_cpus=cpus, include_dashboard=False, configure_logging=False)
            else:
                bounded(
                    lambda: ray.init(address=options.ray_address, configure_logging=False),
                    connect_timeout(),
                    f"--ray-address {options.ray_address}: connecting to the Ray cluster",
                )
            self.started = True
        self.capacity = options.workers or UNBOUNDED
        self.address = ray.get_runtime_context().gcs_address
        self.task = ray.remote(run_job).options(num_cpus=self.threads, num_gpus=self.gpus, max_retries=0)

    @classmethod
    def check(cls, options: ExecutorOptions) -> None:
        """Ray is installed; ``--ray-address`` has a known form and something answers there."""
        import_extra("ray", "ray", "--executor ray", package="Ray")
        if options.ray_address is not None:
            probe(options.ray_address, min(10.0, connect_timeout()))

    def submit(self, spec: JobSpec) -> Hashable:
        return self.task.remote(replace(spec, threads=self.threads, cwd=spec.cwd or os.getcwd()))

    def wait(self, handles: list[Hashable]) -> list[tuple[Hashable, JobResult | str]]:
        done, _ = self.ray.wait(handles, num_returns=1)
        ended: list[tuple[Hashable, JobResult | str]] = []
        for ref in done:
            try:
                ended.append((ref, self.ray.get(ref)))
            except self.ray.exceptions.RayError as exc:
                cause = getattr(exc, "cause", None) or exc
                text = str(cause).strip().splitlines()
                ended.append((ref, f"{type(cause).__name__}: {text[-1] if text else ''}"))
        return ended

    def describe(self) -> dict:
        return {
            "executor": self.name,
            "cpus_per_task": self.threads,
            "gpus_per_task": self.gpus,
            "cluster": self.address,
        }

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
