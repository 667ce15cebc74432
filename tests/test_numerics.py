"""The numerics profile (``--numerics portable|native``) and the platform every stage carries.

Pinning has to happen before torch's libraries start, so the pinned runs here are ``bench`` subprocesses; the
checks on fingerprints edit records as another machine would have written them.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_tiny

from harness.cli import main
from harness.core import numerics
from harness.results import fingerprint
from harness.results.check import choose_mode

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--arch",
    "resnet8",
    "--dataset",
    "cifar10-mini",
    "--recipe",
    "smoke",
    "--epochs",
    "1",
    "--train-subset",
    "128",
    "--test-subset",
    "64",
    "--seeds",
    "0",
    "--no-latency",
    "--quiet",
]
PINS = tuple(numerics.PROFILES["portable"].pins)
needs_avx2 = pytest.mark.skipif(
    numerics._native_isa() not in ("AVX2", "AVX512"), reason="the portable profile needs AVX2"
)


def bench(*args: str, cache: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``bench ARGS`` in a new process, with none of the profile's pins in its environment unless ``env`` sets them."""
    clean = {k: v for k, v in os.environ.items() if k not in PINS and k != numerics.RESTARTED}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, "BENCH_CACHE_DIR": str(cache), **(env or {})},
        timeout=600,
    )


def records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def test_an_unknown_profile_exits_2_naming_the_choices(tmp_path: Path, capsys) -> None:
    assert main(["run", "--methods", "baseline", *TINY, "--numerics", "fast", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--numerics" in err and "native" in err and "portable" in err
    with pytest.raises(numerics.UsageError, match="choose one of native, portable"):
        numerics.profile("fast")


@needs_avx2
def test_a_portable_run_records_what_each_library_runs_and_a_cache_never_mixes_profiles(tmp_path: Path) -> None:
    """The mixed-cache case: a stage computed natively, met by a pinned run sharing the cache, is trained
    again under the pins (the profile is in the key), never passed off as pinned; and the native stage, met
    again by a native run, keeps the platform it was computed on."""
    cache = tmp_path / "cache"
    native = bench("run", "--methods", "baseline", *TINY, "--out", str(tmp_path / "native"), cache=cache)
    assert native.returncode == 0, native.stderr
    pinned = bench(
        "run", "--methods", "baseline", *TINY, "--numerics", "portable", "--out", str(tmp_path / "pinned"), cache=cache
    )
    assert pinned.returncode == 0, pinned.stderr
    (n,), (p,) = records(tmp_path / "native"), records(tmp_path / "pinned")
    assert p["platform"]["numerics"] == {
        "profile": "portable",
        "aten": "AVX2",
        "onednn": "AVX2",
        "mkl": "AVX2",
        "mkl_cnr": "COMPATIBLE",
    }
    assert p["platform"]["threads"] == 1 and p["engine"]["numerics"]["profile"] == "portable"
    assert n["platform"]["numerics"]["profile"] == "native" and "numerics" not in n["engine"]
    assert p["run_key"] != n["run_key"]
    (stage,) = p["stages"].values()
    assert stage["origin"] == "trained" and stage["platform"] == p["platform"]
    # a partial pin (ATen alone) is recorded as what it is, never as the portable profile
    partial = bench(
        "run",
        "--methods",
        "baseline",
        *TINY,
        "--out",
        str(tmp_path / "partial"),
        "--retrain",
        cache=cache,
        env={"ATEN_CPU_CAPABILITY": "avx2"},
    )
    assert partial.returncode == 0, partial.stderr
    (q,) = records(tmp_path / "partial")
    assert q["platform"]["numerics"]["aten"] == "AVX2" and q["platform"]["numerics"]["profile"] == "native"
    if numerics._native_isa() == "AVX512":
        assert q["platform"]["numerics"]["onednn"] == "AVX512"
        assert fingerprint.differences(fingerprint.of_record(p), fingerprint.of_record(q))


def test_a_reused_stage_keeps_the_platform_that_computed_it(tmp_path: Path, cache_dir: Path) -> None:
    """A native stage another machine put into a shared cache is reported as computed there, not here."""
    cache = tmp_path / "cache"
    first = run_tiny(cache, tmp_path / "a", methods=["baseline"]).records[0]
    ((label, stage),) = first["stages"].items()
    artifact = cache / "artifacts" / stage["stage"] / f"{stage['artifact']}.pt"
    payload = torch.load(artifact, weights_only=False)
    elsewhere = copy.deepcopy(payload["platform"])
    elsewhere["cpu"], elsewhere["numerics"]["aten"] = "Another CPU", "AVX2"
    payload["platform"] = elsewhere
    torch.save(payload, artifact)
    again = run_tiny(cache, tmp_path / "b", methods=["baseline"]).records[0]
    assert again["stages"][label]["origin"] == "cache"
    assert again["platform"] == elsewhere and again["stages"][label]["platform"] == elsewhere
    assert again["device"]["cpu"] == fingerprint.cpu_model()  # where the record was written: this machine


def _record(numbers: dict, cpu: str = "AMD EPYC") -> dict:
    platform = {name: None for name, _, _ in fingerprint.FIELDS if name != "workers"}
    platform.update(
        device="cpu",
        numerics=numbers,
        cpu=cpu,
        threads=1,
        torch="2",
        engine=2,
        amp=False,
        channels_last=True,
        world_size=1,
        torchvision="0",
        timm="1",
        python="3",
    )
    return {
        "engine": {"device": "cpu"},
        "execution": {"workers": 1},
        "platform": platform,
        "stages": {"s": {"platform": platform}},
    }


PORTABLE = {"profile": "portable", "aten": "AVX2", "onednn": "AVX2", "mkl": "AVX2", "mkl_cnr": "COMPATIBLE"}
NATIVE = {"profile": "native", "aten": "AVX512", "onednn": "AVX512", "mkl": "AVX512", "mkl_cnr": "OFF"}


def test_the_cpu_model_counts_only_where_the_libraries_are_not_pinned() -> None:
    amd, intel = (fingerprint.of_record(_record(PORTABLE, cpu)) for cpu in ("AMD EPYC", "Intel Xeon"))
    assert fingerprint.differences(amd, intel) == []
    amd, intel = (fingerprint.of_record(_record(NATIVE, cpu)) for cpu in ("AMD EPYC", "Intel Xeon"))
    assert fingerprint.differences(amd, intel) == ["cpu 'AMD EPYC' vs 'Intel Xeon'"]
    partial = dict(NATIVE, aten="AVX2")  # ATEN_CPU_CAPABILITY alone: never taken for the pinned profile
    (line,) = fingerprint.differences(fingerprint.of_record(_record(PORTABLE)), fingerprint.of_record(_record(partial)))
    assert line.startswith("numerics 'portable (ATen AVX2, oneDNN AVX2") and "native (ATen AVX2, oneDNN AVX512" in line


def test_a_record_whose_stages_differ_in_platform_is_never_exact() -> None:
    stages = [("baseline[resnet8]", _record(PORTABLE)["platform"]), ("train", _record(NATIVE)["platform"])]
    mixed = {"engine": {"device": "cpu"}, "platform": fingerprint.of_stages(stages)}
    assert fingerprint.MIXED in mixed["platform"]
    (line,) = fingerprint.differences(fingerprint.of_record(_record(PORTABLE)), fingerprint.of_record(mixed))
    assert "computed on more than one platform (baseline[resnet8] on cpu portable" in line
    assert fingerprint.of_stages(stages[:1]) == stages[0][1]


class _Ref:
    def __init__(self, platform: dict) -> None:
        self.platform, self.per_seed, self.where = platform, True, "smoke.json:1"


class _Row:
    def __init__(self, recs: list[dict]) -> None:
        self.records = recs


class _Check:
    def __init__(self, ref: _Ref, recs: list[dict]) -> None:
        self.ref, self.row = ref, _Row(recs)


def test_the_mode_line_says_what_it_compared_and_why_it_falls_back() -> None:
    from harness.results.check import Settings

    reference = fingerprint.of_record(_record(PORTABLE, "AMD EPYC"))
    mode, (line,) = choose_mode([_Check(_Ref(reference), [_record(PORTABLE, "Intel Xeon")])], Settings())
    assert mode == "exact"
    assert "both pinned: compared the numerics profile, the torch build and the thread count" in line
    mode, (line,) = choose_mode([_Check(_Ref(reference), [_record(NATIVE)])], Settings())
    assert mode == "statistical"
    assert line.startswith(
        "the reference was computed under numerics 'portable' and the records under 'native' "
        "(rerun with --numerics portable"
    )
    mode, (line,) = choose_mode([_Check(_Ref(reference), [_record(NATIVE), _record(PORTABLE)])], Settings())
    assert mode == "statistical" and line.startswith("the records mix numerics profiles (native, portable)")
