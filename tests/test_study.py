"""Study files: a matrix study gives the records of the equivalent `bench run` lines; a wrong key or value is
one line naming the file, the table and the key, before anything is prepared; options override the file;
the resolved copy reads back to the same study; the bundled tables and the published studies are study
files; the schema, the `bench run` options and docs/studies.md cannot drift apart."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import tomllib

from harness.cli import build_parser, main
from harness.cli.args import run_parser
from harness.cli.study import load, schema
from harness.cli.study.session import open_study

REPO = Path(__file__).resolve().parents[1]

TINY = """
[study]
name = "matrix"

[defaults]
dataset = "cifar10-mini"
recipe = "smoke"
epochs = 1
batch_size = 64
train_subset = 200
test_subset = 100
latency = false

[[runs]]
arch = ["resnet8", "resnet14"]
methods = [["baseline"], ["se"]]

[execution]
out = "runs"
device = "cpu"
"""


def write(folder: Path, text: str, name: str = "study.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def records(out: Path) -> dict[str, dict]:
    found = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    return {r["run_key"]: r for r in found}


def studied(argv: list[str]) -> load.Study:
    """The study `bench run ARGV` would run (file checked, options applied), without running it."""
    args = build_parser().parse_args(argv)  # its options record what the command line gave (``given``)
    return open_study(args.study, args)


@pytest.mark.slow
def test_a_matrix_study_gives_the_records_of_the_equivalent_bench_run_lines(tmp_path: Path, capsys) -> None:
    """The lines use the study's cache: each of their stages is found there only under the very key the study's
    run trained it under, so nothing trains twice (and the metrics are measured again, from those weights)."""
    study = write(tmp_path / "s", TINY)
    assert main(["run", str(study), "--cache-dir", str(tmp_path / "cache"), "--quiet"]) == 0
    lines = tmp_path / "lines"
    for arch in ("resnet8", "resnet14"):
        for methods in ("baseline", "se"):
            assert (
                main(
                    [
                        "run",
                        "--methods",
                        methods,
                        "--arch",
                        arch,
                        "--dataset",
                        "cifar10-mini",
                        "--recipe",
                        "smoke",
                        "--epochs",
                        "1",
                        "--batch-size",
                        "64",
                        "--train-subset",
                        "200",
                        "--test-subset",
                        "100",
                        "--no-latency",
                        "--device",
                        "cpu",
                        "--out",
                        str(lines),
                        "--cache-dir",
                        str(tmp_path / "cache"),
                        "--quiet",
                    ]
                )
                == 0
            )
    from_study, from_lines = records(tmp_path / "s" / "runs"), records(lines)
    assert len(from_study) == 4 and from_study.keys() == from_lines.keys()  # the study is in no key
    for key, record in from_study.items():
        other = from_lines[key]
        assert (record["arch"], record["method"], record["seed"]) == (other["arch"], other["method"], other["seed"])
        assert record["metrics"] == other["metrics"]
        assert {n: s["artifact"] for n, s in record["stages"].items()} == {
            n: s["artifact"] for n, s in other["stages"].items()
        }
        assert {s["origin"] for s in record["stages"].values()} == {"trained"}
        assert "trained" not in {s["origin"] for s in other["stages"].values()}  # found under the study's keys
        assert "study" not in other
    (copy,) = (tmp_path / "s" / "runs").glob("*.study.toml")
    entries = {json.dumps(r["study"], sort_keys=True) for r in from_study.values()}
    assert len(entries) == 1
    entry = json.loads(entries.pop())
    assert entry["name"] == "matrix" and entry["file"] == str(study.absolute()) and entry["resolved"] == copy.name
    assert copy.name == f"matrix-{entry['digest'][:8]}.study.toml" and entry["digest"] in copy.read_text()
    resolved = tomllib.loads(copy.read_text())
    assert len(resolved["runs"]) == 4 and all(r["epochs"] == 1 and r["lr"] == 0.05 for r in resolved["runs"])
    assert resolved["execution"]["cache_dir"] == str(tmp_path / "cache")  # the command line's option applied
    # the resolved copy is the same study: same digest, and run again it reuses every record
    assert main(["study", "show", str(copy)]) == 0
    assert f"digest {entry['digest']}" in capsys.readouterr().out
    assert main(["run", str(copy), "--resume", "--quiet"]) == 0
    again = records(tmp_path / "s" / "runs")
    assert {k: r["created"] for k, r in again.items()} == {k: r["created"] for k, r in from_study.items()}


BASE = '[[runs]]\narch = "resnet8"\nmethods = ["baseline"]\n'


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            BASE + '\n[[runs]]\narch = "resnet8"\nmethods = ["se"]\nepochs = "ten"\n',
            '[runs.2] epochs: expected an integer >= 1, got "ten"',
        ),
        (BASE + "epoch = 3\n", "[runs.1] epoch: unknown key; did you mean 'epochs'?"),
        (BASE + "train-subset = 3\n", "[runs.1] train-subset: unknown key; did you mean 'train_subset'?"),
        (BASE + "workers = 2\n", "[runs.1] workers: unknown key; 'workers' belongs in [execution]"),
        ("[defaults]\nlr = 0\n" + BASE, "[defaults] lr: expected a finite number > 0, got 0"),
        (BASE + "val_split = 1.0\n", "[runs.1] val_split: expected a finite number in [0, 1), got 1.0"),
        (
            '[[runs]]\narch = ["resnet8", 3]\nmethods = ["baseline"]\n',
            "[runs.1] arch: expected a string (or a list of them: one run each), got 3",
        ),
        (BASE + 'select = "best"\n', '[runs.1] select: expected one of "last", "val", "test", got "best"'),
        (BASE + "seeds = [0, 0]\n", "[runs.1] seeds: seed 0 is listed twice"),
        (BASE + 'eval_distort = ["fog:1"]\n', "[runs.1] eval_distort: unknown distortion 'fog'"),
        (BASE + "amp = 1\n", "[runs.1] amp: expected true or false, got 1"),
        (BASE + "[runs.options]\nkd.temperature = 2\n", "[runs.1.options] kd: method 'kd' is in none of the runs"),
        (
            BASE + "[runs.options]\nbaseline.x = {a = 1}\n",
            "[runs.1.options] baseline.x: expected a string, number or boolean (or a non-empty list of them: one run "
            'each), got {"a": 1}',
        ),
        (BASE + "[execution]\nworkers = 0\n", "[execution] workers: expected an integer >= 1, got 0"),
        (
            BASE + "[execution]\nepochs = 1\n",
            "[execution] epochs: unknown key; 'epochs' belongs in [defaults] or [[runs]]",
        ),
        (
            BASE + "[execution.slurm]\ntimeout_min = [1]\n",
            "[execution.slurm] timeout_min: expected a string, number or boolean, got [1]",
        ),
        (
            BASE + '[study]\nmetric = "worst"\n',
            '[study] metric: expected one of "last", "best", "selected", got "worst"',
        ),
        (BASE + "[run]\nepochs = 1\n", "unknown table or key 'run' at the top level: did you mean 'runs'?"),
        ('[runs]\narch = "resnet8"\n', "[runs] must be an array of tables: write each run group as [[runs]]"),
        (
            "epochs = 1\n" + BASE,
            "unknown table or key 'epochs' at the top level: 'epochs' belongs in [defaults] or [[runs]]",
        ),
        ('[defaults]\narch = "resnet8"\n', "no [[runs]] table"),
        ('[[runs]]\nmethods = ["baseline"]\n', "[runs.1]: no arch: give arch in this [[runs]] table or in [defaults]"),
        (
            '[[runs]]\narch = "resnet8"\nmethods = "baseline"\n',
            '[runs.1] methods: expected a non-empty list of method names, got "baseline"',
        ),
        (BASE + "epochs = \n", "not valid TOML: Invalid value (at line 4, column 10)"),
    ],
)
def test_a_wrong_key_or_value_is_one_line_naming_file_table_and_key(
    tmp_path: Path, capsys, monkeypatch, text: str, expected: str
) -> None:
    import harness.run.prepare

    monkeypatch.setattr(harness.run.prepare, "prepare", lambda *a, **k: pytest.fail("prepared a bad study"))
    study = write(tmp_path, text)
    assert main(["run", str(study), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith(f"bench: error: {study}: ") and expected in err, err
    assert not (tmp_path / "out").exists()


def test_every_run_is_prepared_before_any_trains_and_an_error_names_its_run(tmp_path: Path, capsys) -> None:
    study = write(tmp_path, TINY + '\n[[runs]]\narch = ["resnet8", "resnet21"]\nmethods = ["baseline"]\n')
    assert main(["run", str(study), "--cache-dir", str(tmp_path / "cache"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{study}: [runs.2] arch=resnet21: unknown architecture 'resnet21'" in err, err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache" / "artifacts").exists()


def test_command_line_options_override_the_file(tmp_path: Path) -> None:
    study = write(
        tmp_path, TINY.replace("epochs = 1", "epochs = 3\nseeds = [0, 1, 2]") + "[runs.options]\nse.reduction = 8\n"
    )
    plain = studied(["run", str(study)])
    assert [r.values["seeds"] for r in plain.runs] == [[0, 1, 2]] * 4
    assert plain.runs[1].values["options"] == {"se": {"reduction": 8}}  # typed, as the file gives it
    assert plain.execution["out"] == tmp_path / "runs"  # a path in the file is relative to it
    # --seeds 0 is the option's default, but given: it wins; --opt adds to the file's options (the last wins)
    over = studied(
        ["run", str(study), "--epochs", "1", "--seeds", "0", "--opt", "se.reduction=4", "--out", "o", "--workers", "2"]
    )
    assert {(r.values["epochs"], tuple(r.values["seeds"])) for r in over.runs} == {(1, (0,))}
    assert [r.values["options"] for r in over.runs] == [{}, {"se": {"reduction": "4"}}] * 2
    assert over.execution["out"] == Path("o") and over.execution["workers"] == 2
    assert [r.declared["epochs"] for r in over.runs] == [3] * 4  # what the file says, for bench reproduce
    # one value for a matrix key collapses the runs it made
    assert [r.where for r in studied(["run", str(study), "--arch", "vgg8"]).runs] == [
        "[runs.1] arch=resnet8 methods=baseline",
        "[runs.1] arch=resnet8 methods=se",
    ]
    with pytest.raises(load.UsageError, match="--opt kd.t=2: method 'kd' is in none of the runs"):
        studied(["run", str(study), "--opt", "kd.t=2"])


def test_matrix_order_options_matrix_and_seed_by_seed(tmp_path: Path) -> None:
    study = write(
        tmp_path,
        """
[defaults]
recipe = "smoke"
seeds = [0, 1]
[defaults.options]
kd.temperature = 4

[[runs]]
arch = ["resnet8", "resnet14"]
dataset = ["cifar10", "cifar100"]
methods = ["baseline"]

[[runs]]
arch = "resnet8"
teacher = "resnet14"
methods = [["kd"], ["kd", "fitnet"]]
options.kd.ce_weight = [0.1, 0.5]

[execution]
order = "seeds"
""",
    )
    s = studied(["run", str(study)])
    assert [(r.values["arch"], r.values["dataset"]) for r in s.runs[:4]] == [
        ("resnet8", "cifar10"),
        ("resnet8", "cifar100"),
        ("resnet14", "cifar10"),
        ("resnet14", "cifar100"),
    ]
    assert [r.values["options"] for r in s.runs[4:]] == [  # typed values, never text
        {"kd": {"temperature": 4, "ce_weight": 0.1}},
        {"kd": {"temperature": 4, "ce_weight": 0.5}},
    ] * 2
    assert s.runs[0].values["options"] == {}  # a [defaults] option applies where its method runs
    requests = s.requests()
    assert [r.seeds for _, r in requests] == [[0]] * 8 + [[1]] * 8
    assert [r.arch for _, r in requests[:8]] == [r.values["arch"] for r in s.runs]


def test_every_bench_run_option_is_a_study_key_or_declared_cli_only() -> None:
    keys = {load.dest(k) for k in schema.KEYS if load.dest(k) is not None}
    dests = {a.dest for a in run_parser()._actions if a.dest != "help"}
    assert dests - keys - schema.CLI_ONLY == set(), "a bench run option with no study key: add it to schema.KEYS"
    missing = [k.name for k in schema.KEYS if k.flag and load.dest(k) is None]
    assert missing == [], f"study keys whose option bench run lacks: {missing}"
    assert set(load.defaults()) == {k.name for k in schema.KEYS}


def test_the_docs_key_reference_is_the_schemas() -> None:
    page = (REPO / "docs" / "studies.md").read_text()
    found = re.search(r"<!-- keys:start -->\n(.*?)<!-- keys:end -->", page, re.DOTALL)
    assert found, "docs/studies.md has no <!-- keys:start --> ... <!-- keys:end --> block"
    assert found[1] == schema.markdown(load.defaults()), "regenerate the block with: bench study keys"


def toml_blocks(page: str) -> list[tuple[str, str]]:
    """(the comment line before it, the TOML) of each ```toml block."""
    return re.findall(r"(<!-- study: \w+ -->\n)?```toml\n(.*?)```", page, re.DOTALL)


def test_the_docs_study_examples_are_valid_studies(tmp_path: Path) -> None:
    blocks = toml_blocks((REPO / "docs" / "studies.md").read_text())
    assert len(blocks) >= 3
    for i, (mark, text) in enumerate(blocks):
        path = write(tmp_path, text, f"example{i}.toml")
        if "invalid" in mark:
            with pytest.raises(load.UsageError):
                open_study(path, None)
        else:
            assert open_study(path, None).runs


def test_bench_reproduce_table2_dry_run_reads_the_bundled_study_file(tmp_path: Path, capsys, monkeypatch) -> None:
    from harness import studies

    args = ["--dry-run", "--no-download", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    bundled = tomllib.loads(Path(str(studies.find("table2"))).read_text())
    assert main(["reproduce", "table2", *args]) == 0
    out = capsys.readouterr().out
    for dataset in bundled["runs"][0]["dataset"]:
        for arch in bundled["runs"][0]["arch"]:
            assert f"{arch} on {dataset} (encodenet, 300 epochs, dataset not on disk" in out, (arch, dataset)
    assert "study 'table2' (bundled:table2): 8 run(s)" in out
    # an edited copy is read, under its own path and (here) in place of the bundled file
    assert main(["study", "copy", "table2", str(tmp_path / "mine.toml")]) == 0
    edited = (tmp_path / "mine.toml").read_text().replace('"vgg8", "vgg16", "resnet18", "resnet20"', '"resnet8"')
    (tmp_path / "mine.toml").write_text(edited.replace('"cifar10", "cifar100"', '"cifar100"'))
    for table in (str(tmp_path / "mine.toml"), "table2"):
        monkeypatch.setattr(studies, "find", lambda name: tmp_path / "mine.toml")
        capsys.readouterr()
        assert main(["reproduce", table, *args]) == 0
        out = capsys.readouterr().out
        assert "resnet8 on cifar100" in out and "vgg8" not in out and "on cifar10 " not in out
    assert main(["study", "copy", "table2", str(tmp_path / "mine.toml")]) == 2  # never overwritten
    assert "exists" in capsys.readouterr().err


def test_reproduce_refuses_a_study_without_or_with_a_missing_reference(tmp_path: Path, capsys) -> None:
    from harness import studies

    text = Path(str(studies.find("table5"))).read_text()
    gone = write(tmp_path, text.replace('reference = "table5"', 'reference = "gone"'), "gone.toml")
    assert main(["reproduce", str(gone), "--no-train"]) == 2
    assert "no reference table 'gone'" in capsys.readouterr().err
    none = write(tmp_path, text.replace('reference = "table5"\n', ""), "none.toml")
    assert main(["reproduce", str(none), "--no-train"]) == 2
    assert (
        "[study] reference: bench reproduce sets measured numbers beside a reference table" in capsys.readouterr().err
    )
    assert main(["reproduce", "table9"]) == 2
    assert "unknown study 'table9'" in capsys.readouterr().err


def test_bundled_studies_are_the_papers_tables() -> None:
    from harness import studies

    from harness.plugins.manager import load_plugins

    assert studies.names() == ["crd", "smoke", "table2", "table3", "table4", "table5"]
    registered = load_plugins(entry_points=False, warn=False).methods
    unregistered = {}
    for name in studies.names():
        declared = tomllib.loads(studies.find(name).read_text()).get("defaults", {}).get("methods", [])
        missing = [m for m in declared if m not in registered]
        if missing:  # crd's AT, SP, CC, VID, PKT, NST arrive with the other parts of issue 31
            unregistered[name] = missing
            continue
        study = open_study(name, None)
        assert study.meta["reference"] == name and study.label == f"{name} (bundled study)"
    table4 = open_study("table4", None)
    assert [(r.values["arch"], r.values["teacher"]) for r in table4.runs] == [
        ("resnet32", "resnet110"),
        ("vgg8", "vgg16"),
    ]
    if unregistered:
        pytest.skip(f"not opened, methods not registered in this checkout: {unregistered}")


@pytest.mark.parametrize(
    "folder", sorted(p.name for p in (REPO / "results" / "published").iterdir() if (p / "study.toml").exists())
)
def test_published_study_files_declare_exactly_their_records(folder: str) -> None:
    """Each published study's records (made by `bench run` lines) are the runs its study file declares: the
    same architectures, methods, options, seeds, data and budget, one record each; nothing retrained."""
    from harness.data.datasets import display_name
    from harness.plugins.manager import load_plugins

    plugins = load_plugins(warn=False)
    here = REPO / "results" / "published" / folder
    study = open_study(here / "study.toml", None)
    assert study.execution["out"] == here / "runs"
    declared = []
    teachers = {}  # (arch, method) -> the teacher its run declares, else the architecture's default
    for _, req in study.requests():
        given: dict[str, dict] = req.options  # typed, a table per method
        for method in req.methods:
            teachers[req.arch, method] = req.teacher or plugins.archs.resolve(req.arch).entry.meta.get(
                "default_teacher"
            )
            cls = plugins.methods.resolve(method).obj
            options = json.dumps(cls.parse_options(method, given.get(method, {})), sort_keys=True)
            for seed in req.seeds:
                declared.append(
                    (
                        req.arch,
                        method,
                        options,
                        seed,
                        display_name(req.dataset),
                        req.recipe,
                        req.overrides["epochs"] or plugins.recipes.resolve(req.recipe).obj.epochs,
                        req.train_subset,
                        req.test_subset,
                        req.val_split,
                        sorted(d.name for d in req.eval_distortions),
                    )
                )
    found = []
    for path in sorted((here / "runs").glob("*.json")):
        r = json.loads(path.read_text())
        options = {k: v for k, v in r["method"]["options"].items() if r["method"].get("defaults", {}).get(k) != v}
        ds = r["dataset"]
        found.append(
            (
                r["arch"],
                r["method"]["name"],
                json.dumps(options, sort_keys=True),
                r["seed"],
                display_name(ds["name"]),
                r["recipe"]["name"],
                r["recipe"]["epochs"],
                ds.get("train_subset"),
                ds.get("test_subset"),
                ds.get("val_split", 0.0),
                sorted(r["metrics"].get("top1_distorted") or {}),
            )
        )
        if (r.get("teacher") or {}).get("arch"):
            assert r["teacher"]["arch"] == teachers[r["arch"], r["method"]["name"]]
    assert len(set(map(str, found))) == len(found)  # one record per declared run and seed
    if unfinished(here):  # an unfinished study: every record is one it declares, some are still to come
        assert {str(f) for f in found} < {str(d) for d in declared}
    else:
        assert sorted(declared, key=str) == sorted(found, key=str)
    assert not (here / "run.sh").exists()  # the study file replaces it


def unfinished(folder: Path) -> bool:
    """A published study still training, or stopped before its end, says so in its protocol's first status line
    ("**Status: in progress" or "**Status: stopped")."""
    status = [line for line in (folder / "PROTOCOL.md").read_text().splitlines() if line.startswith("**Status:")]
    return bool(status) and status[0].startswith(("**Status: in progress", "**Status: stopped"))


def test_the_stopped_30_epoch_study_says_why_and_how_to_resume() -> None:
    """Issue 33: the 30-epoch ResNet-8 study is published as stopped (seed 0 only), with why and a resume
    command from the commit whose computing code made its stage keys (b166310)."""
    here = REPO / "results" / "published" / "encodenet-resnet8-cifar10jpg-full-30ep"
    text = (here / "PROTOCOL.md").read_text()
    assert unfinished(here) and "**Status: stopped" in text and "**Why stopped:** CPU hours" in text
    assert "git worktree add ../encodenet-bench-b166310 b166310" in text
    assert "-m harness run \\\n        $c/results/published/encodenet-resnet8-cifar10jpg-full-30ep/study.toml" in text
    records = [json.loads(p.read_text()) for p in (here / "runs").glob("*.json")]
    assert records and {r["seed"] for r in records} == {0}
    baseline = next(r for r in records if r["method"]["name"] == "baseline")
    assert baseline["stages"]["baseline[resnet8]"]["artifact"] in text  # the key the old code was checked to give


def test_study_keys_prints_the_reference(capsys) -> None:
    assert main(["study", "keys"]) == 0
    assert capsys.readouterr().out == schema.markdown(load.defaults())


def test_study_show_lists_runs_resolved_copy_and_work(tmp_path: Path, capsys) -> None:
    study = write(tmp_path, TINY)
    assert main(["study", "show", str(study), "--epochs", "2", "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "study 'matrix'" in out and "4 run(s)" in out and "[runs.1] arch=resnet14 methods=se" in out
    copy = tomllib.loads(out[out.index("[study]") : out.index("resnet8 on cifar10-mini")])
    assert [r["epochs"] for r in copy["runs"]] == [2] * 4 and copy["runs"][1]["options"]["se"]["reduction"] == 16
    assert "image-epochs" in out and "stage graph: 4 stage jobs" in out
    assert not (tmp_path / "runs").exists()  # showing writes nothing


def test_a_study_names_its_loggers_and_teacher_sources_as_written(tmp_path: Path) -> None:
    """`log` is bench run's --log; a teacher checkpoint given as a URL or hub id is no path under the file's folder."""
    study = write(tmp_path, TINY.replace("[execution]\n", '[execution]\nlog = ["tensorboard"]\n'))
    assert studied(["run", str(study)]).namespace(cli=build_parser().parse_args(["run", str(study)])).log == [
        "tensorboard"
    ]
    url = "https://example.org/teacher.zip#sha256=" + "0" * 64
    sourced = write(tmp_path / "b", TINY.replace("latency = false", f'latency = false\nteacher_checkpoint = "{url}"'))
    assert {r.values["teacher_checkpoint"] for r in studied(["run", str(sourced)]).runs} == {url}
    local = write(tmp_path / "c", TINY.replace("latency = false", 'latency = false\nteacher_checkpoint = "t.zip"'))
    assert {r.values["teacher_checkpoint"] for r in studied(["run", str(local)]).runs} == {tmp_path / "c" / "t.zip"}


def test_study_values_reach_the_run_typed_never_as_command_line_text(tmp_path: Path, monkeypatch) -> None:
    """A study file's values are checked and converted by their kinds, not rendered as `--opt`/`--epochs` text
    and parsed again: with every command-line parse disabled, the file still loads, its requests hold the
    file's typed values, and a method option becomes the option's type without being parsed."""
    from harness.cli import args as cli_args
    from harness.methods.contract import Option
    from harness.plugins.manager import load_plugins
    from harness.run.prepare import build_methods

    def no_text(*_: object) -> None:
        raise AssertionError("a study value was parsed as command-line text")

    monkeypatch.setattr(cli_args.ArgType, "__call__", no_text)
    monkeypatch.setattr(Option, "parse", no_text)
    study = write(
        tmp_path,
        """
[[runs]]
arch = "resnet8"
teacher = "resnet14"
methods = ["kd"]
epochs = 3
lr = 1
milestones = [1, 2]
eval_noise = [0, 0.1]
options.kd.temperature = 2
options.kd.ce_weight = 0.5

[execution]
slurm.timeout_min = 60
""",
    )
    s = studied(["run", str(study)])
    ((_, request),) = s.requests()
    assert request.options == {"kd": {"temperature": 2, "ce_weight": 0.5}}
    assert (request.overrides["epochs"], request.overrides["lr"], request.overrides["milestones"]) == (3, 1.0, (1, 2))
    assert type(request.overrides["lr"]) is float and [d.name for d in request.eval_distortions] == [
        "noise:0",
        "noise:0.1",
    ]
    assert s.execution["slurm"] == {"timeout_min": 60}
    (kd,) = build_methods(load_plugins(warn=False), request.methods, request.options)
    assert kd.opts["temperature"] == 2.0 and type(kd.opts["temperature"]) is float
    with pytest.raises(load.UsageError, match="option kd.ce_weight: expected a float, got True"):
        build_methods(load_plugins(warn=False), ["kd"], {"kd": {"ce_weight": True}})


KD_TWICE = """
[study]
name = "kd-twice"

[defaults]
dataset = "cifar10-mini"
recipe = "smoke"
epochs = 1
train_subset = 200
test_subset = 100
latency = false

[[runs]]
arch = "resnet8"
methods = ["kd"]
teacher = "resnet14"
[runs.options]
kd.temperature = [2, 8]

[execution]
out = "runs"
device = "cpu"
"""


def test_study_show_counts_a_shared_teacher_once(tmp_path: Path, capsys) -> None:
    """Two KD runs with one teacher: the teacher's 200 image-epochs are counted once in the totals, as in the
    stage graph (issue 32: 2,200 said against the graph's 2,000 at the full size)."""
    study = write(tmp_path, KD_TWICE)
    assert main(["study", "show", str(study), "--cache-dir", str(tmp_path / "cache")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    # kd 200 per run, the teacher baseline[resnet14] 200 once (the second run shares it): 600, not 800
    assert "baseline[resnet14] 1 (shared)" in out
    assert "600 image-epochs of training" in out
    assert "stage graph: 3 stage jobs, 3 to train in 2 layers, 600 image-epochs in all" in out
