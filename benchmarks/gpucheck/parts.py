"""Parts a-e of the check (part f, the CIFAR-10 training, is in ``cifar``): each fills its PartResult."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gpucheck import probes
from gpucheck.check import Check, PartResult
from gpucheck.plan import OPTIONS_FOR


def part_environment(check: Check, part: PartResult) -> None:
    """a. torch, CUDA, cuDNN, the GPU, the host; and the built-in methods part b will run."""
    o = check.run(part, "environment", probes.environment, {"device": check.device})
    part.status, part.error = o.status, o.error
    part.info.update(o.value or {})
    listed = check.run(part, "methods list", probes.builtin_methods, {})
    check.methods = listed.value or []
    part.info["built-in methods"] = len(check.methods)
    if listed.status != "ok":
        part.status, part.error = "failed", part.error or listed.error


def records_of(out: Path) -> dict[str, dict[str, Any]]:
    """The records a ``bench run`` wrote under ``out`` (failed runs' under ``out/failed``), by method."""
    found = sorted(out.glob("*.json")) + sorted(out.glob("failed/*.json"))
    records = (json.loads(path.read_text()) for path in found)
    return {r["method"]["name"]: r for r in records if isinstance(r.get("method"), dict)}


def record_row(record: dict[str, Any] | None) -> dict[str, Any]:
    """What the summary shows of a record: its status, top-1, wall time, and each stage's origin and speed."""
    if record is None:
        return {"record": "none written"}
    stages = {}
    for name, stage in (record.get("stages") or {}).items():
        curves = stage.get("curves") or []
        stages[name] = {
            "origin": stage.get("origin"),
            "digest": stage.get("digest"),
            "seconds": stage.get("seconds"),
            "epochs": stage.get("epochs"),
            "images_per_s": curves[-1].get("images_per_s") if curves else None,
        }
    metrics = record.get("metrics") or {}
    return {
        "record": record.get("status"),
        "top1": metrics.get("top1_last"),
        "wall_s": record.get("wall_seconds"),
        "stages": stages,
        "record_error": record.get("error"),
    }


def part_methods(check: Check, part: PartResult) -> None:
    """b. Every built-in method through ``bench run`` at a tiny budget, one run each (its exit status and
    wall time), ``jobs`` at a time on one artifact store (stages the methods share are trained once)."""
    s = check.scale
    if not check.methods:
        part.status, part.error = "failed", "the built-in methods could not be listed (part a)"
        return
    threads = max(1, len(os.sched_getaffinity(0)) // s.jobs)
    calls, plans = [], []
    for m in check.methods:
        arch = s.arch_for.get(m["name"], s.arch)
        teacher = ["--teacher", s.teacher] if m["uses_teacher"] else []
        options = [arg for opt in OPTIONS_FOR.get(m["name"], ()) for arg in ("--opt", opt)]
        out = check.work / "methods" / m["name"]
        argv = check.bench_argv(
            "--methods",
            m["name"],
            "--arch",
            arch,
            *teacher,
            *options,
            "--dataset",
            "cifar10-mini",
            "--recipe",
            "smoke",
            "--epochs",
            "1",
            "--train-subset",
            str(s.train_subset),
            "--test-subset",
            str(s.test_subset),
            "--threads",
            str(threads),
            out=out,
            latency=s.latency,
        )
        calls.append((m["name"], probes.bench, {"argv": argv}))
        plans.append((m, arch, out, " ".join(options[1::2]) or None))
    part.note = (
        f"bench run, 1 epoch (smoke recipe) of {s.train_subset} cifar10-mini images, test {s.test_subset}, "
        f"arch {s.arch} (else as shown), teacher {s.teacher}, {s.jobs} run(s) at a time, each at most "
        f"{s.method_timeout_s:.0f} s, on one artifact store" + ("" if s.latency else "; --no-latency")
    )
    outcomes = check.runner.run_many(
        calls, s.method_timeout_s, min(part.deadline, check.deadline), s.jobs, check.report(part.name)
    )
    for (m, arch, out, options), o in zip(plans, outcomes):
        row = {
            "method": m["name"],
            "arch": arch,
            "teacher": s.teacher if m["uses_teacher"] else None,
            "options": options,
            "status": o.status,
            "exit_code": o.exit_code,
            "seconds": o.seconds,
            "error": o.error,
        }
        record = records_of(out).get(m["name"])
        if record is not None:
            row.update(record_row(record))
            if record.get("status") != "ok":
                row.update(status="failed", error=record.get("error") or o.error)
        part.rows.append(row)


def engine_settings(check: Check) -> list[dict[str, Any]]:
    """Part c's settings, each one change from the previous: fp32 (NCHW), bf16 autocast, + channels_last
    (``bench run``'s default on CUDA), + compile. Without bf16 (a CPU without its instructions) the last two
    stay fp32."""
    bf16 = check.amp or check.cpu_bf16
    prec = "bf16" if bf16 else "fp32"
    return [
        {"setting": "fp32", "amp": False, "channels_last": False, "compile_": False},
        {
            "setting": "bf16 autocast",
            "amp": True,
            "channels_last": False,
            "compile_": False,
            "skip": None if bf16 else "this CPU has no bf16 instructions (bench run refuses --amp here)",
        },
        {"setting": f"{prec} + channels_last", "amp": bf16, "channels_last": True, "compile_": False},
        {
            "setting": f"{prec} + channels_last + compile",
            "amp": bf16,
            "channels_last": True,
            "compile_": True,
            "skip": None if check.args.compile else "compilation left out (--no-compile; the default with --tiny)",
        },
    ]


def part_engine(check: Check, part: PartResult) -> None:
    """c. Engine against the bare loop per (arch, batch, setting), one child each: the eager rows of every
    (arch, batch) first, then the compiled ones, so what runs out of time is the costly."""
    s = check.scale
    part.note = (
        f"{s.engine_images} cifar10-mini images per timed epoch, {s.engine_epochs} epoch(s) per timing, "
        f"median of {s.repeats}, engine and bare loop alternating, after a warm-up epoch each (with "
        f"compile: the compilation, its seconds in the warm-up columns)"
    )
    settings = engine_settings(check)
    for compiled in (False, True):
        for arch in s.engine_archs:
            for batch in s.engine_batches:
                for st in (st for st in settings if st["compile_"] == compiled):
                    row = {"arch": arch, "batch": batch, "setting": st["setting"]}
                    if st.get("skip"):
                        part.rows.append({**row, "status": "skipped", "error": None, "note": st["skip"]})
                        continue
                    kwargs = {
                        "arch": arch,
                        "batch": batch,
                        "amp": st["amp"],
                        "channels_last": st["channels_last"],
                        "compile_": st["compile_"],
                        "images": s.engine_images,
                        "epochs": s.engine_epochs,
                        "repeats": s.repeats,
                        "device": check.device,
                        "cache": str(check.cache),
                    }
                    o = check.run(part, f"{arch} batch {batch} {st['setting']}", probes.engine_setting, kwargs)
                    part.rows.append(
                        {**row, "status": o.status, "seconds": o.seconds, "error": o.error, **(o.value or {})}
                    )


def part_concurrent(check: Check, part: PartResult) -> None:
    """d. Aggregate images/s of K engine processes at once on the device; then ``bench run --per-gpu 2``
    itself (``--workers 2`` on a CPU, where --per-gpu is refused)."""
    s = check.scale
    arch, batch = s.det_arch, 128
    part.note = (
        f"K engine processes at once ({arch}, batch {batch}, {'bf16' if check.amp else 'fp32'}, "
        f"channels_last), {s.k_epochs} epoch(s) of {s.engine_images} images each after a warm-up, timed "
        f"from a common start to the last one's end; then one bench run of 2 seeds with "
        f"{'--per-gpu 2' if check.device == 'cuda' else '--workers 2 (--per-gpu needs a GPU)'}"
    )
    for k in s.ks:
        kwargs = {
            "k": k,
            "arch": arch,
            "batch": batch,
            "amp": check.amp,
            "images": s.engine_images,
            "epochs": s.k_epochs,
            "device": check.device,
            "cache": str(check.cache),
        }
        o = check.run(part, f"K={k}", probes.concurrent_k, kwargs)
        part.rows.append({"K": k, "status": o.status, "seconds": o.seconds, "error": o.error, **(o.value or {})})
    base = next((r.get("aggregate_img_s") for r in part.rows if r["K"] == 1 and r["status"] == "ok"), None)
    for r in part.rows:
        if base and r.get("aggregate_img_s"):
            r["vs_K1"] = round(r["aggregate_img_s"] / base, 2)
    pool = ["--per-gpu", "2"] if check.device == "cuda" else ["--workers", "2"]
    out = check.work / "per-gpu"
    argv = check.bench_argv(
        "--methods",
        "baseline",
        "--arch",
        arch,
        "--dataset",
        "cifar10-mini",
        "--recipe",
        "smoke",
        "--epochs",
        "1",
        "--train-subset",
        str(s.train_subset),
        "--test-subset",
        str(s.test_subset),
        "--seeds",
        "0,1",
        *pool,
        out=out,
    )
    o = check.run(part, f"bench run {' '.join(pool)}", probes.bench, {"argv": argv})
    part.rows.append(
        {
            "K": " ".join(pool),
            "status": o.status,
            "seconds": o.seconds,
            "error": o.error,
            "records": len(list(out.glob("*.json"))),
        }
    )


def learning_curve(record: dict[str, Any]) -> str:
    """A record's per-epoch losses and accuracies, without its timings (which never repeat)."""
    rows = [
        {k: v for k, v in row.items() if "seconds" not in k and "per_s" not in k} for row in record.get("curves") or []
    ]
    return json.dumps(rows, sort_keys=True)


def part_determinism(check: Check, part: PartResult) -> None:
    """e. The same stage trained twice (separate artifact stores), with the default settings and with
    torch's deterministic ones: equal weight digests or not."""
    s = check.scale
    part.note = (
        f"the baseline stage of {s.det_arch}, 1 epoch of {s.det_subset} cifar10-mini images, trained twice "
        f"(separate artifact stores) per settings; 'deterministic', set before bench run (it has no such "
        f"option): cuDNN deterministic and not benchmarking, CUBLAS_WORKSPACE_CONFIG="
        f"{probes.CUBLAS_WORKSPACE}, torch.use_deterministic_algorithms(True, warn_only=True) (the ops torch "
        f"has no deterministic implementation of are named); curves_equal compares losses and accuracies"
    )
    for deterministic in (False, True):
        records, errors, statuses, seconds, ops = [], [], [], 0.0, set()
        for i in (1, 2):
            name = f"{'deterministic' if deterministic else 'default'}-{i}"
            cache = check.work / "det" / f"{name}-cache"
            cache.mkdir(parents=True)
            (cache / "datasets").symlink_to((check.cache / "datasets").resolve(), target_is_directory=True)
            argv = check.bench_argv(
                "--methods",
                "baseline",
                "--arch",
                s.det_arch,
                "--dataset",
                "cifar10-mini",
                "--recipe",
                "smoke",
                "--epochs",
                "1",
                "--train-subset",
                str(s.det_subset),
                "--test-subset",
                str(s.test_subset),
                out=check.work / "det" / name,
                cache=cache,
            )
            o = check.run(part, name, probes.bench, {"argv": argv, "deterministic": deterministic})
            seconds += o.seconds
            statuses.append(o.status)
            ops.update((o.value or {}).get("nondeterministic_ops") or [])
            record = records_of(check.work / "det" / name).get("baseline") if o.status == "ok" else None
            if record is None:
                errors.append(o.error or "no record written")
            else:
                records.append(record)
        digests = ["+".join(str(stage.get("digest")) for stage in r["stages"].values()) for r in records]
        row: dict[str, Any] = {
            "settings": "deterministic" if deterministic else "default",
            "seconds": round(seconds, 1),
            "digests": digests,
            "nondeterministic_ops": (", ".join(sorted(ops)) or "none") if deterministic else None,
        }
        if len(records) == 2:
            row.update(
                status="ok",
                weights_equal=digests[0] == digests[1],
                curves_equal=learning_curve(records[0]) == learning_curve(records[1]),
                error=None,
            )
        else:
            missed = {st for st in statuses if st != "ok"}
            row.update(status="timeout" if missed and missed <= {"timeout", "not run"} else "failed", error=errors[0])
        part.rows.append(row)
