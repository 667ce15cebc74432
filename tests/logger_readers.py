"""Readers of what the real logging libraries wrote (for tests/test_loggers.py): each with the library's
own reader where it has one (TensorBoard's event accumulator, MLflow's client), else its documented store
(wandb's offline ``.wandb`` log of protobuf records, trackio's SQLite file)."""

from __future__ import annotations

import json
import sqlite3
import struct
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path


def tensorboard_scalars(logdir: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value} of every scalar in a run folder (``tensorboard.summary.Writer`` writes tensor
    summaries of the scalars plugin: they are read with ``Tensors``)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return {
        tag: {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)}
        for tag in acc.Tags()["tensors"]
    }


def mlflow_runs(tracking_uri: str, experiment: str = "encodenet-bench") -> dict[str, dict]:
    """run name -> {params, tags, status, metrics: {key: {step: value}}} through MLflow's client."""
    from mlflow.tracking import MlflowClient

    out = {}
    with warnings.catch_warnings():  # SQLAlchemy 2.1 deprecates a loader strategy MLflow's store uses
        warnings.simplefilter("ignore", DeprecationWarning)
        client = MlflowClient(tracking_uri)
        exp = client.get_experiment_by_name(experiment)
        for run in client.search_runs([exp.experiment_id]):
            metrics = {
                key: {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}
                for key in run.data.metrics
            }
            out[run.info.run_name] = {
                "params": run.data.params,
                "tags": run.data.tags,
                "status": run.info.status,
                "metrics": metrics,
            }
    return out


_BLOCK = 32 * 1024
_FILE_HEADER = struct.Struct("<4sHB")  # b":W&B", 0xBEE1, version 0
_CHUNK = struct.Struct("<IHB")  # crc32 of (type byte + payload), length, type: 1 full, 2 first, 3 middle, 4 last


def _wandb_payloads(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    ident, magic, version = _FILE_HEADER.unpack_from(data, 0)
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), (ident, magic, version)
    pos, parts = _FILE_HEADER.size, b""
    while pos + _CHUNK.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK.size:  # a block's zero-padded tail
            pos += left
            continue
        crc, length, kind = _CHUNK.unpack_from(data, pos)
        if kind == 0 and length == 0:
            pos += left
            continue
        payload = data[pos + _CHUNK.size : pos + _CHUNK.size + length]
        assert zlib.crc32(payload, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF == crc, f"bad crc at {pos}"
        pos += _CHUNK.size + length
        parts = payload if kind in (1, 2) else parts + payload
        if kind in (1, 4):
            yield parts


def wandb_run(path: Path) -> dict:
    """{name, config, history: [row], summary, exit_code} of an offline run file ``run-<id>.wandb``."""
    from wandb.proto import wandb_internal_pb2 as pb

    def key(item) -> str:
        return "/".join(item.nested_key) if item.nested_key else item.key

    run: dict = {"config": {}, "history": [], "summary": {}, "name": None, "exit_code": None}
    for payload in _wandb_payloads(path):
        record = pb.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run["name"] = record.run.display_name
            run["config"].update({key(i): json.loads(i.value_json) for i in record.run.config.update})
        elif kind == "history":
            run["history"].append({key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            run["summary"].update({key(i): json.loads(i.value_json) for i in record.summary.update})
        elif kind == "exit":
            run["exit_code"] = record.exit.exit_code
    return run


def trackio_logs(store: Path, project: str = "encodenet-bench") -> dict[str, list[dict]]:
    """run name -> its logged rows ({step, **metrics}), from trackio's SQLite store of the project."""
    with sqlite3.connect(store / f"{project}.db") as db:
        rows = db.execute("select run_name, step, metrics from metrics order by run_name, step").fetchall()
    out: dict[str, list[dict]] = {}
    for name, step, metrics in rows:
        out.setdefault(name, []).append({"step": step, **json.loads(metrics)})
    return out
