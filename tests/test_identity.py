"""Identity: every cached stage or record is reused only when everything that produced it is the same.

Acceptance tests of the stage contract: an edited method source retrains, a changed image retrains, the
harness fingerprints every dataset itself, dry runs need no data, one digest for all weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import REPO, run_tiny
from harness import hookimpl
from harness.core.identity import code_identity, weights_digest
from harness.data.datasets import DatasetRequest, ImageDataset
from harness.plugins.manager import load_plugins

PLUGIN = """
    import torch
    from torch.nn import functional as F
    from harness import hookimpl
    from harness.api import Method, Objective, StepOutput

    class Scaled(Objective):
        def forward(self, images, labels):
            logits = self.model(images)
            return StepOutput(losses={"ce": SCALE * F.cross_entropy(logits, labels)}, logits=logits)

    SCALE = 1.0

    class ScaledCE(Method):
        def objective(self, ctx):
            return Scaled(ctx.build_arch())

    @hookimpl
    def bench_register_methods(register):
        register("scaled-ce", ScaledCE)
"""


def install_plugin(site: Path, source: str) -> None:
    """An installed-looking (editable) distribution with one ``bench`` entry point."""
    (site / "bench_scaled.py").write_text(textwrap.dedent(source))
    info = site / "bench_scaled-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-scaled\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[bench]\nscaled = bench_scaled\n")


def bench(args: list[str], site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=600
    )


def test_edited_third_party_method_retrains_and_records_truthfully(tmp_path: Path, cache_dir: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site, PLUGIN)
    args = [
        "run",
        "--methods",
        "baseline,scaled-ce",
        "--arch",
        "resnet8",
        "--dataset",
        "cifar10-mini",
        "--recipe",
        "smoke",
        "--epochs",
        "1",
        "--train-subset",
        "320",
        "--test-subset",
        "100",
        "--no-latency",
        "--quiet",
        "--device",
        "cpu",
        "--threads",
        "2",
        "--cache-dir",
        str(cache_dir),
    ]
    first = bench([*args, "--out", str(tmp_path / "a")], site)
    assert first.returncode == 0, first.stderr
    install_plugin(site, PLUGIN.replace("SCALE = 1.0", "SCALE = 0.0"))  # the loss edited to 0 * loss
    second = bench([*args, "--out", str(tmp_path / "b")], site)
    assert second.returncode == 0, second.stderr
    assert "scaled-ce/train: reusing" not in second.stderr + second.stdout

    def records(folder: str) -> dict[str, dict]:
        return {
            r["method"]["name"]: r for r in map(lambda p: json.loads(p.read_text()), (tmp_path / folder).glob("*.json"))
        }

    a, b = records("a"), records("b")
    assert b["scaled-ce"]["stages"]["train"]["origin"] == "trained"
    assert b["scaled-ce"]["stages"]["train"]["artifact"] != a["scaled-ce"]["stages"]["train"]["artifact"]
    assert b["scaled-ce"]["run_key"] != a["scaled-ce"]["run_key"]
    assert b["scaled-ce"]["curves"][0]["train_ce"] == 0.0 != a["scaled-ce"]["curves"][0]["train_ce"]
    # the baseline's code did not change: reused, and the record says so
    assert b["baseline"]["stages"]["baseline[resnet8]"]["origin"] == "cache"
    assert b["baseline"]["stages"]["baseline[resnet8]"]["reused"] is True
    assert b["baseline"]["run_key"] == a["baseline"]["run_key"]


def write_tree(root: Path) -> None:
    for split, n in (("train", 12), ("test", 4)):
        for c, colour in (("cat", 40), ("dog", 200)):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.new("RGB", (16, 16), (colour, i * 10, (i * 37) % 256)).save(root / split / c / f"{i}.png")


def test_changing_one_image_retrains_the_baseline(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    write_tree(tree)
    cache = tmp_path / "cache"
    kw = dict(
        dataset=f"imagefolder:{tree}", train_subset=None, test_subset=None, overrides={"epochs": 1, "batch_size": 8}
    )
    first = run_tiny(cache, tmp_path / "a", **kw).records[0]
    same = run_tiny(cache, tmp_path / "b", **kw).records[0]
    assert same["stages"]["baseline[resnet8]"]["origin"] == "cache"
    Image.new("RGB", (16, 16), (255, 255, 255)).save(tree / "train" / "cat" / "3.png")
    changed = run_tiny(cache, tmp_path / "c", **kw).records[0]
    assert changed["dataset"]["fingerprint"] != first["dataset"]["fingerprint"]
    assert changed["stages"]["baseline[resnet8]"]["origin"] == "trained"
    assert changed["run_key"] != first["run_key"]


def test_dataset_plugin_without_fingerprint_gets_one(tmp_path: Path, cache_dir: Path) -> None:
    def load(request: DatasetRequest) -> ImageDataset:
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 255, (64, 3, 8, 8), dtype=torch.uint8, generator=g)
        y = torch.arange(64) % 2
        return ImageDataset(
            name="noise",
            train_images=x,
            train_labels=y,
            test_images=x[:16],
            test_labels=y[:16],
            classes=["a", "b"],
            mean=(0.5,) * 3,
            std=(0.25,) * 3,
            source="random noise",
        )

    class NoisePlugin:
        @staticmethod
        @hookimpl
        def bench_register_datasets(register):
            register("noise", load)

    plugins = load_plugins(entry_points=False, extra=[("noise", NoisePlugin)], warn=False)
    record = run_tiny(
        cache_dir,
        tmp_path,
        plugins=plugins,
        dataset="noise",
        train_subset=None,
        test_subset=None,
        overrides={"epochs": 1, "batch_size": 16},
    ).records[0]
    assert len(record["dataset"]["fingerprint"]) == 32


def test_reproduce_dry_run_needs_no_dataset(tmp_path: Path) -> None:
    from harness.cli import main

    empty = tmp_path / "no-data"
    empty.mkdir()
    code = main(
        [
            "reproduce",
            "table2",
            "--dry-run",
            "--no-download",
            "--data-dir",
            str(empty),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0


def test_one_digest_for_the_same_weights_trained_or_loaded(tmp_path: Path, cache_dir: Path) -> None:
    """A trained baseline and the same weights loaded with --teacher-checkpoint have one digest."""
    base = run_tiny(cache_dir, tmp_path / "a", arch="resnet14").records[0]
    stage = base["stages"]["baseline[resnet14]"]
    artifact = cache_dir / "artifacts" / "baseline" / f"{stage['artifact']}.pt"
    kd = run_tiny(cache_dir, tmp_path / "b", methods=["kd"], teacher_checkpoint=artifact).records[0]
    assert kd["teacher"]["weights_digest"] == stage["digest"]
    assert kd["teacher"]["stage"] == "checkpoint" and kd["teacher"]["test_acc"] == base["metrics"]["top1_last"]
    state = {k: v.clone() for k, v in torch.load(artifact, weights_only=False)["objective"].items()}
    assert weights_digest(state) == stage["digest"]


def test_code_identity_follows_source_edits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "idmod_helper.py").write_text("def helper():\n    return 1\n")
    (tmp_path / "idmod.py").write_text(
        "import json\nimport torch\nfrom idmod_helper import helper\n\ndef factory():\n    return helper()\n"
    )
    import idmod

    before = code_identity(idmod.factory)
    assert {"idmod", "idmod_helper", "torch"} <= set(before) and "json" not in before  # stdlib left out
    (tmp_path / "idmod_helper.py").write_text("def helper():\n    return 2  # edited\n")
    after = code_identity(idmod.factory)
    assert after["idmod_helper"] != before["idmod_helper"] and after["idmod"] == before["idmod"]


LAZY_PROBE = """
import importlib.metadata, json, sys
from harness.core.identity import code_identity
from plugins.methods.encodenet.method import EncodeNet
identity = code_identity(EncodeNet)
loaded = [m for m in ("sklearn", "kneed", "matplotlib", "scipy") if m in sys.modules]
import kneed, matplotlib, sklearn
print(json.dumps({"identity": identity, "loaded": loaded, "reported": {
    "sklearn": "scikit-learn==" + sklearn.__version__, "kneed": "kneed==" + kneed.__version__,
    "matplotlib": "matplotlib==" + matplotlib.__version__}}))
"""


def test_packages_imported_when_used_keep_their_versions_in_the_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module that imports a package only in the function using it names it in ``IMPORTED_WHEN_USED``: its
    version is in the identity as if imported at the top, and reading it imports nothing. EncodeNet's
    scikit-learn, kneed and matplotlib (checked in a fresh process: none is imported, and the versions are
    those the packages report once imported)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "idlazy.py").write_text("IMPORTED_WHEN_USED = ('kneed',)\n\ndef factory():\n    import kneed\n")
    (tmp_path / "idplain.py").write_text("def factory():\n    import kneed\n")
    import idlazy
    import idplain

    assert "kneed" in code_identity(idlazy.factory) and "kneed" not in code_identity(idplain.factory)
    done = subprocess.run([sys.executable, "-c", LAZY_PROBE], capture_output=True, text=True, cwd=REPO, check=True)
    probe = json.loads(done.stdout)
    assert probe["loaded"] == []
    for package, version in probe["reported"].items():
        assert probe["identity"][package] == version


# ---- which code enters a key ------------------------------------------------------------------------------


def kd_stage_identity(cache_dir: Path, tmp_path: Path) -> tuple[str, dict]:
    """The (provisional) key and identity of a kd student stage, resolved dry: nothing is trained."""
    from conftest import tiny_request
    from harness.core.identity import config_key
    from harness.core.progress import Reporter
    from harness.run.prepare import prepare
    from harness.train.stage import StageContext

    run = prepare(
        tiny_request(cache_dir, tmp_path / "out", methods=["kd"], teacher="resnet14"),
        load_plugins(warn=False),
        Reporter(),
    )
    entry = run.plan.find(0, "kd")
    runner = run.dry_runner(0)
    node = runner.resolve(entry.plan.deploy, "kd")
    ctx = StageContext(runner.env, node.inputs, node.stage.name)
    identity = runner.identity(node.stage, ctx, runner.env.place(node.stage.objective(ctx)), node.inputs, pending=True)
    assert identity is not None
    return config_key(identity), identity


def harness_modules(identity: dict) -> set[str]:
    return {m for m in [*identity["code"], *identity["run"]["engine_code"]] if m.startswith("harness")}


def test_every_harness_module_either_computes_or_presents() -> None:
    from harness.core.identity import harness_role

    names = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for p in (REPO / "harness").rglob("*.py")
    )
    assert {harness_role(n) for n in names} == {"compute", "present"}  # a KeyError names an undecided module
    with pytest.raises(KeyError, match="neither COMPUTES nor PRESENTS"):
        harness_role("harness.core.something_new")


def test_kd_stage_identity_holds_computing_modules_only(cache_dir: Path, tmp_path: Path) -> None:
    from harness.core.identity import COMPUTES

    _, identity = kd_stage_identity(cache_dir, tmp_path)
    modules = harness_modules(identity)
    assert modules <= COMPUTES, modules - COMPUTES
    for expected in ("harness.kits.distill", "harness.train.engine", "harness.data.pipeline", "harness.train.executor"):
        assert expected in modules
    for presenting in (
        "harness.core.progress",
        "harness.core.io",
        "harness.data.datasets",
        "harness.train.artifacts",
        "harness.cli",
        "harness.results.tables",
        "harness.core.errors",
        "harness.run.loggers",
        "harness.run.runlog",
        "harness.train.bundles",
        "harness.train.sources",
        "harness.train.inventory",
    ):
        assert presenting not in modules
    assert {"plugins.methods.kd", "plugins.archs.cifar_resnet"} <= set(identity["code"])


def test_a_presentation_edit_keeps_keys_and_a_computing_edit_changes_them(
    cache_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """Edits simulated through the source digests: a changed progress bar or CLI keeps the stage key, a
    changed distillation kit or training engine changes it."""
    import harness.core.identity as identity_module

    key, _ = kd_stage_identity(cache_dir, tmp_path)
    real = identity_module._source_digest

    def edited(*paths: str):
        return lambda file: "edited" if file.endswith(paths) else real(file)

    monkeypatch.setattr(
        identity_module,
        "_source_digest",
        edited("core/progress.py", "cli/__init__.py", "results/tables.py", "core/io.py"),
    )
    assert kd_stage_identity(cache_dir, tmp_path)[0] == key
    for computing in ("kits/distill.py", "train/engine.py", "data/pipeline.py", "methods/kd.py"):
        monkeypatch.setattr(identity_module, "_source_digest", edited(computing))
        assert kd_stage_identity(cache_dir, tmp_path)[0] != key, computing


def test_a_changed_reader_decodes_again(tmp_path: Path, monkeypatch) -> None:
    """The decode cache's file name holds the reader's source digest: a new reader never gets old tensors."""
    import harness.core.identity as identity_module
    from harness.data.datasets import cached

    calls = []

    def build() -> dict:
        calls.append(1)
        return {"x": torch.zeros(2)}

    cached(tmp_path / "d.pt", build, source=None)
    cached(tmp_path / "d.pt", build, source=None)
    assert len(calls) == 1
    real = identity_module._source_digest
    monkeypatch.setattr(
        identity_module, "_source_digest", lambda file: "edited" if file.endswith("data/datasets.py") else real(file)
    )
    cached(tmp_path / "d.pt", build, source=None)
    assert len(calls) == 2 and len(list(tmp_path.glob("d-*.pt"))) == 2


def test_a_source_digest_is_the_same_in_any_order_of_its_modules() -> None:
    """The decode cache's name must be the same in every process: ``cached`` once passed a *set* of modules,
    whose order differs between processes, so half the runs decoded the dataset again under a second name."""
    import harness.data.datasets as datasets
    import harness.data.trees as trees
    from harness.core import identity as identity_module

    one = identity_module.source_digest(datasets, trees, identity_module)
    assert one == identity_module.source_digest(identity_module, trees, datasets)
    assert one == identity_module.source_digest(trees, datasets, identity_module, datasets)
    assert one != identity_module.source_digest(datasets, trees)


# ---- code identity over normalised source ----------------------------------------------------------------


def test_normalised_source_ignores_comments_docstrings_and_layout_not_code() -> None:
    from harness.core.identity import normalised_source

    source = textwrap.dedent('''
        """A module."""
        LIMIT = 50  # a comment

        def step(a, b):
            """Add."""
            return a + b

        class Part:
            "A part."
            def run(self):
                """Only a docstring: runs as ``pass``."""
    ''').encode()
    reformatted = textwrap.dedent('''
        """Another module docstring."""
        LIMIT  =  50

        def step(a,
                 b):
            return (a + b)

        class Part:
            def run(self):
                pass
    ''').encode()
    assert normalised_source(source) == normalised_source(reformatted)
    for changed in (
        source.replace(b"50", b"51"),
        source.replace(b"a + b", b"a - b"),
        source.replace(b"return a + b", b'"Not a docstring: a statement after the first."\n    return a + b'),
        source.replace(b"LIMIT", b"LIMITS"),
    ):
        assert normalised_source(changed) != normalised_source(source), changed
    assert normalised_source(b"x = 1") != normalised_source(b"x = 1.0") != normalised_source(b"x = True")
    assert normalised_source(b"def (:") == b"def (:"  # a file that does not parse: hashed as it is


def test_a_source_digest_is_the_same_in_every_process() -> None:
    """No hash seed, set order or memory address enters a digest: two processes with different hash seeds agree."""
    code = (
        "import harness.train.engine as e, harness.core.identity as i; "
        "print(i._source_digest(e.__file__), i.code_digest(e.fit))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1 and outs.pop().strip()


def test_a_docstring_edit_in_the_engine_reuses_the_stage_and_a_changed_constant_retrains(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's source is read from a scratch copy (its module's ``__file__``): an edited docstring and
    comment reuse the cached stage, a changed constant trains it again."""
    import harness.train.engine as engine

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache_dir / "datasets").mkdir(parents=True, exist_ok=True)
    (cache / "datasets").symlink_to(cache_dir / "datasets", target_is_directory=True)
    stage = lambda outcome: outcome.records[0]["stages"]["baseline[resnet8]"]  # noqa: E731
    first = stage(run_tiny(cache, tmp_path / "a"))
    assert first["reused"] is False
    source = Path(engine.__file__).read_text()

    def scratch(name: str, old: str, new: str) -> None:
        assert source.count(old) == 1, old
        copy = tmp_path / name
        copy.write_text(source.replace(old, new))
        monkeypatch.setattr(engine, "__file__", str(copy))

    scratch(
        "docstring.py", '"""The training engine: one loop', '"""The training engine (edited): one loop\n# a comment'
    )
    again = stage(run_tiny(cache, tmp_path / "b"))
    assert again["reused"] is True and again["artifact"] == first["artifact"]
    scratch("constant.py", "return (epoch + 1) / recipe.warmup_epochs", "return (epoch + 2) / recipe.warmup_epochs")
    changed = stage(run_tiny(cache, tmp_path / "c"))
    assert changed["reused"] is False and changed["artifact"] != first["artifact"]


def test_a_decoded_cache_is_keyed_by_what_its_reader_reads(tmp_path: Path) -> None:
    """``cached`` names its file after the source it is given (path, and every file's size and time): two
    folders of one name, or a folder whose file changed, are decoded apart under one cache name."""
    from harness.data.datasets import cached

    def load(folder: Path) -> torch.Tensor:
        return cached(
            tmp_path / "cache" / "data.pt",
            lambda: {"x": torch.tensor(list((folder / "f").read_bytes()))},
            source=folder,
        )["x"]

    for name, content in (("one", b"\x01\x02"), ("two", b"\x03\x04")):
        (tmp_path / name / "data").mkdir(parents=True)
        (tmp_path / name / "data" / "f").write_bytes(content)
    assert load(tmp_path / "one" / "data").tolist() == [1, 2]
    assert load(tmp_path / "two" / "data").tolist() == [3, 4]
    (tmp_path / "one" / "data" / "f").write_bytes(b"\x05\x06\x07")
    assert load(tmp_path / "one" / "data").tolist() == [5, 6, 7]
    assert len(list((tmp_path / "cache").glob("data-*.pt"))) == 3


def test_cached_needs_the_source_and_refuses_a_build_that_reads_another(tmp_path: Path) -> None:
    from harness.data.datasets import cached

    data = tmp_path / "elsewhere.bin"
    data.write_bytes(b"\x01")
    with pytest.raises(TypeError, match="needs source="):
        cached(tmp_path / "a.pt", lambda: {"x": torch.zeros(1)})  # type: ignore[call-arg]  # the missing source= is the test
    with pytest.raises(ValueError, match=f"read '{data}', which its source= does not name"):
        cached(tmp_path / "b.pt", lambda: {"x": torch.tensor(list(data.read_bytes()))}, source=tmp_path / "declared")
    with pytest.raises(ValueError, match="declared: none"):
        cached(tmp_path / "c.pt", lambda: {"x": torch.tensor(list(data.read_bytes()))}, source=None)
    assert not list(tmp_path.glob("*.pt"))  # nothing cached under a key that does not name what was read
    assert cached(tmp_path / "d.pt", lambda: {"x": torch.tensor(list(data.read_bytes()))}, source=data)["x"] == 1
