"""Teachers anyone can share: bench artifacts export/import/list/prune, and --teacher-checkpoint sources (a
bundle, a file:// or http(s):// URL with its sha256, a Hugging Face Hub repository), each digest-checked."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
import torch

from conftest import REPO, run_tiny, tiny_request
from harness.cli import main
from harness.core.errors import UsageError
from harness.core.identity import weights_digest
from harness.core.progress import Reporter
from harness.plugins.manager import load_plugins
from harness.run.prepare import prepare
from harness.train import bundles, inventory, sources
from harness.train.artifacts import ArtifactStore

TEACHER = "baseline[resnet14]"


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, list[str]]:
    """Run the CLI; (exit code, stdout, stderr lines other than third-party plugin warnings)."""
    code = main(list(args))
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.strip() and not line.startswith("bench: warning: plugin")]
    return code, captured.out, err


def clean_cache(cache_dir: Path, path: Path) -> Path:
    """A cache with no artifacts (the decoded datasets of the session's cache, so nothing is decoded again)."""
    path.mkdir(parents=True)
    (path / "datasets").symlink_to(cache_dir / "datasets", target_is_directory=True)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict:
    """A KD run whose teacher (resnet14) is trained in it, and that teacher exported as a bundle."""
    root = tmp_path_factory.mktemp("teachers")
    (record_path,) = run_tiny(cache_dir, root / "out", methods=["kd"], teacher="resnet14", retrain=True).paths
    record = json.loads(record_path.read_text())
    bundle = root / "teacher.zip"
    assert (
        main(
            [
                "artifacts",
                "export",
                str(record_path),
                "--stage",
                TEACHER,
                "-o",
                str(bundle),
                "--cache-dir",
                str(cache_dir),
            ]
        )
        == 0
    )
    return {"root": root, "record_path": record_path, "record": record, "bundle": bundle}


def test_a_bundle_holds_safetensors_weights_the_identity_the_record_and_their_sha256(
    trained: dict, cache_dir: Path
) -> None:
    from safetensors.torch import load as load_safetensors

    teacher = trained["record"]["stages"][TEACHER]
    with zipfile.ZipFile(trained["bundle"]) as archive:
        assert sorted(archive.namelist()) == ["bench-bundle.json", "weights.safetensors"]
        manifest = json.loads(archive.read("bench-bundle.json"))
        weights = archive.read("weights.safetensors")
    assert manifest["weights"]["sha256"] == hashlib.sha256(weights).hexdigest()
    stored = ArtifactStore(cache_dir / "artifacts")
    assert manifest["key"] == teacher["artifact"] and manifest["stage"] == "baseline" and manifest["arch"] == "resnet14"
    assert manifest["identity"] == stored.meta("baseline", teacher["artifact"])["identity"]
    assert manifest["digest"] == teacher["digest"] == trained["record"]["teacher"]["weights_digest"]
    assert manifest["record"]["run_key"] == trained["record"]["run_key"]
    state = stored.load("baseline", teacher["artifact"])["objective"]
    loaded = load_safetensors(weights)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)


def test_an_exported_teacher_imported_on_a_clean_cache_is_reused_without_training(
    capsys, trained: dict, cache_dir: Path, tmp_path: Path
) -> None:
    clean = clean_cache(cache_dir, tmp_path / "clean")
    code, out, err = cli(capsys, "artifacts", "import", str(trained["bundle"]), "--cache-dir", str(clean))
    assert code == 0 and not err, err
    manifest = bundles.read_bundle(trained["bundle"]).manifest
    assert f"imported baseline/{manifest['key']}" in out and manifest["weights"]["sha256"] in out
    assert ArtifactStore(clean / "artifacts").meta("baseline", manifest["key"])["digest"] == manifest["digest"]

    (path,) = run_tiny(clean, tmp_path / "out", methods=["kd"], teacher="resnet14").paths
    record = json.loads(path.read_text())
    assert record["stages"][TEACHER]["origin"] == "cache"  # loaded, not trained
    assert record["stages"]["train"]["origin"] == "trained"
    teacher = record["teacher"]
    assert teacher["trained_in_this_run"] is False and teacher["weights_digest"] == manifest["digest"]
    assert teacher["source"]["kind"] == "imported" and teacher["source"]["sha256"] == manifest["weights"]["sha256"]
    assert teacher["source"]["source"] == str(trained["bundle"].resolve())
    assert record["run_key"] == trained["record"]["run_key"]  # the very run of the machine that trained the teacher

    code, out, err = cli(capsys, "artifacts", "import", str(trained["bundle"]), "--cache-dir", str(clean))
    assert code == 0 and "already in the cache (same weights)" in out


def altered(bundle: Path, out: Path, *, keep_crc: bool) -> Path:
    """``bundle`` with one byte of its weights changed: in place in the archive (its CRC no longer matches), or
    rebuilt into a consistent archive that still carries the original manifest (only the sha256 tells)."""
    with zipfile.ZipFile(bundle) as archive:
        manifest, weights = archive.read("bench-bundle.json"), bytearray(archive.read("weights.safetensors"))
        info = archive.getinfo("weights.safetensors")
    if keep_crc:
        weights[-1] ^= 0x01
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("bench-bundle.json", manifest)
            archive.writestr("weights.safetensors", bytes(weights))
        return out
    data = bytearray(bundle.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)  # the stored member's bytes
    data[start + info.file_size - 1] ^= 0x01
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("keep_crc", [True, False], ids=["consistent-archive", "raw-byte"])
def test_a_bundle_whose_weights_changed_by_one_byte_is_refused(
    capsys, trained: dict, cache_dir: Path, tmp_path: Path, keep_crc: bool
) -> None:
    bad = altered(trained["bundle"], tmp_path / "bad.zip", keep_crc=keep_crc)
    clean = clean_cache(cache_dir, tmp_path / "clean")
    code, _, err = cli(capsys, "artifacts", "import", str(bad), "--cache-dir", str(clean))
    assert code == 2 and len(err) == 1 and err[0].startswith(f"bench: error: {bad}: ")
    assert ("its weights' sha256 is" in err[0]) if keep_crc else ("damaged or altered bundle" in err[0])
    assert err[0].endswith("refused")
    assert not list((clean / "artifacts").glob("*/*.pt"))  # nothing entered the cache
    with pytest.raises(UsageError, match="refused"):  # nor is it ever a teacher
        prepare(
            tiny_request(clean, tmp_path / "out", methods=["kd"], teacher_checkpoint=str(bad)),
            load_plugins(warn=False),
            Reporter(),
        )


def test_teacher_checkpoint_takes_a_bundle_or_a_file_url_with_its_sha256(
    trained: dict, cache_dir: Path, tmp_path: Path
) -> None:
    digest = bundles.sha256_file(trained["bundle"])
    url = f"{trained['bundle'].resolve().as_uri()}#sha256={digest}"
    clean = clean_cache(cache_dir, tmp_path / "clean")
    (path,) = [
        p for p in run_tiny(clean, tmp_path / "out", methods=["kd"], teacher_checkpoint=url).paths if "__kd__" in p.name
    ]
    teacher = json.loads(path.read_text())["teacher"]
    manifest = bundles.read_bundle(trained["bundle"]).manifest
    assert teacher["checkpoint"] == url and teacher["stage"] == "checkpoint" and teacher["arch"] == "resnet14"
    assert teacher["weights_digest"] == manifest["digest"]  # the very weights, loaded from the bundle
    assert teacher["source"] == {
        "kind": "url",
        "source": url,
        "sha256": manifest["weights"]["sha256"],
        "artifact": f"baseline/{manifest['key']}",
        "file_sha256": digest,
    }
    record = json.loads(path.read_text())
    assert manifest["key"] in inventory.used_keys(record, ArtifactStore(clean / "artifacts"))  # prune keeps it

    wrong = f"{trained['bundle'].resolve().as_uri()}#sha256={'0' * 64}"
    with pytest.raises(UsageError, match="the file's sha256 is .* not the one the source names; refused"):
        prepare(
            tiny_request(clean, tmp_path / "out", methods=["kd"], teacher_checkpoint=wrong),
            load_plugins(warn=False),
            Reporter(),
        )
    with pytest.raises(UsageError, match=r"#sha256=<64 hex digits>"):
        sources.parse_source(trained["bundle"].resolve().as_uri())


def test_a_remote_source_offline_is_one_line_naming_it_and_the_offline_alternative(tmp_path: Path, monkeypatch) -> None:
    url = f"https://127.0.0.1:9/teacher.zip#sha256={'a' * 64}"  # nothing listens on port 9
    with pytest.raises(UsageError) as info:
        sources.fetch(sources.parse_source(url), tmp_path)
    text = str(info.value)
    assert text.startswith(f"--teacher-checkpoint {url}: cannot download it") and "\n" not in text
    assert "offline, copy the bundle here from a connected machine and pass its path" in text
    monkeypatch.setenv("BENCH_OFFLINE", "1")
    with pytest.raises(UsageError, match="not downloaded \\(BENCH_OFFLINE is set\\); offline, copy the bundle"):
        sources.fetch(sources.parse_source(url), tmp_path)


def test_an_https_style_download_is_verified_and_kept_for_offline_use(
    trained: dict, tmp_path: Path, monkeypatch
) -> None:
    folder = trained["bundle"].parent
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(folder))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    digest = bundles.sha256_file(trained["bundle"])
    url = f"http://127.0.0.1:{server.server_address[1]}/{trained['bundle'].name}#sha256={digest}"
    try:
        path = sources.fetch(sources.parse_source(url), tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert path == tmp_path / "downloads" / digest / "teacher.zip" and bundles.sha256_file(path) == digest
    monkeypatch.setenv("BENCH_OFFLINE", "1")  # the server is gone and we are offline: the download is found again
    assert sources.fetch(sources.parse_source(url), tmp_path) == path


def test_hf_hub_source_through_huggingface_hub_offline(trained: dict, tmp_path: Path) -> None:
    pytest.importorskip("huggingface_hub", reason="the hub extra (huggingface_hub) is not installed")
    home = tmp_path / "hf"
    snapshot = home / "hub" / "models--acme--resnet14-teacher" / "snapshots" / ("c" * 40)
    snapshot.mkdir(parents=True)
    shutil.copy(trained["bundle"], snapshot / "bench-bundle.zip")  # what a download of the repository leaves
    (home / "hub" / "models--acme--resnet14-teacher" / "refs").mkdir()
    (home / "hub" / "models--acme--resnet14-teacher" / "refs" / "main").write_text("c" * 40)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}

    def bench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "harness", *args, "--cache-dir", str(tmp_path / "cache")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    done = bench("artifacts", "import", "hf-hub:acme/resnet14-teacher")
    assert done.returncode == 0, done.stderr
    assert bundles.read_bundle(trained["bundle"]).sha256 in done.stdout
    missing = bench("artifacts", "import", "hf-hub:acme/no-such-teacher")
    err = [line for line in missing.stderr.splitlines() if not line.startswith("bench: warning: plugin")]
    assert missing.returncode == 2 and len(err) == 1, missing.stderr
    assert (
        err[0].startswith(
            "bench: error: bench artifacts import hf-hub:acme/no-such-teacher: not in the Hugging Face cache"
        )
        and "offline, copy the bundle here" in err[0]
    )


def test_list_shows_the_cache_and_prune_removes_only_what_no_record_uses(
    capsys, trained: dict, cache_dir: Path, tmp_path: Path
) -> None:
    clean = clean_cache(cache_dir, tmp_path / "clean")
    assert main(["artifacts", "import", str(trained["bundle"]), "--cache-dir", str(clean)]) == 0
    # uses the teacher + its student
    kept = run_tiny(clean, tmp_path / "kept", methods=["kd"], teacher="resnet14").paths
    run_tiny(clean, tmp_path / "other", methods=["se"])  # an artifact that no kept record uses
    capsys.readouterr()
    code, out, _ = cli(
        capsys, "artifacts", "list", "--cache-dir", str(clean), "--records", str(tmp_path / "kept"), "--format", "json"
    )
    listed = {i["ref"]: i for i in json.loads(out)}
    teacher = trained["record"]["stages"][TEACHER]
    entry = listed[f"baseline/{teacher['artifact']}"]
    assert entry["arch"] == "resnet14" and entry["dataset"] == "cifar10-mini" and entry["imported"]
    assert entry["test_acc"] == trained["record"]["teacher"]["test_acc"] and entry["used_by"] == [str(kept[0])]
    assert entry["bytes"] == (clean / "artifacts" / "baseline" / f"{teacher['artifact']}.pt").stat().st_size
    unused = [ref for ref, i in listed.items() if not i["used_by"]]
    assert len(listed) == 3 and len(unused) == 1 and unused[0].startswith("train/")  # the se student

    code, out, _ = cli(
        capsys, "artifacts", "prune", "--cache-dir", str(clean), "--keep-records", str(tmp_path / "kept")
    )
    assert code == 0 and f"would remove {unused[0]}" in out and "Nothing was deleted: add --yes" in out
    assert (clean / "artifacts" / f"{unused[0]}.pt").exists()  # a dry run by default
    code, out, _ = cli(
        capsys, "artifacts", "prune", "--cache-dir", str(clean), "--keep-records", str(tmp_path / "kept"), "--yes"
    )
    assert code == 0 and f"removed {unused[0]}" in out
    assert not (clean / "artifacts" / f"{unused[0]}.pt").exists()
    assert all((clean / "artifacts" / f"{ref}.pt").exists() for ref in listed if ref != unused[0])
    code, _, err = cli(capsys, "artifacts", "prune", "--cache-dir", str(clean))
    assert code == 2 and "--keep-records" in err[0]  # never a prune without saying which records to keep


def test_export_finds_artifacts_by_key_and_refuses_what_a_bundle_cannot_carry(
    capsys, trained: dict, cache_dir: Path, tmp_path: Path
) -> None:
    key = trained["record"]["stages"][TEACHER]["artifact"]
    store = ArtifactStore(cache_dir / "artifacts")
    assert inventory.find(store, f"baseline/{key}") == inventory.find(store, key[:8]) == ("baseline", key)
    assert inventory.find(store, str(store.path("baseline", key))) == ("baseline", key)
    code, _, err = cli(
        capsys,
        "artifacts",
        "export",
        str(trained["bundle"]),
        "-o",
        str(trained["bundle"]),
        "--cache-dir",
        str(cache_dir),
    )
    assert code == 2 and "the file exists" in err[0]

    odd = ArtifactStore(tmp_path / "artifacts")
    identity = {"stage": "odd"}
    from harness.core.identity import config_key

    state = {"model.w": torch.ones(2)}
    odd.save(
        "odd",
        config_key(identity),
        {"objective": state, "history": [], "seconds": 0.0, "info": {}, "outputs": {"groups": {1, 2}}},
        {"label": "odd", "arch": None, "digest": weights_digest(state), "identity": identity},
    )
    with pytest.raises(UsageError, match="Python objects a bundle cannot carry safely"):
        bundles.export_stage(odd, "odd", config_key(identity), tmp_path / "odd.zip")
